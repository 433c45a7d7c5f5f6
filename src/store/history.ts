/** History: the append-only log of an instance's checkpoints, one per version (see baton.instance_history). */
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
    // Through baton.instance_history: most instances' 'started' checkpoint is not a row of baton.history.
    `select version, kind, detail, at from baton.instance_history($1, $2, $3)`,
    [workflowId, options.afterVersion ?? 0, options.limit ?? 100_000],
  );
}
