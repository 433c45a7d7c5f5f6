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
  startInstance,
  type ClaimedTask,
} from '../src/store/index.ts';
import { Committer, type Settlement } from '../src/worker/committer.ts';
import { HeldTask, type Outcome } from '../src/worker/held.ts';
import { defineTask, defineWorkflow, type Workflow } from '../src/workflow/index.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, noop, noopWorkflow, register } from './support/fixtures.ts';

const branchy = defineWorkflow('branchy').parallel([noop, defineTask('other', async () => 2)]).build();
const defs = new Map<string, Workflow>([noopWorkflow, branchy].map((w) => [w.hash, w]));

describe('commit path (planner, committer, baton.commit)', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;

  before(async () => {
    pool = batonPool(db.url);
    await register(pool, noopWorkflow, branchy);
  });
  after(async () => {
    await pool.end();
  });

  const claim = async (workerId: string, limit = 1) =>
    claimTasks(pool, { workerId, limit, tags: [], hashes: [...defs.keys()], ttlMs: 60_000 });

  /** Commit outcomes as a worker does: its committer plans them, commits, and plans again from the fresh snapshot on a conflict. */
  async function commitAs(workerId: string, finished: { task: ClaimedTask; outcome: Outcome }[]): Promise<{ settled: Settlement[]; conflicts: number }> {
    const settled: Settlement[] = [];
    const errors: unknown[] = [];
    const committer = new Committer({
      pool,
      workerId,
      windowMs: 1_000,
      maxBatch: 100,
      maxInFlight: 1,
      log: silentLogger,
      onSettled: (_f, how) => settled.push(how),
      onError: (error) => errors.push(error),
    });
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
});
