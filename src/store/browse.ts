/**
 * The dashboard's instance list: newest first, keyset-paginated on
 * (created_at, id) like listInstances, with filters that have no index of
 * their own (status, id prefix) applied to a bounded walk of the index.
 *
 * Each page reads at most `scanLimit` rows of workflows_created_idx (or
 * workflows_name_created_idx when a name is given), from the cursor on. When
 * the walk ends before the page is full, the page says where it stopped
 * (`next` points there and `exhausted` is false): a rare status in a table of
 * millions costs several bounded pages, never one unbounded query.
 */
import type { WorkflowStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { query } from './executor.ts';
import { decodeCursor, encodeCursor, type InstanceSummary } from './instances.ts';

export interface BrowseFilter {
  statuses?: WorkflowStatus[];
  name?: string;
  idPrefix?: string;
  /** Started at or after. */
  from?: Date;
  /** Started before. */
  to?: Date;
  limit: number;
  cursor?: string | null;
  scanLimit: number;
}

export interface BrowsePage {
  items: InstanceSummary[];
  /** The cursor of the next page; null when the walk reached the end of the range. */
  next: string | null;
  /** True when the page is short because the walk ran out of its budget, not of rows: more may match further on. */
  partial: boolean;
  /** When the walk stopped (created_at of the last row read), for "searched back to ...". */
  scannedTo: string | null;
}

/** The statement, exported so that the load benchmark can EXPLAIN it. $1 statuses, $2 name, $3 id prefix, $4 from, $5 to, $6/$7 cursor, $8 scan limit, $9 page size + 1. */
export const BROWSE_SQL = `select s.* from (
       select w.id, w.name, w.definition_hash as "definitionHash", w.status, w.error, w.priority, w.tags,
         w.parent_id as "parentId", w.parent_key as "parentKey", w.current_step as "currentStep",
         w.completed_task_count as "completedTaskCount", w.version, w.created_at as "createdAt",
         w.updated_at as "updatedAt", w.finished_at as "finishedAt", w.created_at::text as "cursorAt",
         ($1::text[] is null or w.status = any ($1)) and ($3::text is null or starts_with(w.id, $3)) as hit,
         row_number() over (order by w.created_at desc nulls last, w.id desc nulls last)::int as rn
       from (
         select * from baton.workflows
         where ($2::text is null or name = $2)
           and ($4::timestamptz is null or created_at >= $4)
           and ($5::timestamptz is null or created_at < $5)
           and ($6::timestamptz is null or (created_at, id) < ($6::timestamptz, $7::text))
         order by created_at desc nulls last, id desc nulls last
         limit $8
       ) w
     ) s
     where s.hit or s.rn = $8
     limit $9`;

export async function browseInstances(ex: Executor, f: BrowseFilter): Promise<BrowsePage> {
  const [afterAt, afterId] = f.cursor ? decodeCursor(f.cursor) : [null, null];
  const rows = await query<InstanceSummary & { cursorAt: string; hit: boolean; rn: number }>(
    ex,
    BROWSE_SQL,
    [f.statuses?.length ? f.statuses : null, f.name ?? null, f.idPrefix || null, f.from ?? null, f.to ?? null, afterAt, afterId, f.scanLimit, f.limit + 1],
  );
  const hits = rows.filter((r) => r.hit);
  const strip = ({ cursorAt: _c, hit: _h, rn: _r, ...item }: (typeof rows)[number]): InstanceSummary => item;
  if (hits.length > f.limit) {
    const page = hits.slice(0, f.limit);
    const last = page.at(-1)!;
    return { items: page.map(strip), next: encodeCursor(last.cursorAt, last.id), partial: false, scannedTo: last.cursorAt };
  }
  // Fewer hits than asked: the walk reached its budget (the row numbered scanLimit came back) or the end of the range.
  const stop = rows.find((r) => r.rn === f.scanLimit);
  const lastHit = hits.at(-1);
  if (stop) {
    return { items: hits.map(strip), next: encodeCursor(stop.cursorAt, stop.id), partial: true, scannedTo: stop.cursorAt };
  }
  return { items: hits.map(strip), next: null, partial: false, scannedTo: lastHit?.cursorAt ?? null };
}
