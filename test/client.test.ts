import assert from 'node:assert/strict';
import { drizzle } from 'drizzle-orm/node-postgres';
import {
  ConflictError,
  defineTask,
  defineWorkflow,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
  ValidationError,
  WorkflowFailedError,
  type Client,
  type Worker,
} from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, sleep, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { chain10, closeMarkPools, ensureMarks, inc, mark, slow, waiter } from './support/workflows.ts';

const gate = defineTask('gate', async (input: { id: string }, ctx) => {
  await mark(`gate:${ctx.workflowId}`);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, 20_000);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(t);
      void mark(`aborted:${ctx.workflowId}:${(ctx.signal.reason as Error).name}`).finally(() => reject(ctx.signal.reason as Error));
    });
  });
  return input.id;
});
const gated = defineWorkflow<{ id: string }>('gated').then(gate).then(defineTask('after-gate', async (s: string) => `${s}!`)).build();
const pausable = defineWorkflow<{ ms: number }>('pausable').then(slow).then(defineTask('second', async () => 'second ran')).build();

describe('client API', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  const workers: Worker[] = [];
  const worker = async (options: Parameters<typeof inProcessWorker>[1] = {}) => {
    const w = await inProcessWorker(db.url, { workflows: [chain10, waiter, gated, pausable], tasks: [inc, slow], ...options });
    workers.push(w);
    return w;
  };
  const count = async () => Number((await db.pool.query('select count(*) from baton.workflows')).rows[0].count);

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    await ensureMarks(db.pool);
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 200 })));
    await db.pool.query(`select baton.cancel_workflow(id) from baton.workflows where status in ('pending', 'running', 'paused') and parent_id is null`);
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  it('applies each conflict policy to a taken id', async () => {
    const first = await client.start(chain10, 0, { id: 'dup-1' });
    assert.equal(first.created, true);
    await assert.rejects(client.start(chain10, 0, { id: 'dup-1' }), (e: unknown) => e instanceof ConflictError && /already exists \(status running\)/.test(e.message));
    const same = await client.start(chain10, 5, { id: 'dup-1', onConflict: 'useExisting' });
    assert.deepEqual([same.id, same.created], ['dup-1', false]);
    assert.equal((await client.get('dup-1'))!.input, 0, 'the existing instance is kept');
    const fresh = await client.start(chain10, 7, { id: 'dup-1', onConflict: 'terminateExisting' });
    assert.equal(fresh.created, true);
    const view = (await client.get('dup-1'))!;
    assert.equal(view.input, 7);
    assert.deepEqual((await client.history('dup-1')).map((h) => h.version), [1], 'a new run with its own history');
  });

  it('two starts with the same id at once: one wins under fail, both see one instance under useExisting, the last wins under terminateExisting', async () => {
    for (let round = 0; round < 10; round++) {
      const id = `race-fail-${round}`;
      const results = await Promise.allSettled([client.start(chain10, 1, { id }), client.start(chain10, 2, { id })]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      assert.ok((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason instanceof ConflictError);

      const id2 = `race-existing-${round}`;
      const both = await Promise.all([client.start(chain10, 1, { id: id2, onConflict: 'useExisting' }), client.start(chain10, 2, { id: id2, onConflict: 'useExisting' })]);
      assert.deepEqual(both.map((b) => b.created).sort(), [false, true]);

      const id3 = `race-terminate-${round}`;
      const t = await Promise.all([client.start(chain10, 1, { id: id3, onConflict: 'terminateExisting' }), client.start(chain10, 2, { id: id3, onConflict: 'terminateExisting' })]);
      assert.ok(t.every((x) => x.created));
      const rows = await db.pool.query(`select status from baton.workflows where id = $1`, [id3]);
      assert.deepEqual(rows.rows, [{ status: 'running' }], 'exactly one instance remains');
    }
  });

  it("starts inside the caller's transaction (pg client and Drizzle): nothing exists if it rolls back", async () => {
    const tx = await db.pool.connect();
    try {
      await tx.query('begin');
      await client.start(chain10, 1, { id: 'tx-rolled', tx });
      await tx.query('rollback');
      await tx.query('begin');
      await client.enqueue(inc, 1, { id: 'tx-kept', tx });
      assert.equal(await client.get('tx-kept'), null, 'invisible before commit');
      await tx.query('commit');
    } finally {
      tx.release();
    }
    assert.equal(await client.get('tx-rolled'), null);
    assert.equal((await client.get('tx-kept'))!.status, 'running');

    const orm = drizzle(db.pool);
    await assert.rejects(
      orm.transaction(async (t) => {
        await client.start(chain10, 1, { id: 'drizzle-rolled', tx: t });
        throw new Error('the caller changes its mind');
      }),
      /changes its mind/,
    );
    await orm.transaction(async (t) => {
      await client.start(chain10, 1, { id: 'drizzle-kept', tx: t });
    });
    assert.equal(await client.get('drizzle-rolled'), null);
    assert.equal((await client.get('drizzle-kept'))!.status, 'running');
  });

  it('cancel: the running task sees its signal fire within one renewal interval; queued steps are cancelled; who and why are kept', async () => {
    await worker();
    await client.start(gated, { id: 'x' }, { id: 'cancel-1' });
    await until(async () => (await db.pool.query(`select 1 from marks where name = 'gate:cancel-1'`)).rowCount! > 0, { what: 'the task to start' });
    const t0 = Date.now();
    assert.equal(await client.cancel('cancel-1', { reason: 'customer asked', requestedBy: 'support' }), 'running');
    await until(async () => (await db.pool.query(`select 1 from marks where name like 'aborted:cancel-1:%'`)).rowCount! > 0, { what: 'the abort' });
    assert.ok(Date.now() - t0 < 1_500 / 3 + 200, 'within one renewal interval (ttl/3)');
    const view = (await client.get('cancel-1'))!;
    assert.equal(view.status, 'cancelled');
    assert.deepEqual([view.error!.reason, view.error!.requestedBy], ['customer asked', 'support']);
    assert.ok(view.tasks.every((t) => t.status === 'cancelled'));
    assert.equal((await db.pool.query(`select 1 from marks where name = 'aborted:cancel-1:CancelledError'`)).rowCount, 1);
    await assert.rejects(client.result('cancel-1'), (e: unknown) => e instanceof WorkflowFailedError && /cancelled: customer asked/.test(e.message));
    assert.equal(await client.cancel('cancel-1'), 'cancelled', 'a second cancel succeeds and changes nothing');
    assert.equal((await client.get('cancel-1'))!.error!.reason, 'customer asked', 'the first request stands');
  });

  it('pause: the running step finishes, nothing new is claimed; resume schedules what is ready', async () => {
    await worker();
    await client.start(pausable, { ms: 600 }, { id: 'pause-1' });
    await until(async () => (await db.pool.query(`select 1 from marks where name like 'start:pause-1:%'`)).rowCount! > 0, { what: 'the first step' });
    assert.equal(await client.pause('pause-1'), 'running');
    await until(async () => (await client.get('pause-1'))!.tasks[0]!.status === 'completed', { what: 'the running step to finish' });
    await sleep(600);
    const paused = (await client.get('pause-1'))!;
    assert.equal(paused.status, 'paused');
    assert.deepEqual(paused.tasks.map((t) => [t.name, t.status, t.paused]), [['slow', 'completed', false], ['second', 'waiting', true]]);
    await client.resume('pause-1');
    assert.equal(await client.result('pause-1', { timeoutMs: 10_000 }), 'second ran');
  });

  it('keeps an event sent before its instance exists; refuses one for a finished instance', async () => {
    await client.sendEvent('early-bird', 'go', { v: 1 });
    await worker();
    assert.deepEqual(await (await client.start(waiter, 0, { id: 'early-bird' })).result({ timeoutMs: 10_000 }), { v: 1 });
    await assert.rejects(client.sendEvent('early-bird', 'go', {}), (e: unknown) => e instanceof InvalidStateError && e.state === 'completed');
  });

  it('result() waits on LISTEN: it resolves promptly at the end, and times out with a typed error', async () => {
    await assert.rejects(client.result('nobody'), NotFoundError);
    const started = await client.start(chain10, 0, { id: 'res-1' });
    await assert.rejects(client.result('res-1', { timeoutMs: 200 }), (e: unknown) => e instanceof TimeoutError && /still running after 200 ms/.test(e.message));
    const waiting = client.result('res-1');
    await worker();
    assert.equal(await waiting, 10);
    assert.equal(await started.result(), 10);

    // While it waits, the client does not poll: it looks once, then once per notification.
    const query = client.pool.query.bind(client.pool);
    let queries = 0;
    client.pool.query = ((...args: Parameters<typeof query>) => {
      queries += 1;
      return query(...args);
    }) as typeof client.pool.query;
    try {
      const job = await client.enqueue(slow, { ms: 1_500 }, { id: 'res-2' });
      queries = 0;
      await job.result({ timeoutMs: 10_000 });
    } finally {
      client.pool.query = query;
    }
    assert.ok(queries <= 3, `${queries} queries while waiting 1.5 s`);
  });

  it('starts many instances in one call, in input order, all or nothing', async () => {
    const ids = await client.enqueueMany(inc, [1, 2, 3]);
    assert.equal(ids.length, 3);
    await worker();
    assert.deepEqual(await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 10_000 }))), [2, 3, 4]);
    const before = (await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n;
    await assert.rejects(client.startMany(chain10, [1, BigInt(2) as unknown as number]), /inputs\[1\] cannot be stored: inputs\[1\] is a BigInt/);
    assert.equal((await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n, before);
    assert.deepEqual(await client.startMany(chain10, []), []);
  });

  it('lists newest first with keyset pagination and filters; rebuilds the state at any version from history', async () => {
    for (let i = 0; i < 5; i++) await client.enqueue(inc, i, { id: `page-${i}` });
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await client.list({ name: 'inc', limit: 2, cursor });
      ids.push(...page.items.map((p) => p.id).filter((id) => id.startsWith('page-')));
      cursor = page.next;
    } while (cursor);
    assert.deepEqual(ids, ['page-4', 'page-3', 'page-2', 'page-1', 'page-0']);
    await assert.rejects(client.list({ limit: 0 }), ValidationError);

    const fork = defineWorkflow<number>('fork-state').parallel([inc, defineTask('twice', async (n: number) => n * 2)]).then(defineTask('add', async ([a, b]: number[]) => a! + b!)).build();
    await worker({ workflows: [fork], tasks: [] });
    assert.equal(await (await client.start(fork, 3, { id: 'state-1' })).result({ timeoutMs: 10_000 }), 10);
    const history = await client.history('state-1');
    assert.deepEqual(history.map((h) => h.kind), ['started', 'completed', 'completed', 'completed']);
    assert.deepEqual((await client.stateAt('state-1', 1)).state, { par: { '0': { left: 2, out: {} } }, done: 0 });
    const mid = await client.stateAt('state-1', 2);
    assert.equal(Object.keys((mid.state as { par: Record<string, { out: object }> }).par['0']!.out).length, 1, 'one branch done at version 2');
    assert.deepEqual(await client.stateAt('state-1'), { version: 4, status: 'completed', state: { par: {}, done: 3 } });
  });

  describe('bad input: a typed error and nothing written', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ['unknown workflow', () => client.start('no-such-workflow', {}), /unknown workflow "no-such-workflow"/],
      ['unknown task', () => client.enqueue('no-such-task', {}), /unknown task "no-such-task"/],
      ['empty id', () => client.start(chain10, 0, { id: '' }), /id must not be empty/],
      ['id too long', () => client.start(chain10, 0, { id: 'x'.repeat(256) }), /at most 255 characters/],
      ['id with a control character', () => client.start(chain10, 0, { id: 'a\nb' }), /control characters/],
      ['BigInt input', () => client.start(chain10, BigInt(1) as unknown as number), /is a BigInt/],
      ['circular input', () => client.start(chain10, circular as unknown as number), /circular reference/],
      ['function input', () => client.start(chain10, (() => 1) as unknown as number), /is a function/],
      ['oversized input', () => client.enqueue(inc, 'x'.repeat(2 * 1024 * 1024) as unknown as number), /over the limit of 1048576/],
      ['NUL in a key of a bulk input', () => client.enqueueMany(inc, [1, { 'k\u0000': 1 } as unknown as number]), /inputs\[1\] cannot be stored: a key of inputs\[1\] contains a NUL/],
      ['NUL from a toJSON in a bulk input', () => client.enqueueMany(inc, [{ toJSON: () => 'n\u0000' } as unknown as number]), /inputs\[0\] cannot be stored: inputs\[0\] contains a NUL/],
      ['bulk input with no JSON form', () => client.enqueueMany(inc, [1, { toJSON: () => undefined } as unknown as number]), /inputs\[1\] cannot be encoded: it has no JSON form/],
      ['oversized bulk input', () => client.enqueueMany(inc, [1, 'x'.repeat(2 * 1024 * 1024) as unknown as number]), /inputs\[1\] is \d+ bytes, over the limit of 1048576/],
      ['negative priority', () => client.start(chain10, 0, { priority: -1 }), /priority must be a whole number from 0/],
      ['fractional priority', () => client.start(chain10, 0, { priority: 1.5 }), /priority must be a whole number from 0/],
      ['bad conflict policy', () => client.start(chain10, 0, { onConflict: 'whatever' as never }), /onConflict must be one of/],
      ['tag with a control character', () => client.start(chain10, 0, { tags: ['a\u0007'] }), /each tag must be/],
      ['event name too long', () => client.sendEvent('x', 'e'.repeat(129)), /event name must be 1-128 characters/],
      ['not a workflow', () => client.start({} as never, 0), /takes a built workflow/],
    ];
    for (const [what, call, message] of cases) {
      it(what, async () => {
        const before = await count();
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof ValidationError || e instanceof NotFoundError, `typed error, got ${(e as Error).constructor.name}: ${(e as Error).message}`);
          assert.match((e as Error).message, message);
          return true;
        });
        assert.equal(await count(), before, 'nothing was written');
      });
    }
  });

  it('stores ids, tags and event names full of quotes and SQL keywords verbatim', async () => {
    const id = `o'neil"; DROP TABLE baton.workflows; --`;
    const tag = `'); DELETE FROM baton.tasks; --`;
    const event = `"select" * from 'x'; commit;`;
    await client.start(waiter, 1, { id, tags: [tag] });
    const view = (await client.get(id))!;
    assert.equal(view.id, id);
    assert.deepEqual(view.tags, [tag]);
    assert.deepEqual(view.tasks[0]!.tags, [tag]);
    await client.sendEvent(id, event, { 'it\'s': 'fine' });
    const { rows } = await db.pool.query('select workflow_id, name, payload from baton.events where workflow_id = $1', [id]);
    assert.deepEqual(rows, [{ workflow_id: id, name: event, payload: { "it's": 'fine' } }]);
    assert.ok(Number((await db.pool.query('select count(*) from baton.workflows')).rows[0].count) > 0, 'tables intact');
  });
});
