/**
 * The planner's shortcut for a one-task job's completing attempt (planQuietJob in worker/plan.ts)
 * must plan exactly what the general fold plans, and must stand aside for every other attempt.
 * Pure: no database.
 */
import assert from 'node:assert/strict';
import type { ClaimedTask } from '../src/store/index.ts';
import { HeldTask, type Outcome } from '../src/worker/held.ts';
import { foldInstance, planBatch, planInstance, type Finished, type InstanceSnapshot } from '../src/worker/plan.ts';
import { defineTask, defineWorkflow, taskWorkflow, type Workflow } from '../src/workflow/index.ts';
import { initialState } from '../src/workflow/machine.ts';

const job = taskWorkflow(defineTask('quiet-job', async (n: number) => n + 1));
const chain = defineWorkflow('quiet-chain').then(defineTask('first', async () => 1)).then(defineTask('second', async () => 2)).build();

function claimed(def: Workflow, o: { parentId?: string | null; version?: number; attempts?: number } = {}): ClaimedTask {
  return {
    workflowId: 'wf-1',
    taskKey: '0',
    kind: 'task',
    name: def.kind === 'task' ? 'quiet-job' : 'first',
    definitionHash: def.hash,
    epoch: 41,
    attempts: o.attempts ?? 1,
    maxAttempts: 3,
    leaseLosses: 0,
    suspect: false,
    input: 5,
    output: null,
    availableAt: null,
    leaseExpiresAt: new Date(Date.now() + 60_000),
    workflow: {
      name: def.name,
      status: 'running',
      state: initialState(),
      version: o.version ?? 1,
      priority: null,
      tags: [],
      parentId: o.parentId ?? null,
      traceContext: null,
    },
    event: null,
    eventKey: null,
  };
}

function finished(def: Workflow, outcome: Outcome, o?: Parameters<typeof claimed>[1]): Finished[] {
  const task = claimed(def, o);
  return [{ held: new HeldTask(task, def, task.leaseExpiresAt.getTime()), outcome }];
}

describe('planner: the quiet-job shortcut plans what the general fold plans', () => {
  it('plans a completed one-task job as the fold does, quiet', () => {
    const group = finished(job, { kind: 'completed', output: 6 });
    const planned = planInstance('w', group);
    assert.deepEqual(planned, foldInstance('w', group));
    assert.equal(planned.items[0]!.quiet, true);
    assert.equal(planned.instance.after, false);
    assert.deepEqual(planned.instance.output, 6);
  });

  it('tells the parent of a child job (after) as the fold does', () => {
    const group = finished(job, { kind: 'completed', output: 6 }, { parentId: 'parent-1' });
    const planned = planInstance('w', group);
    assert.deepEqual(planned, foldInstance('w', group));
    assert.equal(planned.instance.after, true);
  });

  it('starts from a fresher known snapshot as the fold does', () => {
    const group = finished(job, { kind: 'completed', output: 6 });
    const known: InstanceSnapshot = { status: 'running', state: initialState(), version: 3 };
    const planned = planInstance('w', group, known);
    assert.deepEqual(planned, foldInstance('w', group, known));
    assert.equal(planned.instance.version, 3);
  });

  it('stands aside for failures, retries, paused instances and workflow steps', () => {
    const error = { name: 'Error', message: 'no' };
    const cases: [string, Finished[], InstanceSnapshot?][] = [
      ['a final failure', finished(job, { kind: 'error', error, final: true, delayMs: 0 })],
      ['a retry', finished(job, { kind: 'error', error, final: false, delayMs: 100 })],
      ['a paused instance', finished(job, { kind: 'completed', output: 6 }), { status: 'paused', state: initialState(), version: 1 }],
      ['a workflow step', finished(chain, { kind: 'completed', output: 1 })],
    ];
    for (const [what, group, known] of cases) {
      const planned = planInstance('w', group, known);
      assert.deepEqual(planned, foldInstance('w', group, known), what);
      assert.notEqual(planned.items[0]!.quiet, true, what);
    }
    // The workflow step schedules its successor and writes its checkpoint: neither is left out.
    const step = planInstance('w', finished(chain, { kind: 'completed', output: 1 }));
    assert.equal(step.schedule.length, 1);
    assert.equal(step.history.length, 1);
  });

  it('leaves the batch arrays of other instances alone (the shortcut shares its empty arrays)', () => {
    const a = finished(job, { kind: 'completed', output: 6 });
    const b = finished(chain, { kind: 'completed', output: 1 }).map((f) => ({ ...f, held: new HeldTask({ ...f.held.task, workflowId: 'wf-2' }, chain, 0) }));
    const batch = planBatch('w', [...a, ...b, ...finished(job, { kind: 'completed', output: 7 }).map((f) => ({ ...f, held: new HeldTask({ ...f.held.task, workflowId: 'wf-3' }, job, 0) }))], new Map());
    assert.equal(batch.items.length, 3);
    assert.equal(batch.history.length, 1);
    assert.equal(batch.schedule.length, 1);
    assert.deepEqual(planInstance('w', a).history, []);
    assert.deepEqual(planInstance('w', a).schedule, []);
  });
});
