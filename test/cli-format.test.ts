/** What `baton status` prints for the steps that wait rather than run; what `baton definitions` prints. */
import assert from 'node:assert/strict';
import type { InstanceView } from '../src/client/client.ts';
import { definitionsTable, statusText } from '../src/cli/format.ts';

const at = new Date('2026-01-02T03:04:05.000Z');

function task(kind: string, name: string, status: string, extra: Record<string, unknown> = {}) {
  return {
    taskKey: `0/${kind}`, kind, name, status, paused: false, priority: 0, tags: [], attempts: 1, maxAttempts: 1000,
    leaseLosses: 0, epoch: 1, claimedBy: null, leaseExpiresAt: null, availableAt: at, eventKey: null, limitKey: null, output: null, lastError: null,
    lastFailedWorker: null, progress: null, progressMessage: null, createdAt: at, startedAt: null, finishedAt: null, ...extra,
  };
}

describe('baton status text', () => {
  it('shows what a sleep, an event wait and a child wait for, not an attempt count', () => {
    const view = {
      id: 'o-1', name: 'order', definitionHash: 'abc', status: 'running', input: null, output: null, error: null, priority: null,
      tags: [], parentId: null, parentKey: null, state: {}, currentStep: null, completedTaskCount: 1, version: 3,
      createdAt: at, updatedAt: at, finishedAt: null, waitingForDefinition: null, stalled: [], estimatedSteps: 4,
      tasks: [
        task('task', 'charge', 'completed', { attempts: 2, maxAttempts: 5 }),
        task('sleep', 'sleep', 'completed'),
        task('sleep', 'sleep', 'waiting'),
        task('event', 'delivered', 'waiting'),
        task('child', 'invoice', 'running'),
      ],
    } as unknown as InstanceView;
    const text = statusText(view);
    assert.match(text, /charge\s+completed\s+2\/5/);
    assert.match(text, /sleep\s+completed\s+slept until 2026-01-02T03:04:05\.000Z/);
    assert.match(text, /sleep\s+waiting\s+sleeps until 2026-01-02T03:04:05\.000Z/);
    assert.match(text, /delivered\s+waiting\s+waits for event "delivered" \(gives up at 2026-01-02T03:04:05\.000Z\)/);
    assert.match(text, /invoice\s+running\s+waits for child workflow invoice/);
    assert.doesNotMatch(text, /1\/1000/);
  });

  it('says why ready steps are not moving', () => {
    const view = {
      id: 'o-2', name: 'order', definitionHash: 'abc', status: 'running', input: null, output: null, error: null, priority: null,
      tags: [], parentId: null, parentKey: null, state: {}, currentStep: null, completedTaskCount: 0, version: 1,
      createdAt: at, updatedAt: at, finishedAt: null, waitingForDefinition: null, estimatedSteps: 2,
      stalled: ['step 0 (charge): no live worker with this definition offers tags [payments]', 'step 1 (ship): no live worker'],
      tasks: [task('task', 'charge', 'ready', { maxAttempts: 5 })],
    } as unknown as InstanceView;
    const lines = statusText(view).split('\n');
    assert.ok(lines.includes('stalled:   step 0 (charge): no live worker with this definition offers tags [payments]'), lines.join('\n'));
    assert.ok(lines.includes('           step 1 (ship): no live worker'), lines.join('\n'));
  });

  it('names the version of a definition other than 1, and says when no live worker has it', () => {
    const view = {
      id: 'o-3', name: 'order', definitionHash: 'def', status: 'running', input: null, output: null, error: null, priority: null,
      tags: [], parentId: null, parentKey: null, state: {}, currentStep: null, completedTaskCount: 0, version: 1,
      createdAt: at, updatedAt: at, finishedAt: null, definitionVersion: 2, waitingForDefinition: 'order@def (version 2)', estimatedSteps: 2,
      stalled: ['no live worker has definition order@def (version 2): its steps wait until a worker that exports this version runs (see baton definitions)'],
      tasks: [task('sleep', 'sleep', 'waiting')],
    } as unknown as InstanceView;
    const lines = statusText(view).split('\n');
    assert.ok(lines.includes('workflow:  order version 2 (definition def)'), lines.join('\n'));
    assert.ok(lines.includes('status:    running, waiting for a worker with order@def (version 2)'), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('stalled:   no live worker has definition order@def (version 2)')), lines.join('\n'));
    assert.ok(statusText({ ...view, definitionVersion: 1 }).includes('workflow:  order (definition def)'), 'version 1 is not worth a word');
  });
});

describe('baton definitions table', () => {
  it('marks the definition a start by name uses, and one whose instances no live worker runs', () => {
    const row = { name: 'order', kind: 'workflow' as const, firstSeen: at, lastSeen: at };
    const lines = definitionsTable([
      { ...row, version: 2, hash: 'new', inFlight: 40, liveWorkers: 3, startsByName: true },
      { ...row, version: 1, hash: 'old', inFlight: 60, liveWorkers: 0, startsByName: false },
      { ...row, version: 1, hash: 'older', inFlight: 0, liveWorkers: 0, startsByName: false },
    ]).split('\n');
    assert.match(lines[0]!, /^NAME\s+KIND\s+VERSION\s+HASH\s+IN FLIGHT\s+LIVE WORKERS\s+STARTS BY NAME$/);
    assert.match(lines[2]!, /^order\s+workflow\s+2\s+new\s+40\s+3\s+yes$/);
    assert.match(lines[3]!, /^order\s+workflow\s+1\s+old\s+60\s+0 \(stranded: no worker runs them\)$/);
    assert.match(lines[4]!, /^order\s+workflow\s+1\s+older\s+0\s+0$/, 'nothing in flight: nothing stranded');
  });
});
