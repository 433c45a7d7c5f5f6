/** Task rows of an instance, for status views. */
import type { SerializedError } from '../errors.ts';
import type { StepKind, TaskStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface TaskRow {
  taskKey: string;
  kind: StepKind;
  name: string;
  status: TaskStatus;
  paused: boolean;
  priority: number;
  tags: string[];
  attempts: number;
  maxAttempts: number;
  leaseLosses: number;
  epoch: number;
  claimedBy: string | null;
  leaseExpiresAt: Date | null;
  availableAt: Date | null;
  /** A keyed waitForEvent step's key, once its worker computed it from the instance's input; null for the others. */
  eventKey: string | null;
  /** The key its concurrency and rate limits count under, for a task with per-key limits; null for the others. */
  limitKey: string | null;
  output: unknown;
  lastError: SerializedError | null;
  lastFailedWorker: string | null;
  progress: number | null;
  progressMessage: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export async function listTasks(ex: Executor, workflowId: string): Promise<TaskRow[]> {
  return query<TaskRow>(
    ex,
    `select task_key as "taskKey", kind, name, status, paused, priority, tags, attempts, max_attempts as "maxAttempts",
       lease_losses as "leaseLosses", epoch, claimed_by as "claimedBy", lease_expires_at as "leaseExpiresAt",
       available_at as "availableAt", nullif(event_key, '') as "eventKey", limit_key as "limitKey",
       -- A quiet job's output is stored once, on its instance (see baton.finished_checkpoint).
       case when t.finished_by is null then t.output else (select w.output from baton.workflows w where w.id = t.workflow_id) end as output,
       last_error as "lastError", last_failed_worker as "lastFailedWorker",
       progress, progress_message as "progressMessage", created_at as "createdAt", started_at as "startedAt",
       finished_at as "finishedAt"
     from baton.tasks t where workflow_id = $1 order by created_at, task_key`,
    [workflowId],
  );
}
