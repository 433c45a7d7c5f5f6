import assert from 'node:assert/strict';
import type { Client, Worker } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient, register } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { chain10, closeMarkPools, ensureMarks, forkJoin, inc, parentWf, waiter } from './support/workflows.ts';
import { taskWorkflow } from '../src/workflow/index.ts';

describe('SQL API', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker | undefined;

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    await ensureMarks(db.pool);
    client = await fixtureClient(db.url);
    await register(db.pool, chain10, forkJoin, parentWf, waiter, taskWorkflow(inc));
  });
  afterEach(async () => {
    await worker?.stop({ graceMs: 200 });
    worker = undefined;
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  /** Everything about an instance except its id and clock times. */
  async function shape(id: string) {
    const wf = (await db.pool.query(`select name, definition_hash, status, input, output, error, priority, tags, state, current_step, completed_task_count, version from baton.workflows where id = $1`, [id])).rows[0];
    const tasks = (await db.pool.query(`select task_key, kind, name, definition_hash, status, paused, priority, tags, attempts, max_attempts, input, output from baton.tasks where workflow_id = $1 order by task_key`, [id])).rows;
    const history = (await db.pool.query(`select version, kind, detail - 'worker' - 'epoch' as detail from baton.instance_history($1)`, [id])).rows;
    return { wf, tasks, history };
  }

  it('baton.start_workflow starts an instance indistinguishable from one the client starts', async () => {
    await db.pool.query(`select * from baton.start_workflow('fork-join', '5'::jsonb, 'from-sql', 3)`);
    await client.start(forkJoin, 5, { id: 'from-client', priority: 3 });
    assert.deepEqual(await shape('from-sql'), await shape('from-client'), 'same rows before running');
    worker = await inProcessWorker(db.url);
    const [a, b] = await Promise.all([client.result('from-sql', { timeoutMs: 10_000 }), client.result('from-client', { timeoutMs: 10_000 })]);
    assert.equal((a as string[]).length, (b as string[]).length);
    const sa = await shape('from-sql');
    const sb = await shape('from-client');
    assert.deepEqual(sa.history.map((h) => h.kind), sb.history.map((h) => h.kind));
    assert.deepEqual({ ...sa.wf, output: null }, { ...sb.wf, output: null });
  });

  it('baton.enqueue starts a one-task job; a child workflow plan and a generated id work from SQL', async () => {
    const { rows } = await db.pool.query(`select workflow_id, created from baton.enqueue('inc', '41'::jsonb)`);
    assert.match(rows[0].workflow_id, /^[0-9a-f-]{36}$/);
    assert.equal(rows[0].created, true);
    await db.pool.query(`select baton.start_workflow('parent-wf', '1'::jsonb, 'sql-parent')`);
    worker = await inProcessWorker(db.url);
    assert.equal(await client.result(rows[0].workflow_id, { timeoutMs: 10_000 }), 42);
    assert.equal(await client.result('sql-parent', { timeoutMs: 10_000 }), 10);
  });

  it('raises a clear error for an unknown name or bad arguments, and writes nothing', async () => {
    const before = (await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n;
    const cases: [string, RegExp, string][] = [
      [`select baton.start_workflow('nope')`, /unknown workflow "nope": no worker has registered it/, 'BTN01'],
      [`select baton.enqueue('chain10')`, /unknown task "chain10"/, 'BTN01'],
      [`select baton.start_workflow('chain10', '1', 'p', -1)`, /priority must be a whole number from 0/, 'BTV01'],
      [`select baton.start_workflow('chain10', '1', '')`, /id must be 1-255 characters/, 'BTV01'],
      [`select baton.start_workflow('chain10', '1', 'x', null, null, 'sometimes')`, /on_conflict must be fail, useExisting or terminateExisting/, 'BTV01'],
      [`select baton.send_event('x', E'bad\\nname')`, /event name must be 1-128 characters/, 'BTV01'],
    ];
    for (const [sql, message, code] of cases) {
      await assert.rejects(db.pool.query(sql), (e: { message: string; code: string }) => {
        assert.match(e.message, message);
        assert.equal(e.code, code);
        return true;
      });
    }
    assert.equal((await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n, before);
  });

  it('a trigger can start work: instances appear only with the rows that caused them', async () => {
    await db.pool.query(`
      create table public.signups (email text primary key);
      create function public.on_signup() returns trigger language plpgsql as $$
      begin
        perform baton.enqueue('inc', to_jsonb(length(new.email)), 'signup:' || new.email);
        return new;
      end $$;
      create trigger signup_job after insert on public.signups for each row execute function public.on_signup();`);
    const tx = await db.pool.connect();
    try {
      await tx.query('begin');
      await tx.query(`insert into public.signups values ('rolled@back.example')`);
      await tx.query('rollback');
    } finally {
      tx.release();
    }
    await db.pool.query(`insert into public.signups values ('ada@example.com')`);
    assert.equal(await client.get('signup:rolled@back.example'), null);
    worker = await inProcessWorker(db.url);
    assert.equal(await client.result('signup:ada@example.com', { timeoutMs: 10_000 }), 16);
  });
});
