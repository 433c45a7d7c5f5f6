import assert from 'node:assert/strict';
import { createClient, defineTask, defineWorkflow, ValidationError, WorkflowFailedError, type Client, type Worker } from '../src/index.ts';
import { reconcileOnce } from '../src/reconciler/index.ts';
import { checkInvariants } from '../src/store/check.ts';
import { progressLine, statusText } from '../src/cli/format.ts';
import { definitionHash, shapeOf } from '../src/workflow/graph.ts';
import { silentLogger } from '../src/log.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, sleep, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';

type Order = { orderId: string };
// The step before the wait outputs something without an orderId: the key must come from the instance's input.
const prepare = defineTask('keyed-prepare', async () => ({ step: 'prepared' }));
const paid = defineWorkflow<Order>('keyed-paid').then(prepare).waitForEvent<{ n: number }>('paid', { key: (o) => o.orderId, timeoutMs: '60s' }).build();
const first = defineWorkflow<Order>('keyed-first').waitForEvent('paid', { key: (o) => o.orderId, timeoutMs: '60s' }).build();
const short = defineWorkflow<Order>('keyed-short').waitForEvent('paid', { key: (o) => o.orderId, timeoutMs: 1_500, onTimeout: 'continue' }).build();
const strict = defineWorkflow<Order>('keyed-strict').waitForEvent('paid', { key: (o) => o.orderId, timeoutMs: 800 }).build();
const badKey = defineWorkflow<{ orderId: unknown }>('keyed-bad').waitForEvent('paid', { key: (o) => o.orderId as string }).build();
const throwing = defineWorkflow<Order>('keyed-throw')
  .waitForEvent('paid', {
    key: () => {
      throw new Error('no order here');
    },
  })
  .build();
/** Its key function throws while `keyBroken.now` (a bug fixed by a deploy, as the retry test plays it). */
const keyBroken = { now: true };
const fixable = defineWorkflow<Order>('keyed-fixable')
  .waitForEvent('paid', {
    key: (o) => {
      if (keyBroken.now) throw new Error('key bug');
      return o.orderId;
    },
  })
  .build();
const all = [paid, first, short, strict, badKey, throwing, fixable];

