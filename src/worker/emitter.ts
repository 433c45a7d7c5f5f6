/**
 * Typed worker events, `scope:action`. A listener that throws is logged and
 * skipped: it never breaks the worker.
 */
import type { SerializedError } from '../errors.ts';
import type { Logger, WorkflowStatus } from '../types.ts';
import type { Settlement } from './committer.ts';
import type { Finished } from './plan.ts';

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
  const info = { workflowId: held.task.workflowId, taskKey: held.task.taskKey, name: held.task.name, attempt: held.task.attempts };
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
