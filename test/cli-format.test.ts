/** What `baton status` prints for the steps that wait rather than run. */
import assert from 'node:assert/strict';
import type { InstanceView } from '../src/client/client.ts';
import { statusText } from '../src/cli/format.ts';

const at = new Date('2026-01-02T03:04:05.000Z');

function task(kind: string, name: string, status: string, extra: Record<string, unknown> = {}) {
  return {
    taskKey: `0/${kind}`, kind, name, status, paused: false, priority: 0, tags: [], attempts: 1, maxAttempts: 1000,
    leaseLosses: 0, epoch: 1, claimedBy: null, leaseExpiresAt: null, availableAt: at, output: null, lastError: null,
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
});
