import assert from 'node:assert/strict';
import pg from 'pg';
import { InvalidStateError, NotFoundError, ValidationError } from '../src/errors.ts';
import {
  checkAndCancel,
  checkAndPause,
  claimTasks,
  commitBatch,
  type CommitBatch,
  deleteInstance,
  findAvailableTasks,
  getStats,
  listHistory,
  listInstances,
  listTasks,
  loadInstance,
  loadTaskResult,
  promoteDue,
  prune,
  pruneIsDue,
  reclaimExpired,
  releaseClaims,
  renewClaims,
  sendEvent,
  startInstance,
  unpause,
} from '../src/store/index.ts';
import { defineTask, defineWorkflow, taskWorkflow } from '../src/workflow/index.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, enqueueMany, noop, noopWorkflow, register, sleep } from './support/fixtures.ts';

/** What a worker commits when the only task of a one-task job completes. */
function oneTaskCompletion(id: string, epoch: number, version: number, output: unknown): CommitBatch {
  return {
    items: [{ wf: id, key: '0', epoch, status: 'completed', paused: false, output, error: null, delayMs: null, eventId: null }],
    instances: [{ id, parent: null, version, status: 'completed', state: { par: {}, done: 1 }, bump: 1, done: 1, output, error: null, step: null, finished: true, after: false }],
    history: [{ wf: id, version: version + 1, kind: 'completed', detail: { key: '0' } }],
    schedule: [],
  };
}

const gpuTask = defineTask('render', async () => 1, { tags: ['gpu'] });
const branchy = defineWorkflow('branchy').parallel([noop, defineTask('other', async () => 2)]).build();

