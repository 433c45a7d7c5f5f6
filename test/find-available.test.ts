/**
 * baton.find_available_tasks, the one definition of what a worker takes next: the claim takes its
 * rows from it (locking), a peek reads it (locking nothing), so the two give the same tasks in the
 * same order. The store's findAvailableTasks and client.findAvailableTasks are that peek.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { defineTask, ValidationError, type AvailableTask, type Client } from '../src/index.ts';
import { claimTasks, commitBatch, findAvailableTasks, type AvailableFilter, type ClaimParams, type CommitBatch } from '../src/store/index.ts';
import { taskWorkflow } from '../src/workflow/index.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, enqueueMany, fixtureClient, noopWorkflow, register } from './support/fixtures.ts';
import { ROOT } from './support/server.ts';

const gpuTask = defineTask('render', async () => 1, { tags: ['gpu'] });
const hashes = [noopWorkflow.hash, taskWorkflow(gpuTask).hash];

/** Ready tasks whose place in line is `minutes` ago: lower is earlier. */
async function readyAgo(pool: pg.Pool, order: Record<string, number>): Promise<void> {
  for (const [id, minutes] of Object.entries(order)) {
    await pool.query(`update baton.tasks set ready_key = now() - $2 * interval '1 minute' where workflow_id = $1`, [id, minutes]);
  }
}

