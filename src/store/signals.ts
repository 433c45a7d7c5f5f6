/**
 * Signals: cancel and pause requests on an instance. Each is a single call
 * into the database (baton.cancel_workflow, pause_workflow, resume_workflow),
 * one transaction that takes the instance's row lock, so a cancel racing a
 * completion has one outcome. Each records who asked (and why) in
 * baton.signals; resume deletes the pause request.
 *
 * Repeats agree (in SQL, the client and the CLI alike): a repeat, or asking
 * for what already holds, succeeds and changes nothing: pausing a paused
 * instance, resuming a running one, cancelling a cancelled one. Each returns
 * the status the instance had, so the caller can say so. Asking what
 * contradicts the state raises InvalidStateError naming it: pausing or
 * resuming a finished instance, cancelling a completed or failed one.
 */
import type { WorkflowStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

/**
 * Cancel the instance (and its running descendants) now, recording who and
 * why on it and in baton.signals; with `compensate`, let it compensate its
 * completed steps first. Returns the status it had (cancelling a cancelled
 * one is a no-op). Raises NotFoundError / InvalidStateError.
 */
export async function checkAndCancel(
  ex: Executor,
  workflowId: string,
  options: { reason?: string | null; requestedBy?: string | null; compensate?: boolean } = {},
): Promise<WorkflowStatus> {
  const rows = await query<{ previous: WorkflowStatus }>(
    ex,
    `select baton.cancel_workflow($1, $2, $3, $4) as previous`,
    [workflowId, options.reason ?? null, options.requestedBy ?? null, options.compensate === true],
  );
  return rows[0]!.previous;
}

/** Pause the instance (and its running descendants). Returns the status it had; pausing a paused one is a no-op. */
export async function checkAndPause(ex: Executor, workflowId: string, requestedBy?: string | null): Promise<WorkflowStatus> {
  const rows = await query<{ previous: WorkflowStatus }>(ex, `select baton.pause_workflow($1, $2) as previous`, [workflowId, requestedBy ?? null]);
  return rows[0]!.previous;
}

/** Resume a paused instance: held tasks become ready, timers run again. Returns the status it had; resuming a running one is a no-op. */
export async function unpause(ex: Executor, workflowId: string): Promise<WorkflowStatus> {
  const rows = await query<{ previous: WorkflowStatus }>(ex, `select baton.resume_workflow($1) as previous`, [workflowId]);
  return rows[0]!.previous;
}
