/**
 * `client.get()` says why a ready task is not moving: no live worker, none
 * with the instance's definition, or none of those offers the task's tags;
 * and, for an instance whose definition no live worker has, that its steps
 * wait for one even when none is ready yet (a sleep, an event wait).
 */
import assert from 'node:assert/strict';
import { defineTask, defineWorkflow, type Client, type Worker } from '../src/index.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { closeMarkPools, gpuOnly, inc } from './support/workflows.ts';

describe('why a ready task is not moving', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  const workers: Worker[] = [];

  before(async () => {
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  it('names each reason, and nothing once a worker can take the task', async () => {
    const gpu = await client.enqueue(gpuOnly, null, { id: 'stalled-gpu' });
    const lacking = defineTask('stalled-elsewhere', async () => 'x');
    await client.enqueue(lacking, null, { id: 'stalled-elsewhere' });
    const hash = (await client.get('stalled-elsewhere'))!.definitionHash;

    assert.deepEqual((await client.get('stalled-gpu'))!.stalled, ['step 0 (gpu-only): no live worker']);

    // A worker without the tag, and without the second definition.
    workers.push(await inProcessWorker(db.url, { workflows: [], tasks: [gpuOnly, inc] }));
    assert.deepEqual((await client.get('stalled-gpu'))!.stalled, ['step 0 (gpu-only): no live worker with this definition offers tags [gpu]']);
    assert.deepEqual((await client.get('stalled-elsewhere'))!.stalled, [
      `no live worker has definition stalled-elsewhere@${hash}: its steps wait until a worker that exports this version runs (see baton definitions)`,
    ]);

    // Paused: not stalled, it is waiting on purpose.
    await client.pause('stalled-elsewhere');
    assert.deepEqual((await client.get('stalled-elsewhere'))!.stalled, []);
    await client.resume('stalled-elsewhere');

    workers.push(await inProcessWorker(db.url, { workflows: [], tasks: [gpuOnly], tags: ['gpu'] }));
    assert.equal(await gpu.result({ timeoutMs: 10_000 }), 'rendered');
    assert.deepEqual((await client.get('stalled-gpu'))!.stalled, [], 'a finished instance is not stalled');
  });

  it('says so for an instance whose definition no live worker has, though nothing of it is ready yet', async () => {
    const napping = defineWorkflow('stalled-napping', { version: 3 }).sleep('1h').then(inc).build();
    await client.start(napping, 1, { id: 'stalled-napping' });
    assert.deepEqual((await client.get('stalled-napping'))!.stalled, [], 'no worker at all: nothing ready, nothing to say per step');
    workers.push(await inProcessWorker(db.url, { workflows: [], tasks: [inc] }));
    const view = (await client.get('stalled-napping'))!;
    assert.deepEqual(view.tasks.map((t) => [t.kind, t.status]), [['sleep', 'waiting']]);
    assert.equal(view.definitionVersion, 3);
    assert.equal(view.waitingForDefinition, `stalled-napping@${napping.hash} (version 3)`);
    assert.deepEqual(view.stalled, [
      `no live worker has definition stalled-napping@${napping.hash} (version 3): its steps wait until a worker that exports this version runs (see baton definitions)`,
    ]);
    workers.push(await inProcessWorker(db.url, { workflows: [napping], tasks: [] }));
    const served = (await client.get('stalled-napping'))!;
    assert.deepEqual([served.stalled, served.waitingForDefinition], [[], null], 'a worker that exports the version serves it');
  });
});
