import assert from 'node:assert/strict';
import { defineTask, defineWorkflow, WorkflowFailedError, type Client, type Flow, type Worker } from '../src/index.ts';
import { RECONCILE_TASK } from '../src/reconciler/index.ts';
import { listTicks } from '../src/store/maintenance.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, sleep, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import {
  chain10,
  childWf,
  closeMarkPools,
  ensureMarks,
  fatal,
  flaky,
  forkJoin,
  gpuOnly,
  looper,
  napper,
  parentWf,
  router,
  runaway,
  slow,
  releaseRunaways,
  timesOut,
  waiter,
} from './support/workflows.ts';

describe('workflow runtime and worker pool', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  const workers: Worker[] = [];
  const worker = async (options: Parameters<typeof inProcessWorker>[1] = {}) => {
    const w = await inProcessWorker(db.url, options);
    workers.push(w);
    return w;
  };

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    await ensureMarks(db.pool);
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 500 })));
    // Nothing a test started may run in the next test's workers.
    await db.pool.query(`select baton.cancel_workflow(id) from baton.workflows where status in ('pending', 'running', 'paused') and parent_id is null`);
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  const marks = async (like: string) =>
    (await db.pool.query<{ name: string; pid: number }>(`select name, pid from marks where name like $1 order by id`, [like])).rows;

  it('runs a chain of 10 steps, each on the previous output', async () => {
    await worker();
    const started = await client.start(chain10, 0, { id: 'chain-1' });
    assert.equal(await started.result({ timeoutMs: 10_000 }), 10);
    const view = await client.get('chain-1');
    assert.equal(view!.status, 'completed');
    assert.equal(view!.completedTaskCount, 10);
    assert.deepEqual(view!.tasks.map((t) => t.taskKey), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const history = await client.history('chain-1');
    assert.deepEqual(history.map((h) => h.version), Array.from({ length: 11 }, (_, i) => i + 1));
  });

  it('runs the branches of a parallel step on two workers at once', async () => {
    const w1 = await worker({ concurrency: 1, prefetch: 0 });
    const w2 = await worker({ concurrency: 1, prefetch: 0 });
    const started = await client.start(forkJoin, 800, { id: 'fork-1' });
    const parts = (await started.result({ timeoutMs: 10_000 })) as string[];
    assert.equal(parts.length, 2);
    const tasks = (await client.get('fork-1'))!.tasks;
    const a = tasks.find((t) => t.taskKey === '0/b0')!;
    const b = tasks.find((t) => t.taskKey === '0/b1')!;
    // Both branches ran at the same time: each started before the other finished.
    assert.ok(a.startedAt! < b.finishedAt! && b.startedAt! < a.finishedAt!, 'the branches overlapped');
    const history = await client.history('fork-1');
    const ranBy = new Set(history.filter((h) => h.kind === 'completed' && String(h.detail.key).startsWith('0/b')).map((h) => h.detail.worker));
    assert.deepEqual(ranBy, new Set([w1.id, w2.id]), 'each worker ran one branch');
  });

  it('schedules a join exactly once when branches finish at the same moment on two workers (200 instances)', async () => {
    await worker({ concurrency: 8 });
    await worker({ concurrency: 8 });
    const ids = Array.from({ length: 200 }, (_, i) => `race-${i}`);
    await Promise.all(ids.map((id) => client.start(forkJoin, 1, { id })));
    await Promise.all(ids.map((id) => client.result(id, { timeoutMs: 30_000 })));
    const { rows } = await db.pool.query(
      `select t.workflow_id, count(*)::int as joins, max(t.attempts) as attempts
       from baton.tasks t where t.task_key = '1' and t.workflow_id like 'race-%' group by 1`,
    );
    assert.equal(rows.length, 200);
    assert.ok(rows.every((r) => r.joins === 1 && r.attempts === 1));
    const scheduled = await db.pool.query(
      `select workflow_id, count(*)::int as n from baton.history, jsonb_array_elements_text(coalesce(detail->'scheduled', '[]')) k
       where workflow_id like 'race-%' and k = '1' group by 1`,
    );
    assert.equal(scheduled.rows.length, 200);
    assert.ok(scheduled.rows.every((r) => r.n === 1), 'every join was scheduled by one checkpoint');
    assert.equal((await marks('join:race-%')).length, 200, 'every join ran once');
  });

  it('retries a failing task with back-off, then succeeds', async () => {
    await worker();
    const started = await client.enqueue(flaky, { succeedOn: 3 }, { id: 'flaky-1' });
    assert.deepEqual(await started.result({ timeoutMs: 10_000 }), { attempt: 3 });
    const history = await client.history('flaky-1');
    assert.deepEqual(history.map((h) => h.kind), ['started', 'retry', 'retry', 'completed']);
    assert.equal(history[1]!.detail.attempt, 1);
    assert.match(String((history[1]!.detail.error as { message: string }).message), /attempt 1 failed/);
  });

  it('fails the workflow with the error stored when retries are exhausted, or at once on a non-retryable error', async () => {
    await worker();
    const exhausted = await client.enqueue(flaky, { succeedOn: 99 }, { id: 'flaky-2' });
    await assert.rejects(exhausted.result({ timeoutMs: 10_000 }), (e: unknown) => e instanceof WorkflowFailedError && /attempt 3 failed/.test(e.message));
    const view = await client.get('flaky-2');
    assert.equal(view!.status, 'failed');
    assert.equal(view!.tasks[0]!.attempts, 3);
    assert.match(String(view!.error!.message), /attempt 3 failed/);
    assert.match(String(view!.error!.stack), /attempt 3 failed\n\s+at /);

    const nonRetryable = await client.enqueue(fatal, null, { id: 'fatal-1' });
    await assert.rejects(nonRetryable.result({ timeoutMs: 10_000 }), /card declined/);
    assert.equal((await client.get('fatal-1'))!.tasks[0]!.attempts, 1, 'no retry after a non-retryable error');
  });

  it('times out an attempt: its signal fires, the slot is freed, a runaway handler is reported', async () => {
    const w = await worker({ concurrency: 1 });
    const timeouts: { settled: boolean }[] = [];
    w.events.on('task:timeout', (e) => timeouts.push(e));
    const polite = await client.enqueue(timesOut, { ignoreSignal: false }, { id: 'timeout-1' });
    await assert.rejects(polite.result({ timeoutMs: 10_000 }), /timed out after 300 ms/);
    assert.equal((await client.get('timeout-1'))!.tasks[0]!.attempts, 2, 'the time-out was retried once');

    const rude = await client.enqueue(timesOut, { ignoreSignal: true }, { id: 'timeout-2' });
    await assert.rejects(rude.result({ timeoutMs: 10_000 }), /timed out after 300 ms/);
    assert.equal(w.stats().runaway, 2, 'two handlers still run after ignoring their signal');
    assert.ok(w.logLines.some((l) => l.includes('keeps running in the background')), 'a warning says so');
    // The single slot is free again: other work runs.
    assert.equal(await (await client.start(chain10, 5)).result({ timeoutMs: 10_000 }), 15);
    releaseRunaways();
    await until(async () => w.stats().runaway === 0, { what: 'the runaway handlers to be counted as settled' });
  });

  it('aborts a handler whose claim was lost and refuses its late result', async () => {
    const w = await worker({ config: { claimTtlMs: 900 } });
    const lost: string[] = [];
    const refused: string[] = [];
    w.events.on('task:lost', (e) => lost.push(e.workflowId));
    w.events.on('task:refused', (e) => refused.push(e.workflowId));
    await client.enqueue(slow, { ms: 5_000, abortable: false }, { id: 'lost-1' });
    await until(async () => (await marks('start:lost-1:%')).length > 0, { what: 'the task to start' });
    // Another worker took the task over (as after an expiry): new owner, new epoch.
    await db.pool.query(`update baton.tasks set claimed_by = 'someone-else', epoch = nextval('baton.epoch_seq'), lease_expires_at = now() + interval '1 hour' where workflow_id = 'lost-1'`);
    await until(async () => lost.includes('lost-1'), { what: 'the renewal to notice', timeoutMs: 5_000 });
    await until(async () => refused.includes('lost-1'), { what: 'the late result to be refused', timeoutMs: 10_000 });
    const row = (await db.pool.query(`select status, claimed_by, output from baton.tasks where workflow_id = 'lost-1'`)).rows[0];
    assert.deepEqual(row, { status: 'running', claimed_by: 'someone-else', output: null }, 'the zombie result was not applied');
    assert.ok(Number((await db.pool.query(`select value from baton.stats where key = 'refused_results'`)).rows[0].value) >= 1);
    // The handler ignored its signal and finishes on its own; nothing it returns is applied.
    await until(async () => (await marks('end:lost-1:%')).length > 0, { what: 'the handler to finish', timeoutMs: 8_000 });
    await sleep(100);
    assert.equal((await db.pool.query(`select output from baton.tasks where workflow_id = 'lost-1'`)).rows[0].output, null);
    await client.cancel('lost-1'); // the fake owner never finishes it
  });

  it('sleeps durably: the instance wakes after the worker restarts', async () => {
    const first = await worker();
    await client.start(napper, 1, { id: 'nap-1' });
    await until(async () => (await client.get('nap-1'))!.tasks.some((t) => t.kind === 'sleep'), { what: 'the sleep step' });
    await first.stop();
    workers.splice(workers.indexOf(first), 1);
    await sleep(1_700);
    assert.equal((await client.get('nap-1'))!.status, 'running', 'nothing ran while no worker was up');
    await worker();
    assert.equal(await client.result('nap-1', { timeoutMs: 10_000 }), 3);
  });

  it('waitForEvent consumes an event sent before the step was reached, and times out when none comes', async () => {
    await client.sendEvent('wait-1', 'go', { v: 7 });
    await worker();
    assert.deepEqual(await (await client.start(waiter, 1, { id: 'wait-1' })).result({ timeoutMs: 10_000 }), { v: 7 });
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.events where workflow_id = 'wait-1'`)).rows[0].n, 0, 'consumed');

    const t0 = Date.now();
    const lonely = await client.start(waiter, 1, { id: 'wait-2' });
    await assert.rejects(lonely.result({ timeoutMs: 10_000 }), /no "go" event arrived within 1500 ms/);
    assert.ok(Date.now() - t0 >= 1_400);

    const late = await client.start(waiter, 1, { id: 'wait-3' });
    await until(async () => (await client.get('wait-3'))!.tasks.some((t) => t.kind === 'event'), { what: 'the wait step' });
    await client.sendEvent('wait-3', 'go', { v: 9 });
    assert.deepEqual(await late.result({ timeoutMs: 10_000 }), { v: 9 });
  });

  it('waitForEvent steps take buffered events oldest first, each one once', async () => {
    const ticker = defineWorkflow('ticker').loop((f) => f.waitForEvent('tick', { timeoutMs: 10_000 }), { max: 5 }).build();
    for (let i = 0; i < 6; i++) await client.sendEvent('tick-1', 'tick', { i });
    await worker({ workflows: [ticker], tasks: [] });
    assert.deepEqual(await (await client.start(ticker, null, { id: 'tick-1' })).result({ timeoutMs: 10_000 }), { i: 4 });
    const steps = (await client.get('tick-1'))!.tasks.filter((t) => t.kind === 'event');
    assert.deepEqual(steps.map((t) => [t.taskKey, t.output]), [0, 1, 2, 3, 4].map((i) => [`0/i${i}`, { i }]));
    const left = await db.pool.query(`select payload from baton.events where workflow_id = 'tick-1'`);
    assert.deepEqual(left.rows.map((r) => r.payload), [{ i: 5 }], 'the sixth is still buffered');
  });

  // baton.claim_tasks once handed every waitForEvent step of one instance and name the same oldest event
  // (8 branches each got { i: 0 }); now each claimed wait holds its own event until it commits.
  it('parallel waitForEvent steps of one name each take a different event', async () => {
    const fan = defineWorkflow('fan-wait').parallel(Array.from({ length: 8 }, () => (f: Flow<unknown, unknown>) => f.waitForEvent('tick', { timeoutMs: 10_000 }))).build();
    for (let i = 0; i < 8; i++) await client.sendEvent('fan-1', 'tick', { i });
    await worker({ workflows: [fan], tasks: [] });
    await worker({ workflows: [fan], tasks: [] });
    const out = (await (await client.start(fan, null, { id: 'fan-1' })).result({ timeoutMs: 15_000 })) as { i: number }[];
    assert.deepEqual(out.map((o) => o.i).sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.events where workflow_id = 'fan-1'`)).rows[0].n, 0, 'each consumed once');
  });

  it('two parallel waits of one name take the two oldest events, in order, and leave the third', async () => {
    const pair = defineWorkflow('pair-wait').parallel([(f) => f.waitForEvent('e', { timeoutMs: 10_000 }), (f) => f.waitForEvent('e', { timeoutMs: 10_000 })]).build();
    for (const v of ['a', 'b', 'c']) await client.sendEvent('pair-1', 'e', v);
    await worker({ workflows: [pair], tasks: [] });
    assert.deepEqual(await (await client.start(pair, null, { id: 'pair-1' })).result({ timeoutMs: 10_000 }), ['a', 'b']);
    const left = await db.pool.query(`select payload from baton.events where workflow_id = 'pair-1'`);
    assert.deepEqual(left.rows.map((r) => r.payload), ['c']);
  });

  it("renews its claims every ttl/3 even when it holds none: that is the worker's heartbeat", async () => {
    const w = await worker();
    await db.pool.query(`update baton.workers set heartbeat_at = now() - interval '1 hour' where id = $1`, [w.id]);
    const fresh = async () =>
      (await db.pool.query(`select heartbeat_at > now() - interval '5 seconds' as fresh from baton.workers where id = $1`, [w.id])).rows[0]?.fresh === true;
    await until(fresh, { what: 'a heartbeat', timeoutMs: 2_000 }); // ttl 1.5 s: a renewal every 500 ms
  });

  it('runs a child workflow and continues with its output', async () => {
    await worker();
    // 1 -> inc 2 -> child(double 4, inc 5) -> double 10
    assert.equal(await (await client.start(parentWf, 1, { id: 'parent-1' })).result({ timeoutMs: 10_000 }), 10);
    const child = await client.get('parent-1/1');
    assert.equal(child!.status, 'completed');
    assert.equal(child!.parentId, 'parent-1');
  });

  it("fails a child step whose id an instance that is not its child already took, instead of adopting it", async () => {
    await worker();
    // A caller chose the id the child would get ('<parent id>/<step key>') before the parent started.
    assert.equal(await (await client.start(childWf, 1, { id: 'taken-1/1' })).result({ timeoutMs: 10_000 }), 3);
    const parent = await client.start(parentWf, 1, { id: 'taken-1' });
    await assert.rejects(parent.result({ timeoutMs: 10_000 }), /"taken-1\/1" is taken by an instance that is not a child of "taken-1" \(step 1\)/);
    const stranger = (await client.get('taken-1/1'))!;
    assert.deepEqual([stranger.status, stranger.parentId, stranger.output], ['completed', null, 3], 'left as it was');
  });

  it('routes a branch and enforces loop limits', async () => {
    await worker();
    assert.equal(await (await client.start(router, 12)).result({ timeoutMs: 10_000 }), 49);
    assert.equal(await (await client.start(router, 3)).result({ timeoutMs: 10_000 }), 5);
    assert.equal(await (await client.start(looper, 1)).result({ timeoutMs: 10_000 }), 5);
    const limited = await client.start(runaway, 0, { id: 'loop-limit' });
    await assert.rejects(limited.result({ timeoutMs: 10_000 }), /reached its limit of 4 iterations/);
  });

  it('does not claim tasks of a definition the worker lacks, or that need tags it does not offer', async () => {
    const gpuJob = await client.enqueue(gpuOnly, null, { id: 'gpu-1' });
    const lacking = defineTask('only-elsewhere', async () => 'x');
    const elsewhere = await client.enqueue(lacking, null, { id: 'elsewhere-1' });
    await worker();
    await sleep(800);
    const view = await client.get('elsewhere-1');
    assert.equal(view!.tasks[0]!.status, 'ready');
    assert.match(String(view!.waitingForDefinition), /^only-elsewhere@[0-9a-f]{16}$/);
    assert.equal((await client.get('gpu-1'))!.tasks[0]!.status, 'ready');
    await worker({ tags: ['gpu'] });
    assert.equal(await gpuJob.result({ timeoutMs: 10_000 }), 'rendered');
    await worker({ workflows: [], tasks: [lacking] });
    assert.equal(await elsewhere.result({ timeoutMs: 10_000 }), 'x');
  });

  it('releases claims on graceful shutdown so another worker runs them at once', async () => {
    const first = await worker({ concurrency: 1, prefetch: 2 });
    await Promise.all(['rel-1', 'rel-2', 'rel-3'].map((id) => client.enqueue(slow, { ms: 30_000 }, { id })));
    await until(async () => (await marks('start:rel-%')).length === 1, { what: 'one task to start' });
    const t0 = Date.now();
    await first.stop({ graceMs: 200 });
    workers.splice(workers.indexOf(first), 1);
    const released = await db.pool.query(`select count(*)::int as n from baton.tasks where workflow_id like 'rel-%' and status = 'ready'`);
    assert.equal(released.rows[0].n, 3, 'running and prefetched tasks are ready again, long before their lease would expire');
    assert.ok(Date.now() - t0 < 1_500);
    const attempts = (await db.pool.query(`select workflow_id, attempts from baton.tasks where workflow_id like 'rel-%' order by 1`)).rows;
    assert.equal(attempts.filter((a) => a.attempts === 0).length, 2, 'prefetched tasks give their attempt back');
    await worker({ concurrency: 3 });
    await until(async () => (await marks('start:rel-%')).length === 4, { what: 'the released tasks to run elsewhere', timeoutMs: 5_000 });
  });

  it('runs the reconciler once per tick with three workers', async () => {
    const since = new Date();
    await worker();
    await worker();
    await worker();
    await sleep(3_000);
    const ticks = await listTicks(db.pool, since);
    // Tick = 200 ms (+ up to one poll of 100 ms): about 10-15 in 3 s, never three per tick.
    assert.ok(ticks.length >= 6 && ticks.length <= 16, `${ticks.length} ticks in 3 s`);
    for (let i = 1; i < ticks.length; i++) {
      const gap = ticks[i]!.startedAt.getTime() - ticks[i - 1]!.finishedAt.getTime();
      assert.ok(gap >= 150, `ticks ${i - 1} and ${i} are ${gap} ms apart: no two runs per tick`);
    }
  });

  it('breaks the lock of a tick whose process died, within a second or so, and ticks again', async () => {
    const w = await worker();
    await until(async () => (await listTicks(db.pool, new Date(Date.now() - 1_000))).length > 0, { what: 'a first tick' });
    // What a process killed mid-tick leaves behind: the tick's job locked by a worker that is gone.
    // Take it between ticks (the only tick job waiting, none running), so that no tick in progress
    // schedules a fresh one.
    await until(async () => {
      const { rowCount } = await db.pool.query(
        `update graphile_worker._private_jobs j set locked_at = now(), locked_by = 'gone-worker'
         from graphile_worker._private_tasks t
         where t.id = j.task_id and t.identifier = $1 and j.locked_at is null
           and (select count(*) from graphile_worker._private_jobs j2 where j2.task_id = t.id) = 1`,
        [RECONCILE_TASK],
      );
      return rowCount === 1;
    }, { what: 'the tick job between ticks' });
    const lockedAt = Date.now();
    // A tick that started before the lock may still finish; only one that starts after it counts.
    await until(async () => (await listTicks(db.pool, new Date(lockedAt + 20))).length > 0, { what: 'ticks to resume', timeoutMs: 5_000 });
    // Tick 200 ms: the lock is broken 4 ticks (at least 1 s) after it was taken, checked every 250 ms.
    const resumedAfter = Date.now() - lockedAt;
    assert.ok(resumedAfter >= 900 && resumedAfter <= 2_500, `ticks resumed ${resumedAfter} ms after the lock`);
    assert.ok(w.logLines.some((l) => l.includes('broke the lock of a reconciler tick')));
  });

  it('keeps working when an event listener throws', async () => {
    const w = await worker();
    w.events.on('task:success', () => {
      throw new Error('listener bug');
    });
    assert.equal(await (await client.start(chain10, 0)).result({ timeoutMs: 10_000 }), 10);
    assert.ok(w.logLines.some((l) => l.includes('listener threw')));
  });

  it('claims once per job on an idle system: a freed slot or a settled commit alone does not ask again', async () => {
    const w = await worker({ config: { pollIntervalMs: 60_000 } });
    await sleep(300); // past the first claim at start-up
    const before = w.stats().claims.calls;
    for (let i = 0; i < 20; i++) assert.equal(await (await client.start(chain10, 0)).result({ timeoutMs: 10_000 }), 10);
    // Each step is claimed along the commit that scheduled it, or after that commit's NOTIFY: about
    // one claim call per step (measured 204). Claiming on every freed slot and settled commit made 306.
    const calls = w.stats().claims.calls - before;
    assert.ok(calls <= 250, `${calls} claim calls for 200 sequential steps`);
  });

  it('commits a result still waiting in the commit window when the worker stops, and leaves no timer', async () => {
    let returned!: () => void;
    const handlerReturned = new Promise<void>((r) => (returned = r));
    const quick = defineTask('quick-before-stop', async (n: number) => {
      setImmediate(returned);
      return n + 1;
    });
    const wf = defineWorkflow('stop-mid-window').then(quick).build();
    // A long window: the result is still pending (not yet sent) when stop() begins.
    const w = await worker({ workflows: [wf], tasks: [], config: { completionBatchMs: 1_000 } });
    const started = await client.start(wf, 41);
    await handlerReturned;
    await w.stop({ graceMs: 2_000 });
    assert.equal(await started.result({ timeoutMs: 1_000 }), 42);
    // The root afterEach hook fails this test if stop() left any timer running.
  });

  it('fails a workflow whose handler returns what cannot be stored, without crashing the worker', async () => {
    const bad = defineTask('returns-bigint', async () => BigInt(1) as unknown as number);
    const wf = defineWorkflow('bad-output').then(bad).build();
    await worker({ workflows: [wf], tasks: [] });
    await assert.rejects((await client.start(wf, null)).result({ timeoutMs: 10_000 }), /is a BigInt/);
    assert.equal(await (await client.start(wf, null)).result({ timeoutMs: 10_000 }).catch(() => 'failed again'), 'failed again');
  });
});
