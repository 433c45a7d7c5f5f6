/**
 * Input checks (`input` on defineTask and defineWorkflow): the client refuses a
 * bad input before anything is written and stores what the check returns; the
 * worker checks task input from any source and fails a bad one at once.
 */
import assert from 'node:assert/strict';
import { defineTask, defineWorkflow, ValidationError, type Client, type Worker } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { closeMarkPools } from './support/workflows.ts';

/** A hand-written check, as a zod schema's parse would be: returns the (normalised) input or throws. */
function email(value: unknown): { to: string } {
  const to = (value as { to?: unknown } | null)?.to;
  if (typeof to !== 'string' || !to.includes('@')) throw new TypeError(`"to" must be an e-mail address (got ${JSON.stringify(to)})`);
  return { to: to.trim().toLowerCase() };
}

const send = defineTask('input-check-send', async (input: { to: string }) => `sent to ${input.to}`, {
  input: email,
  retry: { maxAttempts: 5, delayMs: 10 },
});
const welcome = defineWorkflow('input-check-welcome', { input: email }).then(send).build();

describe('input checks', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker | undefined;
  const count = async () => Number((await db.pool.query<{ n: string }>('select count(*) as n from baton.workflows')).rows[0]!.n);

  before(async () => {
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  it('refuses a bad input in enqueue, enqueueMany, start and startMany, writing nothing', async () => {
    const before = await count();
    await assert.rejects(client.enqueue(send, { to: 'nobody' }), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.match(e.message, /^task "input-check-send": the input is not valid: "to" must be an e-mail address \(got "nobody"\)$/);
      return true;
    });
    await assert.rejects(client.enqueueMany(send, [{ to: 'a@x.io' }, { to: 'b' }]), /task "input-check-send" inputs\[1\]: the input is not valid/);
    await assert.rejects(client.start(welcome, { to: 7 } as never), /workflow "input-check-welcome": the input is not valid/);
    await assert.rejects(client.startMany(welcome, [{ to: '' }]), /workflow "input-check-welcome" inputs\[0\]: the input is not valid/);
    assert.equal(await count(), before, 'nothing was written');
  });

  it('stores and runs with what the check returns', async () => {
    worker = await inProcessWorker(db.url, { tasks: [send], workflows: [welcome] });
    const job = await client.enqueue(send, { to: '  Ada@Example.COM ' });
    assert.equal(await job.result({ timeoutMs: 10_000 }), 'sent to ada@example.com');
    const stored = await db.pool.query<{ input: unknown }>('select input from baton.workflows where id = $1', [job.id]);
    assert.deepEqual(stored.rows[0]!.input, { to: 'ada@example.com' });
    const [id] = await client.startMany(welcome, [{ to: 'Grace@Example.com' }]);
    assert.equal(await client.result(id!, { timeoutMs: 10_000 }), 'sent to grace@example.com');
  });

  it('fails a bad input that came through SQL at its first attempt, without retries', async () => {
    worker = await inProcessWorker(db.url, { tasks: [send], workflows: [] });
    await client.enqueue(send, { to: 'ok@x.io' }); // registers the definition for SQL callers
    const { rows } = await db.pool.query<{ workflow_id: string }>(`select workflow_id from baton.enqueue('input-check-send', '{"to": 42}'::jsonb)`);
    const id = rows[0]!.workflow_id;
    await assert.rejects(client.result(id, { timeoutMs: 10_000 }), /the input is not valid: "to" must be an e-mail address \(got 42\)/);
    const view = await client.get(id);
    assert.equal(view!.tasks[0]!.attempts, 1, 'a bad input is not retried');
  });

  it('refuses a check that is not a function when the task or workflow is defined', () => {
    assert.throws(() => defineTask('bad-check', async () => 1, { input: 'yes' as never }), /input must be a function/);
    assert.throws(() => defineWorkflow('bad-check', { input: {} as never }), /input must be a function/);
  });
});
