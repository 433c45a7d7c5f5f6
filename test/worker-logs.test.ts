/**
 * What the worker's log says about failures: a warning per failed attempt
 * (message, attempt, retry delay), and an error when an instance fails. Every
 * line about a task, the worker's and the handler's own (ctx.log), says which
 * instance, step, attempt and worker; secrets in logged objects are redacted.
 */
import assert from 'node:assert/strict';
import { defineTask, type Client, type Worker } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { closeMarkPools, flaky } from './support/workflows.ts';

type Line = {
  level: number | string;
  msg: string;
  workflowId?: string;
  taskKey?: string;
  attempt?: number;
  workerId?: string;
  task?: string;
  retryInMs?: number;
  error?: string;
  [field: string]: unknown;
};

const SECRET = 'hunter2-secret';
/** Logs through ctx.log (with secrets in what it logs), and fails its first attempt. */
const chatty = defineTask(
  'chatty',
  async (_input: null, ctx) => {
    ctx.log.warn(
      { databaseUrl: `postgres://app:${SECRET}@db:5432/app`, request: { headers: { authorization: `Bearer ${SECRET}` }, apiToken: SECRET }, seen: `postgres://app:${SECRET}@db/app` },
      'calling the payment service',
    );
    if (ctx.attempt === 1) throw new Error(`could not reach postgres://app:${SECRET}@db/app`);
    return 'ok';
  },
  { retry: { maxAttempts: 2, backoff: 'fixed', delayMs: 10, jitter: 0 } },
);

describe('worker log on failures', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: (Worker & { logLines: string[] }) | undefined;

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

  const linesFor = (id: string): Line[] =>
    worker!.logLines.map((l) => JSON.parse(l) as Line).filter((l) => l.workflowId === id);

  it('warns at each failed attempt with its message and retry delay, and errs once when the instance fails', async () => {
    worker = await inProcessWorker(db.url, { tasks: [flaky], workflows: [] });
    const job = await client.enqueue(flaky, { succeedOn: 99 });
    await assert.rejects(job.result({ timeoutMs: 20_000 }), /attempt 3 failed/);
    await worker.stop();
    const lines = linesFor(job.id);
    const retries = lines.filter((l) => l.msg.includes('retrying in'));
    assert.deepEqual(retries.map((l) => [l.attempt, l.retryInMs, l.error]), [
      [1, 50, 'attempt 1 failed'],
      [2, 50, 'attempt 2 failed'],
    ]);
    const last = lines.filter((l) => l.msg.includes('no retries left'));
    assert.deepEqual(last.map((l) => [l.attempt, l.error]), [[3, 'attempt 3 failed']]);
    const failed = lines.filter((l) => l.msg.startsWith(`workflow ${job.id} failed`));
    assert.deepEqual(failed.map((l) => l.msg), [`workflow ${job.id} failed at step 0 (flaky)`], 'one error line for the instance');
    assert.ok([...retries, ...last].every((l) => l.level === 'warn' || l.level === 40), 'attempts at warn');
    assert.ok(failed.every((l) => l.level === 'error' || l.level === 50), 'the instance at error');
  });

  it('says nothing at warn or above for an attempt that succeeds after a retry, but the failed one', async () => {
    worker = await inProcessWorker(db.url, { tasks: [flaky], workflows: [] });
    const job = await client.enqueue(flaky, { succeedOn: 2 });
    assert.deepEqual(await job.result({ timeoutMs: 20_000 }), { attempt: 2 });
    await worker.stop();
    const lines = linesFor(job.id);
    assert.deepEqual(lines.map((l) => l.msg), ['task "flaky" failed (attempt 1); retrying in 50 ms']);
  });

  it('every line about a task, the worker\'s and ctx.log\'s, carries workflowId, taskKey, attempt and workerId; secrets are redacted', async () => {
    worker = await inProcessWorker(db.url, { tasks: [chatty], workflows: [] });
    const job = await client.enqueue(chatty, null);
    assert.equal(await job.result({ timeoutMs: 20_000 }), 'ok');
    await worker.stop();
    const raw = worker.logLines.filter((l) => l.includes(job.id));
    const lines = linesFor(job.id);
    assert.deepEqual(lines.map((l) => [l.msg, l.attempt]), [
      ['calling the payment service', 1],
      ['task "chatty" failed (attempt 1); retrying in 10 ms', 1],
      ['calling the payment service', 2],
    ]);
    for (const l of lines) {
      assert.deepEqual([l.workflowId, l.taskKey, l.workerId, l.task], [job.id, '0', worker.id, 'chatty'], l.msg);
    }
    const own = lines.find((l) => l.msg === 'calling the payment service')!;
    assert.equal(own.databaseUrl, '[redacted]');
    assert.deepEqual(own.request, { headers: { authorization: '[redacted]' }, apiToken: '[redacted]' });
    assert.equal(own.seen, 'postgres://app:[redacted]@db/app', 'a password inside a URL in any string');
    assert.equal(lines[1]!.error, 'could not reach postgres://app:[redacted]@db/app');
    assert.ok(raw.length === 3 && raw.every((l) => !l.includes(SECRET)), 'the secret is in no line');
  });
});
