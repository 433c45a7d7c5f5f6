/**
 * Output streams: ctx.stream.write (batched, fenced, stored before the attempt's result),
 * client.readStream, client.tail (LISTEN, ends with the instance), `baton tail`, the frame size
 * limit, and retention (frames go with their instance).
 */
import assert from 'node:assert/strict';
import {
  defineTask,
  defineWorkflow,
  jsonCodec,
  LeaseLostError,
  NotFoundError,
  StreamFrameTooLargeError,
  taskWorkflow,
  ValidationError,
  type Client,
  type StreamFrame,
  type Worker,
} from '../src/index.ts';
import { claimTasks, startInstance } from '../src/store/index.ts';
import { writeStream } from '../src/store/streams.ts';
import { HeldTask } from '../src/worker/held.ts';
import { StreamWriter } from '../src/worker/streams.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, register, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';

const gates = new Map<string, () => void>();
const gate = (id: string) => new Promise<void>((resolve) => gates.set(id, resolve));
const open = async (id: string) => (await until(async () => gates.get(id), { what: `gate ${id}` }))();

/** Writes `count` frames, the second half after the test opens its gate; writes are not awaited. */
const talker = defineTask('st-talker', async (input: { count: number; prefix: string }, ctx) => {
  const half = Math.floor(input.count / 2);
  for (let i = 0; i < half; i++) void ctx.stream.write(`${input.prefix}${i}`);
  await ctx.stream.flush();
  await gate(`${ctx.workflowId}:${ctx.taskKey}`);
  for (let i = half; i < input.count; i++) void ctx.stream.write({ n: i, prefix: input.prefix });
  return 'done';
});
const sizer = defineTask('st-sizer', async (_input: null, ctx) => {
  let refused = '';
  try {
    void ctx.stream.write('x'.repeat(500));
  } catch (error) {
    refused = `${(error as Error).name}:${(error as StreamFrameTooLargeError).code}`;
  }
  try {
    void ctx.stream.write(() => 1);
  } catch (error) {
    refused += `,${(error as Error).name}`;
  }
  await ctx.stream.write('small');
  return refused;
});
const oneFrame = defineTask('st-one-frame', async (_input: null, ctx) => {
  void ctx.stream.write('last words');
  return 'returned';
});
const twoTalkers = defineWorkflow<{ count: number; prefix: string }>('st-two').parallel([talker, talker]).build();
const quiet = defineTask('st-quiet', async () => 'no stream');

