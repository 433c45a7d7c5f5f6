/**
 * Typed worker events, `scope:action`. A listener that throws is logged and
 * skipped: it never breaks the worker.
 */
import type { SerializedError } from '../errors.ts';
import type { Logger, WorkflowStatus } from '../types.ts';
import type { Codec } from '../codec.ts';
import type { Settlement } from './committer.ts';
import type { Held } from './held.ts';
import type { Finished } from './plan.ts';
import type { RunnerDeps } from './runner.ts';

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

type Listener<K extends keyof WorkerEvents> = (payload: WorkerEvents[K]) => void;

export class WorkerEmitter {
  private readonly listeners = new Map<keyof WorkerEvents, Set<Listener<any>>>();

  constructor(private readonly log: Logger) {}

  on<K extends keyof WorkerEvents>(event: K, listener: Listener<K>): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  off<K extends keyof WorkerEvents>(event: K, listener: Listener<K>): this {
    this.listeners.get(event)?.delete(listener);
    return this;
  }

  once<K extends keyof WorkerEvents>(event: K, listener: Listener<K>): this {
    const wrapped: Listener<K> = (payload) => {
      this.off(event, wrapped);
      listener(payload);
    };
    return this.on(event, wrapped);
  }

  emit<K extends keyof WorkerEvents>(event: K, payload: WorkerEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
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

/** What the runner needs from its worker: announcing starts, and counting and reporting time-outs. */
export function runnerDeps(
  o: { codec: Codec; maxPayloadBytes: number; log: Logger; events: WorkerEmitter },
  counters: { runaway: number },
): RunnerDeps {
  return {
    codec: o.codec,
    maxPayloadBytes: o.maxPayloadBytes,
    log: o.log,
    now: () => Date.now(),
    random: () => Math.random(),
    onStart: (held) => o.events.emit('task:start', taskInfo(held)),
    onTimeout: (held, timeoutMs, settled) => {
      counters.runaway += 1;
      let done = false;
      void settled.then(() => {
        done = true;
        counters.runaway -= 1;
      });
      o.log.warn(
        { workflowId: held.task.workflowId, taskKey: held.task.taskKey, task: held.task.name, timeoutMs },
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
  finishedStatus?: string,
): void {
  const { held, outcome } = f;
  const info = taskInfo(held);
  if (how === 'refused') {
    counters.refused += 1;
    log.warn(info, 'result refused: this worker no longer held the claim (it expired or the instance was cancelled)');
    events.emit('task:refused', { workflowId: info.workflowId, taskKey: info.taskKey, epoch: held.task.epoch });
  } else if (outcome.kind === 'error') {
    if (outcome.final) counters.failed += 1;
    else counters.retried += 1;
    events.emit('task:failure', { ...info, error: outcome.error, willRetry: !outcome.final, ...(outcome.final ? {} : { delayMs: outcome.delayMs }) });
  } else if (outcome.kind !== 'rewait') {
    counters.completed += 1;
    if (held.task.kind === 'task') events.emit('task:success', { ...info, durationMs: Date.now() - (held.startedAt ?? Date.now()) });
  }
  if (finishedStatus) events.emit('workflow:finished', { workflowId: info.workflowId, status: finishedStatus as WorkflowStatus });
}
