/**
 * The reconciler's own resilience: ticks chain themselves through graphile-worker (each schedules
 * the next), and the watchdog keeps the chain alive when a link is lost.
 */
import { silentLogger } from '../src/log.ts';
import assert from 'node:assert/strict';
import { reconcileOnce, startReconciler } from '../src/reconciler/index.ts';
import { listTicks, refreshPlannerStatistics } from '../src/store/maintenance.ts';
import { useTestDatabase } from './support/db.ts';
import { enqueueMany, noopWorkflow, register, until } from './support/fixtures.ts';

describe('reconciler', function () {
  this.timeout(30_000);
  const db = useTestDatabase();

  it('ticks again when the next tick was never scheduled (its scheduling statement lost its connection)', async () => {
    const reconciler = await startReconciler({
      pool: db.pool,
      workerId: 'r1',
      intervalMs: 100,
      maxLeaseLosses: 3,
      retentionMs: 86_400_000,
      log: silentLogger,
      stuckAfterMs: 1_000,
    });
    try {
      await until(async () => (await listTicks(db.pool, new Date(0))).length >= 2, { what: 'the first ticks' });
      // What a tick whose reschedule failed leaves behind: no scheduled tick at all. Remove the job
      // until none is running (a running tick would schedule the next one itself) and none can run.
      // remove_job cannot delete a running job: it clears its key and spends its attempts, and a
      // slow tick's lock broken by the watchdog leaves such a job behind, unlocked and never to run
      // again. That remnant is not a scheduled tick, so it does not count.
      await until(
        async () => {
          await db.pool.query(`select graphile_worker.remove_job('baton_reconcile')`);
          const { rows } = await db.pool.query(
            `select 1 from graphile_worker.jobs
             where task_identifier = 'baton_reconcile' and (locked_at is not null or attempts < max_attempts)`,
          );
          return rows.length === 0;
        },
        { what: 'the scheduled tick to be removed' },
      );
      const removedAt = new Date();
      await until(async () => (await listTicks(db.pool, removedAt)).length > 0, { what: 'a tick after the chain broke', timeoutMs: 10_000 });
    } finally {
      await reconciler.stop();
    }
  });

  it('analyzes tasks and workflows once their size moved far from their statistics (sessions then plan the claim again), and only then', async () => {
    const statistics = async () =>
      Object.fromEntries(
        (await db.pool.query<{ relname: string; reltuples: number }>(
          `select relname, reltuples::float8 as reltuples from pg_class where relnamespace = 'baton'::regnamespace and relname in ('tasks', 'workflows')`,
        )).rows.map((r) => [r.relname, r.reltuples]),
      );
    await register(db.pool, noopWorkflow);
    // This test is about the reconciler's own decision. Autovacuum (on in the embedded server) may
    // analyze the grown tables first, and then rightly leave the reconciler nothing to do: it once
    // did in CI, between the second batch of rows and the last check. So it is off for these two
    // tables here (this database is the test's own, dropped after it).
    await db.pool.query('alter table baton.tasks set (autovacuum_enabled = false)');
    await db.pool.query('alter table baton.workflows set (autovacuum_enabled = false)');
    await db.pool.query('analyze baton.tasks, baton.workflows');
    const before = await statistics();
    assert.ok(before.tasks! < 1_000 && before.workflows! < 1_000, JSON.stringify(before));
    await enqueueMany(db.pool, 3_000, { prefix: 'grown-' });
    // The live-row counts reach pg_stat_user_tables when the inserting session reports them (within a second or so).
    const tick = await until(
      async () => {
        const r = await reconcileOnce(db.pool, { workerId: 'stats', maxLeaseLosses: 3 });
        return r.analyzed.length > 0 && r;
      },
      { what: 'a tick that analyzes the grown tables' },
    );
    assert.deepEqual(tick.analyzed, ['tasks', 'workflows']);
    const after = await statistics();
    assert.ok(after.tasks! >= 2_500 && after.workflows! >= 2_500, `statistics after the tick: ${JSON.stringify(after)}`);
    // A small sample is enough for the size: the reconciler's ANALYZE keeps 11 histogram bounds of
    // 3,000 distinct ids, where the default statistics target (100) keeps 101.
    const { rows: bounds } = await db.pool.query<{ table: string; n: number }>(
      `select tablename as table, array_length(histogram_bounds::text::text[], 1) as n from pg_stats
       where schemaname = 'baton' and ((tablename = 'tasks' and attname = 'workflow_id') or (tablename = 'workflows' and attname = 'id'))
       order by tablename`,
    );
    assert.deepEqual(bounds, [{ table: 'tasks', n: 11 }, { table: 'workflows', n: 11 }]);
    // Statistics that describe the tables: nothing to do.
    assert.deepEqual((await reconcileOnce(db.pool, { workerId: 'stats', maxLeaseLosses: 3 })).analyzed, []);

    // Without track_counts the live-row counts are not kept: they would ask for an ANALYZE at every tick.
    await enqueueMany(db.pool, 3_000, { prefix: 'grown-again-' });
    await until(
      async () =>
        (await db.pool.query(`select 1 from pg_stat_user_tables where relid = 'baton.tasks'::regclass and n_live_tup >= 5500`)).rows.length > 0,
      { what: 'the new rows in the live-row count' },
    );
    const c = await db.pool.connect();
    try {
      await c.query('set track_counts = off');
      assert.deepEqual(await refreshPlannerStatistics(c), []);
      await c.query('reset track_counts');
      assert.deepEqual(await refreshPlannerStatistics(c), ['tasks', 'workflows']);
    } finally {
      c.release();
    }
  });
});

