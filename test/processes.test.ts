import assert from 'node:assert/strict';
import type { Client } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, until } from './support/fixtures.ts';
import { childWorker, FAST, type ChildWorker } from './support/workers.ts';
import { closeMarkPools, ensureMarks, slow } from './support/workflows.ts';

describe('worker processes', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  const children: ChildWorker[] = [];

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    await ensureMarks(db.pool);
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
    await db.pool.query(`select baton.cancel_workflow(id) from baton.workflows where status in ('pending', 'running', 'paused') and parent_id is null`);
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  const started = async (id: string) =>
    (await db.pool.query<{ pid: number; at: Date }>(`select pid, at from marks where name like $1 order by id`, [`start:${id}:%`])).rows;

  it('a task whose worker is killed with SIGKILL mid-run completes on another worker within TTL plus a tick', async () => {
    const a = await childWorker(db.url);
    children.push(a);
    // Long enough that the first worker is still running it after the second one has started
    // (spawning a worker process takes over a second on a loaded machine).
    const job = await client.enqueue(slow, { ms: 5_000 }, { id: 'kill-1' });
    await until(async () => (await started('kill-1')).length === 1, { what: 'the task to start on the first worker' });
    assert.equal((await started('kill-1'))[0]!.pid, a.proc.pid);
    const b = await childWorker(db.url);
    children.push(b);
    assert.equal((await client.get('kill-1'))?.status, 'running', 'the first worker is still running it');
    const killedAt = Date.now();
    a.proc.kill('SIGKILL');
    await a.exited;

    const out = (await job.result({ timeoutMs: 20_000 })) as { ranBy: number; attempt: number };
    assert.equal(out.ranBy, b.proc.pid, 'the second worker ran it');
    assert.equal(out.attempt, 2);
    const runs = await started('kill-1');
    const recovery = runs[1]!.at.getTime() - killedAt;
    // The lease was at most TTL old at the kill; the reconciler ticks every 200 ms (+ up to a poll).
    assert.ok(recovery <= FAST.claimTtlMs! + 1_500, `running again ${recovery} ms after the kill`);
    const history = await client.history('kill-1');
    assert.deepEqual(history.map((h) => h.kind), ['started', 'lease_lost', 'completed']);
  });

  it('SIGTERM stops a worker process gracefully: running work finishes, exit code 0; a second signal forces', async () => {
    const a = await childWorker(db.url);
    const job = await client.enqueue(slow, { ms: 700 }, { id: 'term-1' });
    await until(async () => (await started('term-1')).length === 1, { what: 'the task to start' });
    assert.equal(await a.stop('SIGTERM'), 0);
    assert.equal(((await job.result({ timeoutMs: 1_000 })) as { attempt: number }).attempt, 1, 'it finished before the process left');
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.workers where id = $1`, [a.id])).rows[0].n, 0, 'deregistered');

    const b = await childWorker(db.url, { BATON_SHUTDOWN_GRACE_MS: '30000' });
    await client.enqueue(slow, { ms: 30_000, abortable: false }, { id: 'term-2' });
    await until(async () => (await started('term-2')).length === 1, { what: 'the long task to start' });
    const t0 = Date.now();
    b.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    b.proc.kill('SIGTERM');
    assert.equal(await b.exited, 0);
    assert.ok(Date.now() - t0 < 5_000, 'the second signal did not wait for the grace period');
    const row = (await db.pool.query(`select status from baton.tasks where workflow_id = 'term-2'`)).rows[0];
    assert.equal(row.status, 'ready', 'its claim was released for another worker');
  });
});
