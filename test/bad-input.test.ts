/**
 * Bad input that the other files do not cover: handlers that misbehave,
 * wrong types, negative durations, an unreachable or too new database, SQL
 * callers that pass nonsense. Each gets a typed error or a one-line message,
 * leaves nothing half-written, and never crashes the running worker (it
 * still runs ordinary work at the end of every test).
 */
import assert from 'node:assert/strict';
import {
  createClient,
  DatabaseUnavailableError,
  defineTask,
  defineWorkflow,
  SchemaVersionError,
  startWorker,
  ValidationError,
  type Client,
  type Task,
  type Worker,
} from '../src/index.ts';
import { createTestDatabase, useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { chain10, closeMarkPools, inc } from './support/workflows.ts';

const throwsString = defineTask('throws-string', async () => {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- what this test is about
  throw 'a bare string';
}, { retry: { maxAttempts: 1 } });
const throwsUndefined = defineTask('throws-undefined', async () => {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- what this test is about
  throw undefined;
}, { retry: { maxAttempts: 1 } });
const returnsCircular = defineTask('returns-circular', async () => {
  const o: Record<string, unknown> = {};
  o.o = o;
  return o;
});
const returnsFunction = defineTask('returns-function', async () => ({ f: () => 1 }));
const returnsHuge = defineTask('returns-huge', async () => 'x'.repeat(200_000));
const expectsObject = defineTask('expects-object', async (input: { n: number }) => input.n.toFixed(1), { retry: { maxAttempts: 2, delayMs: 10 } });
const syncThrow = defineTask('sync-throw', (() => {
  throw new TypeError('not even async');
}) as never, { retry: { maxAttempts: 1 } });

describe('bad input everywhere (the worker keeps running)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker;

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    client = await fixtureClient(db.url);
  });
  // A worker per test: its own timers come and go, so it must be gone before the leak check.
  beforeEach(async () => {
    worker = await inProcessWorker(db.url, {
      tasks: [throwsString, throwsUndefined, returnsCircular, returnsFunction, returnsHuge, expectsObject, syncThrow, inc],
      workflows: [chain10],
      config: { maxPayloadBytes: 100_000 },
    });
  });
  afterEach(async () => {
    // The worker is still alive and runs ordinary work.
    assert.equal(await (await client.start(chain10, 0)).result({ timeoutMs: 10_000 }), 10);
    await worker.stop();
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- deliberately untyped: the input is wrong on purpose
  const failsWith = async (task: Task<any, any>, input: unknown, message: RegExp) => {
    const job = await client.enqueue(task, input);
    await assert.rejects(job.result({ timeoutMs: 10_000 }), message);
  };

  it('a handler that throws a string, or undefined, fails its task with a readable error', async () => {
    await failsWith(throwsString, null, /a bare string/);
    await failsWith(throwsUndefined, null, /non-error thrown: undefined|undefined/);
  });

  it('a handler that throws synchronously fails its task', async () => {
    await failsWith(syncThrow, null, /not even async/);
  });

  it('a handler whose output cannot be stored (circular, function, over the size limit) fails at once', async () => {
    await failsWith(returnsCircular, null, /circular reference/);
    await failsWith(returnsFunction, null, /is a function/);
    await failsWith(returnsHuge, null, /over the limit of 100000/);
  });

  it('input of the wrong shape from a SQL caller fails the task after its retries, not the worker', async () => {
    const { rows } = await db.pool.query(`select workflow_id from baton.enqueue('expects-object', '"just a string"'::jsonb)`);
    await assert.rejects(client.result(rows[0].workflow_id, { timeoutMs: 10_000 }), /Cannot read properties of undefined/);
    assert.equal((await client.get(rows[0].workflow_id))!.tasks[0]!.attempts, 2);
  });

  it('wrong types and negative durations in the API are refused before anything is written', async () => {
    const before = (await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n;
    const refused: [() => unknown, RegExp][] = [
      [() => client.start(chain10, 0, { priority: '3' as never }), /priority must be a whole number/],
      [() => client.start(chain10, 0, { tags: 'gpu' as never }), /tags must be an array/],
      [() => client.start(chain10, 0, { id: 42 as never }), /id must be a string/],
      [() => client.start(chain10, 0, { runAt: new Date('nonsense') }), /runAt must be a valid Date/],
      [() => client.start(chain10, 0, null as never), /options must be an object/],
      [() => client.result('x', { timeoutMs: -1 }), /timeoutMs must be a non-negative number/],
      [() => client.sendEvent('x', 'go', 'y'.repeat(2 * 1024 * 1024)), /over the limit/],
      [() => defineWorkflow('neg').sleep(-5), /whole, non-negative number of milliseconds/],
      [() => defineTask('neg', async () => 1, { timeoutMs: -1 }), /whole, non-negative number of milliseconds/],
      [() => defineTask('bad name!', async () => 1), /task name must be/],
      [() => defineWorkflow('w').waitForEvent('e', { timeoutMs: '-3s' }), /duration like/],
    ];
    for (const [i, [call, message]] of refused.entries()) {
      await assert.rejects(async () => call(), (e: unknown) => e instanceof ValidationError && message.test((e as Error).message), `case ${i}`);
    }
    assert.equal((await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n, before);
  });

  it('an input over the limit from a SQL caller is refused by the SQL API', async () => {
    const big = JSON.stringify('z'.repeat(2 * 1024 * 1024));
    await assert.rejects(db.pool.query(`select baton.enqueue('inc', $1::jsonb)`, [big]), (e: { code: string; message: string }) => e.code === 'BTV01' && /over the limit/.test(e.message));
  });

  it('a database URL that does not answer: a typed error at once', async () => {
    const t0 = Date.now();
    await assert.rejects(createClient({ connectionString: 'postgres://nobody@127.0.0.1:1/none' }), DatabaseUnavailableError);
    await assert.rejects(startWorker({ tasks: [inc], connectionString: 'postgres://nobody@127.0.0.1:1/none' }), DatabaseUnavailableError);
    assert.ok(Date.now() - t0 < 5_000, 'no long retry loop on a dead URL');
  });

  it('a database whose schema is newer than this Baton: client and worker refuse it', async () => {
    const newer = await createTestDatabase();
    try {
      const pg = (await import('pg')).default;
      const c = new pg.Client({ connectionString: newer.url });
      await c.connect();
      await c.query(`insert into baton.__migrations (hash, created_at) values ('from-the-future', $1)`, [Date.now() + 1e9]);
      await c.end();
      await assert.rejects(createClient({ connectionString: newer.url }), SchemaVersionError);
      await assert.rejects(startWorker({ tasks: [inc], connectionString: newer.url }), SchemaVersionError);
    } finally {
      await newer.drop();
    }
  });
});
