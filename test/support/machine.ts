/** Driving the pure state machine in tests: events one after another, as the commit applies them. */
import { initialState, step, type MachineEvent, type Snapshot, type Transition, type Workflow } from '../../src/workflow/index.ts';

/** Feed events one after another, as the commit does under the instance's row lock. */
export function drive(def: Workflow, events: MachineEvent[], from?: Snapshot): { snap: Snapshot; transitions: Transition[] } {
  let snap: Snapshot = from ?? { status: 'running', state: initialState() };
  const transitions: Transition[] = [];
  for (const event of events) {
    const tr = step(def, snap, event);
    transitions.push(tr);
    snap = { status: tr.status, state: tr.state };
  }
  return { snap, transitions };
}

/** The activation keys a transition schedules. */
export const keys = (tr: Transition) => tr.schedule.map((s) => s.key);
