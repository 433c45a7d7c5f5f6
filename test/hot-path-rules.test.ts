/**
 * Rules of the hot path that a rewrite of the SQL could break without any
 * other test noticing: every way a task becomes ready gives it
 * ready_key = (when it became ready) + priority * aging interval, whichever
 * function did it (a single start, a bulk start, a step a commit schedules,
 * a retry committed by a worker on either path of the commit, a timer, a
 * release), and the claim hands tasks out in that order.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import { claimTasks, commitBatch, promoteDue, releaseClaims, retryInstance, startInstance, startMany, type CommitBatch } from '../src/store/index.ts';
import { taskWorkflow } from '../src/workflow/index.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, noop, noopWorkflow, register } from './support/fixtures.ts';

const AGING_S = 60;

/** Seconds between each task's ready_key and the moment it became ready (`since`), by instance id. */
async function agingOffsets(pool: pg.Pool, since: 'available_at' | 'updated_at'): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ id: string; offset: number }>(
    `select workflow_id as id, extract(epoch from ready_key - ${since})::float8 as offset from baton.tasks where status = 'ready'`,
  );
  return Object.fromEntries(rows.map((r) => [r.id, Math.round(r.offset * 1000) / 1000]));
}

/** A retry that is ready again at once: what a worker commits after a failed attempt with no back-off. */
function retryNow(id: string, epoch: number, version: number): CommitBatch {
  return {
    items: [{ wf: id, key: '0', epoch, status: 'ready', paused: false, output: null, error: { name: 'Error', message: 'boom' }, delayMs: 0, eventId: null }],
    instances: [{ id, parent: null, version, status: 'running', state: { par: {}, done: 0 }, bump: 1, done: 0, output: null, error: null, step: null, finished: false, after: false }],
    history: [{ wf: id, version: version + 1, kind: 'retry', detail: { key: '0' } }],
    schedule: [],
  };
}