describe('find_available_tasks: what a worker takes next', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  const claim = (p: Partial<ClaimParams> & { limit: number }) =>
    claimTasks(pool, { workerId: 'w', tags: [], hashes, ttlMs: 60_000, ...p }).then(ids);
  const peek = (f: Partial<AvailableFilter> & { limit: number }) => findAvailableTasks(pool, { workerId: 'w', tags: [], hashes, ...f }).then(ids);
  /** Claim one at a time until nothing is left: the order the claim hands tasks out. */
  const claimOneByOne = async (p: Partial<ClaimParams> = {}) => {
    const order: string[] = [];
    for (let ids = await claim({ ...p, limit: 1 }); ids.length > 0; ids = await claim({ ...p, limit: 1 })) order.push(...ids);
    return order;
  };

  before(async () => {
    pool = batonPool(db.url, { max: 10 });
    await register(pool, noopWorkflow, taskWorkflow(gpuTask));
  });
  after(async () => {
    await pool.end();
  });
  beforeEach(async () => {
    await pool.query('truncate baton.workflows, baton.tasks, baton.history, baton.signals, baton.events, baton.stats');
  });

  it('lists tasks in aging order (priority and ready time), the order the claim takes them', async () => {
    for (const [priority, prefix] of [[2, 'p2-'], [0, 'p0-'], [1, 'p1-']] as const) await enqueueMany(pool, 2, { priority, prefix });
    // One statement's tasks share a ready time: -1 before -2, by a millisecond.
    await pool.query(`update baton.tasks set ready_key = ready_key + substring(workflow_id from '[0-9]+$')::int * interval '1 ms'`);
    // An old low-priority task ages past fresh high-priority ones (60 s per priority step).
    await pool.query(`update baton.tasks set ready_key = ready_key - interval '150 seconds' where workflow_id = 'p2-2'`);
    const expected = ['p2-2', 'p0-1', 'p0-2', 'p1-1', 'p1-2', 'p2-1'];
    const rows = await findAvailableTasks(pool, { workerId: 'w', limit: 10, tags: [], hashes });
    assert.deepEqual(ids(rows), expected);
    const readyKeys = rows.map((r) => r.readyKey.getTime());
    assert.deepEqual(readyKeys, [...readyKeys].sort((a, b) => a - b), 'readyKey is a Date, ascending');
    assert.deepEqual(
      { kind: rows[1]!.kind, name: rows[1]!.name, priority: rows[1]!.priority, tags: rows[1]!.tags, hash: rows[1]!.definitionHash, attempts: rows[1]!.attempts },
      { kind: 'task', name: 'noop', priority: 0, tags: [], hash: noopWorkflow.hash, attempts: 0 },
    );
    assert.deepEqual(await peek({ limit: 3 }), expected.slice(0, 3), 'a limit takes the head of the line');
    assert.deepEqual(await peek({ limit: 0 }), []);
    assert.deepEqual(await claim({ limit: 3 }), expected.slice(0, 3), 'a claim of 3 takes what the peek of 3 showed');
    assert.deepEqual(await claimOneByOne(), expected.slice(3));
  });

  it('lists only the tag sets the worker covers, and the definitions it has (null: any)', async () => {
    await enqueueMany(pool, 2, { prefix: 'plain-' });
    await enqueueMany(pool, 2, { prefix: 'eu-', tags: ['eu'] });
    await enqueueMany(pool, 2, { task: 'render', prefix: 'gpu-' });
    await readyAgo(pool, { 'gpu-1': 6, 'eu-1': 5, 'plain-1': 4, 'gpu-2': 3, 'eu-2': 2, 'plain-2': 1 });
    assert.deepEqual(await peek({ limit: 10 }), ['plain-1', 'plain-2']);
    assert.deepEqual(await peek({ limit: 10, tags: ['eu'] }), ['eu-1', 'plain-1', 'eu-2', 'plain-2']);
    assert.deepEqual(await peek({ limit: 10, tags: ['x', 'gpu'] }), ['gpu-1', 'plain-1', 'gpu-2', 'plain-2']);
    assert.deepEqual(await peek({ limit: 10, tags: ['gpu', 'eu'] }), ['gpu-1', 'eu-1', 'plain-1', 'gpu-2', 'eu-2', 'plain-2']);
    assert.deepEqual(await peek({ limit: 10, tags: ['gpu'], hashes: [noopWorkflow.hash] }), ['plain-1', 'plain-2'], 'no render definition: no gpu task');
    assert.deepEqual(await peek({ limit: 10, tags: ['gpu'], hashes: null }), ['gpu-1', 'plain-1', 'gpu-2', 'plain-2'], 'null: any definition');
    assert.deepEqual(await peek({ limit: 10, tags: ['gpu'], hashes: [] }), []);
    assert.deepEqual(await claim({ limit: 10, tags: ['eu'] }), ['eu-1', 'plain-1', 'eu-2', 'plain-2'], 'the claim agrees');
  });

  it('puts a retry the worker failed last after other tasks, for that worker only, as the claim does', async () => {
    await enqueueMany(pool, 4, { prefix: 'r-' });
    await readyAgo(pool, { 'r-1': 4, 'r-2': 3, 'r-3': 2, 'r-4': 1 });
    await pool.query(`update baton.tasks set last_failed_worker = 'w' where workflow_id = 'r-1'`);
    assert.deepEqual(await peek({ limit: 10 }), ['r-2', 'r-3', 'r-4', 'r-1']);
    assert.deepEqual(await peek({ limit: 2 }), ['r-2', 'r-3'], 'one retry of its own: one more candidate is looked at');
    assert.deepEqual(await peek({ limit: 10, workerId: 'other' }), ['r-1', 'r-2', 'r-3', 'r-4']);
    assert.deepEqual(await peek({ limit: 10, workerId: null }), ['r-1', 'r-2', 'r-3', 'r-4'], 'no worker: nobody’s retries');
    // The claim's second pass rescans with its own locks held: they are not skipped (else r-2 would be lost to r-3, r-4).
    assert.deepEqual(await claim({ limit: 2 }), ['r-2', 'r-3']);
    assert.deepEqual(await claimOneByOne(), ['r-4', 'r-1'], 'alone, the retry is still taken');
  });

  it('isolates tasks one lost lease from failing, as the claim does', async () => {
    await enqueueMany(pool, 4, { prefix: 'i-' });
    await readyAgo(pool, { 'i-1': 4, 'i-2': 3, 'i-3': 2, 'i-4': 1 });
    await pool.query(`update baton.tasks set lease_losses = 2 where workflow_id in ('i-1', 'i-3')`);
    assert.deepEqual(await peek({ limit: 10, isolateFrom: 2, isolatedSlots: 0 }), ['i-2', 'i-4']);
    assert.deepEqual(await peek({ limit: 10, isolateFrom: 2, isolatedSlots: 1 }), ['i-1', 'i-2', 'i-4']);
    assert.deepEqual(await peek({ limit: 10 }), ['i-1', 'i-2', 'i-3', 'i-4'], 'no isolation by default');
    assert.deepEqual(await claim({ limit: 10, isolateFrom: 2, isolatedSlots: 1 }), ['i-1', 'i-2', 'i-4']);
  });

  it('the peek locks nothing: a claim at the same time still gets the rows it showed', async () => {
    await enqueueMany(pool, 5, { prefix: 'k-' });
    await readyAgo(pool, { 'k-1': 5, 'k-2': 4, 'k-3': 3, 'k-4': 2, 'k-5': 1 });
    const peeker = await pool.connect();
    try {
      await peeker.query('begin');
      assert.deepEqual(ids(await findAvailableTasks(peeker, { workerId: 'w', limit: 3, tags: [], hashes })), ['k-1', 'k-2', 'k-3']);
      // Still inside the peek's transaction: had it locked the rows, FOR UPDATE SKIP LOCKED would pass them over.
      assert.deepEqual(await claim({ limit: 3 }), ['k-1', 'k-2', 'k-3']);
      await peeker.query('commit');
    } finally {
      peeker.release();
    }
  });

  it('the claim skips rows another claim holds and goes on until it has its limit', async () => {
    await enqueueMany(pool, 6, { prefix: 'c-' });
    await readyAgo(pool, { 'c-1': 6, 'c-2': 5, 'c-3': 4, 'c-4': 3, 'c-5': 2, 'c-6': 1 });
    const first = await pool.connect();
    try {
      await first.query('begin');
      assert.deepEqual(ids(await claimTasks(first, { workerId: 'a', limit: 2, tags: [], hashes, ttlMs: 60_000 })), ['c-1', 'c-2']);
      // Uncommitted: c-1 and c-2 are still ready to the others, but locked.
      assert.deepEqual(await peek({ limit: 3 }), ['c-1', 'c-2', 'c-3'], 'the peek reads, it does not wait');
      assert.deepEqual(await claim({ limit: 3 }), ['c-3', 'c-4', 'c-5'], 'a full claim past the locked rows');
      await first.query('commit');
    } finally {
      first.release();
    }
    assert.deepEqual(await peek({ limit: 10 }), ['c-6']);
  });

  it('a claim riding along a commit takes the same tasks', async () => {
    await enqueueMany(pool, 4, { prefix: 'm-' });
    await readyAgo(pool, { 'm-1': 4, 'm-2': 3, 'm-3': 2, 'm-4': 1 });
    const [t] = await claimTasks(pool, { workerId: 'w', limit: 1, tags: [], hashes, ttlMs: 60_000 });
    const batch: CommitBatch = {
      items: [{ wf: t!.workflowId, key: t!.taskKey, epoch: t!.epoch, status: 'completed', paused: false, output: 1, error: null, delayMs: null, eventId: null }],
      instances: [{ id: t!.workflowId, parent: null, version: t!.workflow.version, status: 'completed', state: { par: {}, done: 1 }, bump: 1, done: 1, output: 1, error: null, step: null, finished: true, after: false }],
      history: [{ wf: t!.workflowId, version: t!.workflow.version + 1, kind: 'completed', detail: { key: '0' } }],
      schedule: [],
    };
    const expected = await peek({ limit: 2 });
    const { results, claimed } = await commitBatch(pool, 'w', batch, { limit: 2, tags: [], hashes, ttlMs: 60_000 });
    assert.deepEqual(results, []);
    assert.deepEqual(ids(claimed), expected);
    assert.deepEqual(ids(claimed), ['m-2', 'm-3']);
    assert.ok(claimed.every((c) => c.epoch > t!.epoch && c.workflow.name === 'noop'));
  });

  it('writes the candidate query once with FOR UPDATE SKIP LOCKED and once without, the same otherwise', () => {
    const text = readFileSync(path.join(ROOT, 'drizzle/functions/find_available_tasks.sql'), 'utf8');
    const branches = /\n( *)IF p_lock THEN\n([\s\S]*?)\n\1ELSE\n([\s\S]*?)\n\1END IF;/.exec(text);
    assert.ok(branches, 'IF p_lock THEN ... ELSE ... END IF;');
    const [, , locking, reading] = branches;
    assert.match(locking!, /^ *FOR UPDATE SKIP LOCKED\n/m);
    assert.doesNotMatch(reading!, /FOR UPDATE|FOR SHARE|FOR NO KEY|FOR KEY/i);
    assert.equal(locking!.replace(/^ *FOR UPDATE SKIP LOCKED\n/m, ''), reading);
  });

  it("the claim's one-statement shortcut scans as find_available_tasks' locking scan does", () => {
    // Which rows, in which order, locked how: the same text once each side's select list is left out
    // (the shortcut needs no row address) and the limit named as each side names it.
    const scan = (text: string, limit: string, ends: RegExp) => {
      const from = text.indexOf('FROM baton.tag_sets s');
      const end = ends.exec(text.slice(from));
      assert.ok(from >= 0 && end, 'a scan of baton.tag_sets and baton.tasks');
      return text
        .slice(from, from + end.index + end[0].length)
        .replace(/SELECT t\.workflow_id[^\n]*\n/, '')
        .replaceAll(limit, 'LIMIT')
        .replace(/\s+/g, ' ');
    };
    const find = readFileSync(path.join(ROOT, 'drizzle/functions/find_available_tasks.sql'), 'utf8');
    const claimSql = readFileSync(path.join(ROOT, 'drizzle/functions/claim_tasks.sql'), 'utf8');
    const locking = scan(find.slice(find.indexOf('IF p_lock THEN')), 'LIMIT v_n', /ORDER BY c\.ready_key\s+LIMIT v_n/);
    const shortcut = scan(claimSql.slice(claimSql.indexOf('WITH candidates AS MATERIALIZED')), 'LIMIT p_limit', /ORDER BY c\.ready_key\s+LIMIT p_limit/);
    assert.match(shortcut, /FOR UPDATE SKIP LOCKED/);
    assert.equal(shortcut, locking);
  });
});

