import assert from 'node:assert/strict';
import { defineTask, defineWorkflow, NonRetryableError, WorkflowFailedError, type Client, type Worker } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, sleep, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';

/** What the handlers saw, by instance and task key (the workers run in this process). */
const aborted = new Map<string, string>();
const started = new Set<string>();

const untilMoment = (at: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, Math.max(0, at - Date.now()));
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

/** Finishes at input.at (the same moment for every branch), returning its own key. */
const atMoment = defineTask('join-at-moment', async (input: { at: number }, ctx) => {
  await untilMoment(input.at, ctx.signal);
  return ctx.taskKey;
});
/** Runs until aborted (20 s at most), and notes the reason it was given. */
const slow = defineTask('join-slow', async (_input: unknown, ctx) => {
  started.add(`${ctx.workflowId} ${ctx.taskKey}`);
  try {
    await untilMoment(Date.now() + 20_000, ctx.signal);
  } catch (error) {
    aborted.set(`${ctx.workflowId} ${ctx.taskKey}`, (error as Error).name);
    throw error;
  }
  return 'slow';
});
const quick = defineTask('join-quick', async (_input: unknown, ctx) => ctx.taskKey);
const lateBy = defineTask('join-late', async (input: { ms: number }) => {
  await sleep(input.ms);
  return `late ${input.ms}`;
});
const failing = defineTask('join-failing', async () => {
  throw new NonRetryableError('this branch cannot');
});
const echo = defineTask('join-echo', async (input: unknown) => input);
const failedOnce = new Set<string>();
/** Fails the first time it runs in an instance (for good: no retry), then passes its input on. */
const failOnce = defineTask('join-fail-once', async (input: unknown, ctx) => {
  if (!failedOnce.has(ctx.workflowId)) {
    failedOnce.add(ctx.workflowId);
    throw new NonRetryableError('not this time');
  }
  return input;
});

const raceAny = defineWorkflow<{ at: number }>('join-race-any').parallel([atMoment, atMoment], { join: 'any' }).then(echo).build();
const raceQuorum = defineWorkflow<{ at: number }>('join-race-quorum')
  .parallel([atMoment, atMoment, atMoment], { join: { quorum: 2 }, rest: 'finish' })
  .then(echo)
  .build();
const cancelRest = defineWorkflow('join-cancel-rest').parallel([quick, slow], { join: 'any' }).then(echo).build();
const finishRest = defineWorkflow<{ ms: number }>('join-finish-rest').parallel([quick, lateBy], { join: 'any', rest: 'finish' }).then(echo).build();
const unreachable = defineWorkflow('join-unreachable').parallel([failing, slow, failing], { join: { quorum: 2 } }).then(echo).build();
const retryCancel = defineWorkflow('join-retry-cancel').parallel([quick, slow], { join: 'any' }).then(failOnce).build();
const retryFinish = defineWorkflow<{ ms: number }>('join-retry-finish').parallel([quick, lateBy], { join: 'any', rest: 'finish' }).then(failOnce).build();
const child = defineWorkflow('join-child').then(slow).build();
const nested = defineWorkflow('join-nested')
  .parallel([(f) => f.then(slow).then(echo), child, (f) => f.then(quick).then(echo)], { join: 'any' })
  .then(echo)
  .build();

