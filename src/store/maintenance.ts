/** What the reconciler runs: lease expiry, timers, retention. */
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

/** Expired claims become ready again (or fail, after too many lost leases). */
export async function reclaimExpired(ex: Executor, maxLeaseLosses: number, limit = 1000): Promise<{ reclaimed: number; failed: number }> {
  const rows = await query<{ reclaimed: number; failed: number }>(ex, `select * from baton.reclaim_expired($1, $2)`, [maxLeaseLosses, limit]);
  return rows[0] ?? { reclaimed: 0, failed: 0 };
}

/** Queued limited tasks that their limits allow now (a rate window moved on) become ready; old rate_log entries go. */
export async function admitQueued(ex: Executor): Promise<number> {
  const rows = await query<{ n: number }>(ex, `select baton.admit_queued() as n`);
  return rows[0]!.n;
}

/** Due timers (sleeps, back-off, event time-outs, delayed starts) become ready. */
export async function promoteDue(ex: Executor, limit = 1000): Promise<number> {
  const rows = await query<{ n: number }>(ex, `select baton.promote_due($1) as n`, [limit]);
  return rows[0]!.n;
}

/**
 * The end of a wake-up statement: its CTE `stuck` (workflow_id, task_key) lists waiting tasks it
 * locked; they become ready, in aging order from now, with one baton_ready notification, and the
 * statement returns how many as n.
 */
export const WAKE_STUCK = `, woken as (
       update baton.tasks t set status = 'ready', ready_key = now() + t.priority * baton.aging_interval(), updated_at = now()
       from stuck where t.workflow_id = stuck.workflow_id and t.task_key = stuck.task_key
       returning 1
     )
     select count(*)::int as n, (select pg_notify('baton_ready', '') from woken limit 1) from woken`;

/**
 * A waitForEvent step still waiting although an event for it is buffered
 * should not exist (send_event and scheduling serialise on the instance);
 * this is the safety net. Returns how many were woken.
 */
export async function wakeBufferedEvents(ex: Executor, limit = 1000): Promise<number> {
  const rows = await query<{ n: number }>(
    ex,
    `with stuck as (
       select t.workflow_id, t.task_key from baton.tasks t
       -- Driven by the events (few), not a scan of every task: 71 ms -> 0.6 ms a tick over 30,000 tasks.
       where t.workflow_id in (select e.workflow_id from baton.events e)
         and t.kind = 'event' and t.status = 'waiting' and not t.paused and t.event_key is null
         and exists (
           select 1 from baton.events e
           where e.workflow_id = t.workflow_id and e.name = t.name
             -- free (the rule of baton.claim_tasks): an event another running attempt holds wakes nobody
             and (e.held_epoch is null or e.held_key = t.task_key
               or (e.held_until <= now() and not exists (
                 select 1 from baton.tasks h
                 where h.workflow_id = e.workflow_id and h.task_key = e.held_key and h.epoch = e.held_epoch and h.status = 'running'))))
       limit $1 for update of t skip locked
     )${WAKE_STUCK}`,
    [limit],
  );
  return rows[0]!.n;
}

/**
 * Retention: finished instances (with their tasks, history and signals),
 * events whose instance never came or is gone (published events have their own retention:
 * store/events.ts), workers that stopped beating,
 * old reconciler ticks. Deletes in batches of `limit`.
 */
export async function prune(ex: Executor, retentionMs: number, limit = 1000): Promise<number> {
  const rows = await query<{ n: number }>(
    ex,
    `with old as (
       -- Oldest first by creation (indexed); an instance still running is skipped, not waited for.
       select id from baton.workflows
       where created_at < now() - $1 * interval '1 millisecond' and finished_at < now() - $1 * interval '1 millisecond'
       order by created_at limit $2
     ), gone as (
       select baton.delete_instances(array(select id from old)) as n
     ), orphan_events as (
       delete from baton.events e
       where e.id in (
         select e2.id from baton.events e2
         where e2.created_at < now() - $1 * interval '1 millisecond' and e2.key is null
           and not exists (select 1 from baton.workflows w where w.id = e2.workflow_id and w.finished_at is null)
         order by e2.created_at limit $2)
       returning 1
     ), dead_workers as (
       delete from baton.workers where heartbeat_at < now() - greatest($1, 3600000) * interval '1 millisecond' returning 1
     ), old_ticks as (
       delete from baton.reconciler_ticks where started_at < now() - interval '1 hour' returning 1
     )
     select (select n from gone) + (select count(*) from orphan_events)::int as n`,
    [retentionMs, limit],
  );
  return rows[0]!.n;
}

