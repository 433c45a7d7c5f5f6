/**
 * The commit's plans must not depend on what the planner statistics say about task statuses: a
 * backlog analyzed before any worker ran says that nothing is running, and a plan built on that
 * belief (baton.commit's plans are generic, made at a session's first commit and kept) must not
 * turn a commit into a scan of every running task per item.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import { claimTasks } from '../src/store/index.ts';
import { commitBatch } from '../src/store/commit.ts';
import { HeldTask } from '../src/worker/held.ts';
import { planBatch } from '../src/worker/plan.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, enqueueMany, noopWorkflow, register } from './support/fixtures.ts';

describe('commit plans: driven by the items, whatever the statistics say', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let pool: pg.Pool;

  before(async () => {
    pool = batonPool(db.url);
    await register(pool, noopWorkflow);
  });
  after(async () => {
    await pool.end();
  });

  it("completes a claimed batch by primary key, not through the running tasks' lease index, after a backlog was analyzed idle", async () => {
    await enqueueMany(pool, 3_000);
    // Statistics of a backlog nobody works on yet: every task ready, none running.
    await pool.query('analyze baton.tasks, baton.workflows');
    const claimed = await claimTasks(pool, { workerId: 'w', limit: 500, tags: [], hashes: [noopWorkflow.hash], ttlMs: 60_000 });
    assert.equal(claimed.length, 500);
    const finished = claimed.map((task) => ({
      held: new HeldTask(task, noopWorkflow, task.leaseExpiresAt.getTime()),
      outcome: { kind: 'completed' as const, output: null },
    }));

    // A fresh session, as a worker's first commit: its plan is made now, from those statistics.
    const c = await pool.connect();
    try {
      await c.query('begin');
      const { results } = await commitBatch(c, 'w', planBatch('w', finished, new Map()));
      assert.deepEqual(results, [], 'every attempt applied');
      // This transaction's own index scans (not yet flushed to the shared statistics: nothing else counted).
      const { rows } = await c.query<{ name: string; scans: string }>(
        `select i::text as name, pg_stat_get_xact_numscans(i)::text as scans
         from unnest(array['baton.tasks_lease_idx'::regclass, 'baton.tasks_pkey'::regclass]) i`,
      );
      const scans = Object.fromEntries(rows.map((r) => [r.name, Number(r.scans)]));
      await c.query('commit');
      assert.equal(scans['baton.tasks_lease_idx'] ?? 0, 0, `the commit read the lease index: ${JSON.stringify(scans)}`);
      assert.ok((scans['baton.tasks_pkey'] ?? 0) >= 500, `one primary-key lookup per item at least: ${JSON.stringify(scans)}`);
    } finally {
      c.release();
    }
    const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from baton.tasks where status = 'completed'`);
    assert.equal(rows[0]!.n, 500);
  });
});
