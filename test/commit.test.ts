/**
 * The worker's write path, below the worker: claimed tasks, their outcomes,
 * the worker's own planner and committer (worker/plan.ts, worker/committer.ts)
 * and baton.commit. Checkpoints, task results and failed attempts are written
 * here and nowhere else.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import { serializeError } from '../src/errors.ts';
import { silentLogger } from '../src/log.ts';
import {
  checkAndPause,
  claimTasks,
  commitBatch,
  type CommitBatch,
  listHistory,
  listTasks,
  loadInstance,
  loadTaskResult,
  sendEvent,
  startInstance,
  type ClaimedTask,
} from '../src/store/index.ts';
import { wakeBufferedEvents } from '../src/store/maintenance.ts';
import { getStats } from '../src/store/workers.ts';
import { Committer, type Settlement } from '../src/worker/committer.ts';
import { HeldTask, type Outcome } from '../src/worker/held.ts';
import { planBatch } from '../src/worker/plan.ts';
import { defineTask, defineWorkflow, type Workflow } from '../src/workflow/index.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, noop, noopWorkflow, register } from './support/fixtures.ts';

const branchy = defineWorkflow('branchy').parallel([noop, defineTask('other', async () => 2)]).build();
const pairWait = defineWorkflow('pair-events').parallel([(f) => f.waitForEvent('e', { timeoutMs: 600_000 }), (f) => f.waitForEvent('e', { timeoutMs: 600_000 })]).build();
const defs = new Map<string, Workflow>([noopWorkflow, branchy, pairWait].map((w) => [w.hash, w]));

describe('commit path (planner, committer, baton.commit)', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;

  before(async () => {
    pool = batonPool(db.url);
    await register(pool, noopWorkflow, branchy, pairWait);
  });
  after(async () => {
    await pool.end();
  });

  const claim = async (workerId: string, limit = 1) =>
    claimTasks(pool, { workerId, limit, tags: [], hashes: [...defs.keys()], ttlMs: 60_000 });

  /** Late results refused so far (baton.stats). */
  const refusedSoFar = async () => Number((await getStats(pool)).refused_results ?? 0);

  /** A worker's committer, one commit in flight, recording what it settled and the errors it met. */
  const committerOf = (workerId: string, windowMs: number, settled: Settlement[], errors: unknown[]) =>
    new Committer({
      pool,
      workerId,
      windowMs,
      maxBatch: 100,
      maxInFlight: 1,
      log: silentLogger,
      onSettled: (_f, how) => settled.push(how),
      onError: (error) => errors.push(error),
    });

  /** Commit outcomes as a worker does: its committer plans them, commits, and plans again from the fresh snapshot on a conflict. */
  async function commitAs(workerId: string, finished: { task: ClaimedTask; outcome: Outcome }[]): Promise<{ settled: Settlement[]; conflicts: number }> {
    const settled: Settlement[] = [];
    const errors: unknown[] = [];
    const committer = committerOf(workerId, 1_000, settled, errors);
    for (const { task, outcome } of finished) committer.add({ held: new HeldTask(task, defs.get(task.definitionHash)!, Date.now() + 60_000), outcome });
    await committer.drain();
    if (errors.length > 0) throw errors[0];
    return { settled, conflicts: committer.stats().conflicts };
  }

  it('a checkpoint writes the state, the metadata and one history row; one computed from an old version writes nothing', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'cp-1' });
    const [t] = await claim('w');
    assert.deepEqual(await commitAs('w', [{ task: t!, outcome: { kind: 'completed', output: { ok: true } } }]), { settled: ['applied'], conflicts: 0 });
    const done = (await loadInstance(pool, 'cp-1'))!;
    assert.deepEqual([done.status, done.output, done.version, done.completedTaskCount, done.currentStep], ['completed', { ok: true }, 2, 1, null]);
    assert.ok(done.finishedAt instanceof Date);
    assert.deepEqual((await listHistory(pool, 'cp-1')).map((h) => [h.version, h.kind]), [[1, 'started'], [2, 'completed']]);

    // The instance moves on (a pause) after the claim: a commit computed from the claim's snapshot is a conflict.
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'cp-2' });
    const [u] = await claim('w');
    await checkAndPause(pool, 'cp-2');
    const before = await loadInstance(pool, 'cp-2');
    const stale: CommitBatch = {
      items: [{ wf: 'cp-2', key: '0', epoch: u!.epoch, status: 'completed', paused: false, output: 1, error: null, delayMs: null, eventId: null }],
      instances: [{ id: 'cp-2', parent: null, version: u!.workflow.version, status: 'completed', state: { par: {}, done: 1 }, bump: 1, done: 1, output: 1, error: null, step: null, finished: true, after: false }],
      history: [{ wf: 'cp-2', version: u!.workflow.version + 1, kind: 'completed', detail: { key: '0' } }],
      schedule: [],
    };
    const { results } = await commitBatch(pool, 'w', stale);
    assert.deepEqual(results, [{ result: 'conflict', workflowId: 'cp-2', status: 'paused', state: before!.state, version: 2 }]);
    assert.deepEqual(await loadInstance(pool, 'cp-2'), before, 'nothing written');
    assert.equal((await listTasks(pool, 'cp-2'))[0]!.status, 'running');
    assert.deepEqual((await listHistory(pool, 'cp-2')).map((h) => h.kind), ['started', 'paused']);
  });

  it('one batch: a stale attempt of an instance at its version is refused alone, a conflicting instance is reported, the rest applies', async () => {
    // baton.commit's fast path writes each instance and fences each attempt in the writing UPDATE; a fence that fails
    // after its instance was written must undo that write (and the slow path then sorts the batch out).
    for (const id of ['fb-ok', 'fb-stale', 'fb-conflict']) await startInstance(pool, { name: 'noop', kind: 'task', id });
    const tasks = await claim('w', 3);
    const byId = new Map(tasks.map((t) => [t.workflowId, t]));
    assert.deepEqual([...byId.keys()].sort(), ['fb-conflict', 'fb-ok', 'fb-stale']);
    // fb-stale: its lease expired and the claim went to another worker. The zombie commits at the instance's
    // current version (as a worker does once its conflict was planned again), so only the fence stops it.
    await pool.query(`update baton.tasks set lease_expires_at = now() - interval '1 second' where workflow_id = 'fb-stale'`);
    await pool.query(`select baton.reclaim_expired(5, 100)`);
    const [again] = await claim('w2');
    assert.equal(again!.workflowId, 'fb-stale');
    const version = new Map(tasks.map((t) => [t.workflowId, t.workflow.version]));
    version.set('fb-stale', again!.workflow.version);
    // fb-conflict: its instance moved on (paused) after the claim.
    await checkAndPause(pool, 'fb-conflict');
    const refused0 = await refusedSoFar();
    const before = { stale: await loadInstance(pool, 'fb-stale'), conflict: await loadInstance(pool, 'fb-conflict') };
    const batch = (ids: string[]): CommitBatch => ({
      items: ids.map((id) => ({ wf: id, key: '0', epoch: byId.get(id)!.epoch, status: 'completed', paused: false, output: id, error: null, delayMs: null, eventId: null })),
      instances: ids.map((id) => ({ id, parent: null, version: version.get(id)!, status: 'completed', state: { par: {}, done: 1 }, bump: 1, done: 1, output: id, error: null, step: null, finished: true, after: false })),
      history: ids.map((id) => ({ wf: id, version: version.get(id)! + 1, kind: 'completed', detail: { key: '0' } })),
      schedule: [],
    });

    const { results } = await commitBatch(pool, 'w', batch(['fb-conflict', 'fb-ok', 'fb-stale']));
    const got = results.map((r) => [r.result, r.workflowId]).sort();
    assert.deepEqual(got, [['conflict', 'fb-conflict'], ['conflict', 'fb-stale'], ['refused', 'fb-stale']]);
    assert.equal((await loadInstance(pool, 'fb-ok'))!.status, 'completed');
    assert.deepEqual(await loadInstance(pool, 'fb-stale'), before.stale, 'the stale attempt wrote nothing to its instance');
    assert.deepEqual(await loadInstance(pool, 'fb-conflict'), before.conflict);
    const stale = (await listTasks(pool, 'fb-stale'))[0]!;
    assert.deepEqual([stale.status, stale.epoch], ['running', again!.epoch], 'the new holder keeps its claim');
    assert.deepEqual((await listHistory(pool, 'fb-stale')).map((h) => h.kind), ['started', 'lease_lost']);
    assert.equal(await refusedSoFar(), refused0 + 1, 'the refused attempt is counted once');

    // A batch of one conflicting instance whose attempt was also fenced out: both are said (the fast path's own report).
    await pool.query(`update baton.tasks set lease_expires_at = now() - interval '1 second' where workflow_id = 'fb-conflict'`);
    await pool.query(`select baton.reclaim_expired(5, 100)`);
    const { results: second } = await commitBatch(pool, 'w', batch(['fb-conflict']));
    assert.deepEqual(second.map((r) => [r.result, r.workflowId]).sort(), [['conflict', 'fb-conflict'], ['refused', 'fb-conflict']]);
    assert.equal(await refusedSoFar(), refused0 + 2);
    await pool.query(`select baton.delete_instances(array['fb-ok', 'fb-stale', 'fb-conflict'])`); // the tests below claim whatever is ready
  });

  it('refuses a worker\'s own older attempt: the epoch fences it, not the worker id', async () => {
    // The worker lost its lease (a long GC pause, say), the reconciler took the claim back, and the same
    // worker claimed the task again. The first attempt's result then arrives: same worker, same task,
    // the instance's current version; only its epoch is old.
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'own-stale' });
    const [first] = await claim('w');
    await pool.query(`update baton.tasks set lease_expires_at = now() - interval '1 second' where workflow_id = 'own-stale'`);
    await pool.query(`select baton.reclaim_expired(5, 100)`);
    const [second] = await claim('w');
    assert.ok(first && second && second.epoch > first.epoch);
    const completion = (epoch: number, output: string): CommitBatch => ({
      items: [{ wf: 'own-stale', key: '0', epoch, status: 'completed', paused: false, output, error: null, delayMs: null, eventId: null }],
      instances: [{ id: 'own-stale', parent: null, version: second.workflow.version, status: 'completed', state: { par: {}, done: 1 }, bump: 1, done: 1, output, error: null, step: null, finished: true, after: false }],
      history: [{ wf: 'own-stale', version: second.workflow.version + 1, kind: 'completed', detail: { key: '0' } }],
      schedule: [],
    });
    const before = await loadInstance(pool, 'own-stale');
    const { results } = await commitBatch(pool, 'w', completion(first.epoch, 'old'));
    assert.ok(results.some((r) => r.result === 'refused' && r.workflowId === 'own-stale'), JSON.stringify(results));
    assert.deepEqual(await loadInstance(pool, 'own-stale'), before, 'the old attempt wrote nothing');
    assert.deepEqual((await commitBatch(pool, 'w', completion(second.epoch, 'new'))).results, [], 'the current attempt commits');
    assert.deepEqual([(await loadInstance(pool, 'own-stale'))!.status, (await loadInstance(pool, 'own-stale'))!.output], ['completed', 'new']);
  });

  it('answers a commit sent again after it applied (its reply lost with the connection) with duplicate, and counts nothing refused', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'resent-1' });
    const [task] = await claim('w');
    assert.equal(task!.workflowId, 'resent-1');
    const batch = planBatch('w', [{ held: new HeldTask(task!, noopWorkflow, Date.now() + 60_000), outcome: { kind: 'completed', output: 7 } }], new Map());
    assert.deepEqual((await commitBatch(pool, 'w', batch)).results, []);
    const before = await refusedSoFar();
    const after = await loadInstance(pool, 'resent-1');
    const { results } = await commitBatch(pool, 'w', batch);
    assert.deepEqual(
      results.map((r) => [r.result, r.workflowId]).sort(),
      [['conflict', 'resent-1'], ['duplicate', 'resent-1']],
      'the instance moved on (conflict) and the attempt is known as already applied',
    );
    assert.equal(await refusedSoFar(), before, 'a duplicate is not a refused result');
    assert.deepEqual(await loadInstance(pool, 'resent-1'), after, 'the second send wrote nothing');
  });

  it('saves results of parallel branches finishing at once on two workers without overwriting each other', async () => {
    await startInstance(pool, { name: 'branchy', id: 'par-1', input: 'x' });
    const [[t1], [t2]] = await Promise.all([claim('w1'), claim('w2')]);
    const out = (t: ClaimedTask) => `from ${t.taskKey}`;
    const [r1, r2] = await Promise.all([
      commitAs('w1', [{ task: t1!, outcome: { kind: 'completed', output: out(t1!) } }]),
      commitAs('w2', [{ task: t2!, outcome: { kind: 'completed', output: out(t2!) } }]),
    ]);
    assert.deepEqual([...r1.settled, ...r2.settled], ['applied', 'applied']);
    assert.equal(r1.conflicts + r2.conflicts, 1, 'the second commit met the first one\'s version and was planned again');
    const results = await Promise.all(['0/b0', '0/b1'].map((k) => loadTaskResult(pool, 'par-1', k)));
    assert.deepEqual(results.map((r) => [r!.status, r!.output]), [['completed', 'from 0/b0'], ['completed', 'from 0/b1']]);
    const wf = (await loadInstance(pool, 'par-1'))!;
    assert.deepEqual([wf.status, wf.output, wf.version], ['completed', ['from 0/b0', 'from 0/b1'], 3], 'the join has both outputs, in branch order');
    assert.equal((await loadTaskResult(pool, 'par-1', '0/b1'))!.status, 'completed', 'kept after the instance finished');
  });

  it("a worker's branches claimed together and committed one after the other: the second is planned from the first commit's snapshot, not conflicting", async () => {
    await startInstance(pool, { name: 'branchy', id: 'par-2', input: 'x' });
    const [t1, t2] = await claim('w3', 2);
    assert.equal(t2!.workflow.version, t1!.workflow.version, 'both carry the snapshot of their claim');
    const settled: Settlement[] = [];
    const errors: unknown[] = [];
    const committer = committerOf('w3', 1, settled, errors);
    const add = (t: ClaimedTask) =>
      committer.add({ held: new HeldTask(t, defs.get(t.definitionHash)!, Date.now() + 60_000), outcome: { kind: 'completed', output: t.taskKey } });
    add(t1!);
    for (const until = Date.now() + 5_000; settled.length === 0 && errors.length === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(settled, ['applied'], 'the first branch is committed on its own');
    add(t2!);
    await committer.drain();
    if (errors.length > 0) throw errors[0];
    assert.deepEqual(settled, ['applied', 'applied']);
    assert.deepEqual(committer.stats(), { ...committer.stats(), calls: 2, items: 2, conflicts: 0 }, 'two commits, each attempt sent once');
    const wf = (await loadInstance(pool, 'par-2'))!;
    assert.deepEqual([wf.status, wf.output, wf.version], ['completed', ['0/b0', '0/b1'], 3]);
  });

  it('records every failed attempt with message, stack, worker and attempt number', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'err-1' });
    await pool.query(`update baton.tasks set max_attempts = 3 where workflow_id = 'err-1'`);
    const [first] = await claim('w7');
    const declined = serializeError(new Error('card declined'));
    await commitAs('w7', [{ task: first!, outcome: { kind: 'error', error: declined, final: false, delayMs: 0 } }]);
    const [second] = await claim('w8');
    assert.equal(second!.attempts, 2, 'the retry is ready again at once');
    await commitAs('w8', [{ task: second!, outcome: { kind: 'error', error: serializeError(new Error('again')), final: true, delayMs: 0 } }]);

    const h = (await listHistory(pool, 'err-1')).filter((e) => e.kind === 'retry' || e.kind === 'task_failed');
    assert.deepEqual(h.map((e) => [e.version, e.kind, e.detail.attempt, e.detail.worker, (e.detail.error as { message: string }).message]), [
      [2, 'retry', 1, 'w7', 'card declined'],
      [3, 'task_failed', 2, 'w8', 'again'],
    ]);
    assert.match(String((h[0]!.detail.error as { stack: string }).stack), /card declined\n\s+at /);
    const [task] = await listTasks(pool, 'err-1');
    assert.deepEqual([task!.status, task!.attempts, task!.lastError!.message, task!.lastFailedWorker], ['failed', 2, 'again', 'w8']);
    const wf = (await loadInstance(pool, 'err-1'))!;
    assert.deepEqual([wf.status, wf.error!.message], ['failed', 'again']);
  });

  it('holds a retry back for its back-off: not claimable until then, then ready', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'backoff-1' });
    await pool.query(`update baton.tasks set max_attempts = 3 where workflow_id = 'backoff-1'`);
    const [first] = await claim('w9');
    const before = Date.now();
    await commitAs('w9', [{ task: first!, outcome: { kind: 'error', error: serializeError(new Error('busy')), final: false, delayMs: 60_000 } }]);
    const after = Date.now();
    const [task] = await listTasks(pool, 'backoff-1');
    assert.equal(task!.status, 'waiting');
    const at = task!.availableAt!.getTime();
    // The server's clock sets it: allow for the two clocks and the round trip.
    assert.ok(at >= before + 60_000 - 1_000 && at <= after + 60_000 + 1_000, `available ${at - after} ms after the commit, expected about 60,000`);
    assert.deepEqual(await claim('w9', 10), [], 'not claimable during its back-off');
    // Its back-off over (moved into the past here): the claim's timer pass makes it ready, and it is claimed.
    await pool.query(`update baton.tasks set available_at = now() - interval '1 millisecond' where workflow_id = 'backoff-1'`);
    const [second] = await claim('w9');
    assert.deepEqual([second?.workflowId, second?.attempts], ['backoff-1', 2]);
    await commitAs('w9', [{ task: second!, outcome: { kind: 'completed', output: 1 } }]);
  });

  describe('waitForEvent steps of one name (each event to one wait, oldest first)', () => {
    const consume = (t: ClaimedTask): Outcome => ({ kind: 'completed', output: t.event!.payload, eventId: t.event!.id });
    const buffered = async (id: string) =>
      (await pool.query(`select payload from baton.events where workflow_id = $1 order by id`, [id])).rows.map((r) => r.payload as string);

    it('waits claimed one at a time take the oldest events not held by another wait; one sent after the claims stays', async () => {
      for (const v of ['a', 'b']) await sendEvent(pool, 'ev-1', 'e', v);
      await startInstance(pool, { name: 'pair-events', id: 'ev-1' });
      const [w1] = await claim('w1');
      const [w2] = await claim('w2'); // w1 has not committed: its event is held, not free
      assert.deepEqual([w1!.event?.payload, w2!.event?.payload], ['a', 'b']);
      await sendEvent(pool, 'ev-1', 'e', 'c');
      const r2 = await commitAs('w2', [{ task: w2!, outcome: consume(w2!) }]);
      const r1 = await commitAs('w1', [{ task: w1!, outcome: consume(w1!) }]);
      assert.deepEqual([...r2.settled, ...r1.settled], ['applied', 'applied']);
      const wf = (await loadInstance(pool, 'ev-1'))!;
      assert.deepEqual([wf.status, wf.output], ['completed', ['a', 'b']]);
      assert.deepEqual(await buffered('ev-1'), ['c'], 'each consumed once; the third stays');
    });

    it('the reconciler\'s safety net wakes a wait left waiting beside a free buffered event, and no other', async () => {
      for (const id of ['net-1', 'net-2']) {
        await startInstance(pool, { name: 'pair-events', id });
        for (const t of await claim('w1', 2)) await commitAs('w1', [{ task: t, outcome: { kind: 'rewait' } }]);
      }
      const statuses = async (id: string) => (await listTasks(pool, id)).map((t) => t.status).sort();
      assert.deepEqual([await statuses('net-1'), await statuses('net-2')], [['waiting', 'waiting'], ['waiting', 'waiting']]);
      // An event that arrived without waking anybody (what send_event and scheduling rule out): only net-1 has one.
      await pool.query(`insert into baton.events (workflow_id, name, payload) values ('net-1', 'e', '"x"'), ('net-2', 'other', '"y"')`);
      assert.equal(await wakeBufferedEvents(pool), 2);
      assert.deepEqual([await statuses('net-1'), await statuses('net-2')], [['ready', 'ready'], ['waiting', 'waiting']]);
      assert.equal(await wakeBufferedEvents(pool), 0, 'nothing left to wake');
      await pool.query(`select baton.delete_instances(array['net-1', 'net-2'])`);
    });

    it('a wait that lost its lease gets its event again; a wait without one rewaits, and is woken when a free one came meanwhile', async () => {
      await sendEvent(pool, 'ev-2', 'e', 'a');
      await startInstance(pool, { name: 'pair-events', id: 'ev-2' });
      const claimed = await claim('w1', 2);
      const holder = claimed.find((t) => t.event)!;
      const empty = claimed.find((t) => !t.event)!;
      assert.deepEqual([claimed.length, holder.event!.payload], [2, 'a'], 'one event, two waits: the second gets none');
      // The empty wait re-waits: 'a' is held, so it sleeps until an event comes.
      await commitAs('w1', [{ task: empty, outcome: { kind: 'rewait' } }]);
      assert.equal((await loadTaskResult(pool, 'ev-2', empty.taskKey))!.status, 'waiting');
      // The holder's worker dies: its lease expires and the task is ready again; the next attempt takes 'a' again.
      await pool.query(`update baton.tasks set lease_expires_at = now() - interval '1 second' where workflow_id = 'ev-2' and task_key = $1`, [holder.taskKey]);
      await pool.query(`select * from baton.reclaim_expired(5)`);
      const [again] = await claim('w2');
      assert.deepEqual([again!.taskKey, again!.event?.payload], [holder.taskKey, 'a'], 'a lost lease does not lose the event');
      assert.deepEqual((await commitAs('w1', [{ task: holder, outcome: consume(holder) }])).settled, ['refused'], 'the first attempt is fenced out');
      // An event sent while a wait runs without one: its re-wait is made ready instead of sleeping past it.
      await pool.query(`update baton.tasks set status = 'ready', ready_key = now() where workflow_id = 'ev-2' and task_key = $1`, [empty.taskKey]);
      const [second] = await claim('w3');
      assert.equal(second!.event, null, "'a' is still held by the running attempt");
      await sendEvent(pool, 'ev-2', 'e', 'b');
      await commitAs('w3', [{ task: second!, outcome: { kind: 'rewait' } }]);
      assert.equal((await loadTaskResult(pool, 'ev-2', empty.taskKey))!.status, 'ready', "'b' is free: woken");
      await commitAs('w2', [{ task: again!, outcome: consume(again!) }]);
      const [third] = await claim('w3');
      assert.equal(third!.event?.payload, 'b');
      await commitAs('w3', [{ task: third!, outcome: consume(third!) }]);
      const wf = (await loadInstance(pool, 'ev-2'))!;
      assert.equal(wf.status, 'completed');
      assert.deepEqual([...(wf.output as string[])].sort(), ['a', 'b']);
      assert.deepEqual(await buffered('ev-2'), []);
    });

    it("refuses a wait's own older attempt when the same worker took it again after its lease was lost: the epoch fences it", async () => {
      await sendEvent(pool, 'ev-5', 'e', 'a');
      await startInstance(pool, { name: 'pair-events', id: 'ev-5' });
      const [first] = await claim('w1');
      assert.equal(first!.event?.payload, 'a');
      await pool.query(`update baton.tasks set lease_expires_at = now() - interval '1 second' where workflow_id = 'ev-5' and task_key = $1`, [first!.taskKey]);
      await pool.query(`select * from baton.reclaim_expired(5)`);
      const claimed = await claim('w1', 2);
      const again = claimed.find((t) => t.taskKey === first!.taskKey)!;
      assert.ok(again.epoch > first!.epoch, `a new claim of a wait gets a new epoch (${first!.epoch} -> ${again.epoch})`);
      assert.deepEqual([first!.attempts, again.attempts], [1, 2], 'and counts as its next attempt');
      const before = await loadInstance(pool, 'ev-5');
      assert.deepEqual((await commitAs('w1', [{ task: first!, outcome: consume(first!) }])).settled, ['refused'], 'same worker, same step: only the epoch is old');
      assert.deepEqual(await loadInstance(pool, 'ev-5'), before, 'the old attempt wrote nothing');
      assert.deepEqual(await buffered('ev-5'), ['a'], 'nor consumed the event');
      const holder = claimed.find((t) => t.event)!;
      const other = claimed.find((t) => t !== holder)!;
      await commitAs('w1', [{ task: other, outcome: { kind: 'rewait' } }]);
      assert.deepEqual((await commitAs('w1', [{ task: holder, outcome: consume(holder) }])).settled, ['applied']);
      assert.deepEqual(await buffered('ev-5'), [], 'consumed once, by the current attempt');
    });

    it('two claims at once of waits of one name take different events', async () => {
      for (const v of ['a', 'b']) await sendEvent(pool, 'ev-4', 'e', v);
      await startInstance(pool, { name: 'pair-events', id: 'ev-4' });
      const first = await pool.connect();
      try {
        await first.query('begin');
        const [w1] = await claimTasks(first, { workerId: 'w1', limit: 1, tags: [], hashes: [...defs.keys()], ttlMs: 60_000 });
        const [w2] = await claim('w2'); // while the first claim's transaction still locks its event
        await first.query('commit');
        assert.deepEqual([w1!.event?.payload, w2!.event?.payload], ['a', 'b']);
      } finally {
        first.release();
      }
    });

    it('a commit whose event is gone re-waits instead of conflicting forever', async () => {
      await sendEvent(pool, 'ev-3', 'e', 'a');
      await startInstance(pool, { name: 'pair-events', id: 'ev-3' });
      const [w] = await claim('w1');
      assert.equal(w!.event?.payload, 'a');
      await pool.query(`delete from baton.events where workflow_id = 'ev-3'`);
      const r = await commitAs('w1', [{ task: w!, outcome: consume(w!) }]);
      assert.deepEqual(r, { settled: ['applied'], conflicts: 1 });
      assert.equal((await loadTaskResult(pool, 'ev-3', w!.taskKey))!.status, 'waiting', 'not completed with an event it did not get');
      assert.equal((await loadInstance(pool, 'ev-3'))!.status, 'running');
    });
  });
});
