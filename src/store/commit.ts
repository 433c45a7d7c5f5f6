/**
 * The commit: a batch of finished attempts, the instances they advance, the
 * history rows they append and the steps they schedule, applied in one round
 * trip under the fence (see baton.commit). The worker's planner (worker/plan.ts)
 * builds the batch; this module only ships it.
 */
import type { HistoryKind, StepKind, TaskStatus, WorkflowStatus } from '../types.ts';
import { claimedTask, type ClaimedTask, type ClaimParams, type ClaimRow } from './claims.ts';
import type { Executor } from './executor.ts';
import { prepared } from './executor.ts';

export interface CommitItem {
  wf: string;
  key: string;
  epoch: number;
  /** The task's new status. */
  status: Extract<TaskStatus, 'completed' | 'failed' | 'ready' | 'waiting' | 'cancelled'>;
  /** Held by a pause (a retry or a re-wait while the instance is paused). */
  paused: boolean;
  output: unknown;
  error: unknown;
  /** A retry: available again after this many ms; null keeps available_at (a re-wait). */
  delayMs: number | null;
  eventId: number | null;
  /** A keyed waitForEvent step's key, just computed (its re-wait stores it); left out otherwise. */
  eventKey?: string;
  /** A one-task job's completion whose checkpoint is derived, not stored (see baton.finished_checkpoint). */
  quiet?: boolean;
}

export interface CommitInstance {
  id: string;
  /** Its parent instance (locked with it), or null. */
  parent: string | null;
  /** The version the transition was computed from. */
  version: number;
  status: WorkflowStatus;
  state: unknown;
  /** Versions this commit adds (one per history row). */
  bump: number;
  /** Completed tasks this commit adds. */
  done: number;
  output: unknown;
  error: unknown;
  step: string | null;
  finished: boolean;
  /** Finished and needs after_finish: it failed (open work to close) or it has a parent to tell. */
  after: boolean;
  /** Steps whose open work to cancel (activation keys, with all under them): see baton.cancel_steps. */
  cancel?: string[];
}

export interface HistoryRow {
  wf: string;
  version: number;
  kind: HistoryKind;
  detail: unknown;
}

export interface ScheduleRow {
  wf: string;
  key: string;
  kind: StepKind;
  name: string;
  hash: string;
  input: unknown;
  priority: number;
  tags: string[];
  maxAttempts: number;
  delayMs: number | null;
  timeoutMs: number | null;
  runAt?: string | null;
  held: boolean;
  /** A limited task's key ('' for the task as a whole); left out for the others (nothing more to send). */
  limitKey?: string;
  /** A keyed waitForEvent step (its key is computed when it is first claimed); left out for the others. */
  keyed?: true;
  /** A compensation: the step it undoes, whose input and output become its input (left out for the others). */
  from?: string;
  /** A child step: the child to start (traceparent, tracestate: the trace context it is started under, if traced; limitKey: its first steps'). */
  child: { name: string; hash: string; priority: number | null; tags: string[]; traceparent?: string; tracestate?: string | null; limitKey?: string } | null;
}

export interface CommitBatch {
  items: CommitItem[];
  instances: CommitInstance[];
  history: HistoryRow[];
  schedule: ScheduleRow[];
}

export type CommitResult =
  | { result: 'conflict'; workflowId: string; status: WorkflowStatus; state: unknown; version: number }
  | { result: 'refused'; workflowId: string; taskKey: string }
  | { result: 'duplicate'; workflowId: string; taskKey: string }
  /** The event this attempt consumes is gone (or held by another attempt): its instance conflicts too; plan the step as a re-wait. */
  | { result: 'eventGone'; workflowId: string; taskKey: string };

/**
 * The fenced, optimistic commit of a batch (baton.commit in drizzle/functions/commit.sql).
 * Each set goes as one JSON array of objects whose field names are the SQL
 * function's record columns: a field cannot be swapped with another without
 * its name changing, as 32 positional arrays could.
 * Returns only what was not applied; every other instance was.
 */
export async function commitBatch(
  ex: Executor,
  workerId: string,
  b: CommitBatch,
  claim?: Omit<ClaimParams, 'workerId'>,
): Promise<{ results: CommitResult[]; claimed: ClaimedTask[] }> {
  const rows = await prepared<{
    result: string;
    workflow_id: string;
    task_key: string | null;
    status: WorkflowStatus;
    state: unknown;
    version: number;
    task: ClaimRow | null;
  }>(ex, 'baton_commit_v3', 'select * from baton.commit($1, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb)', [
    workerId,
    JSON.stringify(b.items),
    JSON.stringify(b.instances),
    JSON.stringify(b.history),
    JSON.stringify(b.schedule),
    claim ? JSON.stringify(claim) : null,
  ]);
  const results: CommitResult[] = [];
  const claimed: ClaimedTask[] = [];
  for (const r of rows) {
    if (r.result === 'claimed') claimed.push(claimedTask(r.task!));
    else if (r.result === 'refused' || r.result === 'duplicate') results.push({ result: r.result, workflowId: r.workflow_id, taskKey: r.task_key! });
    else if (r.result === 'event_gone') results.push({ result: 'eventGone', workflowId: r.workflow_id, taskKey: r.task_key! });
    else results.push({ result: 'conflict', workflowId: r.workflow_id, status: r.status, state: r.state, version: r.version });
  }
  return { results, claimed };
}