describe('output streams', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker | undefined;
  const startWorker = async () => {
    worker = await inProcessWorker(db.url, { workflows: [twoTalkers], tasks: [talker, sizer, quiet, oneFrame], config: { maxStreamFrameBytes: 100 } });
  };
  const collect = async (id: string, options: { from?: number; signal?: AbortSignal } = {}) => {
    const frames: StreamFrame[] = [];
    for await (const f of client.tail(id, options)) frames.push(f);
    return frames;
  };

  before(async () => {
    client = await fixtureClient(db.url);
  });
  afterEach(async () => {
    await worker?.stop({ graceMs: 200 });
    worker = undefined;
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
  });

  it('tail follows frames live, in order, and ends when the instance ends; every frame is stored before the result', async () => {
    const { id } = await client.enqueue(talker, { count: 40, prefix: 't' }, { id: 'st-1' });
    const tailing = collect(id); // started before any worker runs: it waits on LISTEN
    await startWorker();
    await until(async () => (await client.readStream(id)).length === 20, { what: 'the first half' });
    await open(`${id}:0`);
    const frames = await tailing;
    assert.deepEqual(
      frames.map((f) => f.seq),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    assert.equal(frames[0]!.frame, 't0');
    assert.deepEqual(frames[39]!.frame, { n: 39, prefix: 't' });
    assert.ok(frames.every((f) => f.taskKey === '0' && f.attempt === 1 && f.at instanceof Date));
    assert.equal(await client.result(id), 'done');
    const { rows } = await db.pool.query(`select max(f.at) <= w.finished_at as before from baton.stream_frames f, baton.workflows w where w.id = $1 and f.workflow_id = w.id group by w.finished_at`, [id]);
    assert.equal(rows[0].before, true, 'the frames were stored before the instance completed');

    // Reading from a cursor; a tail of a finished instance returns what is left and ends.
    assert.deepEqual((await client.readStream(id, { from: 35 })).map((f) => f.seq), [36, 37, 38, 39, 40]);
    assert.deepEqual((await client.readStream(id, { from: 10, limit: 2 })).map((f) => f.seq), [11, 12]);
    assert.deepEqual((await collect(id, { from: 38 })).map((f) => f.seq), [39, 40]);
    const sql = (await db.pool.query(`select seq, frame from baton.read_stream($1, 0, 1)`, [id])).rows;
    assert.deepEqual(sql, [{ seq: 1, frame: 't0' }]);
  });

  it("an attempt's result waits for its frames: the instance does not complete while a frame is not stored", async () => {
    await startWorker();
    // Hold the instance's stream lock (what baton.write_stream takes) so that the frame cannot be stored yet.
    const blocker = await db.pool.connect();
    try {
      await blocker.query(`select pg_advisory_lock(hashtextextended('baton:stream:' || $1, 0))`, ['st-order']);
      const { id } = await client.enqueue(oneFrame, null, { id: 'st-order' });
      await until(async () => (await db.pool.query(`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%write_stream%'`)).rows.length > 0, {
        what: 'the frame waiting for the lock',
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await client.get(id))!.status, 'running', 'not completed before its frame is stored');
      await blocker.query(`select pg_advisory_unlock(hashtextextended('baton:stream:' || $1, 0))`, ['st-order']);
      assert.equal(await client.result(id, { timeoutMs: 20_000 }), 'returned');
      assert.deepEqual((await client.readStream(id)).map((f) => f.frame), ['last words']);
    } finally {
      blocker.release();
    }
  });

  it('two branches streaming at once get one gap-free sequence; each keeps its own order', async () => {
    await startWorker();
    const { id } = await client.start(twoTalkers, { count: 60, prefix: 'p' }, { id: 'st-par' });
    const tailing = collect(id);
    await until(async () => (await client.readStream(id)).length === 60, { what: 'both first halves' });
    await Promise.all([open(`${id}:0/b0`), open(`${id}:0/b1`)]);
    const frames = await tailing;
    assert.deepEqual(
      frames.map((f) => f.seq),
      Array.from({ length: 120 }, (_, i) => i + 1),
      'no gaps, no duplicates, as the tail saw them',
    );
    for (const key of ['0/b0', '0/b1']) {
      const mine = frames.filter((f) => f.taskKey === key).map((f) => (typeof f.frame === 'string' ? Number(f.frame.slice(1)) : (f.frame as { n: number }).n));
      assert.deepEqual(mine, Array.from({ length: 60 }, (_, i) => i), `${key}'s frames in the order it wrote them`);
    }
  });

  it('refuses a frame over the size limit, or one that cannot be stored, at once; nothing of it is written', async () => {
    await startWorker();
    const { id } = await client.enqueue(sizer, null, { id: 'st-size' });
    assert.equal(await client.result(id, { timeoutMs: 20_000 }), 'StreamFrameTooLargeError:VALIDATION,ValidationError');
    assert.deepEqual((await client.readStream(id)).map((f) => f.frame), ['small']);
  });

  it("refuses a zombie's frames: the fence is the claim's epoch and worker, and nothing is written", async () => {
    await register(db.pool, taskWorkflow(quiet));
    await startInstance(db.pool, { name: 'st-quiet', kind: 'task', id: 'st-zombie' });
    const claim = (workerId: string) => claimTasks(db.pool, { workerId, limit: 1, tags: [], hashes: [taskWorkflow(quiet).hash], ttlMs: 60_000 });
    const [old] = await claim('w-old');
    assert.equal(await writeStream(db.pool, old!, 'w-old', ['before']), 1);
    // Its lease expires and another worker takes the task over.
    await db.pool.query(`update baton.tasks set lease_expires_at = now() - interval '1 second' where workflow_id = 'st-zombie'`);
    await db.pool.query(`select baton.reclaim_expired(5, 100)`);
    const [current] = await claim('w-new');
    assert.ok(current && current.epoch > old!.epoch);

    assert.equal(await writeStream(db.pool, old!, 'w-old', ['zombie']), null, 'old epoch: refused');
    assert.equal(await writeStream(db.pool, { ...old!, epoch: current.epoch }, 'w-old', ['zombie']), null, 'current epoch, wrong worker: refused');
    // The zombie's worker-side stream: the write's promise rejects with LeaseLostError, the attempt's end too.
    const zombie = new StreamWriter(new HeldTask(old!, taskWorkflow(quiet), Date.now() + 60_000), {
      pool: () => db.pool,
      workerId: 'w-old',
      codec: jsonCodec,
      maxFrameBytes: 1000,
      waitpoints: { waitpointSecret: undefined, waitpointTtlMs: 1000 },
    });
    await assert.rejects(zombie.write('zombie'), LeaseLostError);
    await assert.rejects(zombie.write('again'), LeaseLostError, 'refused at once afterwards');
    await assert.rejects(zombie.end(), LeaseLostError);
    assert.throws(() => zombie.write('after the end'), /has ended/);
    assert.equal(await writeStream(db.pool, current, 'w-new', ['new holder']), 2);
    assert.deepEqual((await client.readStream('st-zombie')).map((f) => [f.seq, f.frame, f.attempt]), [
      [1, 'before', 1],
      [2, 'new holder', 2],
    ]);
    await db.pool.query(`select baton.cancel_workflow('st-zombie')`);
    assert.equal(await writeStream(db.pool, current, 'w-new', ['after cancel']), null, 'an attempt no longer running: refused');
    await assert.rejects(writeStream(db.pool, current, 'w-new', []), ValidationError);
  });

  it('a tail ends when the instance is cancelled, or its signal fires; an unknown id is a NotFoundError', async () => {
    await startWorker();
    const { id } = await client.enqueue(talker, { count: 4, prefix: 'c' }, { id: 'st-cancel' });
    await until(async () => (await client.readStream(id)).length === 2);
    const tailing = collect(id);
    await client.cancel(id);
    assert.deepEqual((await tailing).map((f) => f.frame), ['c0', 'c1']);

    const { id: other } = await client.enqueue(talker, { count: 2, prefix: 'a' }, { id: 'st-abort' });
    const controller = new AbortController();
    const aborted = collect(other, { signal: controller.signal });
    await until(async () => (await client.readStream(other)).length === 1);
    controller.abort();
    assert.ok((await aborted).length <= 1);
    await open(`${other}:0`);
    await client.result(other, { timeoutMs: 20_000 });

    await assert.rejects(collect('st-nobody'), NotFoundError);
    await assert.rejects(collect(id, { from: -1 }), ValidationError);
    await assert.rejects(client.readStream(id, { limit: 0 }), ValidationError);
  });

  it('frames go with their instance: delete_instances and retention remove them', async () => {
    const before = Number((await db.pool.query(`select count(*) from baton.stream_frames where workflow_id = 'st-1'`)).rows[0].count);
    assert.equal(before, 40);
    await db.pool.query(`select baton.delete_instances(array['st-1'])`);
    assert.equal(Number((await db.pool.query(`select count(*) from baton.stream_frames where workflow_id = 'st-1'`)).rows[0].count), 0);
    const { prune } = await import('../src/store/maintenance.ts');
    await db.pool.query(`update baton.workflows set created_at = now() - interval '2 days', finished_at = now() - interval '2 days' where id = 'st-par'`);
    await prune(db.pool, 86_400_000);
    assert.equal(Number((await db.pool.query(`select count(*) from baton.stream_frames where workflow_id = 'st-par'`)).rows[0].count), 0);
  });

  it('baton tail <id> prints each frame (text as a line, others as JSON) and exits when the instance ends', async () => {
    await startWorker();
    const { id } = await client.enqueue(talker, { count: 4, prefix: 'l' }, { id: 'st-cli' });
    const cli = runCli(['tail', id], { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });
    await until(async () => (await client.readStream(id)).length === 2);
    await open(`${id}:0`);
    const r = await cli;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['l0', 'l1', '{"n":2,"prefix":"l"}', '{"n":3,"prefix":"l"}']);
    const json = await runCli(['tail', id, '--from', '3', '--json'], { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });
    assert.deepEqual(JSON.parse(json.stdout.trim()).frame, { n: 3, prefix: 'l' });
    const missing = await runCli(['tail', 'st-nobody'], { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr.trim(), /^baton: no workflow instance "st-nobody"$/);
  });
});