describe('any-of and quorum joins, end to end', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  const workers: Worker[] = [];
  const worker = async (concurrency = 8, completionBatchMs?: number) => {
    const w = await inProcessWorker(db.url, {
      workflows: [raceAny, raceQuorum, cancelRest, finishRest, unreachable, nested, retryCancel, retryFinish],
      tasks: [],
      schedules: [],
      concurrency,
      ...(completionBatchMs ? { config: { completionBatchMs } } : {}),
    });
    workers.push(w);
    return w;
  };
  const tasksOf = async (id: string) =>
    (await db.pool.query<{ task_key: string; status: string; output: unknown }>(
      `select task_key, status, output from baton.tasks where workflow_id = $1 order by task_key`,
      [id],
    )).rows;
  const refused = async () =>
    Number((await db.pool.query(`select coalesce((select value from baton.stats where key = 'refused_results'), 0) as n`)).rows[0].n);

  before(async () => {
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 500 })));
    await db.pool.query(`select baton.cancel_workflow(id) from baton.workflows where status in ('pending', 'running', 'paused') and parent_id is null`);
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
  });

  it('fires an any-join once when its branches finish at the same moment on two workers (100 instances)', async () => {
    await worker();
    await worker();
    const at = Date.now() + 1_500;
    const ids = Array.from({ length: 100 }, (_, i) => `any-race-${i}`);
    await Promise.all(ids.map((id) => client.start(raceAny, { at }, { id })));
    const results = await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 30_000 })));
    for (const [i, r] of results.entries()) {
      const w = r as { branch: number; output: string };
      assert.equal(w.output, `0/b${w.branch}`, `instance ${i} got its winner's output`);
    }
    const { rows } = await db.pool.query(
      `select w.id as workflow_id,
         (select count(*)::int from baton.history h, jsonb_array_elements_text(h.detail -> 'joined') j where h.workflow_id = w.id and j = '0') as joins,
         (select count(*)::int from baton.history h, jsonb_array_elements_text(coalesce(h.detail -> 'scheduled', '[]')) k where h.workflow_id = w.id and k = '1') as scheduled,
         (select array_agg(t.status order by t.task_key) from baton.tasks t where t.workflow_id = w.id and t.task_key like '0/%') as branches
       from baton.workflows w where w.id like 'any-race-%'`,
    );
    assert.equal(rows.length, 100);
    for (const r of rows) {
      assert.equal(r.joins, 1, `${r.workflow_id}: the join fired once`);
      assert.equal(r.scheduled, 1, `${r.workflow_id}: the next step was scheduled once`);
      // The loser ended cancelled (its result came second: fenced off, or cancelled in the same commit).
      assert.deepEqual([...r.branches].sort(), ['cancelled', 'completed'], `${r.workflow_id}: ${r.branches}`);
    }
    const winners = await db.pool.query(`select count(*)::int as n from baton.tasks where task_key = '1' and workflow_id like 'any-race-%' and attempts = 1`);
    assert.equal(winners.rows[0].n, 100);
  });

  it('cancels the loser when both branches of an any-join are committed in one batch by one worker', async () => {
    await worker(8, 300); // a wide batching window: both results of an instance go in one commit
    const at = Date.now() + 1_000;
    const ids = Array.from({ length: 10 }, (_, i) => `any-batch-${i}`);
    await Promise.all(ids.map((id) => client.start(raceAny, { at }, { id })));
    await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 30_000 })));
    for (const id of ids) {
      const tasks = await tasksOf(id);
      assert.deepEqual(tasks.map((t) => t.status).sort(), ['cancelled', 'completed', 'completed'], `${id}: ${JSON.stringify(tasks)}`);
      const history = await client.history(id);
      assert.equal(history.filter((h) => (h.detail.joined as string[] | undefined)?.includes('0')).length, 1);
    }
  });

  it("fires a quorum once under the same race; with rest 'finish' the third branch completes too, without firing it again", async () => {
    await worker();
    await worker();
    const at = Date.now() + 1_500;
    const ids = Array.from({ length: 40 }, (_, i) => `quorum-race-${i}`);
    await Promise.all(ids.map((id) => client.start(raceQuorum, { at }, { id })));
    const results = (await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 30_000 })))) as { branch: number; output: string }[][];
    for (const r of results) {
      assert.equal(r.length, 2);
      assert.notEqual(r[0]!.branch, r[1]!.branch);
    }
    const { rows } = await db.pool.query(
      `select w.id, w.status,
         (select count(*)::int from baton.history h, jsonb_array_elements_text(h.detail -> 'joined') j where h.workflow_id = w.id and j = '0') as joins,
         (select count(*)::int from baton.tasks t where t.workflow_id = w.id and t.task_key like '0/%' and t.status = 'completed' and t.output is not null) as completed
       from baton.workflows w where w.id like 'quorum-race-%'`,
    );
    for (const r of rows) {
      assert.equal(r.status, 'completed');
      assert.equal(r.joins, 1, `${r.id}: the join fired once`);
      assert.equal(r.completed, 3, `${r.id}: every branch completed, its output recorded`);
    }
  });

  it("rest 'cancel': a running branch's handler sees its AbortSignal, its task ends cancelled, and its late result is refused", async () => {
    await worker(2);
    const before = await refused();
    const run = await client.start(cancelRest, null, { id: 'cancel-1' });
    await until(async () => started.has('cancel-1 0/b1'), { what: 'the slow branch to start' });
    assert.deepEqual(await run.result({ timeoutMs: 10_000 }), { branch: 0, output: '0/b0' });
    await until(async () => aborted.get('cancel-1 0/b1'), { what: 'the slow branch to be aborted' });
    assert.equal(aborted.get('cancel-1 0/b1'), 'CancelledError', 'told by the cancellation, not a lost lease');
    const tasks = await tasksOf('cancel-1');
    assert.deepEqual(tasks.map((t) => [t.task_key, t.status]), [['0/b0', 'completed'], ['0/b1', 'cancelled'], ['1', 'completed']]);
    // The aborted attempt still reported its end: the fence refused it, and nothing changed.
    await until(async () => (await refused()) > before, { what: 'the late result to be refused' });
    assert.equal((await tasksOf('cancel-1'))[1]!.status, 'cancelled');
  });

  it("rest 'finish': the straggler runs to completion, its output recorded, and the instance completes after it", async () => {
    await worker(2);
    const run = await client.start(finishRest, { ms: 1_500 }, { id: 'finish-1' });
    await until(async () => (await tasksOf('finish-1')).find((t) => t.task_key === '1' && t.status === 'completed'), { what: 'the next step' });
    const meanwhile = await client.get('finish-1');
    assert.equal(meanwhile!.status, 'running', 'its steps are done, but a straggler still runs');
    assert.deepEqual(await run.result({ timeoutMs: 10_000 }), { branch: 0, output: '0/b0' });
    const tasks = await tasksOf('finish-1');
    assert.deepEqual(tasks.map((t) => [t.task_key, t.status, t.output]), [
      ['0/b0', 'completed', '0/b0'],
      ['0/b1', 'completed', 'late 1500'],
      ['1', 'completed', { branch: 0, output: '0/b0' }],
    ]);
    const history = await client.history('finish-1');
    assert.equal(history.filter((h) => Array.isArray(h.detail.joined)).length, 1, 'the straggler did not fire the join again');
  });

  it('fails the step at once when the quorum can no longer be met, and cancels the branch still running', async () => {
    await worker(4);
    const t0 = Date.now();
    const run = await client.start(unreachable, null, { id: 'unreachable-1' });
    await assert.rejects(run.result({ timeoutMs: 10_000 }), (e: unknown) => e instanceof WorkflowFailedError && /needs 2 of 3 branches to complete, and 2 failed/.test(e.message));
    assert.ok(Date.now() - t0 < 10_000, 'it did not wait for the slow branch');
    const view = await client.get('unreachable-1');
    assert.equal(view!.error!.name, 'JoinError');
    await until(async () => aborted.get('unreachable-1 0/b1'), { what: 'the slow branch to be aborted' });
    assert.deepEqual((await tasksOf('unreachable-1')).map((t) => t.status), ['failed', 'cancelled', 'failed']);
  });

  it('cancels a sub-flow branch (its next step never runs) and a child workflow branch (its instance ends cancelled)', async () => {
    await worker(4);
    const run = await client.start(nested, null, { id: 'nested-1' });
    await until(async () => started.has('nested-1 0/b0/0') && started.has('nested-1/0/b1 0'), { what: 'both slow branches to start' });
    assert.deepEqual(await run.result({ timeoutMs: 10_000 }), { branch: 2, output: '0/b2/0' });
    await until(async () => aborted.get('nested-1 0/b0/0') && aborted.get('nested-1/0/b1 0'), { what: 'the slow steps to be aborted' });
    const tasks = await tasksOf('nested-1');
    assert.deepEqual(tasks.map((t) => [t.task_key, t.status]), [
      ['0/b0/0', 'cancelled'],
      ['0/b1', 'cancelled'],
      ['0/b2/0', 'completed'],
      ['0/b2/1', 'completed'],
      ['1', 'completed'],
    ]);
    assert.equal((await client.get('nested-1/0/b1'))!.status, 'cancelled');
  });

  it('a retry of the instance leaves the branches a join cancelled alone, and runs again a straggler its failure cancelled', async () => {
    await worker(4);
    const first = await client.start(retryCancel, null, { id: 'retry-cancel-1' });
    await assert.rejects(first.result({ timeoutMs: 10_000 }), /not this time/);
    assert.deepEqual((await tasksOf('retry-cancel-1')).map((t) => [t.task_key, t.status]), [['0/b0', 'completed'], ['0/b1', 'cancelled'], ['1', 'failed']]);
    const retried = await client.retry('retry-cancel-1');
    assert.deepEqual(retried.steps, ['1'], 'only the failed step runs again');
    assert.deepEqual(await client.result('retry-cancel-1', { timeoutMs: 10_000 }), { branch: 0, output: '0/b0' });
    assert.equal((await tasksOf('retry-cancel-1'))[1]!.status, 'cancelled');

    // rest 'finish': the next step fails while the straggler runs; the failure cancels it; a retry runs both again.
    const second = await client.start(retryFinish, { ms: 800 }, { id: 'retry-finish-1' });
    await assert.rejects(second.result({ timeoutMs: 10_000 }), /not this time/);
    assert.equal((await tasksOf('retry-finish-1'))[1]!.status, 'cancelled');
    assert.deepEqual((await client.retry('retry-finish-1')).steps, ['0/b1', '1']);
    assert.deepEqual(await client.result('retry-finish-1', { timeoutMs: 10_000 }), { branch: 0, output: '0/b0' });
    assert.deepEqual((await tasksOf('retry-finish-1')).map((t) => [t.task_key, t.status, t.output]), [
      ['0/b0', 'completed', '0/b0'],
      ['0/b1', 'completed', 'late 800'],
      ['1', 'completed', { branch: 0, output: '0/b0' }],
    ]);
  });
});
