/** `baton check`: a compensation runs to completion at most once, and only for a step that completed. */
import assert from 'node:assert/strict';
import { checkInvariants } from '../src/store/check.ts';
import { startInstance } from '../src/store/index.ts';
import { useTestDatabase } from './support/db.ts';
import { noopWorkflow, register } from './support/fixtures.ts';

describe('invariant checker: compensations', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  const found = async () =>
    (await checkInvariants(db.pool, { expiredGraceMs: 1_000 })).violations
      .filter((v) => v.invariant.startsWith('compensat'))
      .map((v) => `${v.invariant} ${v.workflowId} ${v.taskKey}`);

  before(async () => {
    await register(db.pool, noopWorkflow);
  });

  it('reports a compensation completed twice, and one of a step that never completed; retries of one are fine', async () => {
    for (const id of ['c1', 'c2', 'c3']) await startInstance(db.pool, { name: 'noop', kind: 'task', id });
    const q = (sql: string) => db.pool.query(sql);
    // c1: step 0 completed, its compensation ran twice to completion.
    // c2: a compensation of step 0, which never completed.
    // c3: step 0 completed, its compensation failed once (a retry) and completed once: fine.
    await q(`update baton.tasks set status = 'completed' where workflow_id in ('c1', 'c3');
             insert into baton.tasks (workflow_id, task_key, kind, name, definition_hash, status)
             select t.workflow_id, '!0', 'task', 'noop', t.definition_hash, 'completed' from baton.tasks t where t.workflow_id in ('c1', 'c2', 'c3');
             insert into baton.history (workflow_id, version, kind, detail) values
               ('c1', 2, 'completed', '{"key":"!0"}'), ('c1', 3, 'completed', '{"key":"!0"}'),
               ('c3', 2, 'retry', '{"key":"!0"}'), ('c3', 3, 'completed', '{"key":"!0"}')`);
    assert.deepEqual((await found()).sort(), ['compensated-twice c1 !0', 'compensation-of-unfinished c2 !0']);
  });
});
