/**
 * client.taskResult / baton.task_result / `baton status <id> --task <key>`: one task's status and
 * output by key, while its instance still runs and after it ended, including a one-task job
 * whose output is stored once, on its instance.
 */
import assert from 'node:assert/strict';
import { defineTask, defineWorkflow, taskWorkflow, ValidationError, type Client, type Worker } from '../src/index.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient, register, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';

const released = new Set<string>();
const quick = defineTask('tr-quick', async (n: number) => ({ n: n + 1 }));
const held = defineTask('tr-held', async (n: number, ctx) => {
  await until(async () => released.has(ctx.workflowId) || ctx.signal.aborted, { timeoutMs: 30_000 });
  return n * 10;
});
const boom = defineTask('tr-boom', async () => {
  throw new Error('boom');
}, { retry: { maxAttempts: 2, backoff: 'fixed', delayMs: 1 } });
const pair = defineWorkflow<number>('tr-pair').parallel([quick, held]).build();
const failing = defineWorkflow<number>('tr-failing').then(quick).then(boom).build();

describe('task results by key', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker;

  before(async () => {
    client = await fixtureClient(db.url);
  });
  beforeEach(async () => {
    worker = await inProcessWorker(db.url, { workflows: [pair, failing], tasks: [quick] });
  });
  afterEach(async () => {
    await worker.stop({ graceMs: 200 });
  });
  after(async () => {
    await client.close();
  });

  it("returns a finished branch's output while the other branch still runs, and both after the end", async () => {
    const { id } = await client.start(pair, 4, { id: 'tr-1' });
    const first = await until(async () => {
      const r = await client.taskResult(id, '0/b0');
      return r?.status === 'completed' ? r : null;
    });
    assert.deepEqual([first.output, first.attempts, first.error], [{ n: 5 }, 1, null]);
    assert.ok(first.finishedAt instanceof Date);
    const running = await until(async () => {
      const r = await client.taskResult(id, '0/b1');
      return r?.status === 'running' ? r : null;
    });
    assert.equal(running.output, null, 'no output before it completes');
    assert.equal((await client.get(id))!.status, 'running');
    released.add(id);
    await client.result(id, { timeoutMs: 20_000 });
    assert.equal((await client.taskResult(id, '0/b1'))!.output, 40);
    assert.deepEqual((await client.taskResult(id, '0/b0'))!.output, { n: 5 }, 'kept after the instance finished');
  });

  it("reads a one-task job's output, which is stored once on its instance", async () => {
    const { id } = await client.enqueue(quick, 1, { id: 'tr-job' });
    await client.result(id, { timeoutMs: 20_000 });
    const row = (await db.pool.query(`select output, finished_by from baton.tasks where workflow_id = $1`, [id])).rows[0];
    assert.equal(row.output, null, 'the task row holds no copy of the output');
    assert.ok(row.finished_by);
    const r = await client.taskResult(id, '0');
    assert.deepEqual([r!.status, r!.output], ['completed', { n: 2 }]);
    const sql = (await db.pool.query(`select status, output from baton.task_result($1, '0')`, [id])).rows;
    assert.deepEqual(sql, [{ status: 'completed', output: { n: 2 } }], 'the SQL API reads it the same way');
  });

  it("a failed task's error and attempts; null for an unknown key or instance; bad input is a ValidationError", async () => {
    const { id } = await client.start(failing, 1, { id: 'tr-fail' });
    await client.result(id, { timeoutMs: 20_000 }).catch(() => undefined);
    const r = await client.taskResult(id, '1');
    assert.deepEqual([r!.status, r!.output, r!.attempts, r!.error?.message], ['failed', null, 2, 'boom']);
    assert.equal(await client.taskResult(id, '9'), null);
    assert.equal(await client.taskResult('tr-nobody', '0'), null);
    await assert.rejects(client.taskResult(id, ''), ValidationError);
    await assert.rejects(client.taskResult(id, 'a\u0000b'), ValidationError);
    await assert.rejects(client.taskResult(42 as unknown as string, '0'), ValidationError);
  });

  it('baton status <id> --task <key> prints the output, a status line, or a one-line error', async () => {
    await register(db.pool, taskWorkflow(quick));
    const cli = (...args: string[]) => runCli(args, { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });
    const ok = await cli('status', 'tr-1', '--task', '0/b1');
    assert.deepEqual([ok.code, JSON.parse(ok.stdout)], [0, 40]);
    const failed = await cli('status', 'tr-fail', '--task', '1');
    assert.equal(failed.code, 0);
    assert.match(failed.stdout, /task 1 of tr-fail is failed \(attempts: 2\): boom/);
    const asJson = await cli('status', 'tr-job', '--task', '0', '--json');
    assert.deepEqual(JSON.parse(asJson.stdout).output, { n: 2 });
    const missing = await cli('status', 'tr-1', '--task', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr.trim(), /^baton: no task "nope" in workflow instance "tr-1"$/);
  });
});
