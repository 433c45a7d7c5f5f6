import assert from 'node:assert/strict';
import { ConflictError, ValidationError, createClient, type Client } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { silentLogger } from '../src/log.ts';
import { assertInvariants, fixtureClient, register } from './support/fixtures.ts';
import { chain10, inc, parentWf, patientWaiter } from './support/workflows.ts';
import { defineTask, defineWorkflow, taskWorkflow } from '../src/workflow/index.ts';

const onGpu = defineTask('bulk-on-gpu', async (n: number) => n, { tags: ['gpu', 'eu'] });
const onCpu = defineTask('bulk-on-cpu', async (n: number) => n, { tags: ['cpu'] });
const plain = defineTask('bulk-plain', async (n: number) => n);
const tagged = defineWorkflow<number>('bulk-tagged').parallel([onGpu, onCpu, plain]).build();

describe('bulk starts with ids (startMany, enqueueMany, baton.start_many)', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let client: Client;
  const count = async (where = 'true') => (await db.pool.query(`select count(*)::int as n from baton.workflows where ${where}`)).rows[0].n as number;

  before(async () => {
    client = await fixtureClient(db.url);
    await register(db.pool, chain10, parentWf, patientWaiter, taskWorkflow(inc), tagged);
  });
  after(async () => {
    await client.close();
  });

  it('stores each input as the codec writes it, in input order', async () => {
    const when = new Date('2026-12-06T06:00:00.000Z');
    const ids = await client.enqueueMany(inc, [{ when, n: 'é' }, 'a\\u0000b', null, [1, undefined]] as unknown as number[]);
    const rows = await db.pool.query(`select id, input from baton.workflows where id = any($1)`, [ids]);
    const byId = new Map(rows.rows.map((r) => [r.id, r.input]));
    assert.deepEqual(ids.map((id) => byId.get(id)), [{ when: '2026-12-06T06:00:00.000Z', n: 'é' }, 'a\\u0000b', null, [1, null]]);
    const wrapping = await createClient({ connectionString: db.url, logger: silentLogger, codec: { encode: (v) => ({ wrapped: v as number }), decode: (j) => (j as { wrapped: unknown }).wrapped } });
    try {
      const [id] = await wrapping.enqueueMany(inc, [5]);
      assert.deepEqual((await db.pool.query(`select input from baton.workflows where id = $1`, [id])).rows[0].input, { wrapped: 5 });
    } finally {
      await wrapping.close();
    }
  });

  it('starts one instance per item under its id, in input order, and says each was created', async () => {
    const started = await client.enqueueMany(inc, [1, 2, 3], { ids: ['m-1', null, 'm-3'] });
    assert.equal(started.length, 3);
    assert.deepEqual([started[0], started[2]], [{ id: 'm-1', created: true }, { id: 'm-3', created: true }]);
    assert.equal(started[1]!.created, true);
    assert.match(started[1]!.id, /^[0-9a-f-]{36}$/, 'a null id is generated');
    const inputs = await db.pool.query(`select id, input from baton.workflows where id = any($1) order by input`, [started.map((s) => s.id)]);
    assert.deepEqual(inputs.rows.map((r) => [r.id, r.input]), [['m-1', 1], [started[1]!.id, 2], ['m-3', 3]]);
    // Without ids the result stays a list of ids.
    const plain = await client.enqueueMany(inc, [4]);
    assert.equal(typeof plain[0], 'string');
    await assertInvariants(db.pool);
  });

  it("useExisting: a taken id keeps its instance and says created false; the others are started", async () => {
    await client.start(chain10, 100, { id: 'u-1' });
    const started = await client.startMany(chain10, [1, 2], { ids: ['u-1', 'u-2'], onConflict: 'useExisting' });
    assert.deepEqual(started, [{ id: 'u-1', created: false }, { id: 'u-2', created: true }]);
    assert.equal((await client.get('u-1'))!.input, 100, 'the existing instance is untouched');
    assert.equal((await client.history('u-1')).length, 1);
    assert.equal((await client.get('u-2'))!.input, 2);
  });

  it('fail (the default): a taken id is a ConflictError and nothing of the batch is written', async () => {
    await client.start(chain10, 0, { id: 'f-1' });
    const before = await count();
    await assert.rejects(
      client.startMany(chain10, [1, 2, 3], { ids: ['f-0', 'f-1', 'f-2'] }),
      (e: unknown) => e instanceof ConflictError && e.code === 'CONFLICT' && /"f-1" already exists/.test(e.message),
    );
    assert.equal(await count(), before, 'f-0 and f-2 were not started either');
    assert.equal(await count(`id in ('f-0', 'f-2')`), 0);
  });

  it('terminateExisting: the old instance is cancelled and replaced, the item says created', async () => {
    await client.start(chain10, 0, { id: 't-1' });
    const started = await client.startMany(chain10, [9], { ids: ['t-1'], onConflict: 'terminateExisting' });
    assert.deepEqual(started, [{ id: 't-1', created: true }]);
    const view = (await client.get('t-1'))!;
    assert.equal(view.input, 9);
    assert.equal(view.status, 'running');
    assert.deepEqual((await client.history('t-1')).map((h) => h.kind), ['started'], 'a new run with its own history');
  });

  it('definitions with a first child step and with an event wait take ids too', async () => {
    const parents = await client.startMany(parentWf, [1, 2], { ids: ['pc-1', 'pc-2'] });
    assert.deepEqual(parents, [{ id: 'pc-1', created: true }, { id: 'pc-2', created: true }]);
    const again = await client.startMany(parentWf, [1, 2], { ids: ['pc-2', 'pc-3'], onConflict: 'useExisting' });
    assert.deepEqual(again, [{ id: 'pc-2', created: false }, { id: 'pc-3', created: true }]);
    // A definition that waits for events takes the events lock per given id (as start does); an event sent first is kept.
    await client.sendEvent('ev-1', 'go', { v: 1 });
    assert.deepEqual(await client.startMany(patientWaiter, [1], { ids: ['ev-1'] }), [{ id: 'ev-1', created: true }]);
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.events where workflow_id = 'ev-1'`)).rows[0].n, 1);
    await assertInvariants(db.pool);
  });

  it('the SQL API takes ids and the policy and returns created per row', async () => {
    const rows = await db.pool.query(
      `select * from baton.start_many('inc', '[1, 2]', 'task', null, null, null, array['sql-1', 'sql-2'], 'useExisting')`,
    );
    assert.deepEqual(rows.rows, [{ workflow_id: 'sql-1', created: true }, { workflow_id: 'sql-2', created: true }]);
    const again = await db.pool.query(`select * from baton.start_many('inc', '[1, 2]', 'task', null, null, null, array['sql-2', 'sql-3'], 'useExisting')`);
    assert.deepEqual(again.rows, [{ workflow_id: 'sql-2', created: false }, { workflow_id: 'sql-3', created: true }]);
    // The old call shape still works: generated ids, all created.
    const plain = await db.pool.query(`select * from baton.start_many('inc', '[5]', 'task')`);
    assert.equal(plain.rows[0].created, true);
    await assert.rejects(db.pool.query(`select * from baton.start_many('inc', '[1, 2]', 'task', null, null, null, array['x'])`), /ids has 1 entries for 2 inputs/);
    await assert.rejects(db.pool.query(`select * from baton.start_many('inc', '[1, 2]', 'task', null, null, null, array['d', 'd'])`), /ids\[1\] repeats ids\[0\]/);
    await assert.rejects(db.pool.query(`select * from baton.start_many('inc', '[1]', 'task', null, null, null, array['y'], 'merge')`), /on_conflict must be/);
  });

  it('generated ids are version-4 UUIDs, distinct within and across calls, scattered, each on its own input', async () => {
    const v4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const inputs = Array.from({ length: 300 }, (_, i) => 1000 + i);
    const first = await client.enqueueMany(inc, inputs);
    const second = (await db.pool.query(`select workflow_id from baton.start_many('inc', $1::jsonb, 'task')`, [JSON.stringify(inputs)])).rows.map(
      (r) => r.workflow_id as string,
    );
    const mixed = await client.enqueueMany(inc, [7, 8, 9], { ids: [null, 'given-8', null] });
    const all = [...first, ...second, mixed[0]!.id, mixed[2]!.id];
    for (const id of all) assert.match(id, v4);
    assert.equal(new Set(all).size, all.length, 'no id repeats');
    // Scattered, not counted up: consecutive ids filled the primary keys' pages only half (in order, page by page).
    const ascending = first.slice(1).filter((id, i) => id > first[i]!).length;
    assert.ok(ascending > 60 && ascending < 240, `the next id sorts after the previous one some of the time, not always (${ascending} of 299)`);
    assert.equal(mixed[1]!.id, 'given-8');
    const stored = await db.pool.query(`select id, input from baton.workflows where id = any($1)`, [[...first, ...second, ...mixed.map((m) => m.id)]]);
    const inputOf = new Map(stored.rows.map((r) => [r.id as string, r.input as number]));
    assert.deepEqual(first.map((id) => inputOf.get(id)), inputs, 'the nth id is the nth input\'s instance');
    assert.deepEqual(second.map((id) => inputOf.get(id)), inputs);
    assert.deepEqual(mixed.map((m) => inputOf.get(m.id)), [7, 8, 9]);
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.tasks where workflow_id = any($1)`, [all])).rows[0].n, all.length);
    await assertInvariants(db.pool);
  });

  it("each first step's task row gets that step's tags with the caller's, sorted, on every instance", async () => {
    // A bulk start works out each step's fields once and pairs them with every instance: a step's tags must
    // not leak into another step's row, nor be lost on any instance.
    const ids = await client.startMany(tagged, [1, 2, 3, 4], { tags: ['zone-b', 'eu'] });
    const { rows } = await db.pool.query(
      `select t.workflow_id, t.name, t.tags, t.status from baton.tasks t where t.workflow_id = any($1) order by t.workflow_id, t.name`,
      [ids],
    );
    assert.equal(rows.length, 12);
    const want: Record<string, string[]> = {
      'bulk-on-gpu': ['eu', 'gpu', 'zone-b'],
      'bulk-on-cpu': ['cpu', 'eu', 'zone-b'],
      'bulk-plain': ['eu', 'zone-b'],
    };
    for (const r of rows) {
      assert.deepEqual(r.tags, want[r.name], `${r.name} of ${r.workflow_id}`);
      assert.equal(r.status, 'ready');
    }
    assert.deepEqual(new Set(rows.map((r) => r.workflow_id)), new Set(ids));
    const sets = (await db.pool.query(`select tags from baton.tag_sets`)).rows.map((r) => JSON.stringify(r.tags));
    for (const tags of Object.values(want)) assert.ok(sets.includes(JSON.stringify(tags)), `tag set ${tags} is known to the claim`);
    await assertInvariants(db.pool);
  });

  it('refuses bad ids before anything is written', async () => {
    const before = await count();
    const bad: [unknown, RegExp][] = [
      [['a'], /ids has 1 entries for 2 inputs/],
      [['b', 'b'], /ids\[1\] repeats ids\[0\]/],
      [['c', ''], /ids\[1\] must not be empty/],
      [['c', 'x'.repeat(256)], /ids\[1\] must be at most 255 characters/],
      [['c', 'a\nb'], /ids\[1\] must not contain control characters/],
      [['c', 5], /ids\[1\] must be a string/],
      ['c', /ids must be an array/],
    ];
    for (const [ids, message] of bad) {
      await assert.rejects(client.enqueueMany(inc, [1, 2], { ids: ids as string[] }), (e: unknown) => e instanceof ValidationError && message.test(e.message), String(ids));
    }
    await assert.rejects(client.enqueueMany(inc, [1], { ids: ['ok'], onConflict: 'merge' as never }), ValidationError);
    assert.equal(await count(), before);
  });
});
