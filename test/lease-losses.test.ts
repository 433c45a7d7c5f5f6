/**
 * What a lost lease costs a task (drizzle/functions/reclaim_expired.sql): a
 * crash must not count against the tasks its worker claimed ahead and never
 * started, while a task that kills every worker that runs it still fails.
 * A worker that claims with `declares` marks a suspect (a task whose last
 * attempt lost its lease) begun before running it; only then does a lost
 * lease count against it. Any other task is begun from its claim.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import { defineTask, type Client, type Worker } from '../src/index.ts';
import { beginClaims, claimTasks, type ClaimedTask } from '../src/store/claims.ts';
import { listHistory } from '../src/store/index.ts';
import { reclaimExpired } from '../src/store/maintenance.ts';
import { useTestDatabase } from './support/db.ts';
import { batonPool, fixtureClient, sleep } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';

describe('lost leases', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let pool: pg.Pool;
  let client: Client;
  const workers: Worker[] = [];

  // The handler reports whether its own attempt was marked begun before it ran.
  const probe = defineTask('lease-probe', async (_n: number, ctx) => {
    const { rows } = await pool.query<{ begun: boolean }>(`select begun from baton.tasks where workflow_id = $1`, [ctx.workflowId]);
    return { begun: rows[0]!.begun, attempt: ctx.attempt };
  });

  before(async () => {
    pool = batonPool(db.url);
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    // Each test claims by definition: what one leaves behind (a failed assertion midway) must not feed the next.
    await pool.query(`select baton.delete_instances(array(select id from baton.workflows where id like 'll-%'))`);
  });
  after(async () => {
    await client.close();
    await pool.end();
  });

  async function hashOf(id: string): Promise<string> {
    const { rows } = await pool.query<{ h: string }>(`select definition_hash as h from baton.tasks where workflow_id = $1`, [id]);
    return rows[0]!.h;
  }

  async function claimOne(worker: string, hash: string, declares = true): Promise<ClaimedTask> {
    const [t] = await claimTasks(pool, { workerId: worker, limit: 1, tags: [], hashes: [hash], ttlMs: 200, declares });
    assert.ok(t, `${worker} claimed a task`);
    return t;
  }

  async function row(id: string) {
    const { rows } = await pool.query<{ status: string; attempts: number; lease_losses: number; begun: boolean; message: string }>(
      `select status, attempts, lease_losses, begun, last_error ->> 'message' as message from baton.tasks where workflow_id = $1`,
      [id],
    );
    return rows[0]!;
  }

  async function expire(maxLosses = 2): Promise<{ reclaimed: number; failed: number }> {
    await sleep(250);
    return reclaimExpired(pool, maxLosses);
  }

  it('counts a lost lease against a task that may have run, and gives back the attempt of a suspect that never began', async () => {
    await client.enqueue(probe, 1, { id: 'll-1' });
    await pool.query(`update baton.tasks set max_attempts = 10 where workflow_id = 'll-1'`);
    const hash = await hashOf('ll-1');

    // 1. Not a suspect: begun from its claim (it may run at once). Attempt and lost lease count; it is a suspect now.
    const first = await claimOne('w1', hash);
    assert.equal(first.suspect, false);
    assert.equal((await row('ll-1')).begun, true);
    assert.deepEqual(await expire(3), { reclaimed: 1, failed: 0 });
    let r = await row('ll-1');
    assert.deepEqual([r.status, r.attempts, r.lease_losses], ['ready', 1, 1]);
    assert.match(r.message, /\(attempt 1, lease lost 1 time\(s\)\)/);

    // 2. A suspect its worker never marked begun: it did not start. The attempt is given back, no lost lease counted.
    const second = await claimOne('w2', hash);
    assert.deepEqual([second.suspect, second.attempts], [true, 2]);
    assert.equal((await row('ll-1')).begun, false, 'a suspect is not begun until its worker marks it');
    assert.deepEqual(await expire(3), { reclaimed: 1, failed: 0 });
    r = await row('ll-1');
    assert.deepEqual([r.status, r.attempts, r.lease_losses], ['ready', 1, 1]);
    assert.match(r.message, /before the attempt began \(the attempt is given back; lease lost 1 time\(s\)\)/);

    // 3. Marked begun: the lost lease counts.
    const third = await claimOne('w3', hash);
    assert.deepEqual([third.suspect, third.attempts], [true, 2]);
    assert.deepEqual(await beginClaims(pool, 'w3', [third]), []);
    assert.equal((await row('ll-1')).begun, true);
    assert.deepEqual(await expire(3), { reclaimed: 1, failed: 0 });
    r = await row('ll-1');
    assert.deepEqual([r.status, r.attempts, r.lease_losses], ['ready', 2, 2]);

    // 4. The claim resets begun; marked again and lost again, it reaches the limit (3) and fails with its instance.
    const fourth = await claimOne('w4', hash);
    assert.equal((await row('ll-1')).begun, false, 'each claim of a suspect starts not begun');
    await beginClaims(pool, 'w4', [fourth]);
    assert.deepEqual(await expire(3), { reclaimed: 0, failed: 1 });
    assert.equal((await client.get('ll-1'))!.status, 'failed');

    const lost = (await listHistory(pool, 'll-1')).filter((h) => h.kind === 'lease_lost');
    assert.deepEqual(
      lost.map((h) => [h.detail.worker, h.detail.attempt, h.detail.counted, h.detail.task]),
      [
        ['w1', 1, true, 'ready'],
        ['w2', 2, false, 'ready'],
        ['w3', 2, true, 'ready'],
        ['w4', 3, true, 'failed'],
      ],
    );
  });

  it('never fails a task its dead workers held but never began, however many die', async () => {
    await client.enqueue(probe, 6, { id: 'll-held' });
    const hash = await hashOf('ll-held');
    for (let i = 1; i <= 5; i++) {
      await claimOne(`held-${i}`, hash);
      assert.deepEqual(await expire(3), { reclaimed: 1, failed: 0 });
    }
    const r = await row('ll-held');
    assert.deepEqual([r.status, r.attempts, r.lease_losses], ['ready', 1, 1], 'one attempt and one lost lease: the first, unknown one');
  });

  it('counts every claim of a caller that does not say when it begins a task, as before', async () => {
    await client.enqueue(probe, 2, { id: 'll-2' });
    const hash = await hashOf('ll-2');
    await claimOne('old-1', hash, false);
    assert.equal((await row('ll-2')).begun, true);
    await expire();
    await claimOne('old-2', hash, false);
    assert.deepEqual(await expire(), { reclaimed: 0, failed: 1 });
    const r = await row('ll-2');
    assert.deepEqual([r.status, r.lease_losses], ['failed', 2]);
  });

  it('marks begun only the current claim of the worker that holds it, while its lease runs', async () => {
    await client.enqueue(probe, 3, { id: 'll-3' });
    const hash = await hashOf('ll-3');
    await claimOne('w0', hash);
    await expire(); // a suspect now: its next claim is not begun until marked
    const t = await claimOne('w1', hash);
    assert.equal(t.suspect, true);
    assert.equal((await row('ll-3')).begun, false);
    assert.deepEqual(await beginClaims(pool, 'w2', [t]), [{ workflowId: 'll-3', taskKey: t.taskKey, epoch: t.epoch }], 'another worker');
    assert.equal((await beginClaims(pool, 'w1', [{ ...t, epoch: t.epoch - 1 }])).length, 1, 'an older epoch');
    assert.equal((await row('ll-3')).begun, false);
    await sleep(250);
    assert.equal((await beginClaims(pool, 'w1', [t])).length, 1, 'a lapsed lease');
    assert.equal((await row('ll-3')).begun, false);
  });

  it('a worker marks a suspect begun before running it; an ordinary task is begun from its claim', async () => {
    await client.enqueue(probe, 4, { id: 'll-suspect' });
    await client.enqueue(probe, 5, { id: 'll-plain' });
    // ll-suspect's first claim is lost unmarked: a suspect from now on.
    await pool.query(`update baton.tasks set available_at = now() + interval '1 hour', status = 'waiting' where workflow_id = 'll-plain'`);
    await claimOne('gone', await hashOf('ll-suspect'));
    await expire();
    await pool.query(`update baton.tasks set available_at = now(), status = 'ready', ready_key = now() where workflow_id = 'll-plain'`);

    workers.push(await inProcessWorker(db.url, { workflows: [], tasks: [probe] }));
    assert.deepEqual(await client.result('ll-suspect', { timeoutMs: 10_000 }), { begun: true, attempt: 2 });
    assert.deepEqual(await client.result('ll-plain', { timeoutMs: 10_000 }), { begun: true, attempt: 1 });
  });

  it('a worker that cannot mark a suspect begun gives it back unrun, and runs it once marked', async () => {
    let runs = 0;
    const counted = defineTask('lease-counted', async (_n: null, ctx) => {
      runs += 1;
      return ctx.attempt;
    });
    await client.enqueue(counted, null, { id: 'll-unmarked' });
    await claimOne('gone', await hashOf('ll-unmarked'));
    await expire();
    // The first mark fails (the sequence is not rolled back with it); later ones pass.
    await pool.query(`create sequence public.ll_marks`);
    await pool.query(`create function public.ll_fail_first_mark() returns trigger language plpgsql as $$
      begin
        if new.begun and not old.begun and nextval('public.ll_marks') = 1 then raise exception 'the first mark fails'; end if;
        return new;
      end $$`);
    await pool.query(`create trigger ll_fail_first_mark before update on baton.tasks for each row execute function public.ll_fail_first_mark()`);
    try {
      const w = await inProcessWorker(db.url, { workflows: [], tasks: [counted] });
      workers.push(w);
      // Claimed at attempt 2, given back (attempt 1 again), claimed again at 2 and run once.
      assert.equal(await client.result('ll-unmarked', { timeoutMs: 10_000 }), 2);
      assert.equal(runs, 1);
      assert.ok(w.logLines.some((l) => l.includes('"during":"begin"')), 'the failed mark is logged');
    } finally {
      await pool.query(`drop trigger ll_fail_first_mark on baton.tasks; drop function public.ll_fail_first_mark(); drop sequence public.ll_marks`);
    }
  });
});
