/** History: the append-only log of an instance's checkpoints, one row per version. */
import { InvalidStateError } from '../errors.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface HistoryEntry {
  version: number;
  kind: string;
  detail: Record<string, unknown>;
  at: Date;
}

export async function listHistory(ex: Executor, workflowId: string, options: { afterVersion?: number; limit?: number } = {}): Promise<HistoryEntry[]> {
  return query<HistoryEntry>(
    ex,
    `select version, kind, detail, at from baton.history
     where workflow_id = $1 and version > $2 order by version limit $3`,
    [workflowId, options.afterVersion ?? 0, options.limit ?? 100_000],
  );
}

/**
 * Record a failed attempt (message, stack, worker, attempt number) as a
 * checkpoint of its instance: the version moves on and history gets a row.
 */
export async function recordTaskError(
  ex: Executor,
  e: { workflowId: string; taskKey: string; attempt: number; workerId: string; error: { message: string; stack?: string; [k: string]: unknown } },
): Promise<number> {
  const rows = await query<{ version: number }>(
    ex,
    `with bumped as (
       update baton.workflows set version = version + 1, updated_at = now() where id = $1 returning id, version
     ), task as (
       update baton.tasks set last_error = $5::jsonb, last_failed_worker = $4, updated_at = now()
       where workflow_id = $1 and task_key = $2
     )
     insert into baton.history (workflow_id, version, kind, detail)
     select id, version, 'attempt_failed', jsonb_build_object('key', $2::text, 'attempt', $3::int, 'worker', $4::text, 'error', $5::jsonb)
     from bumped returning version`,
    [e.workflowId, e.taskKey, e.attempt, e.workerId, JSON.stringify(e.error)],
  );
  if (rows.length === 0) throw new InvalidStateError(`no workflow instance "${e.workflowId}"`, 'missing');
  return rows[0]!.version;
}
