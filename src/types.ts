/**
 * Shared types. A leaf module: it imports nothing of ours.
 *
 * Vocabulary: a *task* is a named async function, and also the row
 * of one scheduled run of it inside an *instance* of a *workflow*. A *claim* is
 * a lease on one task row (worker, expiry, fencing *epoch*). A *signal* is a
 * cancel or pause request; an *event* is an external message consumed by
 * waitForEvent; *history* is the append-only log of checkpoints.
 */

export type WorkflowStatus = 'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';
export type TaskStatus = 'waiting' | 'ready' | 'running' | 'completed' | 'failed' | 'cancelled';
/** `task` runs user code; the others are carried out by the worker itself. */
export type StepKind = 'task' | 'sleep' | 'event' | 'child' | 'branch';

export const FINISHED_STATUSES: readonly WorkflowStatus[] = ['completed', 'failed', 'cancelled'];

export function isFinished(status: WorkflowStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** pino-compatible: `log.info({ workflowId }, 'message')` or `log.info('message')`. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Something that runs parameterised SQL: a pg Pool, PoolClient or Client. */
export interface Executor {
  query<R extends Record<string, any> = any>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}
