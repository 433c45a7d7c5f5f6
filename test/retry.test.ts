import assert from 'node:assert/strict';
import { defineTask, defineWorkflow, InvalidStateError, NotFoundError, ValidationError, WorkflowFailedError, type Client, type Worker } from '../src/index.ts';
import { runCli, type CliResult } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, register, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { sleepFor } from './support/workflows.ts';

/*
 * The gate fails (retryably, two attempts) while `gateOpen` is false; every
 * handler records what it saw, so a test can tell which steps ran again, with
 * which input and attempt number.
 */
let gateOpen = false;
const seen: { task: string; wf: string; input: unknown; attempt: number }[] = [];
const ran = (task: string, wf: string) => seen.filter((s) => s.task === task && s.wf === wf);

const prep = defineTask('retry-prep', async (n: number, ctx) => {
  seen.push({ task: 'prep', wf: ctx.workflowId, input: n, attempt: ctx.attempt });
  return n + 1;
});
const gate = defineTask(
  'retry-gate',
  async (n: number, ctx) => {
    seen.push({ task: 'gate', wf: ctx.workflowId, input: n, attempt: ctx.attempt });
    await sleepFor(100);
    if (!gateOpen) throw new Error('the gate is closed');
    return n * 10;
  },
  { retry: { maxAttempts: 2, backoff: 'fixed', delayMs: 10, jitter: 0 } },
);
const add1 = defineTask('retry-add1', async (n: number) => n + 1);
const pair = defineTask('retry-pair', async (parts: [number, number]) => parts);

const seqWf = defineWorkflow<number>('retry-seq').then(prep).then(gate).then(add1).build();
const firstWf = defineWorkflow<number>('retry-first').then(gate).then(add1).build();
const forkWf = defineWorkflow<number>('retry-fork').parallel([prep, gate]).then(pair).build();
const childWf = defineWorkflow<number>('retry-child').then(gate).build();
const parentWf = defineWorkflow<number>('retry-parent').then(prep).child(childWf).then(add1).build();
const eventWf = defineWorkflow<number>('retry-event').then(prep).waitForEvent<number>('go', { timeoutMs: 60_000 }).build();
const loopWf = defineWorkflow<number>('retry-loop').loop((f) => f.then(add1), { until: () => false, max: 2 }).build();
const workflows = [seqWf, firstWf, forkWf, childWf, parentWf, eventWf, loopWf];

/** One line on stderr, no stack trace. */
function oneLine(r: CliResult): string {
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  return lines[0]!;
}