/** True at most once per `everyMs` across the fleet: the caller should prune now. */
export async function pruneIsDue(ex: Executor, everyMs: number): Promise<boolean> {
  const rows = await query(
    ex,
    `insert into baton.stats (key, value, updated_at) values ('prune_runs', 1, now())
     on conflict (key) do update set value = baton.stats.value + 1, updated_at = now()
     where baton.stats.updated_at < now() - $1 * interval '1 millisecond'
     returning 1`,
    [everyMs],
  );
  return rows.length > 0;
}

export async function recordTick(
  ex: Executor,
  tick: { workerId: string; startedAt: Date; reclaimed: number; failed: number; promoted: number; pruned: number },
): Promise<void> {
  await query(
    ex,
    `insert into baton.reconciler_ticks (worker_id, started_at, reclaimed, failed, promoted, pruned) values ($1, $2, $3, $4, $5, $6)`,
    [tick.workerId, tick.startedAt, tick.reclaimed, tick.failed, tick.promoted, tick.pruned],
  );
}

export async function listTicks(ex: Executor, since: Date): Promise<{ workerId: string; startedAt: Date; finishedAt: Date }[]> {
  return query(
    ex,
    `select worker_id as "workerId", started_at as "startedAt", finished_at as "finishedAt"
     from baton.reconciler_ticks where started_at >= $1 order by started_at`,
    [since],
  );
}

/** The tables the claim and the commit plan against (see refreshPlannerStatistics). */
const PLANNED_TABLES = ['tasks', 'workflows'] as const;

/** The statistics target of the reconciler's ANALYZEs (see refreshPlannerStatistics). */
const ANALYZE_TARGET = 10;

/**
 * Analyze the claim's and the commit's tables when their planner statistics no longer describe
 * their size: the live rows differ from what the statistics say by more than 1,000 + 25%.
 *
 * The claim and the commit are plpgsql with generic plans: a session plans each statement once and
 * keeps the plan until the statistics of a table in it change. Planned while a table was small (a
 * fresh database, a worker started before the backlog came), they stay small-table plans as it
 * grows: on PostgreSQL 15 with autovacuum off, S7 claimed through a hash join over the whole
 * primary key of baton.tasks (115,000 buffers for 25 tasks), and committed through a nested loop
 * that re-read the batch for each running task. ANALYZE changes the statistics, so every session
 * plans again for the size the table has. Autovacuum analyzes too, but at most once per naptime
 * (a minute by default) and not at all where it is off. SKIP_LOCKED: a table being analyzed or
 * vacuumed already is left to that. Without track_counts the live-row counts stay 0 and would
 * call for an ANALYZE at every tick: then nothing is done.
 *
 * These ANALYZEs sample ANALYZE_TARGET x 300 rows instead of default_statistics_target's (100 x 300):
 * what the plans need from them is the tables' size, which a small sample gives as well. Measured
 * on PostgreSQL 15 (150,000 tasks, 100,000 of them updated twice): 313-527 ms -> 88-102 ms for
 * baton.tasks, 242-251 -> 42 ms for baton.workflows. In S7 on that server, with autovacuum off,
 * the full-size ANALYZEs had taken 42 us of server time per job, a seventh of it. Autovacuum's
 * own ANALYZE, where it runs, still writes full statistics; a column given its own statistics
 * target keeps it.
 */
export async function refreshPlannerStatistics(ex: Executor): Promise<string[]> {
  const rows = await query<{ name: string }>(
    ex,
    `select c.relname as name from pg_class c join pg_stat_user_tables s on s.relid = c.oid
     where c.relnamespace = 'baton'::regnamespace and c.relname = any ($1::text[])
       and current_setting('track_counts') = 'on'
       and abs(s.n_live_tup - greatest(c.reltuples, 0)) > 1000 + 0.25 * greatest(c.reltuples, 0)`,
    [PLANNED_TABLES],
  );
  const stale = new Set(rows.map((r) => r.name));
  // Names from the fixed list above, never from the database: identifiers cannot be parameters.
  const analyzed = PLANNED_TABLES.filter((name) => stale.has(name));
  // One simple-protocol string is one implicit transaction, so SET LOCAL holds for the ANALYZE
  // beside it and nothing else: works on a pooled connection and on a caller's client alike.
  for (const name of analyzed) await query(ex, `set local default_statistics_target = ${ANALYZE_TARGET}; analyze (skip_locked) baton.${name}`);
  return analyzed;
}
