/**
 * The reconciler: maintenance run by graphile-worker (its own schema
 * `graphile_worker`, on the worker's pool), once per tick across the fleet.
 *
 * Every worker process runs a graphile-worker runner with concurrency 1. The
 * tick is one job, `baton_reconcile`, with a job key (at most one waiting) in
 * a named queue (graphile-worker runs a queue's jobs one at a time). When it
 * runs it re-adds itself for `now + interval`, so exactly one process runs
 * each tick, whichever claims it. A tick:
 *
 *   - turns expired claims back into ready tasks, counting the attempt and
 *     recording "lease lost"; a task whose leases were lost too often fails,
 *     with its instance (a task that kills its worker must not loop forever);
 *   - fires due timers: sleeps, retry back-off, event time-outs;
 *   - wakes a waitForEvent step whose event is buffered (a safety net);
 *   - every 5 minutes, deletes finished instances past retention;
 *   - analyzes baton.tasks or baton.workflows when their size moved far from
 *     what their statistics say, so that sessions plan the claim and the commit
 *     again (see refreshPlannerStatistics);
 *   - records itself in baton.reconciler_ticks.
 *
 * (graphile-worker's cron is not used: a runner stopped while its cron was
 * registering left a retry timer behind; the tick already runs once per fleet.)
 *
 * graphile-worker 0.17 keeps a job locked for 4 hours when the process
 * running it dies. A watchdog in every process force-unlocks a
 * `baton_reconcile` job locked for longer than max(1 s, 4 ticks) when no tick
 * was recorded in that time, so a killed worker cannot stop the ticks. It
 * looks every quarter of that limit, but not more often than every 250 ms.
 */
import { Logger as GraphileLogger, run, type Runner, type Task as GraphileTask } from 'graphile-worker';
import type pg from 'pg';
import {
  admitQueued,
  listTicks,
  promoteDue,
  prune,
  pruneIsDue,
  reclaimExpired,
  recordTick,
  refreshPlannerStatistics,
  wakeBufferedEvents,
} from '../store/maintenance.ts';
import { expireKeyedEvents, wakeKeyedWaits } from '../store/events.ts';
import type { Logger } from '../types.ts';

export const RECONCILE_TASK = 'baton_reconcile';
const QUEUE = 'baton_reconciler';

export interface ReconcilerOptions {
  pool: pg.Pool;
  workerId: string;
  intervalMs: number;
  maxLeaseLosses: number;
  retentionMs: number;
  log: Logger;
  /** A tick that runs longer than this is considered dead and its lock broken. */
  stuckAfterMs?: number;
}

export interface Reconciler {
  stop(): Promise<void>;
}

function graphileLogger(log: Logger): GraphileLogger {
  return new GraphileLogger(() => (level, message, meta) => {
    const fields = { component: 'graphile-worker', ...(meta ?? {}) };
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    else log.debug(fields, message);
  });
}

/** One tick of maintenance; exported for tests and `baton check`. */
export async function reconcileOnce(
  pool: pg.Pool,
  o: { workerId: string; maxLeaseLosses: number; retentionMs?: number; pruneEveryMs?: number },
): Promise<{ reclaimed: number; failed: number; promoted: number; woken: number; admitted: number; pruned: number; analyzed: string[] }> {
  const startedAt = new Date();
  const { reclaimed, failed } = await reclaimExpired(pool, o.maxLeaseLosses);
  const promoted = await promoteDue(pool);
  const woken = (await wakeBufferedEvents(pool)) + (await wakeKeyedWaits(pool));
  const admitted = await admitQueued(pool);
  // Published events past their retention go at every tick (an index range, empty most of the time).
  let pruned = await expireKeyedEvents(pool);
  // Retention, every few minutes (ticks run one at a time across the fleet, so this does too).
  if (o.retentionMs !== undefined && (await pruneIsDue(pool, o.pruneEveryMs ?? 300_000))) {
    for (let n = -1, rounds = 0; n !== 0 && rounds < 20; rounds++) {
      n = await prune(pool, o.retentionMs, 1000);
      pruned += n;
    }
  }
  const analyzed = await refreshPlannerStatistics(pool);
  await recordTick(pool, { workerId: o.workerId, startedAt, reclaimed, failed, promoted: promoted + woken + admitted, pruned });
  return { reclaimed, failed, promoted, woken, admitted, pruned, analyzed };
}