describe('retry a failed or cancelled instance', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker | undefined;
  const cli = (...args: string[]) => runCli(args, { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });
  const run = async () => (worker ??= await inProcessWorker(db.url, { workflows, tasks: [] }));
  const failed = (id: string) => assert.rejects(client.result(id, { timeoutMs: 20_000 }), WorkflowFailedError);
  const snapshot = async (id: string) => {
    const w = (await db.pool.query(`select status, version, state, error from baton.workflows where id = $1`, [id])).rows[0];
    const h = (await db.pool.query(`select count(*)::int as n from baton.history where workflow_id = $1`, [id])).rows[0].n;
    const t = (await db.pool.query(`select task_key, status, attempts from baton.tasks where workflow_id = $1 order by task_key`, [id])).rows;
    return { ...w, history: h, tasks: t };
  };

  before(async () => {
    client = await fixtureClient(db.url);
    await register(db.pool, ...workflows);
  });
  beforeEach(() => {
    gateOpen = false;
  });
  afterEach(async () => {
    await worker?.stop({ graceMs: 500 });
    worker = undefined;
  });
  after(async () => {
    await client.close();
  });

  it('runs again from the failed step: completed steps keep their outputs, attempts start fresh, history records it', async () => {
    await run();
    const { id } = await client.start(seqWf, 5, { id: 'seq-1' });
    await failed(id);
    assert.deepEqual(ran('gate', id).map((s) => s.attempt), [1, 2], 'the gate used up its attempts');
    const before = await snapshot(id);

    gateOpen = true;
    const retried = await client.retry(id);
    assert.deepEqual([retried.was, retried.steps, retried.children], ['failed', ['1'], []]);
    assert.equal(await retried.result({ timeoutMs: 20_000 }), 61);

    assert.equal(ran('prep', id).length, 1, 'the completed first step did not run again');
    assert.deepEqual(ran('gate', id).slice(2).map((s) => [s.attempt, s.input]), [[1, 6]], 'fresh attempts, the failed step kept its input');
    const history = await client.history(id);
    const mark = history.find((h) => h.kind === 'retried')!;
    assert.equal(mark.version, before.version + 1);
    assert.deepEqual([mark.detail.status, mark.detail.was, mark.detail.steps], ['running', 'failed', ['1']]);
    assert.match(String((mark.detail.error as { message: string }).message), /the gate is closed/);
    assert.equal(history.at(-1)!.detail.status, 'completed');
    const view = (await client.get(id))!;
    assert.equal(view.error, null);
    assert.equal(view.completedTaskCount, 3);
    await assertInvariants(db.pool);
  });

  it("a retried first step gets the instance's input (its task row stores none)", async () => {
    await run();
    const { id } = await client.start(firstWf, 7, { id: 'first-1' });
    await failed(id);
    const row = (await db.pool.query(`select input, status from baton.tasks where workflow_id = $1 and task_key = '0'`, [id])).rows[0];
    assert.deepEqual(row, { input: null, status: 'failed' });
    gateOpen = true;
    assert.equal(await (await client.retry(id)).result({ timeoutMs: 20_000 }), 71);
    assert.deepEqual(ran('gate', id).at(-1), { task: 'gate', wf: id, input: 7, attempt: 1 });
    const after = (await db.pool.query(`select input from baton.tasks where workflow_id = $1 and task_key = '0'`, [id])).rows[0];
    assert.equal(after.input, null, 'still stored once, on the instance');
  });

  it('a parallel step: only the failed branch runs again and the join gets both outputs', async () => {
    await run();
    const { id } = await client.start(forkWf, 3, { id: 'fork-1' });
    await failed(id);
    gateOpen = true;
    const retried = await client.retry(id);
    assert.deepEqual(retried.steps, ['0/b1']);
    assert.deepEqual(await retried.result({ timeoutMs: 20_000 }), [4, 30]);
    assert.equal(ran('prep', id).length, 1);
    await assertInvariants(db.pool);
  });

  it('a failed child fails its parent; retrying the parent retries the child too', async () => {
    await run();
    const { id } = await client.start(parentWf, 1, { id: 'par-1' });
    await failed(id);
    assert.equal((await client.get('par-1/1'))!.status, 'failed');
    await assert.rejects(client.retry('par-1/1'), (e: unknown) => e instanceof InvalidStateError && /is the child of "par-1" \(step 1\): retry "par-1"/.test(e.message));
    assert.equal((await client.get('par-1/1'))!.status, 'failed', 'nothing written');

    gateOpen = true;
    const retried = await client.retry(id);
    assert.deepEqual([retried.steps, retried.children], [['1'], ['par-1/1']]);
    assert.equal(await retried.result({ timeoutMs: 20_000 }), 21);
    assert.equal(ran('prep', id).length, 1);
    const childMark = (await client.history('par-1/1')).find((h) => h.kind === 'retried')!;
    assert.deepEqual([childMark.detail.via, childMark.detail.steps], ['par-1', ['0']]);
    await assertInvariants(db.pool);
  });

  it("a cancelled instance's cancelled steps become runnable again: a task, an event wait with a fresh timeout", async () => {
    const a = await client.start(eventWf, 1, { id: 'can-1' });
    await client.cancel(a.id, { reason: 'oops' });
    let s = await snapshot(a.id);
    assert.deepEqual(s.tasks.map((t: { status: string }) => t.status), ['cancelled']);
    const retried = await client.retry(a.id);
    assert.equal(retried.was, 'cancelled');
    s = await snapshot(a.id);
    assert.equal(s.status, 'running');
    assert.deepEqual(s.tasks.map((t: { status: string }) => t.status), ['ready']);
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.signals where workflow_id = $1`, [a.id])).rows[0].n, 0, 'the cancel request is gone');

    await run();
    await until(async () => (await snapshot(a.id)).tasks.find((t: { task_key: string; status: string }) => t.task_key === '1' && t.status === 'waiting'), { what: 'the event wait' });
    await client.cancel(a.id);
    const wait = (await db.pool.query(`select status from baton.tasks where workflow_id = $1 and task_key = '1'`, [a.id])).rows[0];
    assert.equal(wait.status, 'cancelled');
    await client.retry(a.id);
    const reset = (await db.pool.query(
      `select status, extract(epoch from available_at - now()) as left from baton.tasks where workflow_id = $1 and task_key = '1'`, [a.id],
    )).rows[0];
    assert.equal(reset.status, 'waiting');
    assert.ok(Number(reset.left) > 55 && Number(reset.left) <= 60, `a fresh 60 s timeout (${reset.left} s left)`);
    await client.sendEvent(a.id, 'go', 42);
    assert.equal(await client.result(a.id, { timeoutMs: 20_000 }), 42);
    assert.equal(ran('prep', a.id).length, 1);
    assert.equal((await client.history(a.id)).filter((h) => h.kind === 'retried').length, 2);
    await assertInvariants(db.pool);
  });

  it('refuses a running, completed, unknown or logic-failed instance with a typed error, writing nothing', async () => {
    const { id } = await client.start(seqWf, 1, { id: 'live-1' });
    const before = await snapshot(id);
    await assert.rejects(client.retry(id), (e: unknown) => e instanceof InvalidStateError && e.code === 'INVALID_STATE' && e.state === 'running');
    assert.deepEqual(await snapshot(id), before);
    await assert.rejects(client.retry('no-such'), (e: unknown) => e instanceof NotFoundError && e.code === 'NOT_FOUND');
    await assert.rejects(client.retry(''), ValidationError);

    await run();
    gateOpen = true;
    assert.equal(await client.result(id, { timeoutMs: 20_000 }), 21);
    const done = await snapshot(id);
    await assert.rejects(client.retry(id), (e: unknown) => e instanceof InvalidStateError && e.state === 'completed');
    assert.deepEqual(await snapshot(id), done);

    // A loop that reached its limit failed in the workflow itself: no step to run again.
    const loop = await client.start(loopWf, 0, { id: 'loop-1' });
    await failed(loop.id);
    const failedLoop = await snapshot(loop.id);
    await assert.rejects(client.retry(loop.id), (e: unknown) => e instanceof InvalidStateError && /failed in the workflow itself.*no step to run again/.test(e.message));
    assert.deepEqual(await snapshot(loop.id), failedLoop);
    // The SQL API says the same.
    await assert.rejects(db.pool.query(`select * from baton.retry_workflow('live-1')`), (e: { code?: string }) => e.code === 'BTS01');
  });

  it('retryMany retries the matching top-level instances, skips those it cannot, and SQL does the same', async () => {
    await run();
    for (const n of [1, 2, 3]) await client.start(firstWf, n, { id: `bulk-${n}` });
    await client.start(loopWf, 0, { id: 'bulk-loop' });
    for (const id of ['bulk-1', 'bulk-2', 'bulk-3', 'bulk-loop']) await failed(id);
    await worker!.stop({ graceMs: 500 });
    worker = undefined;

    assert.deepEqual(await client.retryMany({ status: 'failed', name: 'retry-first', since: new Date(Date.now() + 60_000) }), { retried: [], skipped: [] });
    await assert.rejects(client.retryMany({ status: 'running' as never }), ValidationError);
    const result = await client.retryMany({ status: ['failed'], name: 'retry-first' });
    assert.deepEqual(result.retried.filter((id) => id.startsWith('bulk-')), ['bulk-1', 'bulk-2', 'bulk-3']);
    for (const id of ['bulk-1', 'bulk-2', 'bulk-3']) assert.equal((await client.get(id))!.status, 'running');

    const loops = (await db.pool.query(`select * from baton.retry_many(array['failed'], 'retry-loop')`)).rows.filter((r) => r.workflow_id.startsWith('bulk-'));
    assert.deepEqual(loops.map((r) => [r.workflow_id, r.retried]), [['bulk-loop', false]]);
    assert.match(loops[0].reason, /failed in the workflow itself/);
    await assert.rejects(db.pool.query(`select * from baton.retry_many(array['completed'])`), /statuses must be failed and\/or cancelled/);

    gateOpen = true;
    await run();
    for (const n of [1, 2, 3]) assert.equal(await client.result(`bulk-${n}`, { timeoutMs: 20_000 }), n * 10 + 1);
  });

  it('baton retry: one id, or many by --status and --name; a wrong state is one line and exit 1', async () => {
    await run();
    await client.start(firstWf, 4, { id: 'cli-r1' });
    await client.start(firstWf, 5, { id: 'cli-r2' });
    await failed('cli-r1');
    await failed('cli-r2');
    await worker!.stop({ graceMs: 500 });
    worker = undefined;

    const one = await cli('retry', 'cli-r1');
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout.trim(), 'retried cli-r1 (was failed): steps 0');
    assert.match((await cli('history', 'cli-r1')).stdout, /\s+retried\s+running\s+error: the gate is closed; runs again: 0\n/);
    const again = await cli('retry', 'cli-r1');
    assert.equal(again.code, 1);
    assert.match(oneLine(again), /^baton: workflow instance "cli-r1" is running: only a failed or cancelled instance can be retried$/);
    const missing = await cli('retry', 'cli-none', '--json');
    assert.equal(missing.code, 1);
    assert.equal(JSON.parse(oneLine(missing)).code, 'NOT_FOUND');

    const many = await cli('retry', '--status', 'failed', '--name', 'retry-first', '--since', '1h', '--json');
    assert.equal(many.code, 0, many.stderr);
    const retried = JSON.parse(many.stdout) as { retried: string[]; skipped: unknown[] };
    assert.ok(retried.retried.includes('cli-r2') && !retried.retried.includes('cli-r1'), many.stdout);
    assert.equal((await client.get('cli-r2'))!.status, 'running');

    const usage = [await cli('retry'), await cli('retry', 'cli-r1', '--status', 'failed')];
    for (const r of usage) assert.equal(r.code, 2, r.stderr);
    const badStatus = await cli('retry', '--status', 'running');
    assert.equal(badStatus.code, 1);
    assert.match(oneLine(badStatus), /status must be failed and\/or cancelled/);
    const badSince = await cli('retry', '--status', 'failed', '--since', 'yesterday');
    assert.equal(badSince.code, 1);
    assert.match(oneLine(badSince), /--since must be milliseconds or a duration/);
  });
});