describe('keyed events (waitForEvent with a key, publish by name and key)', function () {
  this.timeout(90_000);
  const db = useTestDatabase();
  let client: Client;
  const workers: Worker[] = [];
  const worker = async (options: Parameters<typeof inProcessWorker>[1] = {}) => {
    const w = await inProcessWorker(db.url, { workflows: all, tasks: [], ...options });
    workers.push(w);
    return w;
  };
  const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows as T[];
  const buffered = async (key: string) => q<{ id: string; held_key: string | null }>(`select id, held_key from baton.events where key = $1 order by id`, [key]);
  /** The instance's keyed wait is waiting under its computed key. */
  const waitingOn = (id: string, key: string) =>
    until(async () => (await q(`select 1 from baton.tasks where workflow_id = $1 and kind = 'event' and status = 'waiting' and event_key = $2`, [id, key])).length > 0, {
      what: `${id} waiting on ${key}`,
    });

  before(async () => {
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 200 })));
    await q(`select baton.cancel_workflow(id) from baton.workflows where status in ('pending', 'running', 'paused')`);
    await q(`delete from baton.events`);
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
  });

  it('enters the definition hash as a flag: a keyed wait differs from an unkeyed one, an unkeyed one hashes as before', () => {
    const plain = defineWorkflow('h').waitForEvent('paid').build();
    const keyed = defineWorkflow<Order>('h').waitForEvent('paid', { key: (o) => o.orderId }).build();
    const otherKey = defineWorkflow<Order>('h').waitForEvent('paid', { key: (o) => `x${o.orderId}` }).build();
    assert.notEqual(plain.hash, keyed.hash);
    assert.equal(keyed.hash, otherKey.hash, 'the key function is code: only its presence is hashed');
    assert.deepEqual(shapeOf({ kind: 'event', name: 'paid', timeoutMs: null, onTimeout: 'fail' }), { t: 'event', name: 'paid', timeoutMs: null, onTimeout: 'fail' });
    assert.equal(plain.hash, definitionHash('workflow', 'h', { kind: 'seq', steps: [{ kind: 'event', name: 'paid', timeoutMs: null, onTimeout: 'fail' }] }));
    assert.throws(() => defineWorkflow('h').waitForEvent('paid', { key: 'orderId' as never }), (e: unknown) => e instanceof ValidationError && /key must be a function/.test(e.message));
  });

  it('delivers a published event to the instance waiting on its name and key, computed from the instance input', async () => {
    await worker();
    const a = await client.start(paid, { orderId: 'o-1' });
    const b = await client.start(paid, { orderId: 'o-2' });
    await waitingOn(a.id, 'o-1');
    await waitingOn(b.id, 'o-2');
    // The computed key is shown where a person looks: client.get and baton status.
    const view = (await client.get(a.id))!;
    assert.deepEqual(view.tasks.filter((t) => t.kind === 'event').map((t) => [t.status, t.eventKey]), [['waiting', 'o-1']]);
    assert.match(statusText(view), /waits for event "paid" with key "o-1"/);
    assert.match(progressLine(view), /waiting for "paid" with key "o-1"/);
    await client.publish('paid', 'o-2', { n: 2 });
    assert.deepEqual(await client.result(b.id, { timeoutMs: 15_000 }), { n: 2 });
    assert.equal((await client.get(a.id))!.status, 'running', 'the other key is not woken');
    await client.sendEvent(a.id, 'paid', { n: -1 });
    await client.publish('other-name', 'o-1', { n: 0 });
    await sleep(300);
    assert.equal((await client.get(a.id))!.status, 'running', 'an event of another name, or sent to the instance, is not taken');
    await client.publish('paid', 'o-1', { n: 1 });
    assert.deepEqual(await client.result(a.id, { timeoutMs: 15_000 }), { n: 1 });
    assert.deepEqual(await q(`select name from baton.events where key = 'o-1'`), [{ name: 'other-name' }], 'only the other name\'s event is left');
  });

  it('buffers events published before any waiter; each new waiter takes the oldest (FIFO)', async () => {
    for (const n of [1, 2, 3]) await client.publish('paid', 'o-buf', { n });
    await worker();
    for (const n of [1, 2, 3]) {
      const { id } = await client.start(first, { orderId: 'o-buf' });
      assert.deepEqual(await client.result(id, { timeoutMs: 15_000 }), { n });
    }
    assert.deepEqual(await buffered('o-buf'), []);
  });

  it('serves waiters oldest first: each publish wakes the waiter that began waiting earliest', async () => {
    await worker();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { id } = await client.start(first, { orderId: 'o-fifo' });
      await waitingOn(id, 'o-fifo');
      ids.push(id);
    }
    for (const [i, id] of ids.entries()) {
      await client.publish('paid', 'o-fifo', { n: i });
      assert.deepEqual(await client.result(id, { timeoutMs: 15_000 }), { n: i }, `waiter ${i} gets event ${i}`);
      for (const later of ids.slice(i + 1)) assert.equal((await client.get(later))!.status, 'running');
    }
  });

  it('many publishes and waiters racing on two workers and two clients: every event consumed exactly once', async () => {
    await worker({ workerId: 'keyed-w1' });
    await worker({ workerId: 'keyed-w2' });
    const other = await createClient({ connectionString: db.url, logger: silentLogger });
    try {
      const keys = ['k0', 'k1', 'k2'];
      const perKey = 8;
      const ops: Promise<unknown>[] = [];
      const started: string[] = [];
      for (let i = 0; i < perKey; i++) {
        for (const [k, key] of keys.entries()) {
          const c = (i + k) % 2 === 0 ? client : other;
          ops.push(c.publish('paid', key, { key, i }));
          ops.push(c.start(i % 2 === 0 ? first : paid, { orderId: key }).then((r) => started.push(r.id)));
        }
      }
      await Promise.all(ops);
      const outputs = await Promise.all(started.map((id) => client.result(id, { timeoutMs: 30_000 }) as Promise<{ key: string; i: number }>));
      const seen = outputs.map((o) => `${o.key}/${o.i}`).sort();
      const published = keys.flatMap((key) => Array.from({ length: perKey }, (_, i) => `${key}/${i}`)).sort();
      assert.deepEqual(seen, published, 'each published event went to exactly one waiter');
      // Each instance got an event of its own key.
      for (const [n, id] of started.entries()) assert.equal(((await client.get(id))!.input as Order).orderId, outputs[n]!.key, 'an event of its own key');
      assert.equal((await q(`select count(*)::int as n from baton.events`))[0]!.n, 0, 'nothing left buffered');
      const consumed = await q<{ n: number }>(
        `select count(distinct detail ->> 'eventId')::int as n from baton.history where kind = 'completed' and detail ? 'eventId' and workflow_id = any ($1)`,
        [started],
      );
      assert.equal(consumed[0]!.n, keys.length * perKey);
    } finally {
      await other.close();
    }
  });

  it("publishes inside the caller's transaction: nothing if it rolls back, delivered once it commits", async () => {
    await worker();
    const { id } = await client.start(first, { orderId: 'o-tx' });
    await waitingOn(id, 'o-tx');
    const tx = await db.pool.connect();
    try {
      await tx.query('begin');
      await client.publish('paid', 'o-tx', { n: 1 }, { tx });
      await tx.query('rollback');
      await tx.query('begin');
      await client.publish('paid', 'o-tx', { n: 2 }, { tx });
      await sleep(300);
      assert.equal((await client.get(id))!.status, 'running', 'not before the commit');
      await tx.query('commit');
    } finally {
      tx.release();
    }
    assert.deepEqual(await client.result(id, { timeoutMs: 15_000 }), { n: 2 });
    assert.deepEqual(await buffered('o-tx'), []);
  });

  it('does not deliver an event past its retention, and the reconciler deletes it', async () => {
    const stale = await client.publish('paid', 'o-old', { n: 1 }, { retentionMs: 200 });
    const fresh = await client.publish('paid', 'o-kept', { n: 2 });
    const [row] = await q<{ days: number }>(`select round(extract(epoch from expires_at - created_at) / 86400)::int as days from baton.events where id = $1`, [fresh]);
    assert.equal(row!.days, 7, 'the default retention is 7 days');
    await sleep(300);
    await worker({ reconciler: false });
    const { id } = await client.start(short, { orderId: 'o-old' });
    assert.equal(await client.result(id, { timeoutMs: 15_000 }), null, 'the wait timed out: the expired event was not delivered');
    assert.deepEqual((await buffered('o-old')).map((e) => Number(e.id)), [stale], 'still there until the reconciler runs');
    const tick = await reconcileOnce(db.pool, { workerId: 'test', maxLeaseLosses: 3 });
    assert.ok(tick.pruned >= 1);
    assert.deepEqual(await buffered('o-old'), [], 'expired: deleted');
    assert.equal((await buffered('o-kept')).length, 1, 'an event within its retention is kept');
  });

  it('keeps the wait\'s time-out: it fails the instance, and a later event stays buffered for the next waiter', async () => {
    await worker();
    const { id } = await client.start(strict, { orderId: 'o-late' });
    await assert.rejects(client.result(id, { timeoutMs: 15_000 }), (e: unknown) => e instanceof WorkflowFailedError && /no "paid" event arrived within 800 ms/.test(e.message));
    await client.publish('paid', 'o-late', { n: 1 });
    await sleep(300);
    assert.equal((await buffered('o-late')).length, 1, 'the failed instance consumed nothing');
  });

  it('a cancelled waiter consumes nothing, even one whose claim held the event: the next waiter gets it', async () => {
    await worker();
    const a = await client.start(first, { orderId: 'o-cancel' });
    await waitingOn(a.id, 'o-cancel');
    await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 200 })));
    await client.publish('paid', 'o-cancel', { n: 1 });
    // Claim the woken wait by hand (as a worker that then stalls): the claim holds the event for it.
    const [held] = await q<{ event_id: string; event_key: string }>(
      `select event_id, event_key from baton.claim_tasks('stalled', 10, '{}', $1, 1000) where workflow_id = $2`,
      [[first.hash], a.id],
    );
    assert.ok(held?.event_id, 'the claim handed the wait the event');
    assert.equal(held.event_key, 'o-cancel');
    await client.cancel(a.id);
    const b = await client.start(first, { orderId: 'o-cancel' });
    await worker();
    assert.deepEqual(await client.result(b.id, { timeoutMs: 15_000 }), { n: 1 }, 'the hold lapsed with the cancelled attempt');
    assert.equal((await client.get(a.id))!.status, 'cancelled');
    assert.deepEqual(await buffered('o-cancel'), []);
  });

  it('an event published while a worker computes the key is found by that commit: the wait is made ready, not left waiting', async () => {
    const { id } = await client.start(first, { orderId: 'o-mid' });
    // A worker's claim, by hand: the wait's key is not computed yet, so it gets its instance's input.
    const [c] = await q<{ epoch: string; event_key: string; input: unknown; workflow_version: number; workflow_state: unknown }>(
      `select epoch, event_key, input, workflow_version, workflow_state from baton.claim_tasks('hand', 10, '{}', $1, 60000) where workflow_id = $2`,
      [[first.hash], id],
    );
    assert.deepEqual([c!.event_key, c!.input], ['', { orderId: 'o-mid' }]);
    await client.publish('paid', 'o-mid', { n: 1 }); // nobody waits on o-mid yet: it wakes no one
    const item = { wf: id, key: '0', epoch: Number(c!.epoch), status: 'waiting', paused: false, output: null, error: null, delayMs: null, eventId: null, eventKey: 'o-mid' };
    const instance = { id, parent: null, version: c!.workflow_version, status: 'running', state: c!.workflow_state, bump: 0, done: 0, output: null, error: null, step: null, finished: false, after: false };
    const refused = await q(`select * from baton.commit('hand', $1::jsonb, $2::jsonb, '[]', '[]')`, [JSON.stringify([item]), JSON.stringify([instance])]);
    assert.deepEqual(refused, []);
    const [row] = await q(`select status, event_key from baton.tasks where workflow_id = $1`, [id]);
    assert.deepEqual(row, { status: 'ready', event_key: 'o-mid' });
    await worker({ reconciler: false });
    assert.deepEqual(await client.result(id, { timeoutMs: 15_000 }), { n: 1 });
  });

  it('the reconciler wakes a keyed wait left waiting beside a free published event (its safety net), and no other', async () => {
    await worker({ reconciler: false });
    const a = await client.start(first, { orderId: 'o-net' });
    const b = await client.start(first, { orderId: 'o-net-2' });
    await waitingOn(a.id, 'o-net');
    await waitingOn(b.id, 'o-net-2');
    await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 200 })));
    // An event stored without the publish's wake-up (as if that wake-up were lost).
    await q(`insert into baton.events (name, key, payload, expires_at) values ('paid', 'o-net', '{"n": 3}', now() + interval '1 hour')`);
    const tick = await reconcileOnce(db.pool, { workerId: 'test', maxLeaseLosses: 3 });
    assert.equal(tick.woken, 1);
    const rows = await q(`select workflow_id, status from baton.tasks where workflow_id in ($1, $2) order by status`, [a.id, b.id]);
    assert.deepEqual(rows, [{ workflow_id: a.id, status: 'ready' }, { workflow_id: b.id, status: 'waiting' }]);
    await worker({ reconciler: false });
    assert.deepEqual(await client.result(a.id, { timeoutMs: 15_000 }), { n: 3 });
  });

  it('refuses bad names, keys and retentions with typed errors, and stores nothing', async () => {
    const bad: [string, () => Promise<unknown>, RegExp][] = [
      ['empty name', () => client.publish('', 'k'), /event name must be 1-128 characters/],
      ['long name', () => client.publish('e'.repeat(129), 'k'), /event name must be 1-128 characters/],
      ['empty key', () => client.publish('paid', ''), /event key must be a string of 1-255/],
      ['long key', () => client.publish('paid', 'k'.repeat(256)), /event key must be a string of 1-255/],
      ['control key', () => client.publish('paid', 'a\nb'), /without control characters/],
      ['number key', () => client.publish('paid', 5 as never), /got number/],
      ['zero retention', () => client.publish('paid', 'k', null, { retentionMs: 0 }), /retentionMs must be a whole number/],
      ['fractional retention', () => client.publish('paid', 'k', null, { retentionMs: 1.5 }), /retentionMs must be a whole number/],
      ['huge payload', () => client.publish('paid', 'k', 'y'.repeat(2 * 1024 * 1024)), /over the limit/],
    ];
    for (const [what, call, message] of bad) {
      await assert.rejects(call(), (e: unknown) => e instanceof ValidationError && message.test(e.message), what);
    }
    for (const [name, key, retention] of [[null, 'k', null], ['paid', null, null], ['paid', '', null], ['paid', 'a\tb', null], ['paid', 'k', 0]] as const) {
      await assert.rejects(q(`select baton.publish_event($1, $2, null, $3)`, [name, key, retention]), (e: { code?: string }) => e.code === 'BTV01');
    }
    const r = await runCli(['publish', 'paid', ''], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^baton: event key must be a string of 1-255 characters/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack');
    assert.equal((await q(`select count(*)::int as n from baton.events`))[0]!.n, 0);
  });

  it('fails the instance with a clear error when the key function throws or returns no string; the worker carries on', async () => {
    await worker();
    const t = await client.start(throwing, { orderId: 'x' });
    await assert.rejects(client.result(t.id, { timeoutMs: 15_000 }), (e: unknown) => e instanceof WorkflowFailedError && /waitForEvent "paid" at step "0": its key function threw: no order here/.test(e.message));
    const b = await client.start(badKey, { orderId: 42 });
    await assert.rejects(client.result(b.id, { timeoutMs: 15_000 }), (e: unknown) => e instanceof WorkflowFailedError && /its key function must return a string of 1-255 characters .*got number/.test(e.message));
    const ok = await client.start(first, { orderId: 'o-after' });
    await client.publish('paid', 'o-after', 'fine');
    assert.equal(await client.result(ok.id, { timeoutMs: 15_000 }), 'fine');
  });

  it('a retry of an instance whose key function failed computes the key again', async () => {
    await worker();
    const { id } = await client.start(fixable, { orderId: 'o-fix' });
    await assert.rejects(client.result(id, { timeoutMs: 15_000 }), (e: unknown) => e instanceof WorkflowFailedError && /key bug/.test(e.message));
    keyBroken.now = false;
    await client.retry(id);
    await waitingOn(id, 'o-fix');
    await client.publish('paid', 'o-fix', 'fixed');
    assert.equal(await client.result(id, { timeoutMs: 15_000 }), 'fixed');
  });

  it('works through the SQL API and the CLI', async () => {
    await worker();
    const [{ id }] = await q<{ id: string }>(`select workflow_id as id from baton.start_workflow('keyed-first', '{"orderId": "o-sql"}')`);
    await waitingOn(id, 'o-sql');
    await q(`select baton.publish_event('paid', 'o-sql', '{"n": 7}')`);
    assert.deepEqual(await client.result(id, { timeoutMs: 15_000 }), { n: 7 });

    const c = await client.start(paid, { orderId: 'o-cli' });
    const r = await runCli(['publish', 'paid', 'o-cli', '{"n": 8}'], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^published "paid" with key o-cli \(event \d+\)/);
    assert.deepEqual(await client.result(c.id, { timeoutMs: 15_000 }), { n: 8 });
    const j = await runCli(['publish', 'paid', 'o-none', '--retention-ms', '60000', '--json'], { env: { DATABASE_URL: db.url } });
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual({ ...JSON.parse(j.stdout), eventId: 0 }, { event: 'paid', key: 'o-none', eventId: 0 });
    const [kept] = await q<{ s: number }>(`select round(extract(epoch from expires_at - created_at))::int as s from baton.events where key = 'o-none'`);
    assert.equal(kept!.s, 60);
  });

  it('a paused waiter is not woken; on resume it takes the event published meanwhile', async () => {
    await worker({ reconciler: false }); // resume itself wakes it, not the reconciler's safety net
    const { id } = await client.start(first, { orderId: 'o-pause' });
    await waitingOn(id, 'o-pause');
    await client.pause(id);
    await client.publish('paid', 'o-pause', { n: 5 });
    await sleep(400);
    assert.equal((await buffered('o-pause')).length, 1, 'paused: not taken');
    await client.resume(id);
    assert.deepEqual(await client.result(id, { timeoutMs: 15_000 }), { n: 5 });
  });

  it('baton check reports an event consumed twice, or still buffered after it was consumed', async () => {
    await client.start(first, { orderId: 'chk' }, { id: 'chk-a' });
    await client.start(first, { orderId: 'chk' }, { id: 'chk-b' });
    const kept = await client.publish('paid', 'chk-kept', null);
    // Two waits of two instances completed with one event; a third completed with an event that is still buffered.
    await q(`update baton.workflows set version = 2 where id in ('chk-a', 'chk-b', 'chk-c')`);
    await q(`insert into baton.history (workflow_id, version, kind, detail)
             values ('chk-a', 2, 'completed', '{"key": "0", "eventId": 99999}'), ('chk-b', 2, 'completed', '{"key": "0", "eventId": 99999}'),
                    ('chk-c', 1, 'completed', jsonb_build_object('key', '0', 'eventId', $1::bigint))`, [kept]);
    const found = (await checkInvariants(db.pool)).violations.filter((v) => v.invariant === 'event-consumed-twice');
    assert.deepEqual(
      found.map((v) => [v.workflowId, v.detail]),
      [
        ['chk-a', 'event 99999 consumed by 2 waits'],
        ['chk-c', `event ${kept} is still buffered after this step consumed it`],
      ],
    );
    await q(`delete from baton.history where workflow_id = 'chk-c' or (workflow_id in ('chk-a', 'chk-b') and version > 1)`);
    await q(`update baton.workflows set version = 1 where id in ('chk-a', 'chk-b')`);
  });
});