describe('client.findAvailableTasks', () => {
  const db = useTestDatabase();
  let client: Client;
  const render = defineTask('render', async () => 1, { tags: ['gpu'] });
  const plain = defineTask('plain', async () => 1);

  before(async () => {
    client = await fixtureClient(db.url);
  });
  after(async () => {
    await client.close();
  });

  it('lists what a worker with these tags takes next, in order, typed', async () => {
    const low = await client.enqueue(plain, null, { priority: 3 });
    const gpu = await client.enqueue(render, null, { priority: 1 });
    const high = await client.enqueue(plain, null, { priority: 0 });
    const none = await client.findAvailableTasks();
    assert.deepEqual(ids(none), [high.id, low.id], 'no tags: the untagged tasks');
    const rows: AvailableTask[] = await client.findAvailableTasks({ tags: ['gpu'], limit: 10 });
    assert.deepEqual(ids(rows), [high.id, gpu.id, low.id], 'of any definition, in aging order');
    assert.equal(rows[1]!.name, 'render');
    assert.deepEqual(rows[1]!.tags, ['gpu']);
    assert.equal(rows[1]!.priority, 1);
    assert.ok(rows[1]!.readyKey instanceof Date);
    assert.deepEqual(ids(await client.findAvailableTasks({ tags: ['gpu'], limit: 1 })), [high.id]);
  });

  it('refuses bad input with a ValidationError', async () => {
    const bad: unknown[] = [
      { limit: -1 },
      { limit: 0 },
      { limit: 1001 },
      { limit: 2.5 },
      { limit: Number.NaN },
      { limit: '10' },
      { tags: [1] },
      { tags: 'gpu' },
      { tags: [''] },
      null,
    ];
    for (const options of bad) {
      await assert.rejects(
        client.findAvailableTasks(options as never),
        (e: unknown) => e instanceof ValidationError,
        JSON.stringify(options),
      );
    }
  });
});

function ids(rows: { workflowId: string }[]): string[] {
  return rows.map((r) => r.workflowId);
}
