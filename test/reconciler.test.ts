/**
 * The reconciler's own resilience: ticks chain themselves through graphile-worker (each schedules
 * the next), and the watchdog keeps the chain alive when a link is lost.
 */
import { silentLogger } from '../src/log.ts';
import { startReconciler } from '../src/reconciler/index.ts';
import { listTicks } from '../src/store/maintenance.ts';
import { useTestDatabase } from './support/db.ts';
import { until } from './support/fixtures.ts';

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
      // until it is gone while unlocked (a running tick would schedule the next one itself).
      await until(
        async () => {
          await db.pool.query(`select graphile_worker.remove_job('baton_reconcile')`);
          const { rows } = await db.pool.query(`select 1 from graphile_worker.jobs where task_identifier = 'baton_reconcile'`);
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
});
