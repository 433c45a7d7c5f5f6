/**
 * Retrying failed or cancelled instances: one (baton.retry_workflow) or many
 * chosen by status, name and end time (baton.retry_many). Each instance is
 * retried in one transaction under its row lock: its failed and cancelled
 * steps run again with fresh attempts, completed steps keep their outputs,
 * and a 'retried' checkpoint is appended (see drizzle/functions/retry_instance.sql).
 */
import type { FinishedStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface RetryResult {
  id: string;
  /** The status it had: failed or cancelled. */
  was: Extract<FinishedStatus, 'failed' | 'cancelled'>;
  /** The step keys made runnable again. */
  steps: string[];
  /** Child instances (and theirs) retried with it. */
  children: string[];
}

/** Retry one instance. NotFoundError when there is none; InvalidStateError when it is not failed or cancelled, is a child, or has no step to run again. */
export async function retryInstance(ex: Executor, id: string): Promise<RetryResult> {
  const rows = await query<{ was: RetryResult['was']; steps: string[]; children: string[] }>(
    ex,
    `select was, steps, children from baton.retry_workflow($1)`,
    [id],
  );
  const row = rows[0]!;
  return { id, was: row.was, steps: row.steps, children: row.children };
}

export interface RetryManyFilter {
  statuses: RetryResult['was'][];
  name: string | null;
  since: Date | null;
  limit: number;
}

export interface RetryManyResult {
  /** The instances retried, in id order. */
  retried: string[];
  /** Those that matched but could not be retried, with why. */
  skipped: { id: string; was: string; reason: string }[];
}

/** Retry every top-level instance that matches, each in its own subtransaction. */
export async function retryMatching(ex: Executor, filter: RetryManyFilter): Promise<RetryManyResult> {
  const rows = await query<{ workflow_id: string; was: string; retried: boolean; reason: string | null }>(
    ex,
    `select workflow_id, was, retried, reason from baton.retry_many($1::text[], $2, $3, $4)`,
    [filter.statuses, filter.name, filter.since, filter.limit],
  );
  return {
    retried: rows.filter((r) => r.retried).map((r) => r.workflow_id),
    skipped: rows.filter((r) => !r.retried).map((r) => ({ id: r.workflow_id, was: r.was, reason: r.reason ?? '' })),
  };
}
