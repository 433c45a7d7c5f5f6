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

/** Index entries each index returned in this transaction so far (not yet in the shared statistics). */
async function indexEntriesRead(c: pg.PoolClient, indexes: string[]): Promise<Record<string, number>> {
  const { rows } = await c.query<{ name: string; n: string }>(
    `select i::regclass::text as name, pg_stat_get_xact_tuples_returned(i::regclass)::text as n from unnest($1::text[]) i`,
    [indexes],
  );
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.n)]));
}

describe('claim and commit plans on a small table: by key, not a scan of every row', function () {
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

  it('claims one task and commits it reading a handful of index entries, with 600 jobs in the tables', async () => {
    // A quiet system: a few hundred jobs, analyzed. Plans are made from these statistics at each
    // session's first claim and commit; hash or merge joins (and a filter the statistics call
    // selective) read all of tasks_pkey or workflows_pkey for one task.
    await enqueueMany(pool, 600);
    await pool.query('analyze baton.tasks, baton.workflows');
    const pkeys = ['baton.tasks_pkey', 'baton.workflows_pkey'];
    const c = await pool.connect();
    let id = '';
    try {
      await c.query('begin');
      const claimed = await claimTasks(c, { workerId: 'w', limit: 1, tags: [], hashes: [noopWorkflow.hash], ttlMs: 60_000 });
      assert.equal(claimed.length, 1);
      id = claimed[0]!.workflowId;
      const read = await indexEntriesRead(c, pkeys);
      await c.query('commit');
      assert.ok(read['baton.tasks_pkey']! <= 5 && read['baton.workflows_pkey']! <= 5, `the claim of one read ${JSON.stringify(read)}`);

      await c.query('begin');
      const finished = [{ held: new HeldTask(claimed[0]!, noopWorkflow, claimed[0]!.leaseExpiresAt.getTime()), outcome: { kind: 'completed' as const, output: null } }];
      const { results } = await commitBatch(c, 'w', planBatch('w', finished, new Map()));
      assert.deepEqual(results, [], 'the attempt applied');
      const committed = await indexEntriesRead(c, pkeys);
      await c.query('commit');
      assert.ok(committed['baton.tasks_pkey']! <= 5 && committed['baton.workflows_pkey']! <= 5, `the commit of one read ${JSON.stringify(committed)}`);
    } finally {
      c.release();
    }
    const { rows } = await pool.query<{ status: string }>(`select status from baton.workflows where id = $1`, [id]);
    assert.equal(rows[0]!.status, 'completed');
  });
});

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
