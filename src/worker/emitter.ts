/**
 * Typed worker events, `scope:action`. A listener that throws is logged and
 * skipped: it never breaks the worker.
 */
import type { SerializedError } from '../errors.ts';
import type { Logger, WorkflowStatus } from '../types.ts';
import type { Codec } from '../codec.ts';
import type { Settlement } from './committer.ts';
import type { Held } from './held.ts';
import type { WorkerMetrics } from './metrics.ts';
import type { Finished } from './plan.ts';
import type { RunnerDeps } from './runner.ts';
import { AttemptSpans } from './tracing.ts';

export interface TaskEventInfo {
  workflowId: string;
  taskKey: string;
  name: string;
  attempt: number;
}

export interface WorkerEvents {
  'worker:start': { workerId: string };
  'worker:stopping': { workerId: string; reason: string };
  'worker:stop': { workerId: string };
  'worker:error': { workerId: string; error: unknown; during: string };
  'task:claim': { workerId: string; count: number };
  'task:start': TaskEventInfo;
  'task:success': TaskEventInfo & { durationMs: number };
  'task:failure': TaskEventInfo & { error: SerializedError; willRetry: boolean; delayMs?: number };
  'task:timeout': TaskEventInfo & { timeoutMs: number; settled: boolean };
  'task:lost': TaskEventInfo & { reason: 'lease' | 'cancelled' };
  'task:refused': { workflowId: string; taskKey: string; epoch: number };
  'task:released': TaskEventInfo;
  'workflow:finished': { workflowId: string; status: WorkflowStatus };
}

export type Listener<K extends keyof WorkerEvents> = (payload: WorkerEvents[K]) => void;
/** Any event's listener, as stored: emit() calls it only with its own event's payload. */
type StoredListener = (payload: never) => void;

export class WorkerEmitter {
  /**
   * Per event, its listeners in the order added. A list is replaced, never changed in place, so
   * that emit() walks the listeners of the moment it began without copying them.
   */
  private readonly listeners = new Map<keyof WorkerEvents, readonly StoredListener[]>();

  constructor(private readonly log: Logger) {}

  on<K extends keyof WorkerEvents>(event: K, listener: Listener<K>): this {
    const list = this.listeners.get(event) ?? [];
    if (!list.includes(listener)) this.listeners.set(event, [...list, listener]);
    return this;
  }

  off<K extends keyof WorkerEvents>(event: K, listener: Listener<K>): this {
    const list = this.listeners.get(event);
    if (!list?.includes(listener)) return this;
    const rest = list.filter((l) => l !== listener);
    if (rest.length > 0) this.listeners.set(event, rest);
    else this.listeners.delete(event);
    return this;
  }

  once<K extends keyof WorkerEvents>(event: K, listener: Listener<K>): this {
    const wrapped: Listener<K> = (payload) => {
      this.off(event, wrapped);
      listener(payload);
    };
    return this.on(event, wrapped);
  }

  /** Whether anyone listens: callers skip building a payload nobody would see. */
  has(event: keyof WorkerEvents): boolean {
    return this.listeners.has(event);
  }

  emit<K extends keyof WorkerEvents>(event: K, payload: WorkerEvents[K]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const listener of list) {
      try {
        (listener as Listener<K>)(payload);
      } catch (error) {
        this.log.error({ err: error, event }, `a "${event}" listener threw; the worker carries on`);
      }
    }
  }

  removeAll(): void {
    this.listeners.clear();
  }
}

export function taskInfo(held: Held): TaskEventInfo {
  return { workflowId: held.task.workflowId, taskKey: held.task.taskKey, name: held.task.name, attempt: held.task.attempts };
}

/**
 * The fields of every log line about a task (the worker's logger adds `workerId`; `ctx.log` has
 * the same fields): which instance, which step, which task, which attempt.
 */
export function taskFields(held: Held): { workflowId: string; taskKey: string; task: string; attempt: number } {
  return { workflowId: held.task.workflowId, taskKey: held.task.taskKey, task: held.task.name, attempt: held.task.attempts };
}

/** What the runner needs from its worker: announcing starts, and counting and reporting time-outs. */
export function runnerDeps(
  o: { codec: Codec; maxPayloadBytes: number; log: Logger; events: WorkerEmitter; metrics: WorkerMetrics | undefined; workerId: string },
  counters: { runaway: number },
): Omit<RunnerDeps, 'io'> {
  return {
    codec: o.codec,
    maxPayloadBytes: o.maxPayloadBytes,
    log: o.log,
    spans: new AttemptSpans(o.workerId),
    now: () => Date.now(),
    random: () => Math.random(),
    onStart(held) {
      o.metrics?.started(held);
      if (o.events.has('task:start')) o.events.emit('task:start', taskInfo(held));
    },
    onTimeout: (held, timeoutMs, settled) => {
      counters.runaway += 1;
      let done = false;
      void settled.then(() => {
        done = true;
        counters.runaway -= 1;
      });
      o.log.warn(
        { ...taskFields(held), timeoutMs },
        'task timed out; its slot is freed. If its handler ignores the AbortSignal it keeps running in the background',
      );
      setImmediate(() => o.events.emit('task:timeout', { ...taskInfo(held), timeoutMs, settled: done }));
    },
  };
}

/** Count and announce how a committed attempt ended. */
export function reportSettlement(
  events: WorkerEmitter,
  log: Logger,
  counters: { completed: number; failed: number; retried: number; refused: number },
  f: Finished,
  how: Settlement,
  finishedStatus: string | undefined,
  metrics: WorkerMetrics | undefined,
): void {
  const { held, outcome } = f;
  const t = held.task;
  if (how === 'refused') {
    counters.refused += 1;
    metrics?.settled(held, 'refused');
    log.warn({ ...taskFields(held), epoch: t.epoch }, 'result refused: this worker no longer held the claim (it expired or the instance was cancelled)');
    events.emit('task:refused', { workflowId: t.workflowId, taskKey: t.taskKey, epoch: t.epoch });
  } else if (outcome.kind === 'error') {
    if (outcome.final) counters.failed += 1;
    else counters.retried += 1;
    metrics?.settled(held, outcome.final ? 'failed' : 'retried');
    // An operator watching the worker sees every failed attempt (the message, not the stack:
    // `baton history` keeps that), and what happens next.
    const where = { ...taskFields(held), error: outcome.error.message };
    if (outcome.final) log.warn(where, `task "${t.name}" failed (attempt ${t.attempts}); no retries left`);
    else log.warn({ ...where, retryInMs: outcome.delayMs }, `task "${t.name}" failed (attempt ${t.attempts}); retrying in ${outcome.delayMs} ms`);
    if (events.has('task:failure')) {
      events.emit('task:failure', { ...taskInfo(held), error: outcome.error, willRetry: !outcome.final, ...(outcome.final ? {} : { delayMs: outcome.delayMs }) });
    }
  } else if (outcome.kind !== 'rewait') {
    counters.completed += 1;
    metrics?.settled(held, 'completed');
    if (t.kind === 'task' && events.has('task:success')) {
      const durationMs = Date.now() - (held.startedAt ?? Date.now());
      events.emit('task:success', { workflowId: t.workflowId, taskKey: t.taskKey, name: t.name, attempt: t.attempts, durationMs });
    }
  }
  if (finishedStatus === 'failed') log.error(taskFields(held), `workflow ${t.workflowId} failed at step ${t.taskKey} (${t.name})`);
  if (finishedStatus && events.has('workflow:finished')) events.emit('workflow:finished', { workflowId: t.workflowId, status: finishedStatus as WorkflowStatus });
}
