/**
 * Output streams: frames a running attempt appends (baton.write_stream, fenced) and readers page
 * through by seq (baton.read_stream). See drizzle/functions/write_stream.sql for the ordering rule.
 */
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface StreamFrame<F = unknown> {
  /** Counts per instance from 1; pass the last one read as `from` to go on. */
  seq: number;
  taskKey: string;
  /** The attempt of the task that wrote it (a retried task's earlier attempts keep their frames). */
  attempt: number;
  frame: F;
  at: Date;
}

/** Append frames for an attempt under its fence. The last frame's seq, or null when the fence refused (nothing written). */
export async function writeStream(
  ex: Executor,
  ref: { workflowId: string; taskKey: string; epoch: number },
  workerId: string,
  frames: unknown[],
): Promise<number | null> {
  const rows = await query<{ seq: string | null }>(ex, `select baton.write_stream($1, $2, $3, $4, $5::jsonb) as seq`, [
    ref.workflowId,
    ref.taskKey,
    ref.epoch,
    workerId,
    JSON.stringify(frames),
  ]);
  const seq = rows[0]!.seq;
  return seq === null ? null : Number(seq);
}

/** Frames with seq > from, oldest first, at most limit. */
export async function readStream(ex: Executor, workflowId: string, from: number, limit: number): Promise<StreamFrame[]> {
  const rows = await query<{ seq: string; task_key: string; attempt: number; frame: unknown; at: Date }>(
    ex,
    `select seq, task_key, attempt, frame, at from baton.read_stream($1, $2, $3)`,
    [workflowId, from, limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), taskKey: r.task_key, attempt: r.attempt, frame: r.frame, at: r.at }));
}

/** An instance's status alone (null: no such instance), for a tail deciding whether to go on. */
export async function instanceStatus(ex: Executor, workflowId: string): Promise<string | null> {
  const rows = await query<{ status: string }>(ex, `select status from baton.workflows where id = $1`, [workflowId]);
  return rows[0]?.status ?? null;
}
