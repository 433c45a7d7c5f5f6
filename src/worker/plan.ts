/**
 * From finished attempts to one commit batch: for each instance, fold its
 * attempts' outcomes through the pure state machine, starting from the
 * newest snapshot known, and describe what to write: task results, the new
 * state, one history entry per checkpoint, the steps to schedule.
 *
 * Pure (no I/O). The committer sends the batch to baton.commit, which applies
 * an instance only if its version is still the one used here.
 */
import { serializeError, type SerializedError } from '../errors.ts';
import type { CommitBatch, CommitInstance, CommitItem, HistoryRow, ScheduleRow } from '../store/commit.ts';
import { isFinished, type HistoryKind, type WorkflowStatus } from '../types.ts';
import { step, type MachineEvent, type MachineState, type ScheduledStep, type Transition } from '../workflow/machine.ts';
import { limitKeyOf } from '../workflow/limits.ts';
import { diff } from '../workflow/patch.ts';
import { startLimitKey } from '../workflow/start-keys.ts';
import type { Held, Outcome } from './held.ts';

export interface InstanceSnapshot {
  status: WorkflowStatus;
  state: MachineState;
  version: number;
}

export interface Finished {
  held: Held;
  outcome: Outcome;
}

function label(s: ScheduledStep): string {
  switch (s.kind) {
    case 'task':
      return s.compensates === undefined ? s.name : `${s.name} (compensating ${s.compensates})`;
    case 'sleep':
      return `sleep ${s.delayMs} ms`;
    case 'event':
      return `waitForEvent ${s.name}`;
    case 'child':
      return `child ${s.name}`;
    case 'branch':
      return 'branch';
    case 'compensate':
      return 'compensate';
  }
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

/**
 * The limit key of a scheduled step (see src/workflow/limits.ts): a task's, from its key function and
 * input; a child's, its first steps' (start-keys.ts). A key function that throws or returns no
 * string leaves the step unlimited (null): its worker computes the key again before the attempt and
 * fails it at once, as for an input check, and the instance carries on under its own failure rules.
 */
function limitKeyFor(held: Held, s: ScheduledStep): string | null {
  try {
    if (s.kind === 'task' && s.limit) return limitKeyOf(held.def.tasks.get(s.name)?.options.limits ?? null, s.input, `task "${s.name}"`);
    if (s.kind === 'child' && s.child) {
      const child = held.def.children.find((c) => c.hash === s.child!.hash);
      return child ? startLimitKey(child, s.input, `workflow "${s.name}"`) : null;
    }
  } catch {
    return null;
  }
  return null;
}

function scheduleRow(held: Held, s: ScheduledStep): ScheduleRow {
  const wf = held.task.workflow;
  const limitKey = limitKeyFor(held, s);
  return {
    wf: held.task.workflowId,
    key: s.key,
    kind: s.kind,
    name: s.name,
    hash: held.def.hash,
    input: s.input ?? null,
    priority: wf.priority ?? s.priority,
    tags: union(s.tags, wf.tags),
    maxAttempts: s.maxAttempts,
    delayMs: s.delayMs,
    timeoutMs: s.timeoutMs,
    held: s.held,
    ...(limitKey !== null && s.kind === 'task' ? { limitKey } : {}),
    ...(s.kind === 'event' && s.keyed ? { keyed: true as const } : {}),
    ...(s.compensates !== undefined ? { from: s.compensates } : {}),
    child: s.child ? { name: s.child.name, hash: s.child.hash, priority: wf.priority, tags: wf.tags, ...held.trace, ...(limitKey !== null ? { limitKey } : {}) } : null,
  };
}

/** The newest snapshot among an instance's claims, unless a fresher one is known (from a conflict). */
function baseSnapshot(group: Finished[], known: InstanceSnapshot | undefined): InstanceSnapshot {
  // A claim's instance snapshot is one (status, state as the machine's, version): used as it is, not copied.
  let best = known ?? (group[0]!.held.task.workflow as InstanceSnapshot);
  for (const { held } of group) {
    const w = held.task.workflow as InstanceSnapshot;
    if (w.version > best.version) best = w;
  }
  return best;
}

function machineEvent(f: Finished): MachineEvent | null {
  const { held, outcome } = f;
  const key = held.task.taskKey;
  switch (outcome.kind) {
    case 'completed':
      return { type: 'completed', key, output: outcome.output };
    case 'branch':
      return { type: 'branch', key, input: outcome.input };
    case 'timedOut':
      return { type: 'timedOut', key };
    case 'error':
      return outcome.final ? { type: 'failed', key, error: outcome.error } : null;
    case 'rewait':
      return null;
  }
}

function item(f: Finished, status: CommitItem['status'], output: unknown, error: unknown, delayMs: number | null, paused: boolean): CommitItem {
  const task = f.held.task;
  const eventId = f.outcome.kind === 'completed' ? (f.outcome.eventId ?? null) : null;
  const eventKey = f.outcome.kind === 'rewait' ? f.outcome.eventKey : undefined;
  return { wf: task.workflowId, key: task.taskKey, epoch: task.epoch, status, paused, output, error, delayMs, eventId, ...(eventKey !== undefined ? { eventKey } : {}) };
}

function commitItem(f: Finished, t: Transition | null, paused: boolean): CommitItem {
  const { outcome } = f;
  switch (outcome.kind) {
    case 'completed':
      return item(f, 'completed', outcome.output, null, null, false);
    case 'branch':
      return item(f, 'completed', null, null, null, false);
    case 'timedOut': {
      const error = t?.error ?? t?.stepError;
      return error ? item(f, 'failed', null, error, null, false) : item(f, 'completed', null, null, null, false);
    }
    case 'error':
      if (outcome.final) return item(f, 'failed', null, outcome.error, null, false);
      // A retry: ready again at once, or after its back-off; held while the instance is paused.
      return item(f, outcome.delayMs === 0 && !paused ? 'ready' : 'waiting', null, outcome.error, outcome.delayMs, paused);
    case 'rewait':
      return item(f, 'waiting', null, null, null, paused);
  }
}

/**
 * The commit of a one-task job's step that completes it, whose one checkpoint baton.finished_checkpoint
 * derives exactly: 'completed', its patch one step done (a job's state has no parallel frames), nothing
 * scheduled or ignored, no event consumed. Its history row is not stored, nor its output on the task row.
 */
function isQuietJob(f: Finished, base: InstanceSnapshot, t: Transition): boolean {
  return f.held.def.kind === 'task' && f.outcome.kind === 'completed' && f.outcome.eventId == null && base.status === 'running'
    && t.status === 'completed' && t.schedule.length === 0 && !t.error && !t.ignored
    && base.state.done === 0 && (t.state as MachineState).done === 1 && isEmpty(base.state.par) && isEmpty((t.state as MachineState).par);
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

export interface PlannedInstance {
  instance: CommitInstance;
  items: CommitItem[];
  history: HistoryRow[];
  schedule: ScheduleRow[];
}

const NONE: never[] = [];

/**
 * The commonest commit of all, a one-task job's only attempt that completed it: planned here without
 * the general fold's bookkeeping (its arrays, closures and copies were about a fifth of the bytes a
 * worker allocated per job). Null when the attempt is anything else; foldInstance plans it then,
 * and plans a quiet job to the same result (test/plan-quiet.test.ts holds the two to it).
 */
function planQuietJob(f: Finished, base: InstanceSnapshot): PlannedInstance | null {
  const { held, outcome } = f;
  if (held.def.kind !== 'task' || outcome.kind !== 'completed' || outcome.eventId != null || base.status !== 'running') return null;
  const task = held.task;
  let t: Transition;
  try {
    t = step(held.def, base, { type: 'completed', key: task.taskKey, output: outcome.output });
  } catch {
    return null;
  }
  if (!isQuietJob(f, base, t)) return null;
  const parent = task.workflow.parentId;
  return {
    instance: {
      id: task.workflowId,
      parent,
      version: base.version,
      status: t.status,
      state: t.state,
      bump: 1,
      done: 1,
      output: t.output ?? null,
      error: null,
      step: null,
      finished: true,
      after: parent !== null,
    },
    items: [
      { wf: task.workflowId, key: task.taskKey, epoch: task.epoch, status: 'completed', paused: false, output: null, error: null, delayMs: null, eventId: null, quiet: true },
    ],
    history: NONE,
    schedule: NONE,
  };
}

/** Fold one instance's finished attempts into what its commit writes. */
export function planInstance(workerId: string, group: Finished[], known?: InstanceSnapshot): PlannedInstance {
  return (group.length === 1 ? planQuietJob(group[0]!, baseSnapshot(group, known)) : null) ?? foldInstance(workerId, group, known);
}

/** The general fold of planInstance (exported for the test that holds planQuietJob to it). */
export function foldInstance(workerId: string, group: Finished[], known?: InstanceSnapshot): PlannedInstance {
  const base = baseSnapshot(group, known);
  const id = group[0]!.held.task.workflowId;
  let status = base.status;
  let state = base.state;
  const items: CommitItem[] = [];
  const schedule: ScheduleRow[] = [];
  const history: HistoryRow[] = [];
  const record = (kind: HistoryKind, detail: unknown) => history.push({ wf: id, version: base.version + history.length + 1, kind, detail });
  const steps: string[] = [];
  let output: unknown = null;
  let error: SerializedError | null = null;
  let quiet = false;
  // Steps an earlier attempt of this batch cancelled (a join fired, a branch failed): see below.
  const cancel: string[] = [];
  let halt = false;

  for (const f of group) {
    const { held, outcome } = f;
    const key = held.task.taskKey;
    if (cancel.length > 0 && cancel.some((c) => key === c || key.startsWith(`${c}/`))) {
      // Cancelled by an attempt committed just before it, in this same batch: it ends cancelled,
      // as it would had that commit gone first (the fence would refuse it then).
      items.push(item(f, 'cancelled', null, null, null, false));
      continue;
    }
    const attempt = held.task.attempts;
    const who = { key, attempt, worker: workerId, epoch: held.task.epoch };
    const event = machineEvent(f);
    let t: Transition | null = null;
    if (event) {
      try {
        t = step(held.def, { status, state }, event);
      } catch (e) {
        // A definition that cannot place this step: fail the instance rather than lose the result.
        t = step(held.def, { status, state }, { type: 'failed', key, error: serializeError(e) });
      }
    }
    if (t && group.length === 1 && isQuietJob(f, base, t)) {
      items.push({ ...commitItem(f, t, false), output: null, quiet: true });
      output = t.output ?? null;
      status = t.status;
      state = t.state;
      quiet = true;
      continue;
    }
    items.push(commitItem(f, t, status === 'paused'));
    if (outcome.kind === 'rewait') continue;
    if (!t) {
      if (outcome.kind === 'error') record('retry', { ...who, error: outcome.error, retryInMs: outcome.delayMs, status });
      continue;
    }
    if (t.cancel) cancel.push(...t.cancel);
    const patch = diff(state, t.state);
    schedule.push(...t.schedule.map((s) => scheduleRow(held, s)));
    steps.push(...t.schedule.map(label));
    const kind = outcome.kind === 'error' ? 'task_failed' : outcome.kind === 'timedOut' ? 'timed_out' : outcome.kind;
    record(kind, {
      ...who,
      status: t.status,
      ...(patch === undefined ? {} : { patch }),
      ...(t.schedule.length ? { scheduled: t.schedule.map((s) => s.key) } : {}),
      ...(outcome.kind === 'error' ? { error: outcome.error } : {}),
      // The event consumed: `baton check` verifies that no event is consumed twice.
      ...(outcome.kind === 'completed' && outcome.eventId != null ? { eventId: outcome.eventId } : {}),
      ...(t.error && outcome.kind !== 'error' ? { error: t.error } : {}),
      ...(t.stepError ? { error: t.stepError } : {}),
      ...(t.ignored ? { ignored: t.ignored } : {}),
      ...(t.joined ? { joined: t.joined } : {}),
      ...(t.cancel ? { cancelled: t.cancel } : {}),
      ...(t.halt ? { compensating: (t.state as MachineState).sag?.err } : {}),
    });
    if (t.halt) halt = true;
    if (t.status !== status && isFinished(t.status)) {
      if (t.status === 'completed') output = t.output ?? null;
      if (t.error) error = t.error;
    }
    status = t.status;
    state = t.state;
  }

  const finished = isFinished(status) && !isFinished(base.status);
  const parent = group[0]!.held.task.workflow.parentId;
  const instance: CommitInstance = {
    id,
    parent,
    version: base.version,
    status,
    state,
    // A quiet job's one checkpoint is derived, not stored (baton.finished_checkpoint).
    bump: quiet ? 1 : history.length,
    done: items.filter((i) => i.status === 'completed').length,
    output,
    error,
    step: steps.length ? steps.join(', ') : null,
    finished,
    // A compensation that began closes the forward work (baton.after_finish keeps the compensations).
    after: (finished && (status !== 'completed' || parent !== null)) || halt,
    ...(cancel.length > 0 ? { cancel } : {}),
  };
  return { instance, items, history, schedule };
}

/** Group finished attempts by instance, in arrival order, and plan them all. */
export function planBatch(workerId: string, finished: Finished[], known: Map<string, InstanceSnapshot>): CommitBatch {
  const groups = new Map<string, Finished[]>();
  for (const f of finished) {
    const id = f.held.task.workflowId;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = []));
    g.push(f);
  }
  const batch: CommitBatch = { items: [], instances: [], history: [], schedule: [] };
  for (const [id, group] of groups) {
    const planned = planInstance(workerId, group, known.get(id));
    batch.items.push(...planned.items);
    batch.instances.push(planned.instance);
    batch.history.push(...planned.history);
    batch.schedule.push(...planned.schedule);
  }
  return batch;
}
