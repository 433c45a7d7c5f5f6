/**
 * What the dashboard's overview reads. Every statement is bounded, so that a
 * page load costs the same with a thousand instances or ten million:
 *
 * - Counts by status: `baton.workflows` has no index on status on purpose (an
 *   index on it makes every instance's last update non-HOT, 20% of a commit).
 *   Below `exactBelow` rows (found by a scan that stops there, skipped when the
 *   statistics already say twice as many) the counts are exact, one scan of
 *   at most that many rows; above it they are the planner's statistics (reltuples times the
 *   status column's most-common-value frequencies, as of the last ANALYZE,
 *   which autovacuum runs), marked `estimated`.
 * - Throughput: the newest instances through workflows_created_idx, at most
 *   `scanLimit` of them, bucketed by minute of start and of end.
 * - Recent failures: failed instances among the newest `scanLimit`.
 * - Leases: running tasks through the partial index tasks_lease_idx.
 */
import type { SerializedError } from '../errors.ts';
import type { WorkflowStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { inTransaction, query } from './executor.ts';

export interface StatusCounts {
  counts: Partial<Record<WorkflowStatus, number>>;
  total: number;
  /** True when the counts come from the table's statistics, not a count. */
  estimated: boolean;
}

/** Runs the statements of `fn` with sequential scans discouraged and a time limit, in one transaction. */
function bounded<T>(ex: Executor, timeoutMs: number, fn: (tx: Executor) => Promise<T>): Promise<T> {
  return inTransaction(ex, async (tx) => {
    await query(tx, `select set_config('statement_timeout', $1, true), set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`, [
      String(timeoutMs),
    ]);
    return fn(tx);
  });
}

export async function statusCounts(ex: Executor, o: { exactBelow: number; timeoutMs: number }): Promise<StatusCounts> {
  return bounded(ex, o.timeoutMs, async (tx) => {
    // The statistics say the table is far above the bound: no need to look. Else a scan that stops at the bound decides.
    const [{ estimate }] = (await query<{ estimate: number }>(tx, `select reltuples::float8 as estimate from pg_class where oid = 'baton.workflows'::regclass`)) as [{ estimate: number }];
    const n =
      estimate >= 2 * o.exactBelow
        ? estimate
        : ((await query<{ n: number }>(tx, `select count(*)::int as n from (select 1 from baton.workflows limit $1) w`, [o.exactBelow]))[0]?.n ?? 0);
    if (n < o.exactBelow) {
      const rows = await query<{ status: WorkflowStatus; n: number }>(tx, `select status, count(*)::int as n from baton.workflows group by status`);
      return { counts: Object.fromEntries(rows.map((r) => [r.status, r.n])), total: rows.reduce((s, r) => s + r.n, 0), estimated: false };
    }
    const rows = await query<{ status: WorkflowStatus; n: number; total: number }>(
      tx,
      `select s.status, round(s.freq * greatest(c.reltuples, 0))::bigint::float8 as n, greatest(c.reltuples, 0)::bigint::float8 as total
       from pg_class c
       left join lateral (
         select v.status, v.freq
         from pg_stats st, unnest(st.most_common_vals::text::text[], st.most_common_freqs) as v(status, freq)
         where st.schemaname = 'baton' and st.tablename = 'workflows' and st.attname = 'status'
       ) s on true
       where c.oid = 'baton.workflows'::regclass`,
    );
    const counts = Object.fromEntries(rows.filter((r) => r.status !== null).map((r) => [r.status, r.n]));
    return { counts, total: Math.max(rows[0]?.total ?? 0, n), estimated: true };
  });
}

export interface ThroughputMinute {
  /** The minute's start. */
  at: Date;
  started: number;
  completed: number;
  failed: number;
  cancelled: number;
  compensated: number;
}

export interface Throughput {
  minutes: ThroughputMinute[];
  /** True when more instances started in the window than were read: the oldest minutes undercount. */
  truncated: boolean;
}

/** The statements, exported so that the load benchmark can EXPLAIN them. $1 scan limit (failures: $2 how many). */
export const THROUGHPUT_SQL = `with recent as (
         select w.status, w.created_at, w.finished_at from baton.workflows w
         where w.created_at > now() - interval '2 hours'
         order by w.created_at desc nulls last, w.id desc nulls last
         limit $1
       ), starts as (
         select date_trunc('minute', r.created_at) as at, count(*)::int as n from recent r group by 1
       ), ends as (
         select date_trunc('minute', r.finished_at) as at,
           count(*) filter (where r.status = 'completed')::int as completed,
           count(*) filter (where r.status = 'failed')::int as failed,
           count(*) filter (where r.status = 'cancelled')::int as cancelled,
           count(*) filter (where r.status = 'compensated')::int as compensated
         from recent r where r.finished_at is not null group by 1
       )
       select m.at, coalesce(s.n, 0) as started, coalesce(e.completed, 0) as completed, coalesce(e.failed, 0) as failed,
         coalesce(e.cancelled, 0) as cancelled, coalesce(e.compensated, 0) as compensated, (select count(*) from recent)::int as scanned
       from generate_series(date_trunc('minute', now()) - interval '59 minutes', date_trunc('minute', now()), interval '1 minute') as m(at)
       left join starts s on s.at = m.at left join ends e on e.at = m.at
       order by m.at`;
export const FAILURES_SQL = `select w.id, w.name, w.error, w.current_step as "currentStep", w.finished_at as "finishedAt", w.created_at as "createdAt"
       from (select id, name, status, error, current_step, finished_at, created_at from baton.workflows
             order by created_at desc nulls last, id desc nulls last limit $1) w
       where w.status = 'failed'
       order by w.created_at desc nulls last, w.id desc nulls last
       limit $2`;

/** Per minute of the last hour: instances started, and those that ended (of the newest `scanLimit` started in the last two hours). */
export async function throughput(ex: Executor, o: { scanLimit: number; timeoutMs: number }): Promise<Throughput> {
  return bounded(ex, o.timeoutMs, async (tx) => {
    const rows = await query<ThroughputMinute & { scanned: number }>(
      tx,
      THROUGHPUT_SQL,
      [o.scanLimit],
    );
    return { minutes: rows.map(({ scanned: _s, ...m }) => m), truncated: (rows[0]?.scanned ?? 0) >= o.scanLimit };
  });
}

export interface RecentFailure {
  id: string;
  name: string;
  error: SerializedError | null;
  currentStep: string | null;
  finishedAt: Date | null;
  createdAt: Date;
}

/** The newest failed instances among the newest `scanLimit` (so a page load never walks the whole table). */
export async function recentFailures(ex: Executor, o: { limit: number; scanLimit: number; timeoutMs: number }): Promise<RecentFailure[]> {
  return bounded(ex, o.timeoutMs, (tx) =>
    query<RecentFailure>(
      tx,
      FAILURES_SQL,
      [o.scanLimit, o.limit],
    ),
  );
}

export interface HeldLeases {
  workerId: string;
  held: number;
  /** A few of the held tasks, soonest lease expiry first. */
  sample: { workflowId: string; taskKey: string; name: string; leaseExpiresAt: Date }[];
  /** The lease that expires first. */
  nextExpiry: Date;
}

/** Leases held per worker (running tasks), through tasks_lease_idx. */
export async function heldLeases(ex: Executor, o: { sample: number; timeoutMs: number }): Promise<HeldLeases[]> {
  return bounded(ex, o.timeoutMs, (tx) =>
    query<HeldLeases>(
      tx,
      `select t.claimed_by as "workerId", count(*)::int as held, min(t.lease_expires_at) as "nextExpiry",
         (jsonb_agg(jsonb_build_object('workflowId', t.workflow_id, 'taskKey', t.task_key, 'name', t.name, 'leaseExpiresAt', t.lease_expires_at)
            order by t.lease_expires_at) filter (where t.lease_expires_at is not null))
         as sample
       from baton.tasks t
       where t.status = 'running' and t.lease_expires_at is not null
       group by t.claimed_by`,
    ).then((rows) => rows.map((r) => ({ ...r, sample: (r.sample ?? []).slice(0, o.sample) }))),
  );
}

/** Workflow and task names that workers registered (for the list's name filter). */
export async function definitionNames(ex: Executor): Promise<{ name: string; kind: string }[]> {
  return query(ex, `select distinct name, kind from baton.definitions order by name, kind`);
}
