/**
 * Signals: cancel and pause requests on an instance. The check-and-apply
 * operations are single calls into the database (baton.cancel_workflow,
 * pause_workflow, resume_workflow), each one transaction that takes the
 * instance's row lock, so a cancel racing a completion has one outcome.
 * Cancelling or pausing a finished instance raises InvalidStateError naming
 * its state.
 */
import type { WorkflowStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export type SignalKind = 'cancel' | 'pause';

export interface Signal {
  workflowId: string;
  kind: SignalKind;
  reason: string | null;
  requestedBy: string | null;
  requestedAt: Date;
}

/** Record a request without acting on it (checkAndCancel / checkAndPause act). */
export async function storeSignal(ex: Executor, workflowId: string, kind: SignalKind, reason?: string | null, requestedBy?: string | null): Promise<void> {
  await query(
    ex,
    `insert into baton.signals (workflow_id, kind, reason, requested_by) values ($1, $2, $3, $4)
     on conflict (workflow_id, kind) do update set reason = excluded.reason, requested_by = excluded.requested_by, requested_at = now()`,
    [workflowId, kind, reason ?? null, requestedBy ?? null],
  );
}

export async function getSignal(ex: Executor, workflowId: string, kind: SignalKind): Promise<Signal | null> {
  const rows = await query<Signal>(
    ex,
    `select workflow_id as "workflowId", kind, reason, requested_by as "requestedBy", requested_at as "requestedAt"
     from baton.signals where workflow_id = $1 and kind = $2`,
    [workflowId, kind],
  );
  return rows[0] ?? null;
}

export async function clearSignal(ex: Executor, workflowId: string, kind: SignalKind): Promise<boolean> {
  const rows = await query(ex, `delete from baton.signals where workflow_id = $1 and kind = $2 returning 1`, [workflowId, kind]);
  return rows.length > 0;
}

/**
 * Cancel the instance (and its running descendants) now, recording who and
 * why; uses a stored request's reason when none is given. Returns the status
 * it had. Raises NotFoundError / InvalidStateError.
 */
export async function checkAndCancel(
  ex: Executor,
  workflowId: string,
  options: { reason?: string | null; requestedBy?: string | null } = {},
): Promise<WorkflowStatus> {
  const rows = await query<{ previous: WorkflowStatus }>(
    ex,
    `select baton.cancel_workflow($1,
       coalesce($2, (select reason from baton.signals where workflow_id = $1 and kind = 'cancel')),
       coalesce($3, (select requested_by from baton.signals where workflow_id = $1 and kind = 'cancel'))) as previous`,
    [workflowId, options.reason ?? null, options.requestedBy ?? null],
  );
  return rows[0]!.previous;
}

/** Pause the instance (and its running descendants). Returns the status it had; pausing a paused one is a no-op. */
export async function checkAndPause(ex: Executor, workflowId: string, requestedBy?: string | null): Promise<WorkflowStatus> {
  const rows = await query<{ previous: WorkflowStatus }>(ex, `select baton.pause_workflow($1, $2) as previous`, [workflowId, requestedBy ?? null]);
  return rows[0]!.previous;
}

/** Resume a paused instance: held tasks become ready, timers run again. */
export async function unpause(ex: Executor, workflowId: string): Promise<WorkflowStatus> {
  const rows = await query<{ previous: WorkflowStatus }>(ex, `select baton.resume_workflow($1) as previous`, [workflowId]);
  return rows[0]!.previous;
}