describe('store', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  const hashes = () => [noopWorkflow.hash, taskWorkflow(gpuTask).hash, branchy.hash];

  before(async () => {
    pool = batonPool(db.url, { max: 20 });
    await register(pool, noopWorkflow, taskWorkflow(gpuTask), branchy);
  });
  after(async () => {
    await pool.end();
  });
  beforeEach(async () => {
    await pool.query('truncate baton.workflows, baton.tasks, baton.history, baton.signals, baton.events, baton.stats');
  });

  it('8 concurrent claimers over 10,000 ready tasks claim every task exactly once', async () => {
    await enqueueMany(pool, 10_000);
    const claimed: string[][] = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const mine: string[] = [];
        for (;;) {
          const batch = await claimTasks(pool, { workerId: `w${i}`, limit: 37, tags: [], hashes: hashes(), ttlMs: 60_000 });
          if (batch.length === 0) return mine;
          mine.push(...batch.map((t) => t.workflowId));
        }
      }),
    );
    const all = claimed.flat();
    assert.equal(all.length, 10_000);
    assert.equal(new Set(all).size, 10_000);
    assert.ok(claimed.filter((c) => c.length > 0).length >= 4, 'the work was shared between claimers');
    const { rows } = await pool.query(`select count(*)::int as n, count(distinct epoch)::int as epochs from baton.tasks where status = 'running'`);
    assert.deepEqual(rows[0], { n: 10_000, epochs: 10_000 });
  });

  it("a worker's own claim commits asynchronously; a claim inside a caller's transaction leaves its durability alone", async () => {
    await enqueueMany(pool, 2);
    const client = await pool.connect();
    try {
      await client.query('begin');
      assert.equal((await claimTasks(client, { workerId: 'w', limit: 1, tags: [], hashes: hashes(), ttlMs: 60_000 })).length, 1);
      assert.equal((await client.query(`select current_setting('synchronous_commit') as s`)).rows[0].s, 'on');
      await client.query('rollback');
      // The pool's claim runs baton.claim_tasks_async_commit: the setting is local to its own transaction.
      await client.query('begin');
      await client.query(`select * from baton.claim_tasks_async_commit('w', 1, '{}', $1::text[], 60000)`, [hashes()]);
      assert.equal((await client.query(`select current_setting('synchronous_commit') as s`)).rows[0].s, 'off');
      await client.query('commit');
      assert.equal((await client.query(`select current_setting('synchronous_commit') as s`)).rows[0].s, 'on', 'only that transaction');
    } finally {
      client.release();
    }
    assert.equal((await claimTasks(pool, { workerId: 'w', limit: 5, tags: [], hashes: hashes(), ttlMs: 60_000 })).length, 1);
  });

  it('claims in exact aging order: an old low-priority task runs before a fresh high-priority one', async () => {
    // Ready times and priorities; aging interval 60 s, so ready_key = ready time + priority * 60 s.
    const spec = [
      { id: 'p0-fresh', priority: 0, ago: 5 },
      { id: 'p1-old', priority: 1, ago: 100 },
      { id: 'p2-mid', priority: 2, ago: 30 },
      { id: 'p0-mid', priority: 0, ago: 10 },
      { id: 'p3-ancient', priority: 3, ago: 500 },
    ];
    for (const s of spec) await startInstance(pool, { name: 'noop', kind: 'task', id: s.id, priority: s.priority });
    for (const s of spec) {
      // Make each task "become ready" s.ago seconds ago, through the timer path that sets ready_key.
      await pool.query(
        `update baton.tasks set status = 'waiting', ready_key = null, available_at = now() - $2 * interval '1 second' where workflow_id = $1`,
        [s.id, s.ago],
      );
    }
    assert.equal(await promoteDue(pool), spec.length);
    const expected = [...spec].sort((a, b) => -a.ago + a.priority * 60 - (-b.ago + b.priority * 60)).map((s) => s.id);
    assert.deepEqual(expected, ['p3-ancient', 'p1-old', 'p0-mid', 'p0-fresh', 'p2-mid']);
    const peek = await findAvailableTasks(pool, { workerId: 'w', limit: 10, tags: [], hashes: hashes() });
    assert.deepEqual(peek.map((t) => t.workflowId), expected);
    // One claim of all of them returns them in that order too (a worker that claims ahead starts them so), rolled back.
    const client = await pool.connect();
    try {
      await client.query('begin');
      const batch = await claimTasks(client, { workerId: 'w', limit: 10, tags: [], hashes: hashes(), ttlMs: 60_000 });
      assert.deepEqual(batch.map((t) => t.workflowId), expected);
    } finally {
      await client.query('rollback');
      client.release();
    }
    const order: string[] = [];
    for (;;) {
      const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes: hashes(), ttlMs: 60_000 });
      if (!t) break;
      order.push(t.workflowId);
    }
    assert.deepEqual(order, expected);
  });

  it('routes by tags: a gpu task is never claimed by a worker without gpu, and is by one with it', async () => {
    await enqueueMany(pool, 5, { task: 'render', prefix: 'gpu-' });
    await enqueueMany(pool, 5, { prefix: 'plain-' });
    await enqueueMany(pool, 3, { prefix: 'eu-', tags: ['eu'] });
    const plain = await claimTasks(pool, { workerId: 'cpu', limit: 100, tags: [], hashes: hashes(), ttlMs: 60_000 });
    assert.deepEqual(plain.map((t) => t.workflowId).sort(), ['plain-1', 'plain-2', 'plain-3', 'plain-4', 'plain-5']);
    const cpuEu = await claimTasks(pool, { workerId: 'cpu-eu', limit: 100, tags: ['eu'], hashes: hashes(), ttlMs: 60_000 });
    assert.deepEqual(cpuEu.map((t) => t.workflowId).sort(), ['eu-1', 'eu-2', 'eu-3']);
    assert.deepEqual(await claimTasks(pool, { workerId: 'cpu', limit: 100, tags: ['eu', 'x'], hashes: hashes(), ttlMs: 60_000 }), []);
    const gpu = await claimTasks(pool, { workerId: 'gpu', limit: 100, tags: ['gpu', 'eu'], hashes: hashes(), ttlMs: 60_000 });
    assert.deepEqual(gpu.map((t) => t.workflowId).sort(), ['gpu-1', 'gpu-2', 'gpu-3', 'gpu-4', 'gpu-5']);
  });

  it('claims only tasks of definitions the worker has', async () => {
    await enqueueMany(pool, 3);
    assert.deepEqual(await claimTasks(pool, { workerId: 'w', limit: 10, tags: [], hashes: ['0000000000000000'], ttlMs: 60_000 }), []);
    assert.equal((await claimTasks(pool, { workerId: 'w', limit: 10, tags: [], hashes: [noopWorkflow.hash], ttlMs: 60_000 })).length, 3);
  });

  it('orders a retry after other tasks for the worker that failed it, but never excludes it', async () => {
    await enqueueMany(pool, 2, { prefix: 'r-' });
    await pool.query(`update baton.tasks set last_failed_worker = 'me', ready_key = ready_key - interval '1 hour' where workflow_id = 'r-1'`);
    const [first] = await claimTasks(pool, { workerId: 'me', limit: 1, tags: [], hashes: hashes(), ttlMs: 60_000 });
    assert.equal(first!.workflowId, 'r-2', 'the worker that failed r-1 takes r-2 first');
    const [second] = await claimTasks(pool, { workerId: 'me', limit: 1, tags: [], hashes: hashes(), ttlMs: 60_000 });
    assert.equal(second!.workflowId, 'r-1', 'alone, the retry is still taken by that worker');
    await enqueueMany(pool, 1, { prefix: 's-' });
    await pool.query(`update baton.tasks set last_failed_worker = 'me', ready_key = ready_key - interval '1 hour' where workflow_id = 's-1'`);
    const [other] = await claimTasks(pool, { workerId: 'someone-else', limit: 1, tags: [], hashes: hashes(), ttlMs: 60_000 });
    assert.equal(other!.workflowId, 's-1', 'other workers see it in plain aging order');
  });

  it('replaces an expired claim; renewal by a non-owner or an old epoch is refused; a stale commit changes nothing', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'lease', input: 1 });
    const [a] = await claimTasks(pool, { workerId: 'A', limit: 1, tags: [], hashes: hashes(), ttlMs: 300 });
    assert.ok(a);
    const claimRow = async () =>
      (await pool.query<{ claimed_by: string; started_at: Date; claimed_at: Date; lease_ms: number }>(
        `select claimed_by, started_at, claimed_at, extract(epoch from lease_expires_at - claimed_at) * 1000 as lease_ms
         from baton.tasks where workflow_id = 'lease'`,
      )).rows[0]!;
    const first = await claimRow();
    assert.equal(first.claimed_by, 'A');
    assert.ok(first.started_at && first.claimed_at, 'the claim records when the task started and was claimed');
    assert.equal(Math.round(Number(first.lease_ms)), 300, 'a lease of ttlMs');
    assert.deepEqual(await renewClaims(pool, 'A', [a], 300), [], 'the owner renews');
    assert.equal((await renewClaims(pool, 'B', [a], 60_000)).length, 1, 'another worker cannot renew it');
    await sleep(450);
    assert.deepEqual(await reclaimExpired(pool, 3), { reclaimed: 1, failed: 0 });
    const [b] = await claimTasks(pool, { workerId: 'B', limit: 1, tags: [], hashes: hashes(), ttlMs: 60_000 });
    assert.ok(b && b.epoch > a.epoch, 'a new claim with a higher epoch');
    assert.equal(b.attempts, 2);
    const second = await claimRow();
    assert.equal(second.claimed_by, 'B');
    assert.equal(second.started_at.getTime(), first.started_at.getTime(), 'started_at stays the first attempt\'s');
    assert.ok(second.claimed_at > first.claimed_at, 'claimed_at is the new claim\'s');
    assert.deepEqual(await renewClaims(pool, 'A', [a], 60_000), [{ workflowId: a.workflowId, taskKey: a.taskKey, epoch: a.epoch }]);
    assert.equal((await renewClaims(pool, 'B', [{ ...b, epoch: a.epoch }], 60_000)).length, 1, 'an old epoch cannot renew');

    const before = await pool.query(`select * from baton.tasks where workflow_id = 'lease'`);
    const beforeWf = await loadInstance(pool, 'lease');
    const results = await commitBatch(pool, 'A', oneTaskCompletion('lease', a.epoch, a.workflow.version, 'zombie'));
    assert.ok(results.results.some((r) => r.result === 'refused' && r.taskKey === '0'));
    assert.deepEqual((await pool.query(`select * from baton.tasks where workflow_id = 'lease'`)).rows, before.rows, 'task row unchanged');
    assert.deepEqual(await loadInstance(pool, 'lease'), beforeWf, 'instance unchanged');
    assert.equal((await getStats(pool)).refused_results, 1, 'the refusal is counted');
    await commitBatch(pool, 'A', oneTaskCompletion('lease', a.epoch, b.workflow.version, 'zombie'));
    assert.equal((await getStats(pool)).refused_results, 2, 'refused again, even from the current version');
    assert.deepEqual((await commitBatch(pool, 'B', oneTaskCompletion('lease', b.epoch, b.workflow.version, 'fresh'))).results, [], 'the owner commits');
    const result = await loadTaskResult(pool, 'lease', '0');
    assert.deepEqual([result!.status, result!.output, result!.attempts], ['completed', 'fresh', 2]);
    assert.equal((result!.error as { code: string }).code, 'LEASE_LOST', 'the lost lease stays on record');
  });

  it('fails a task whose lease was lost too many times, and its instance with it', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'poison' });
    await pool.query(`update baton.tasks set max_attempts = 10 where workflow_id = 'poison'`);
    for (let i = 1; i <= 2; i++) {
      const [t] = await claimTasks(pool, { workerId: `w${i}`, limit: 1, tags: [], hashes: hashes(), ttlMs: 300 });
      assert.ok(t);
      await sleep(350);
      assert.deepEqual(await reclaimExpired(pool, 2), i < 2 ? { reclaimed: 1, failed: 0 } : { reclaimed: 0, failed: 1 });
    }
    const wf = await loadInstance(pool, 'poison');
    assert.equal(wf!.status, 'failed');
    assert.match(String(wf!.error!.message), /lease lost: worker w2 stopped renewing its claim \(attempt 2, lease lost 2 time\(s\)\)/);
    const history = await listHistory(pool, 'poison');
    assert.deepEqual(history.map((h) => [h.version, h.kind]), [[1, 'started'], [2, 'lease_lost'], [3, 'lease_lost'], [4, 'failed']]);
  });

  it('stores a job\'s input once, on its instance, and the claim hands it to the task', async () => {
    const input = { order: 'o-1', pad: 'x'.repeat(500) };
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'once-1', input });
    const { rows } = await pool.query(`select t.input is null as task_null, w.input from baton.tasks t join baton.workflows w on w.id = t.workflow_id where w.id = 'once-1'`);
    assert.deepEqual(rows, [{ task_null: true, input }]);
    const client = await pool.connect();
    try {
      await client.query('begin');
      const claimed = await claimTasks(client, { workerId: 'w', limit: 100, tags: [], hashes: hashes(), ttlMs: 60_000 });
      assert.deepEqual(claimed.find((t) => t.workflowId === 'once-1')?.input, input);
    } finally {
      await client.query('rollback');
      client.release();
    }
    await pool.query(`select baton.delete_instances(array['once-1'])`);
  });

  it('stores no started row for an instance that starts running, and reads the same checkpoint from the instance', async () => {
    const input = { n: 1 };
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'derived-1', input, priority: 2, tags: ['t1'] });
    // An instance that starts paused keeps its started row, written by the start as before: the reference.
    await pool.query(`select * from baton.start_workflow('noop', $1::jsonb, 'stored-1', 2, array['t1'], 'fail', null, null, 'task', null, null, true)`, [input]);
    const stored = (id: string) => pool.query(`select version, kind from baton.history where workflow_id = $1`, [id]).then((r) => r.rows);
    assert.deepEqual(await stored('derived-1'), [], 'no history row written by the start');
    assert.deepEqual(await stored('stored-1'), [{ version: 1, kind: 'started' }]);
    const [derived] = await listHistory(pool, 'derived-1');
    const [reference] = await listHistory(pool, 'stored-1');
    assert.deepEqual([derived!.version, derived!.kind], [1, 'started']);
    assert.deepEqual(derived!.detail.scheduled, ['0']);
    assert.deepEqual([derived!.detail.priority, derived!.detail.tags, derived!.detail.parent], [2, ['t1'], null]);
    assert.equal(reference!.detail.status, 'paused');
    assert.deepEqual(derived!.detail, { ...reference!.detail, status: 'running' });
    const { created_at } = (await pool.query(`select created_at from baton.workflows where id = 'derived-1'`)).rows[0];
    assert.equal(derived!.at.getTime(), created_at.getTime());
    assert.deepEqual(await listHistory(pool, 'derived-1', { afterVersion: 1 }), [], 'after version 1: nothing');
    assert.deepEqual(await listHistory(pool, 'no-such-instance'), []);
    await pool.query(`select baton.delete_instances(array['derived-1', 'stored-1'])`);
  });

  it('releases claims at once, giving back the attempt of a task that never started', async () => {
    await enqueueMany(pool, 2, { prefix: 'rel-' });
    const claimed = await claimTasks(pool, { workerId: 'w', limit: 2, tags: [], hashes: hashes(), ttlMs: 60_000 });
    assert.equal(await releaseClaims(pool, 'w', [{ ...claimed[0]!, notStarted: true }, claimed[1]!]), 2);
    const rows = (await pool.query(`select workflow_id, status, attempts from baton.tasks order by workflow_id`)).rows;
    assert.deepEqual(rows, [
      { workflow_id: claimed[0]!.workflowId, status: 'ready', attempts: 0 },
      { workflow_id: claimed[1]!.workflowId, status: 'ready', attempts: 1 },
    ].sort((x, y) => x.workflow_id.localeCompare(y.workflow_id)));
    assert.equal(await releaseClaims(pool, 'w', claimed), 0, 'released claims are gone');
  });

  it('cancel racing a completion: exactly one wins, every time, and the state is consistent (100 rounds)', async () => {
    let cancelled = 0;
    let completed = 0;
    for (let round = 0; round < 100; round++) {
      const id = `race-${round}`;
      await startInstance(pool, { name: 'noop', kind: 'task', id });
      const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes: hashes(), ttlMs: 60_000 });
      const [commit, cancel] = await Promise.allSettled([
        commitBatch(pool, 'w', oneTaskCompletion(id, t!.epoch, t!.workflow.version, round)),
        checkAndCancel(pool, id, { reason: 'race', requestedBy: 'test' }),
      ]);
      assert.equal(commit.status, 'fulfilled');
      // Nothing back from a commit means it was applied.
      const applied = (commit as PromiseFulfilledResult<Awaited<ReturnType<typeof commitBatch>>>).value.results.length === 0;
      const wf = (await loadInstance(pool, id))!;
      const [task] = await listTasks(pool, id);
      if (applied) {
        completed++;
        assert.equal(cancel.status, 'rejected');
        assert.ok((cancel as PromiseRejectedResult).reason instanceof InvalidStateError);
        assert.equal(wf.status, 'completed');
        assert.equal(task!.status, 'completed');
      } else {
        cancelled++;
        assert.equal(cancel.status, 'fulfilled');
        assert.equal(wf.status, 'cancelled');
        assert.equal(task!.status, 'cancelled');
        assert.equal(wf.error!.reason, 'race');
      }
      const versions = (await listHistory(pool, id)).map((h) => h.version);
      assert.deepEqual(versions, [1, 2], 'history versions are contiguous');
      assert.equal(wf.version, 2);
    }
    assert.equal(cancelled + completed, 100);
  });

  it('refuses an event for a finished instance, and wakes a waiting step with one', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'done-1' });
    await checkAndCancel(pool, 'done-1');
    await assert.rejects(sendEvent(pool, 'done-1', 'x', {}), (e: unknown) => e instanceof InvalidStateError && /already cancelled/.test(e.message));
    assert.equal((await pool.query(`select count(*)::int as n from baton.events where workflow_id = 'done-1'`)).rows[0].n, 0);
  });

  it('sends NOTIFY baton_ready in the transaction that makes tasks ready', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    try {
      await listener.query('listen baton_ready');
      const got = new Promise<string>((resolve) => listener.once('notification', (n) => resolve(n.channel)));
      const client = await pool.connect();
      try {
        await client.query('begin');
        await startInstance(client, { name: 'noop', kind: 'task', id: 'notify-1' });
        const early = await Promise.race([got.then(() => 'early'), sleep(150).then(() => 'not yet')]);
        assert.equal(early, 'not yet', 'nothing is sent before commit');
        await client.query('commit');
      } finally {
        client.release();
      }
      assert.equal(await got, 'baton_ready');
    } finally {
      await listener.end();
    }
  });

  it('loads, lists with keyset pagination and filters, deletes', async () => {
    for (let i = 0; i < 7; i++) await startInstance(pool, { name: 'noop', kind: 'task', id: `list-${i}` });
    await startInstance(pool, { name: 'branchy', id: 'list-b' });
    await checkAndCancel(pool, 'list-3');
    const loaded = await loadInstance(pool, 'list-3');
    assert.deepEqual([loaded!.status, loaded!.version, loaded!.currentStep], ['cancelled', 2, null]);
    assert.ok(loaded!.finishedAt instanceof Date);
    assert.deepEqual((await listHistory(pool, 'list-3')).map((h) => h.kind), ['started', 'cancelled']);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await listInstances(pool, { limit: 3, cursor });
      assert.ok(page.items.length <= 3);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.next;
    } while (cursor);
    assert.equal(seen.length, 8);
    assert.equal(new Set(seen).size, 8, 'pages do not overlap');
    assert.deepEqual((await listInstances(pool, { status: 'cancelled' })).items.map((i) => i.id), ['list-3']);
    assert.deepEqual((await listInstances(pool, { name: 'branchy' })).items.map((i) => i.id), ['list-b']);
    await assert.rejects(listInstances(pool, { cursor: 'garbage' }), ValidationError);

    assert.equal(await deleteInstance(pool, 'list-3'), true);
    assert.equal(await loadInstance(pool, 'list-3'), null);
    assert.equal(await deleteInstance(pool, 'list-3'), false);
    assert.deepEqual(await listHistory(pool, 'list-3'), []);
  });

  it('records who paused and cancelled, and why; pause holds ready tasks, resume releases them; finished instances refuse both', async () => {
    await startInstance(pool, { name: 'branchy', id: 'sig-1' });
    const signals = async () =>
      (await pool.query(`select kind, reason, requested_by as "requestedBy" from baton.signals where workflow_id = 'sig-1' order by kind`)).rows;

    assert.equal(await checkAndPause(pool, 'sig-1', 'ops'), 'running');
    assert.deepEqual(await signals(), [{ kind: 'pause', reason: null, requestedBy: 'ops' }]);
    assert.equal((await loadInstance(pool, 'sig-1'))!.status, 'paused');
    assert.deepEqual(await claimTasks(pool, { workerId: 'w', limit: 10, tags: [], hashes: hashes(), ttlMs: 60_000 }), [], 'nothing is claimed while paused');
    assert.equal(await checkAndPause(pool, 'sig-1'), 'paused', 'pausing twice is a no-op');
    assert.equal(await unpause(pool, 'sig-1'), 'paused');
    assert.deepEqual(await signals(), [], 'resume clears the pause request');
    assert.equal((await claimTasks(pool, { workerId: 'w', limit: 10, tags: [], hashes: hashes(), ttlMs: 60_000 })).length, 2);
    assert.equal(await unpause(pool, 'sig-1'), 'running', 'resuming a running instance is a no-op');

    assert.equal(await checkAndCancel(pool, 'sig-1', { reason: 'customer asked', requestedBy: 'someone' }), 'running');
    const wf = (await loadInstance(pool, 'sig-1'))!;
    assert.deepEqual([wf.error!.reason, wf.error!.requestedBy, wf.error!.message], ['customer asked', 'someone', 'cancelled: customer asked']);
    assert.deepEqual(await signals(), [{ kind: 'cancel', reason: 'customer asked', requestedBy: 'someone' }]);
    assert.equal(await checkAndCancel(pool, 'sig-1', { reason: 'again', requestedBy: 'another' }), 'cancelled', 'cancelling twice is a no-op');
    assert.deepEqual(await signals(), [{ kind: 'cancel', reason: 'customer asked', requestedBy: 'someone' }], 'the first request stands');
    assert.equal((await loadInstance(pool, 'sig-1'))!.error!.reason, 'customer asked');
    await assert.rejects(checkAndPause(pool, 'sig-1'), (e: unknown) => e instanceof InvalidStateError && e.state === 'cancelled');
    await assert.rejects(unpause(pool, 'sig-1'), (e: unknown) => e instanceof InvalidStateError && e.state === 'cancelled' && /already cancelled/.test(e.message));
    await assert.rejects(checkAndCancel(pool, 'nope'), NotFoundError);
  });

  it('retention deletes finished instances past it with all their rows, and keeps running ones; it runs once per period', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'old-done' });
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'old-running' });
    await checkAndPause(pool, 'old-done', 'y');
    await sendEvent(pool, 'old-done', 'late', {});
    await checkAndCancel(pool, 'old-done');
    await pool.query(`update baton.workflows set created_at = now() - interval '2 days', finished_at = case when finished_at is null then null else now() - interval '2 days' end`);
    assert.equal(await prune(pool, 86_400_000), 1);
    for (const table of ['workflows where id', 'tasks where workflow_id', 'history where workflow_id', 'signals where workflow_id']) {
      const { rows } = await pool.query(`select count(*)::int as n from baton.${table} = 'old-done'`);
      assert.equal(rows[0].n, 0, `no ${table.split(' ')[0]} rows left`);
    }
    assert.ok(await loadInstance(pool, 'old-running'), 'a running instance is kept, however old');
    await pool.query(`delete from baton.stats where key = 'prune_runs'`);
    assert.equal(await pruneIsDue(pool, 60_000), true);
    assert.equal(await pruneIsDue(pool, 60_000), false, 'not again within the period');
  });

  it('the claim statement reads the ready index in aging order, with no sort over tasks (EXPLAIN)', async () => {
    await enqueueMany(pool, 5_000, { prefix: 'plan-' });
    await pool.query('analyze baton.tasks');
    const client = await pool.connect();
    const plans: string[] = [];
    const onNotice = (n: { message?: string }) => plans.push(n.message ?? '');
    client.on('notice', onNotice);
    try {
      await client.query(`load 'auto_explain'`);
      await client.query(`set auto_explain.log_min_duration = 0`);
      await client.query(`set auto_explain.log_nested_statements = on`);
      await client.query(`set client_min_messages = log`);
      const claimed = await claimTasks(client, { workerId: 'w', limit: 24, tags: [], hashes: hashes(), ttlMs: 60_000 });
      assert.equal(claimed.length, 24);
    } finally {
      client.off('notice', onNotice);
      await client.query('reset client_min_messages');
      client.release(true);
    }
    // The common claim is one statement that scans, locks and updates (claim_tasks' shortcut); the
    // general path (find_available_tasks' arrays) does not run.
    const plan = plans.find((p) => p.includes('tag_sets') && p.includes('LockRows') && /Update on tasks/.test(p));
    assert.ok(plan, `the claim's plan was logged:\n${plans.join('\n---\n')}`);
    assert.ok(!plans.some((p) => p.includes('array_agg(c.workflow_id)')), 'the general path did not run');
    assert.match(plan, /Index Scan using tasks_ready_idx on tasks/);
    const tasksSort = /Sort[\s\S]*?->\s+(Seq Scan|Bitmap Heap Scan) on tasks/;
    assert.doesNotMatch(plan, tasksSort, plan);
    assert.doesNotMatch(plan, /Seq Scan on tasks/, plan);
    if (process.env.BATON_SHOW_PLAN) console.log(plan);
  });
});
