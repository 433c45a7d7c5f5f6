/**
 * Fleet-wide concurrency and rate limits (defineTask's `concurrency` and `rateLimit`): real worker
 * processes run limited tasks that record their handler's span in public.limit_runs (database clock),
 * and the tests compute the most that ever ran at once, per key.
 */
import assert from 'node:assert/strict';
import { defineTask, taskWorkflow, ValidationError, type Client } from '../src/index.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, register, sleep, until } from './support/fixtures.ts';
import { childWorker, inProcessWorker, type ChildWorker } from './support/workers.ts';
import { closeMarkPools, ensureMarks, fleetWide, inc, limitedFlow, perCustomer, rated } from './support/workflows.ts';

describe('concurrency and rate limits', function () {
  this.timeout(90_000);
  const db = useTestDatabase();
  let client: Client;
  const children: ChildWorker[] = [];

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    await ensureMarks(db.pool);
    await db.pool.query(`create table public.limit_runs (id bigserial primary key, task text not null, key text not null, pid int,
      started_at timestamptz not null default clock_timestamp(), ended_at timestamptz)`);
    // Every admission of a rate-limited task, kept (the reconciler prunes baton.rate_log after a period).
    await db.pool.query(`create table public.rate_seen (name text, key text, at timestamptz);
      create function public.keep_rate() returns trigger language plpgsql as $$
      begin insert into public.rate_seen values (new.name, new.key, new.at); return null; end $$;
      create trigger keep_rate after insert on baton.rate_log for each row execute function public.keep_rate()`);
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
    await db.pool.query(`select baton.cancel_workflow(id) from baton.workflows where status in ('pending', 'running', 'paused') and parent_id is null`);
    await assertInvariants(db.pool);
    await db.pool.query('truncate public.limit_runs');
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  /** The most handlers of `task` that ran at once, per key (ends before starts at equal times). */
  const peaks = async (task: string): Promise<Map<string, number>> => {
    const { rows } = await db.pool.query<{ key: string; peak: number }>(
      `select key, max(running)::int as peak from (
         select key, sum(d) over (partition by key order by t, d rows unbounded preceding) as running
         from (select key, started_at as t, 1 as d from public.limit_runs where task = $1
               union all select key, ended_at, -1 from public.limit_runs where task = $1 and ended_at is not null) ev) x
       group by key`,
      [task],
    );
    return new Map(rows.map((r) => [r.key, r.peak]));
  };
  const workers = async (n: number, env: Record<string, string> = {}) => {
    const started = await Promise.all(Array.from({ length: n }, () => childWorker(db.url, env)));
    children.push(...started);
    return started;
  };

  it('never runs more than the limit per key across three worker processes, and runs everything', async () => {
    await workers(3);
    const customers = ['a', 'b', 'c'];
    const ids = await client.enqueueMany(perCustomer, Array.from({ length: 24 }, (_, i) => ({ customer: customers[i % 3]!, ms: 150 })));
    // The same task as a later step: its key comes from the worker that schedules it.
    const flows = await Promise.all(Array.from({ length: 6 }, () => client.start(limitedFlow, { customer: 'a', ms: 150 })));
    await Promise.all([...ids.map((id) => client.result(id, { timeoutMs: 60_000 })), ...flows.map((f) => f.result({ timeoutMs: 60_000 }))]);

    const peak = await peaks('per-customer');
    assert.deepEqual([...peak.keys()].sort(), customers);
    for (const [key, n] of peak) assert.ok(n <= 2, `customer ${key}: ${n} ran at once, over the limit of 2`);
    // 30 slots and 150 ms tasks: without the limit many more would overlap; with it the limit is reached.
    assert.ok([...peak.values()].some((n) => n === 2), `the limit was never reached: ${JSON.stringify([...peak])}`);
    const { rows } = await db.pool.query(`select count(*)::int as n from public.limit_runs where task = 'per-customer'`);
    assert.equal(rows[0].n, 30);
  });

  it('a limit without a key counts the task as a whole, fleet-wide', async () => {
    await workers(2);
    const ids = await client.enqueueMany(fleetWide, Array.from({ length: 12 }, () => ({ ms: 150 })));
    await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 60_000 })));
    const peak = await peaks('fleet-wide');
    assert.ok(peak.get('')! <= 3, `${peak.get('')} ran at once, over the limit of 3`);
    assert.equal(peak.get(''), 3);
  });

  it('admits at most `limit` tasks in any window of `periodMs`', async () => {
    await workers(2);
    const ids = await client.enqueueMany(rated, Array.from({ length: 9 }, () => ({ ms: 10 })));
    await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 60_000 })));
    const { rows } = await db.pool.query<{ ms: number }>(
      `select extract(epoch from at) * 1000 as ms from public.rate_seen where name = 'rated' order by at`,
    );
    assert.equal(rows.length, 9, 'one admission per task');
    const at = rows.map((r) => Number(r.ms));
    for (let i = 0; i + 3 < at.length; i++) {
      assert.ok(at[i + 3]! - at[i]! >= 1_000, `admissions ${i} and ${i + 3} only ${at[i + 3]! - at[i]!} ms apart`);
    }
  });

  it('frees the slots of a worker killed with SIGKILL once the reconciler takes its claims back', async () => {
    // Three workers: the two long runs (the limit is 2) are on at most two of them; those are killed.
    const started = await workers(3);
    const long = await client.enqueueMany(perCustomer, [{ customer: 'k', ms: 4_000 }, { customer: 'k', ms: 4_000 }]);
    await until(async () => (await db.pool.query(`select 1 from public.limit_runs where key = 'k'`)).rowCount === 2, { what: 'both to start' });
    const third = await client.enqueue(perCustomer, { customer: 'k', ms: 50 });
    await sleep(300);
    assert.equal((await client.get(third.id))!.tasks[0]!.status, 'queued', 'the third waits for a slot');
    const { rows: pids } = await db.pool.query<{ pid: number }>(`select distinct pid from public.limit_runs where key = 'k'`);
    const doomed = started.filter((w) => pids.some((p) => p.pid === w.proc.pid));
    for (const w of doomed) w.proc.kill('SIGKILL');
    await Promise.all(doomed.map((w) => w.exited));

    await Promise.all([...long.map((id) => client.result(id, { timeoutMs: 30_000 })), third.result({ timeoutMs: 30_000 })]);
    for (const id of long) assert.equal((await client.get(id))!.tasks[0]!.attempts, 2, 'ran again after the lost lease');
    const { rows } = await db.pool.query(`select count(*)::int as n from public.limit_runs where key = 'k' and ended_at is not null`);
    assert.equal(rows[0].n, 3, 'the two reclaimed runs and the third finished on the surviving worker');
    const { rows: overlap } = await db.pool.query(
      `select count(*)::int as n from public.limit_runs a join public.limit_runs b on a.id < b.id and a.key = b.key and a.ended_at is not null
         and b.ended_at is not null and a.started_at < b.ended_at and b.started_at < a.ended_at
       join public.limit_runs c on c.id > b.id and c.key = a.key and c.ended_at is not null
         and c.started_at < least(a.ended_at, b.ended_at) and greatest(a.started_at, b.started_at) < c.ended_at
       where a.key = 'k'`,
    );
    assert.equal(overlap[0].n, 0, 'never three finished runs at once');
  });

  it('a task held by its limit does not block the unlimited tasks behind it', async () => {
    const worker = await inProcessWorker(db.url, { concurrency: 4 });
    try {
      const busy = await client.enqueueMany(perCustomer, Array.from({ length: 12 }, () => ({ customer: 'busy', ms: 1_000 })));
      const free = await client.enqueueMany(inc, [1, 2, 3, 4, 5]);
      const out = await Promise.all(free.map((id) => client.result(id, { timeoutMs: 20_000 })));
      assert.deepEqual(out, [2, 3, 4, 5, 6]);
      const { rows } = await db.pool.query(`select count(*)::int as n from baton.tasks where name = 'per-customer' and status = 'queued'`);
      assert.ok(rows[0].n > 0, 'the limited tasks were still queued while the others ran');
      await client.cancel(busy[0]!);
    } finally {
      await worker.stop();
    }
  });

  it('a queued task can be paused, resumed and cancelled; cancelling a running one frees its place', async () => {
    const worker = await inProcessWorker(db.url, { concurrency: 4 });
    try {
      const status = async (id: string) => (await client.get(id))!.tasks[0]!.status;
      const [a, b] = await client.enqueueMany(perCustomer, [{ customer: 'p', ms: 30_000 }, { customer: 'p', ms: 30_000 }]);
      const [c, d] = await client.enqueueMany(perCustomer, [{ customer: 'p', ms: 10 }, { customer: 'p', ms: 10 }]);
      await until(async () => (await status(a!)) === 'running' && (await status(b!)) === 'running', { what: 'two to run' });
      assert.equal(await status(c!), 'queued');
      await client.pause(c!);
      assert.equal(await status(c!), 'waiting');
      await client.cancel(d!);
      assert.equal(await status(d!), 'cancelled');
      await client.resume(c!);
      assert.equal(await status(c!), 'queued', 'resumed, it waits for its limit again');
      // Cancelling a running attempt frees its place: the queued one runs.
      await client.cancel(a!);
      await client.result(c!, { timeoutMs: 20_000 });
      await client.cancel(b!);
    } finally {
      await worker.stop();
    }
  });

  it('the SQL API takes the key as an argument, and refuses a start without it', async () => {
    const worker = await inProcessWorker(db.url, { concurrency: 4 });
    try {
      const { rows } = await db.pool.query<{ workflow_id: string }>(
        `select workflow_id from baton.enqueue('per-customer', '{"customer":"ignored","ms":10}', p_limit_key => 'from-sql')`,
      );
      const id = rows[0]!.workflow_id;
      await client.result(id, { timeoutMs: 20_000 });
      const { rows: runs } = await db.pool.query(`select key from public.limit_runs where task = 'per-customer'`);
      assert.deepEqual(runs, [{ key: 'ignored' }]);
      const { rows: task } = await db.pool.query(`select limit_key from baton.tasks where workflow_id = $1`, [id]);
      assert.equal(task[0].limit_key, 'from-sql');

      const many = await db.pool.query<{ workflow_id: string }>(
        `select workflow_id from baton.start_many('per-customer', '[{"customer":"x","ms":1},{"customer":"y","ms":1}]', 'task', p_limit_keys => array['x', 'y'])`,
      );
      const keys = await db.pool.query(`select limit_key from baton.tasks where workflow_id = any($1) order by limit_key`, [many.rows.map((r) => r.workflow_id)]);
      assert.deepEqual(keys.rows, [{ limit_key: 'x' }, { limit_key: 'y' }]);

      await assert.rejects(db.pool.query(`select * from baton.enqueue('per-customer', '{"customer":"c","ms":1}')`), (e: { code?: string; message: string }) => {
        assert.equal(e.code, 'BTV01');
        assert.match(e.message, /pass the key/);
        return true;
      });
      await assert.rejects(db.pool.query(`select * from baton.start_many('per-customer', '[{"customer":"c","ms":1}]', 'task')`), /pass one key per input/);
      await assert.rejects(db.pool.query(`select * from baton.enqueue('per-customer', '{}', p_limit_key => '')`), /1-255 characters/);
      // By name from the client: the key is an option.
      await assert.rejects(client.enqueue('per-customer', { customer: 'c', ms: 1 }), ValidationError);
      const named = await client.enqueue('per-customer', { customer: 'c', ms: 1 }, { limitKey: 'c' });
      await named.result({ timeoutMs: 20_000 });
    } finally {
      await worker.stop();
    }
  });

  it('baton enqueue takes --limit-key, and without it says in one line (exit 1) that the task needs one', async () => {
    await register(db.pool, taskWorkflow(perCustomer));
    const env = { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'error' };
    const without = await runCli(['enqueue', 'per-customer', '{"customer":"c","ms":1}'], { env });
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stderr.trim(), /^[^\n]*starts with a task whose limits count per key: pass the key[^\n]*$/);
    const withKey = await runCli(['enqueue', 'per-customer', '{"customer":"c","ms":1}', '--limit-key', 'cli', '--id', 'cli-limited', '--json'], { env });
    assert.equal(withKey.code, 0, withKey.stderr);
    const { rows } = await db.pool.query(`select limit_key, status from baton.tasks where workflow_id = 'cli-limited'`);
    assert.deepEqual(rows, [{ limit_key: 'cli', status: 'ready' }]);
  });

  it('refuses bad limits at definition time with a ValidationError', () => {
    const run = async () => null;
    const bad: [string, object][] = [
      ['concurrency.limit', { concurrency: { limit: 0 } }],
      ['concurrency.limit', { concurrency: { limit: 1.5 } }],
      ['concurrency.limit', { concurrency: { limit: '3' } }],
      ['concurrency must be an object', { concurrency: 3 }],
      ['concurrency.key', { concurrency: { limit: 1, key: 'customer' } }],
      ['rateLimit.limit', { rateLimit: { limit: -1, periodMs: 1_000 } }],
      ['rateLimit.periodMs', { rateLimit: { limit: 1, periodMs: 0 } }],
      ['rateLimit.periodMs', { rateLimit: { limit: 1, periodMs: -5 } }],
      ['rateLimit.periodMs', { rateLimit: { limit: 1 } }],
      ['the same function', { concurrency: { limit: 1, key: () => 'a' }, rateLimit: { limit: 1, periodMs: 1, key: () => 'b' } }],
    ];
    for (const [what, options] of bad) {
      assert.throws(() => defineTask('bad-limits', run, options), (e: Error) => e instanceof ValidationError && e.message.includes(what), what);
    }
    const key = (i: { c: string }) => i.c;
    assert.doesNotThrow(() => defineTask('good-limits', run, { concurrency: { limit: 1, key }, rateLimit: { limit: 5, periodMs: 1_000, key } }));
  });

  it('a key function that fails at enqueue is a ValidationError and writes nothing; at a later step it fails the step, not the worker', async () => {
    const before = (await db.pool.query(`select count(*)::int as n from baton.workflows`)).rows[0].n;
    await assert.rejects(client.enqueue(perCustomer, { customer: 42 as unknown as string, ms: 1 }), (e: Error) => {
      assert.ok(e instanceof ValidationError);
      assert.match(e.message, /limit key function must return a string/);
      return true;
    });
    const throwing = defineTask('throwing-key', async () => null, { concurrency: { limit: 1, key: () => { throw new Error('no key here'); } } });
    await assert.rejects(client.enqueue(throwing, {}), /its limit key function threw: no key here/);
    await assert.rejects(client.enqueueMany(perCustomer, [{ customer: 'ok', ms: 1 }, { customer: '', ms: 1 }]), ValidationError);
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.workflows`)).rows[0].n, before, 'nothing written');

    const worker = await inProcessWorker(db.url, { concurrency: 2 });
    try {
      const flow = await client.start(limitedFlow, { customer: 7 as unknown as string, ms: 1 });
      await assert.rejects(flow.result({ timeoutMs: 20_000 }), /limit key function must return a string/);
      const view = await client.get(flow.id);
      assert.equal(view!.status, 'failed');
      const ok = await client.start(limitedFlow, { customer: 'fine', ms: 1 });
      await ok.result({ timeoutMs: 20_000 });
    } finally {
      await worker.stop();
    }
  });
});
