/**
 * Ids, step keys and names compare byte by byte (the "C" collation), whatever the database's own
 * collation: the hot path's indexes and joins stay byte comparisons (a locale's comparison made a
 * job cost about twice the server time), and every sort that orders locks agrees with the order
 * the instance rows are locked in elsewhere (see the lock order in drizzle/functions/README.md).
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import { migrate } from '../src/db/migrate.ts';
import { claimTasks, startMany } from '../src/store/index.ts';
import { commitBatch } from '../src/store/commit.ts';
import { HeldTask } from '../src/worker/held.ts';
import { planBatch } from '../src/worker/plan.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, noopWorkflow, register, until } from './support/fixtures.ts';

/** The columns that hold ids, step keys and task or workflow names, and those joined with them. */
const C_COLUMNS = [
  'workflows.id', 'workflows.name', 'workflows.parent_id', 'workflows.parent_key',
  'tasks.workflow_id', 'tasks.task_key', 'tasks.name',
  'history.workflow_id',
  'events.workflow_id', 'events.name', 'events.held_workflow_id', 'events.held_key',
  'signals.workflow_id', 'stream_frames.workflow_id', 'stream_frames.task_key', 'waitpoint_uses.workflow_id',
  'task_limits.name', 'rate_log.name', 'definitions.name',
];

async function collations(pool: pg.Pool): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ col: string; coll: string }>(
    `select c.relname || '.' || a.attname as col, coalesce(k.collname, '') as coll
     from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
     left join pg_collation k on k.oid = a.attcollation
     where n.nspname = 'baton' and c.relkind = 'r' and c.relname || '.' || a.attname = any($1)`,
    [C_COLUMNS],
  );
  return Object.fromEntries(rows.map((r) => [r.col, r.coll]));
}

describe('ids, keys and names in the "C" collation', function () {
  this.timeout(60_000);

  describe('the schema', () => {
    const db = useTestDatabase();
    it('gives each id, key and name column the "C" collation (a migration that retypes one must keep it)', async () => {
      assert.deepEqual(await collations(db.pool), Object.fromEntries(C_COLUMNS.map((c) => [c, 'C'])));
    });
  });

  describe('on a database whose collation is ICU en-US', () => {
    const db = useTestDatabase({ icuLocale: 'en-US' });
    let pool: pg.Pool;

    before(async () => {
      await migrate(db.url);
      pool = batonPool(db.url);
      await register(pool, noopWorkflow);
    });
    after(async () => {
      await pool.end();
    });

    it('sorts ids byte by byte in the schema, and by the locale elsewhere (so the test below can tell them apart)', async () => {
      const { rows } = await pool.query(`select 'B-job' < 'a-job' as by_locale, 'B-job' < 'a-job' collate "C" as by_bytes`);
      assert.deepEqual(rows[0], { by_locale: false, by_bytes: true });
      assert.deepEqual(await collations(pool), Object.fromEntries(C_COLUMNS.map((c) => [c, 'C'])));
    });

    it('a commit locks its instances in id order byte by byte, as every other locker of them does', async () => {
      // 'B-job' sorts before 'a-job' byte by byte and after it in en-US. The commit's ids come from its
      // JSON parameter: sorted in the database's collation they would be locked a-job first.
      await startMany(pool, { name: noopWorkflow.name, kind: 'task', inputs: ['1', '2'], ids: ['a-job', 'B-job'] });
      const claimed = await claimTasks(pool, { workerId: 'w', limit: 2, tags: [], hashes: [noopWorkflow.hash], ttlMs: 60_000 });
      assert.deepEqual(claimed.map((t) => t.workflowId).sort(), ['B-job', 'a-job']);
      const finished = claimed.map((task) => ({ held: new HeldTask(task, noopWorkflow, task.leaseExpiresAt.getTime()), outcome: { kind: 'completed' as const, output: null } }));

      const holder = await pool.connect();
      const committer = await pool.connect();
      try {
        await holder.query('begin');
        await holder.query(`select 1 from baton.workflows where id = 'a-job' for update`);
        const pid = (await committer.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        const commit = commitBatch(committer, 'w', planBatch('w', finished, new Map()));
        await until(async () => (await pool.query(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [pid])).rowCount, { what: 'the commit waits for a-job' });
        // Waiting for a-job, the commit already holds B-job: it locked in byte order.
        await assert.rejects(holder.query(`select 1 from baton.workflows where id = 'B-job' for update nowait`), (e: { code?: string }) => e.code === '55P03');
        await holder.query('rollback');
        assert.deepEqual((await commit).results, [], 'the commit applied once a-job was free');
      } finally {
        await holder.query('rollback').catch(() => undefined);
        holder.release();
        committer.release();
      }
      const { rows } = await pool.query(`select id, status from baton.workflows order by id`);
      assert.deepEqual(rows, [{ id: 'B-job', status: 'completed' }, { id: 'a-job', status: 'completed' }], 'listed byte by byte: B before a');
    });
  });
});