export async function startReconciler(o: ReconcilerOptions): Promise<Reconciler> {
  const log = o.log.child({ component: 'reconciler' });
  // A tick takes milliseconds. One whose process died keeps its job locked and no tick runs until
  // the lock is broken, so expired claims wait for this on top of their TTL (the fault suite saw
  // TTL + 3.8 s when the limit was 10 ticks). The watchdog breaks it once no tick was recorded for
  // max(1 s, 4 ticks) and the job has been locked that long. Ticks are idempotent (SKIP LOCKED),
  // so breaking the lock of one that is merely slow costs a duplicate tick, nothing more.
  const stuckAfterMs = o.stuckAfterMs ?? Math.max(1_000, o.intervalMs * 4);
  let stopped = false;

  const reschedule = async (helpers: { addJob: (id: string, payload: unknown, spec: object) => Promise<unknown> }) => {
    await helpers.addJob(RECONCILE_TASK, {}, {
      jobKey: RECONCILE_TASK,
      jobKeyMode: 'replace',
      queueName: QUEUE,
      runAt: new Date(Date.now() + o.intervalMs),
      maxAttempts: 1000,
    });
  };

  // Never throws: a failed job would be retried by graphile-worker beside the next scheduled tick.
  const reconcile: GraphileTask = async (_payload, helpers) => {
    try {
      const r = await reconcileOnce(o.pool, o);
      if (r.reclaimed || r.failed) log.info(r, 'reclaimed expired claims');
      if (r.pruned) log.info({ pruned: r.pruned }, 'pruned finished instances and published events past retention');
      if (r.analyzed.length) log.debug({ tables: r.analyzed }, 'analyzed tables whose size moved far from their statistics');
    } catch (error) {
      log.warn({ err: error }, 'a reconciler tick failed; the next one will try again');
    }
    if (stopped) return;
    try {
      await reschedule(helpers);
    } catch (error) {
      log.warn({ err: error }, 'could not schedule the next reconciler tick; the watchdog will');
    }
  };

  // Batched completion: graphile-worker 0.17.3 does not await a single job's completion, so a
  // connection killed at that moment becomes an unhandled rejection that ends the process. In
  // batch mode it handles the error by stopping its pool instead, and we start a new runner.
  const options = {
    pgPool: o.pool,
    concurrency: 1,
    noHandleSignals: true,
    pollInterval: Math.max(100, Math.floor(o.intervalMs / 2)),
    taskList: { [RECONCILE_TASK]: reconcile },
    logger: graphileLogger(log),
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  };
  let runner: Runner | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  const launch = async (): Promise<void> => {
    restartTimer = undefined;
    if (stopped) return;
    try {
      const r = await run(options);
      if (stopped) {
        await r.stop();
        return;
      }
      runner = r;
      failures = 0;
      // Make sure a tick is scheduled (keeps an existing one's time).
      await r.addJob(RECONCILE_TASK, {}, { jobKey: RECONCILE_TASK, jobKeyMode: 'preserve_run_at', queueName: QUEUE, maxAttempts: 1000 });
      r.promise.then(
        () => relaunch(r, undefined),
        (error: unknown) => relaunch(r, error),
      );
    } catch (error) {
      failures += 1;
      log.warn({ err: error }, 'could not start the reconciler runner; trying again');
      restartTimer = setTimeout(() => void launch(), Math.min(10_000, 250 * 2 ** Math.min(failures, 6)));
    }
  };
  const relaunch = (r: Runner, error: unknown) => {
    if (stopped || runner !== r) return;
    runner = undefined;
    failures += 1;
    log.warn({ err: error }, 'the reconciler runner stopped; starting it again');
    restartTimer = setTimeout(() => void launch(), Math.min(10_000, 250 * 2 ** Math.min(failures, 6)));
  };
  await launch();

  const watchdog = setInterval(() => {
    void (async () => {
      if (!runner) return;
      const since = new Date(Date.now() - stuckAfterMs);
      if ((await listTicks(o.pool, since)).length > 0) return;
      // graphile_worker.jobs is the public view over its private tables (graphile-worker 0.17).
      const { rows: locked } = await o.pool.query<{ locked_by: string; stuck: boolean }>(
        `select locked_by, locked_at < now() - $2 * interval '1 millisecond' as stuck
         from graphile_worker.jobs where task_identifier = $1 and locked_at is not null`,
        [RECONCILE_TASK, stuckAfterMs],
      );
      if (locked.length === 0) {
        // No tick for that long and none running: the last one could not schedule the next (its
        // connection was cut), so none is coming. Schedule one; a scheduled one keeps its time.
        await runner.addJob(RECONCILE_TASK, {}, { jobKey: RECONCILE_TASK, jobKeyMode: 'preserve_run_at', queueName: QUEUE, maxAttempts: 1000 });
        return;
      }
      // A tick locked for less than the limit may still finish (or be broken at a later check).
      const rows = locked.filter((r) => r.stuck);
      if (rows.length === 0) return;
      await o.pool.query('select graphile_worker.force_unlock_workers($1::text[])', [rows.map((r) => r.locked_by)]);
      await runner.addJob(RECONCILE_TASK, {}, { jobKey: RECONCILE_TASK, jobKeyMode: 'replace', queueName: QUEUE, maxAttempts: 1000 });
      log.warn({ lockedBy: rows.map((r) => r.locked_by) }, 'broke the lock of a reconciler tick whose process stopped');
    })().catch((error) => log.debug({ err: error }, 'reconciler watchdog check failed'));
  }, Math.max(250, Math.floor(stuckAfterMs / 4)));

  return {
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      if (restartTimer) clearTimeout(restartTimer);
      await runner?.stop();
    },
  };
}
