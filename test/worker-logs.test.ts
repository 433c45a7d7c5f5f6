/**
 * What the worker's log says about failures: a warning per failed attempt
 * (message, attempt, retry delay), and an error when an instance fails.
 */
import assert from 'node:assert/strict';
import type { Client, Worker } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { closeMarkPools, flaky } from './support/workflows.ts';

type Line = { level: number | string; msg: string; workflowId?: string; attempt?: number; retryInMs?: number; error?: string };

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
});
