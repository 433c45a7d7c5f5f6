/**
 * client.taskResult: one task's status and output by its key, read with one primary-key lookup
 * (baton.task_result), without loading the instance or its other tasks.
 */
import type { Codec } from '../codec.ts';
import type { SerializedError } from '../errors.ts';
import { loadTaskResult } from '../store/claims.ts';
import type { Executor, TaskStatus } from '../types.ts';
import { validateId } from '../workflow/names.ts';

export interface TaskResult<O = unknown> {
  workflowId: string;
  taskKey: string;
  status: TaskStatus;
  /** The task's output once it completed (decoded); null before. */
  output: O | null;
  /** The last attempt's error, if any. */
  error: SerializedError | null;
  attempts: number;
  finishedAt: Date | null;
}

/** One task's result; null when the instance has no task with that key (or there is no such instance). */
export async function readTaskResult<O>(ex: Executor, codec: Codec, workflowId: string, taskKey: string): Promise<TaskResult<O> | null> {
  validateId(workflowId);
  validateId(taskKey, 'task key');
  const row = await loadTaskResult(ex, workflowId, taskKey);
  if (!row) return null;
  const output = row.status === 'completed' && row.output !== null && row.output !== undefined ? (codec.decode(row.output as never) as O) : null;
  return { workflowId, taskKey, status: row.status, output, error: row.error, attempts: row.attempts, finishedAt: row.finishedAt };
}
