import assert from 'node:assert/strict';
import { checkInvariants } from '../src/store/check.ts';
import { claimTasks, startInstance } from '../src/store/index.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { enqueueMany, noopWorkflow, register } from './support/fixtures.ts';

describe('invariant checker (baton check)', function () {
  this.timeout(30_000);
  const db = useTestDatabase();

  before(async () => {
    await register(db.pool, noopWorkflow);
  });

  const found = async () => (await checkInvariants(db.pool, { expiredGraceMs: 1_000 })).violations.map((v) => `${v.invariant} ${v.workflowId}`);

  it('finds nothing wrong in a healthy database, and `baton check` exits 0', async () => {
    await enqueueMany(db.pool, 5, { prefix: 'ok-' });
    await claimTasks(db.pool, { workerId: 'w', limit: 2, tags: [], hashes: [noopWorkflow.hash], ttlMs: 60_000 });
    assert.deepEqual(await found(), []);
    const r = await runCli(['check'], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: 5 instances, 5 tasks, no violation/);
  });

  it('reports each broken invariant, and `baton check` exits 1 listing them', async () => {
    for (const id of ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9', 'v10', 'v10/c', 'v11', 'v12', 'v13', 'v14']) await startInstance(db.pool, { name: 'noop', kind: 'task', id });
    const q = (sql: string) => db.pool.query(sql);
    await q(`update baton.tasks set status = 'completed', claimed_by = 'ghost' where workflow_id = 'v1'`);
    await q(`update baton.tasks set status = 'running', claimed_by = 'w', epoch = 9, lease_expires_at = now() - interval '1 minute' where workflow_id = 'v2'`);
    await q(`update baton.tasks set status = 'completed' where workflow_id = 'v3';
             update baton.workflows set version = 3, completed_task_count = 1, status = 'completed' where id = 'v3';
             insert into baton.history (workflow_id, version, kind, detail) values ('v3', 2, 'completed', '{"key":"0"}'), ('v3', 3, 'completed', '{"key":"0"}')`);
    await q(`update baton.tasks set status = 'completed' where workflow_id = 'v4'; update baton.workflows set completed_task_count = 1, status = 'completed' where id = 'v4'`);
    await q(`update baton.workflows set version = 2 where id = 'v5';
             insert into baton.history (workflow_id, version, kind, detail) values ('v5', 2, 'x', '{"scheduled":["0"]}')`);
    await q(`update baton.workflows set version = 3 where id = 'v6'; insert into baton.history (workflow_id, version, kind, detail) values ('v6', 3, 'x', '{}')`);
    await q(`update baton.workflows set completed_task_count = 4 where id = 'v7'`);
    await q(`update baton.workflows set status = 'completed' where id = 'v8'`);
    await q(`update baton.tasks set status = 'cancelled' where workflow_id = 'v9'`);
    // Child steps waiting on 'v10/c', an instance a caller started (not v10's child), and on 'v11/c', which does not exist.
    await q(`insert into baton.tasks (workflow_id, task_key, kind, name, definition_hash, status)
             select t.workflow_id, 'c', 'child', 'noop', t.definition_hash, 'waiting' from baton.tasks t where t.workflow_id in ('v10', 'v11')`);
    // Two tasks admitted under a concurrency limit of 1 (as if admission had been bypassed).
    await q(`insert into baton.task_limits (name, concurrency) values ('noop', 1) on conflict (name) do update set concurrency = 1;
             update baton.tasks set limit_key = '' where workflow_id in ('v12', 'v13')`);

    // A join fired by two checkpoints (as if two racing branches had both seen the last one needed).
    await q(`update baton.workflows set version = 3 where id = 'v14';
             insert into baton.history (workflow_id, version, kind, detail) values
               ('v14', 2, 'completed', '{"key":"0/b0","joined":["0"]}'), ('v14', 3, 'completed', '{"key":"0/b1","joined":["0"]}')`);

    const v = await found();
    for (const expected of [
      'joined-twice v14',
      'over-limit v12',
      'claim-on-finished v1',
      'claim-expired v2',
      'finished-twice v3',
      'finished-unrecorded v4',
      'scheduled-twice v5',
      'history-gap v6',
      'counter-mismatch v7',
      'open-task-on-finished v8',
      'stuck v9',
      'child-not-own v10',
      'child-not-own v11',
    ]) {
      assert.ok(v.includes(expected), `${expected} is reported (got ${v.join(', ')})`);
    }
    const r = await runCli(['check'], { env: { DATABASE_URL: db.url } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^INVARIANT\s+INSTANCE\s+STEP\s+DETAIL/);
    assert.match(r.stdout, /claim-expired\s+v2\s+0\s+lease of w expired \d+ ms ago/);
    assert.match(r.stdout, /child-not-own\s+v10\s+c\s+waits on "v10\/c", an instance that is not its child \(its parent: none\)/);
    assert.match(r.stdout, /child-not-own\s+v11\s+c\s+waits on "v11\/c", which does not exist/);
    assert.match(r.stderr.trim(), /^baton: \d+ violation\(s\) in \d+ instances$/);
  });
  it('accepts a step that finished, was retried and finished again, and still flags a double finish', async () => {
    for (const id of ['r1', 'r2', 'r3']) await startInstance(db.pool, { name: 'noop', kind: 'task', id });
    // r1: failed, retried (the 'retried' checkpoint lists step 0), completed: one finish per run.
    // r2: finished twice with a retry between that did not reset step 0: a real double finish.
    // r3: finished twice with no retry at all.
    await db.pool.query(`update baton.tasks set status = 'completed' where workflow_id in ('r1', 'r2', 'r3');
      update baton.workflows set version = 4, completed_task_count = 1, status = 'completed' where id in ('r1', 'r2');
      update baton.workflows set version = 3, completed_task_count = 1, status = 'completed' where id = 'r3';
      insert into baton.history (workflow_id, version, kind, detail) values
        ('r1', 2, 'task_failed', '{"key":"0","status":"failed"}'), ('r1', 3, 'retried', '{"status":"running","steps":["0"]}'),
        ('r1', 4, 'completed', '{"key":"0","status":"completed"}'),
        ('r2', 2, 'task_failed', '{"key":"0","status":"failed"}'), ('r2', 3, 'retried', '{"status":"running","steps":["1"]}'),
        ('r2', 4, 'completed', '{"key":"0","status":"completed"}'),
        ('r3', 2, 'completed', '{"key":"0"}'), ('r3', 3, 'completed', '{"key":"0"}')`);
    const v = (await checkInvariants(db.pool)).violations.filter((x) => ['r1', 'r2', 'r3'].includes(x.workflowId));
    assert.deepEqual(v.map((x) => `${x.invariant} ${x.workflowId} ${x.taskKey}`), ['finished-twice r2 0', 'finished-twice r3 0']);
    assert.match(v[0]!.detail, /2 finishing checkpoints with no retry between them/);
  });
});