describe('hot path rules', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  const hashes = [noopWorkflow.hash];
  const claimAll = async (worker = 'w') => {
    const order: string[] = [];
    for (;;) {
      const [t] = await claimTasks(pool, { workerId: worker, limit: 1, tags: [], hashes, ttlMs: 60_000 });
      if (!t) return order;
      order.push(t.workflowId);
    }
  };

  before(async () => {
    pool = batonPool(db.url, { agingIntervalMs: AGING_S * 1000 });
    await register(pool, taskWorkflow(noop));
  });
  after(async () => {
    await pool.end();
  });
  beforeEach(async () => {
    await pool.query('truncate baton.workflows, baton.tasks, baton.history, baton.signals, baton.events, baton.stats');
  });

  it('a single start puts priority into ready_key, and the claim follows it', async () => {
    for (const [id, priority] of [['p3', 3], ['p0', 0], ['p2', 2], ['none', null], ['p1', 1]] as const) {
      await startInstance(pool, { name: 'noop', kind: 'task', id, priority });
    }
    assert.deepEqual(await agingOffsets(pool, 'available_at'), { p3: 180, p0: 0, p2: 120, none: 0, p1: 60 });
    assert.deepEqual(await claimAll(), ['p0', 'none', 'p1', 'p2', 'p3']);
  });

  it('a bulk start puts priority into ready_key, and the claim follows it', async () => {
    const byPriority = new Map<number, string[]>();
    for (const priority of [2, 0, 1]) byPriority.set(priority, (await startMany(pool, { name: 'noop', kind: 'task', inputs: [String(priority), String(priority)], priority })).map((s) => s.id));
    const offsets = await agingOffsets(pool, 'available_at');
    for (const [priority, ids] of byPriority) for (const id of ids) assert.equal(offsets[id], priority * AGING_S, `priority ${priority}`);
    const order = await claimAll();
    assert.deepEqual(order, [...byPriority.get(0)!, ...byPriority.get(1)!, ...byPriority.get(2)!]);
  });

  it('a retry committed ready again keeps its priority in ready_key', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'retry', priority: 4 });
    const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes, ttlMs: 60_000 });
    assert.equal((await commitBatch(pool, 'w', retryNow('retry', t!.epoch, t!.workflow.version))).results.length, 0, 'applied');
    assert.deepEqual(await agingOffsets(pool, 'updated_at'), { retry: 4 * AGING_S });
  });

  it('a retry committed on the slow path (a child instance\'s batch) keeps its priority too', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'mom' });
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'kid', priority: 3 });
    await pool.query(`update baton.tasks set status = 'waiting', ready_key = null, available_at = null where workflow_id = 'mom'`);
    await pool.query(`update baton.workflows set parent_id = 'mom', parent_key = '0' where id = 'kid'`);
    const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes, ttlMs: 60_000 });
    assert.equal(t!.workflowId, 'kid');
    const batch = retryNow('kid', t!.epoch, t!.workflow.version);
    batch.instances[0]!.parent = 'mom'; // a batch with a parent to lock takes the commit's slow path
    assert.equal((await commitBatch(pool, 'w', batch)).results.length, 0, 'applied');
    assert.deepEqual(await agingOffsets(pool, 'updated_at'), { kid: 3 * AGING_S });
  });

  it('a step that a commit schedules gets its priority in ready_key', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'two-steps', priority: 2 });
    const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes, ttlMs: 60_000 });
    const version = t!.workflow.version;
    const batch: CommitBatch = {
      items: [{ wf: 'two-steps', key: '0', epoch: t!.epoch, status: 'completed', paused: false, output: 1, error: null, delayMs: null, eventId: null }],
      instances: [{ id: 'two-steps', parent: null, version, status: 'running', state: { par: {}, done: 1 }, bump: 1, done: 1, output: null, error: null, step: 'noop', finished: false, after: false }],
      history: [{ wf: 'two-steps', version: version + 1, kind: 'completed', detail: { key: '0' } }],
      schedule: [{ wf: 'two-steps', key: '1', kind: 'task', name: 'noop', hash: noopWorkflow.hash, input: 1, priority: 2, tags: [], maxAttempts: 1, delayMs: null, timeoutMs: null, held: false, child: null }],
    };
    assert.equal((await commitBatch(pool, 'w', batch)).results.length, 0, 'applied');
    assert.deepEqual(await agingOffsets(pool, 'available_at'), { 'two-steps': 2 * AGING_S });
  });

  it('a retried instance\'s failed step is ready again with its priority in ready_key', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'retried', priority: 3 });
    const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes, ttlMs: 60_000 });
    const version = t!.workflow.version;
    const error = { name: 'Error', message: 'boom', step: '0' };
    const failed: CommitBatch = {
      items: [{ wf: 'retried', key: '0', epoch: t!.epoch, status: 'failed', paused: false, output: null, error, delayMs: null, eventId: null }],
      instances: [{ id: 'retried', parent: null, version, status: 'failed', state: { par: {}, done: 0 }, bump: 1, done: 0, output: null, error, step: null, finished: true, after: true }],
      history: [{ wf: 'retried', version: version + 1, kind: 'failed', detail: { key: '0' } }],
      schedule: [],
    };
    assert.equal((await commitBatch(pool, 'w', failed)).results.length, 0, 'applied');
    await retryInstance(pool, 'retried');
    assert.deepEqual(await agingOffsets(pool, 'updated_at'), { retried: 3 * AGING_S });
  });

  it('a timer that becomes due, and a released claim, keep priority in ready_key', async () => {
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'timer', priority: 2, runAt: new Date(Date.now() + 60_000) });
    await pool.query(`update baton.tasks set available_at = now() - interval '1 second' where workflow_id = 'timer'`);
    assert.equal(await promoteDue(pool), 1);
    assert.deepEqual(await agingOffsets(pool, 'available_at'), { timer: 2 * AGING_S });

    const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes, ttlMs: 60_000 });
    assert.equal(await releaseClaims(pool, 'w', [{ workflowId: 'timer', taskKey: t!.taskKey, epoch: t!.epoch, notStarted: true }]), 1);
    assert.deepEqual(await agingOffsets(pool, 'available_at'), { timer: 2 * AGING_S }, 'its place in line is kept');

    // The claim promotes due timers itself before it looks for ready tasks.
    await startInstance(pool, { name: 'noop', kind: 'task', id: 'timer-2', priority: 5, runAt: new Date(Date.now() + 60_000) });
    await pool.query(`update baton.tasks set available_at = now() - interval '1 second' where workflow_id = 'timer-2'`);
    assert.deepEqual(await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes: ['no-such-definition'], ttlMs: 60_000 }), []);
    assert.deepEqual(await agingOffsets(pool, 'available_at'), { timer: 2 * AGING_S, 'timer-2': 5 * AGING_S });
  });

  it('isolation: a task one lost lease from failing is claimed only into a free isolated slot, one at a time', async () => {
    for (const id of ['plain-1', 'suspect-1', 'suspect-2', 'plain-2']) await startInstance(pool, { name: 'noop', kind: 'task', id });
    await pool.query(`update baton.tasks set lease_losses = 2 where workflow_id like 'suspect-%'`);
    const claim = (isolatedSlots: number) =>
      claimTasks(pool, { workerId: 'w', limit: 10, tags: [], hashes, ttlMs: 60_000, isolateFrom: 2, isolatedSlots });
    assert.deepEqual((await claim(0)).map((t) => t.workflowId).sort(), ['plain-1', 'plain-2'], 'no isolated slot: no suspect');
    const next = await claim(1);
    assert.equal(next.length, 1, 'one isolated slot: one suspect, however many are ready');
    assert.match(next[0]!.workflowId, /^suspect-/);
  });
});
