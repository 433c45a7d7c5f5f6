/**
 * Deploying a changed workflow: versions of one workflow run side by side, a start by name takes
 * the highest, `definitions()` / `baton definitions` say what is in flight under each shape and
 * whether a live worker can run it, and a rolling deploy (old worker processes replaced one by
 * one by new ones, `baton worker --dir`) finishes every instance under the shape it started with.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { defineWorkflow, type Client, type Worker } from '../src/index.ts';
import { registerWorker } from '../src/store/workers.ts';
import { order as oldOrder } from './deploy/old/order.ts';
import { order as newOrder, orderV1 } from './deploy/new/order.ts';
import type { StepDone } from './deploy/steps.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, register, until } from './support/fixtures.ts';
import { ROOT } from './support/server.ts';
import { FAST, inProcessWorker } from './support/workers.ts';
import { inc } from './support/workflows.ts';

const V1_SHAPE = ['deploy-reserve', 'go', 'deploy-ship'];
const V2_SHAPE = ['deploy-reserve', 'go', 'deploy-fraud-check', 'deploy-ship-v2'];

interface CliWorker {
  proc: ChildProcess;
  id: string;
  pid: number;
  stop(): Promise<number | null>;
}

describe('deploying a changed workflow', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  const procs: ChildProcess[] = [];
  const workers: Worker[] = [];

  /** `baton worker --dir test/deploy/<code>`: the documented way to run a directory of worker modules. */
  function cliWorker(code: 'old' | 'new'): Promise<CliWorker> {
    return new Promise((resolve, reject) => {
      const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'baton.js'), 'worker', '--dir', `test/deploy/${code}`, '--concurrency', '4'], {
        cwd: ROOT,
        env: {
          ...process.env,
          DATABASE_URL: db.url,
          BATON_CLAIM_TTL_MS: String(FAST.claimTtlMs),
          BATON_RECONCILE_INTERVAL_MS: String(FAST.reconcileIntervalMs),
          BATON_POLL_INTERVAL_MS: String(FAST.pollIntervalMs),
          BATON_SHUTDOWN_GRACE_MS: String(FAST.shutdownGraceMs),
          BATON_LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      procs.push(proc);
      const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
      let err = '';
      let ready = false;
      proc.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        if (process.env.BATON_TEST_LOG) process.stderr.write(chunk);
        const line = ready ? undefined : err.split('\n').find((l) => l.includes('"msg":"worker started"'));
        if (line) {
          ready = true;
          const id = (JSON.parse(line) as { workerId: string }).workerId;
          resolve({ proc, id, pid: proc.pid!, stop: () => (proc.kill('SIGTERM'), exited) });
        }
      });
      void exited.then((c) => {
        if (!ready) reject(new Error(`baton worker (${code}) exited ${c} before it started: ${err}`));
      });
    });
  }

  before(async () => {
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    for (const p of procs.splice(0)) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await new Promise((r) => p.on('exit', r));
      }
    }
    // A killed worker leaves its row, live-looking until its heartbeat ages: not for the next test.
    await db.pool.query(`delete from baton.workers`);
  });
  after(async () => {
    await client.close();
  });

  /** Each instance's definition, status, step names (in key order) and step outputs. */
  async function shapes(ids: string[]) {
    const { rows } = await db.pool.query<{ id: string; hash: string; status: string; names: string[]; outputs: (StepDone | null)[] }>(
      `select w.id, w.definition_hash as hash, w.status,
         array_agg(t.name order by t.task_key) as names, array_agg(t.output order by t.task_key) as outputs
       from baton.workflows w join baton.tasks t on t.workflow_id = w.id
       where w.id = any ($1) group by w.id`,
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r]));
  }

  const reservedCount = async (ids: string[]) =>
    (await db.pool.query<{ n: number }>(`select count(*)::int as n from baton.tasks where workflow_id = any ($1) and name = 'deploy-reserve' and status = 'completed'`, [ids])).rows[0]!.n;

  it('a start by name takes the highest version, whichever was registered last; a start with the definition takes that one', async () => {
    const v1 = defineWorkflow('by-name').then(inc).build();
    const v3 = defineWorkflow('by-name', { version: 3 }).then(inc).then(inc).build();
    await register(db.pool, v3);
    await register(db.pool, v1); // registered later: first_seen is newer, the version is not
    const byName = await client.start('by-name', 1);
    const pinned = await client.start(v1, 1);
    const { rows } = await db.pool.query(`select id, definition_hash from baton.workflows where id = any ($1)`, [[byName.id, pinned.id]]);
    const hashOf = new Map(rows.map((r) => [r.id as string, r.definition_hash as string]));
    assert.equal(hashOf.get(byName.id), v3.hash);
    assert.equal(hashOf.get(pinned.id), v1.hash);
    const fromSql = (await db.pool.query(`select workflow_id from baton.start_workflow('by-name', '1')`)).rows[0].workflow_id as string;
    const sqlHash = await db.pool.query(`select definition_hash from baton.workflows where id = $1`, [fromSql]);
    assert.equal(sqlHash.rows[0].definition_hash, v3.hash, 'the SQL API too');

    const defs = await client.definitions({ name: 'by-name' });
    assert.deepEqual(
      defs.map((d) => [d.version, d.hash, d.inFlight, d.liveWorkers, d.startsByName]),
      [[3, v3.hash, 2, 0, true], [1, v1.hash, 1, 0, false]],
    );
    // A worker that has the hash, live or not by its heartbeat.
    await registerWorker(db.pool, { id: 'w-live', host: 'h', pid: 1, tags: [], concurrency: 1, definitions: [v1.hash, v3.hash] });
    await registerWorker(db.pool, { id: 'w-gone', host: 'h', pid: 2, tags: [], concurrency: 1, definitions: [v1.hash] });
    await db.pool.query(`update baton.workers set heartbeat_at = now() - interval '1 hour' where id = 'w-gone'`);
    assert.deepEqual((await client.definitions({ name: 'by-name' })).map((d) => d.liveWorkers), [1, 1]);
    await db.pool.query(`delete from baton.workers`);
    await assert.rejects(client.definitions({ name: 'no spaces' }), /name must be 1-128 characters/);
    await db.pool.query(`select baton.cancel_workflow(id) from baton.workflows where name = 'by-name'`);
    assert.deepEqual((await client.definitions({ name: 'by-name' })).map((d) => d.inFlight), [0, 0], 'finished instances are not in flight');
  });

  it('replaces the workers one by one while 100 instances are mid-flight: each completes under the shape it started with', async () => {
    assert.equal(orderV1.hash, oldOrder.hash, 'the new code keeps version 1 unchanged in shape');
    assert.notEqual(newOrder.hash, oldOrder.hash);
    const t0 = Date.now();
    const old = await Promise.all([cliWorker('old'), cliWorker('old'), cliWorker('old')]);
    // Started by name while only the old code runs: version 1, the only one registered.
    const v1Ids = await client.startMany('deploy-order', Array.from({ length: 60 }, (_, n) => ({ n })));
    await until(async () => (await reservedCount(v1Ids)) === 60, { what: 'the version 1 instances to wait for "go"', timeoutMs: 20_000 });

    const go = (ids: string[]) => Promise.all(ids.map((id) => client.sendEvent(id, 'go', null)));
    const fresh: CliWorker[] = [];
    let v2Ids: string[] = [];
    const inFlightAtStops: number[] = [];
    for (let i = 0; i < 3; i++) {
      fresh.push(await cliWorker('new'));
      // Once a new worker has registered version 2, a start by name takes it.
      if (i === 0) v2Ids = await client.startMany('deploy-order', Array.from({ length: 40 }, (_, n) => ({ n: 60 + n })));
      // Work running and queued as the old worker leaves: ships (300 ms each) on 4 slots per worker.
      await go(v1Ids.slice(i * 15, (i + 1) * 15));
      if (i > 0) await go(v2Ids.slice((i - 1) * 15, i * 15));
      const defs = await client.definitions({ name: 'deploy-order' });
      const v1 = defs.find((d) => d.hash === oldOrder.hash)!;
      const v2 = defs.find((d) => d.hash === newOrder.hash)!;
      assert.deepEqual([v1.version, v1.liveWorkers, v1.startsByName], [1, 3 + 1, false], `step ${i}: old workers and the new one run version 1`);
      assert.deepEqual([v2.version, v2.liveWorkers, v2.startsByName], [2, i + 1, true]);
      inFlightAtStops.push(v1.inFlight + v2.inFlight);
      assert.equal(await old[i]!.stop(), 0, 'the old worker stops gracefully (running steps finish, prefetched ones are given back)');
    }
    assert.ok(inFlightAtStops[0]! >= 85, `instances in flight when the first old worker stopped: ${inFlightAtStops.join(', ')}`);

    // Only new code runs now. The rest of version 1 runs on it, under version 1's shape.
    await go([...v1Ids.slice(45), ...v2Ids.slice(30)]);
    const outputs = await Promise.all([...v1Ids, ...v2Ids].map((id) => client.result<StepDone>(id, { timeoutMs: 30_000 })));
    const elapsed = Date.now() - t0;

    const oldPids = new Set(old.map((w) => w.pid));
    const newPids = new Set(fresh.map((w) => w.pid));
    const all = await shapes([...v1Ids, ...v2Ids]);
    assert.equal(all.size, 100);
    for (const id of v1Ids) {
      const s = all.get(id)!;
      assert.deepEqual([s.status, s.hash, s.names], ['completed', oldOrder.hash, V1_SHAPE], `${id} ran version 1's steps`);
      assert.equal(s.outputs[0]!.code, 'old', 'reserved by the old code, before any new worker ran');
    }
    for (const id of v1Ids.slice(45)) {
      const ship = all.get(id)!.outputs[2]!;
      assert.deepEqual([ship.step, ship.code, newPids.has(ship.pid)], ['ship', 'new', true], `${id}: version 1 kept running on the new code`);
    }
    for (const id of v2Ids) {
      const s = all.get(id)!;
      assert.deepEqual([s.status, s.hash, s.names], ['completed', newOrder.hash, V2_SHAPE], `${id} ran version 2's steps`);
      for (const o of [s.outputs[0]!, s.outputs[2]!, s.outputs[3]!]) {
        assert.ok(o.code === 'new' && newPids.has(o.pid) && !oldPids.has(o.pid), `${id}: a version 2 step ran on an old worker: ${JSON.stringify(o)}`);
      }
    }
    assert.deepEqual(
      outputs.map((o) => o.step),
      [...v1Ids.map(() => 'ship'), ...v2Ids.map(() => 'ship-v2')],
    );

    const after = await client.definitions({ name: 'deploy-order' });
    assert.deepEqual(
      after.map((d) => [d.version, d.inFlight, d.liveWorkers, d.startsByName]),
      [[2, 0, 3, true], [1, 0, 3, false]],
      'nothing left in flight: version 1 may now be removed from the code',
    );
    for (const w of fresh) assert.equal(await w.stop(), 0);
    await assertInvariants(db.pool);
    // Printed for the closing note of the issue (what the rolling deploy measured).
    console.log(`      rolling deploy: 3 old -> 3 new worker processes, 100 instances (in flight at each stop: ${inFlightAtStops.join(', ')}), all done in ${elapsed} ms`);
  });

  it('tells the operator when a deploy drops a version that instances still run, and a worker that has it drains them', async () => {
    const first = await inProcessWorker(db.url, { workflows: [oldOrder], tasks: [] });
    workers.push(first);
    const ids = await client.startMany(oldOrder, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await until(async () => (await reservedCount(ids)) === 3, { what: 'the instances to wait for "go"' });
    await first.stop();
    workers.splice(0);

    // A deploy of version 2 alone: the three instances of version 1 are stranded.
    const v2Only = await inProcessWorker(db.url, { workflows: [newOrder], tasks: [] });
    workers.push(v2Only);
    await until(async () => v2Only.logLines.some((l) => l.includes('which no live worker has')), { what: 'the warning' });
    const warning = JSON.parse(v2Only.logLines.find((l) => l.includes('which no live worker has'))!) as Record<string, unknown>;
    assert.deepEqual([warning.level, warning.name, warning.definition, warning.version, warning.inFlight], ['warn', 'deploy-order', oldOrder.hash, 1, 3]);
    await Promise.all(ids.map((id) => client.sendEvent(id, 'go', null)));

    const view = (await client.get(ids[0]!))!;
    assert.equal(view.waitingForDefinition, `deploy-order@${oldOrder.hash}`);
    assert.deepEqual(view.stalled, [
      `no live worker has definition deploy-order@${oldOrder.hash}: its steps wait until a worker that exports this version runs (see baton definitions)`,
    ]);
    const defs = await client.definitions({ name: 'deploy-order' });
    const v1 = defs.find((d) => d.hash === oldOrder.hash)!;
    assert.deepEqual([v1.inFlight, v1.liveWorkers], [3, 0]);

    const env = { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'silent' };
    const table = await runCli(['definitions', '--name', 'deploy-order'], { env });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^deploy-order\\s+workflow\\s+1\\s+${oldOrder.hash}\\s+3\\s+0 \\(stranded: no worker runs them\\)$`, 'm'));
    assert.match(table.stderr, /3 instance\(s\) wait for a definition no live worker has/);
    const asJson = await runCli(['definitions', '--json'], { env });
    assert.equal(asJson.code, 0, asJson.stderr);
    const listed = JSON.parse(asJson.stdout) as { name: string; hash: string; inFlight: number; liveWorkers: number }[];
    assert.deepEqual(
      listed.filter((d) => d.hash === oldOrder.hash).map((d) => [d.name, d.inFlight, d.liveWorkers]),
      [['deploy-order', 3, 0]],
    );
    const status = await runCli(['status', ids[0]!], { env });
    assert.match(status.stdout, /stalled: +no live worker has definition deploy-order@/);

    // Nothing ran meanwhile; a worker with version 1 (the new code keeps it) finishes them.
    assert.deepEqual((await shapes(ids)).get(ids[0]!)!.names, ['deploy-reserve', 'go'], 'the event wait was not even claimed');
    workers.push(await inProcessWorker(db.url, { workflows: [orderV1, newOrder], tasks: [] }));
    for (const id of ids) assert.equal((await client.result<StepDone>(id, { timeoutMs: 15_000 })).code, 'new');
    assert.deepEqual([...(await shapes(ids)).values()].map((s) => s.names), [V1_SHAPE, V1_SHAPE, V1_SHAPE]);
  });
});
