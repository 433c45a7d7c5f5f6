/**
 * Typed worker events, `scope:action`. A listener that throws is logged and
 * skipped: it never breaks the worker.
 */
import type { SerializedError } from '../errors.ts';
import type { Logger, WorkflowStatus } from '../types.ts';

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
