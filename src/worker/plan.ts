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
import type { HistoryKind, WorkflowStatus } from '../types.ts';
import { step, type MachineEvent, type MachineState, type ScheduledStep, type Transition } from '../workflow/machine.ts';
import { diff } from '../workflow/patch.ts';
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
      return s.name;
    case 'sleep':
      return `sleep ${s.delayMs} ms`;
    case 'event':
      return `waitForEvent ${s.name}`;
    case 'child':
      return `child ${s.name}`;
    case 'branch':
      return 'branch';
  }
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

function scheduleRow(held: Held, s: ScheduledStep): ScheduleRow {
  const wf = held.task.workflow;
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
    child: s.child ? { name: s.child.name, hash: s.child.hash, priority: wf.priority, tags: wf.tags } : null,
  };
}

/** The newest snapshot among an instance's claims, unless a fresher one is known (from a conflict). */
function baseSnapshot(group: Finished[], known: InstanceSnapshot | undefined): InstanceSnapshot {
  let best: InstanceSnapshot = known ?? {
    status: group[0]!.held.task.workflow.status,
    state: group[0]!.held.task.workflow.state as MachineState,
    version: group[0]!.held.task.workflow.version,
  };
  for (const { held } of group) {
    const w = held.task.workflow;
    if (w.version > best.version) best = { status: w.status, state: w.state as MachineState, version: w.version };
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

function commitItem(f: Finished, t: Transition | null, paused: boolean): CommitItem {
  const { held, outcome } = f;
  const base = { wf: held.task.workflowId, key: held.task.taskKey, epoch: held.task.epoch, output: null, error: null, delayMs: null, eventId: null, paused: false };
  switch (outcome.kind) {
    case 'completed':
      return { ...base, status: 'completed', output: outcome.output, eventId: outcome.eventId ?? null };
    case 'branch':
      return { ...base, status: 'completed' };
    case 'timedOut':
      return t?.error ? { ...base, status: 'failed', error: t.error } : { ...base, status: 'completed' };
    case 'error':
      if (outcome.final) return { ...base, status: 'failed', error: outcome.error };
      // A retry: ready again at once, or after its back-off; held while the instance is paused.
      return { ...base, status: outcome.delayMs === 0 && !paused ? 'ready' : 'waiting', error: outcome.error, delayMs: outcome.delayMs, paused };
    case 'rewait':
      return { ...base, status: 'waiting', paused };
  }
}

export interface PlannedInstance {
  instance: CommitInstance;
  items: CommitItem[];
  history: HistoryRow[];
  schedule: ScheduleRow[];
}

/** Fold one instance's finished attempts into what its commit writes. */
export function planInstance(workerId: string, group: Finished[], known?: InstanceSnapshot): PlannedInstance {
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

  for (const f of group) {
    const { held, outcome } = f;
    const key = held.task.taskKey;
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
    items.push(commitItem(f, t, status === 'paused'));
    if (outcome.kind === 'rewait') continue;
    if (!t) {
      if (outcome.kind === 'error') record('retry', { ...who, error: outcome.error, retryInMs: outcome.delayMs, status });
      continue;
    }
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
      ...(t.error && outcome.kind !== 'error' ? { error: t.error } : {}),
      ...(t.ignored ? { ignored: t.ignored } : {}),
    });
    if (t.status !== status && (t.status === 'completed' || t.status === 'failed')) {
      if (t.status === 'completed') output = t.output ?? null;
      if (t.error) error = t.error;
    }
    status = t.status;
    state = t.state;
  }

  const finished = (status === 'completed' || status === 'failed') && base.status !== status;
  const parent = group[0]!.held.task.workflow.parentId;
  const bump = history.length;
  if (finished && status === 'completed' && isQuietJob(group, history, schedule)) {
    // A one-task job that only started and completed: its checkpoint is not stored, and its output is
    // stored once, on the instance. The task row keeps who committed it (baton.finished_checkpoint).
    items[0] = { ...items[0]!, output: null, quiet: true };
    history.length = 0;
  }
  const instance: CommitInstance = {
    id,
    parent,
    version: base.version,
    status,
    state,
    bump,
    done: items.filter((i) => i.status === 'completed').length,
    output,
    error,
    step: steps.length ? steps.join(', ') : null,
    finished,
    after: finished && (status === 'failed' || parent !== null),
  };
  return { instance, items, history, schedule };
}

/**
 * The commit of a one-task job's only step that completed it, with the one checkpoint that
 * baton.finished_checkpoint derives exactly: 'completed', its patch one step done, nothing scheduled
 * or ignored, no event consumed.
 */
function isQuietJob(group: Finished[], history: HistoryRow[], schedule: ScheduleRow[]): boolean {
  if (group.length !== 1 || history.length !== 1 || schedule.length !== 0) return false;
  const { held, outcome } = group[0]!;
  if (held.def.kind !== 'task' || outcome.kind !== 'completed' || outcome.eventId != null) return false;
  const row = history[0]!;
  const detail = row.detail as { patch?: { done?: unknown }; ignored?: unknown; error?: unknown };
  return row.kind === 'completed' && detail.ignored === undefined && detail.error === undefined
    && detail.patch !== undefined && Object.keys(detail.patch).length === 1 && detail.patch.done === 1;
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
