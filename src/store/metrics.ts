/**
 * What a metrics scrape reads from the database: the ready tasks per task
 * name, and how long the oldest of them has been ready. Read when scraped
 * (every 15 s or so), never on the hot path.
 *
 * Bounded three ways, so that a scrape cannot load a busy database:
 * - only ready rows are read, through the partial index tasks_ready_idx
 *   (status = 'ready'); sequential scans are off for the statement, so the
 *   history of finished tasks, however large, is never scanned;
 * - a statement_timeout (a backlog of millions of ready tasks takes longer
 *   to count than a scrape should: the caller reports nothing then);
 * - at most `names` task names, the largest queues first;
 * - one process (no parallel workers: a scrape must not take the server's cores).
 * Measured (PostgreSQL 15, 300k finished tasks): 0.6 ms at 1,000 ready tasks,
 * an index scan; 56 ms at 100,000, a bitmap scan of tasks_ready_idx.
 */
import type { Executor } from './executor.ts';
import { inTransaction, query } from './executor.ts';

export interface ReadyTaskStat {
  name: string;
  ready: number;
  /** Since the oldest ready task of this name became ready (ready_key less its priority's head start). */
  oldestAgeSeconds: number;
}

/** The statement, exported so that a test can EXPLAIN it under the same settings. */
export const READY_TASKS_SQL = `select t.name, count(*)::int as ready,
  greatest(0, extract(epoch from now() - min(t.ready_key - t.priority * a.step)))::float8 as "oldestAgeSeconds"
from baton.tasks t, (select baton.aging_interval() as step) a
where t.status = 'ready'
group by t.name
order by ready desc, t.name
limit $1`;

/** The settings the statement runs under (transaction-local). */
export const READY_TASKS_SETTINGS = `select set_config('statement_timeout', $1, true), set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`;

export async function readyTaskStats(ex: Executor, o: { names: number; timeoutMs: number }): Promise<ReadyTaskStat[]> {
  return inTransaction(ex, async (tx) => {
    await query(tx, READY_TASKS_SETTINGS, [String(o.timeoutMs)]);
    return query<ReadyTaskStat>(tx, READY_TASKS_SQL, [o.names]);
  });
}
