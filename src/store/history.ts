/** History: the append-only log of an instance's checkpoints, one row per version. */
import type { HistoryKind } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface HistoryEntry {
  version: number;
  kind: HistoryKind;
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
