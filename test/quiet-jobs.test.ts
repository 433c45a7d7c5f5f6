import assert from 'node:assert/strict';
import type { Client, Worker } from '../src/index.ts';
import { checkInvariants } from '../src/store/check.ts';
import { listHistory } from '../src/store/history.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { chain10, fatal, flaky, inc } from './support/workflows.ts';

/**
 * A one-task job that only starts and completes stores no history row and keeps its output once
 * (on the instance): its 'completed' checkpoint is derived from the task row (baton.finished_checkpoint).
 * Everything that reads history or task outputs must see what it saw when the row was stored.
 */
describe('quiet jobs: a completed job stores no history row and its output once', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker;

  before(async () => {
    client = await fixtureClient(db.url);
  });
  // A worker per test, stopped before the test ends: its timers must not outlive the test.
  beforeEach(async () => {
    worker = await inProcessWorker(db.url);
  });
  afterEach(async () => {
    await worker.stop({ graceMs: 500 });
    await assertInvariants(db.pool);
  });
  after(() => client.close());

  const stored = (id: string) =>
    db.pool.query(`select version, kind from baton.history where workflow_id = $1 order by version`, [id]).then((r) => r.rows);
  const taskRow = (id: string) =>
    db.pool.query(`select output, finished_by, epoch, attempts, finished_at from baton.tasks where workflow_id = $1`, [id]).then((r) => r.rows[0]);

  it('derives the completed checkpoint a stored row would have held, and reads the output from the instance', async () => {
    const started = await client.enqueue(inc, 41, { id: 'quiet-1' });
    assert.equal(await started.result({ timeoutMs: 10_000 }), 42);
    assert.deepEqual(await stored('quiet-1'), [], 'neither the start nor the completion wrote a history row');
    const row = await taskRow('quiet-1');
    assert.equal(row.output, null, 'the output is not stored on the task row');
    assert.equal(row.finished_by, worker.id);

    const history = await client.history('quiet-1');
    assert.deepEqual(history.map((h) => [h.version, h.kind]), [[1, 'started'], [2, 'completed']]);
    assert.deepEqual(history[1]!.detail, {
      key: '0', attempt: 1, worker: worker.id, epoch: Number(row.epoch), status: 'completed', patch: { done: 1 },
    });
    assert.equal(history[1]!.at.getTime(), row.finished_at.getTime());
    assert.deepEqual((await listHistory(db.pool, 'quiet-1', { afterVersion: 1 })).map((x) => x.version), [2]);
    assert.deepEqual(await listHistory(db.pool, 'quiet-1', { afterVersion: 2 }), []);

    const view = await client.get('quiet-1');
    assert.equal(view!.status, 'completed');
    assert.equal(view!.tasks[0]!.output, 42, 'the task list shows the output');
    const state = await client.stateAt('quiet-1', 2);
    assert.equal(state!.status, 'completed');
  });

  it('a job that succeeds after retries keeps its retry rows and derives the last checkpoint at its version', async () => {
    const started = await client.enqueue(flaky, { succeedOn: 2 }, { id: 'quiet-2' });
    assert.deepEqual(await started.result({ timeoutMs: 10_000 }), { attempt: 2 });
    assert.deepEqual(await stored('quiet-2'), [{ version: 2, kind: 'retry' }]);
    const history = await client.history('quiet-2');
    assert.deepEqual(history.map((h) => [h.version, h.kind]), [[1, 'started'], [2, 'retry'], [3, 'completed']]);
    assert.equal(history[2]!.detail.attempt, 2);
  });

  it('a failed job and every workflow step still store their checkpoints and outputs', async () => {
    await assert.rejects((await client.enqueue(fatal, null, { id: 'quiet-3' })).result({ timeoutMs: 10_000 }));
    assert.deepEqual((await stored('quiet-3')).map((r) => r.kind), ['task_failed']);
    assert.equal((await taskRow('quiet-3')).finished_by, null);

    assert.equal(await (await client.start(chain10, 0, { id: 'quiet-4' })).result({ timeoutMs: 10_000 }), 10);
    assert.equal((await stored('quiet-4')).length, 10, 'a workflow stores each step checkpoint');
    const outputs = await db.pool.query(`select count(*)::int as n from baton.tasks where workflow_id = 'quiet-4' and output is not null and finished_by is null`);
    assert.equal(outputs.rows[0].n, 10);
  });

  it('baton check still finds a job finished twice, and a quiet task whose instance did not complete', async () => {
    const started = await client.enqueue(inc, 1, { id: 'quiet-5' });
    await started.result({ timeoutMs: 10_000 });
    // A second, stored completion of the same step: applied twice.
    await db.pool.query(`update baton.workflows set version = 3 where id = 'quiet-5'`);
    await db.pool.query(`insert into baton.history (workflow_id, version, kind, detail) values ('quiet-5', 2, 'completed', '{"key":"0"}')`);
    const report = await checkInvariants(db.pool);
    assert.ok(report.violations.some((v) => v.invariant === 'finished-twice' && v.workflowId === 'quiet-5'), JSON.stringify(report.violations));
    await db.pool.query(`delete from baton.history where workflow_id = 'quiet-5'; update baton.workflows set version = 2 where id = 'quiet-5'`);

    // A quiet task under an instance that is not completed derives no checkpoint: unrecorded.
    await db.pool.query(`update baton.workflows set status = 'running' where id = 'quiet-5'`);
    const broken = await checkInvariants(db.pool);
    assert.ok(broken.violations.some((v) => v.invariant === 'finished-unrecorded' && v.workflowId === 'quiet-5'), JSON.stringify(broken.violations));
    await db.pool.query(`update baton.workflows set status = 'completed' where id = 'quiet-5'`);
  });
});
