/**
 * The portable benchmark adapter (bench/portable/adapter.ts) as the public
 * harness drives it: a child process with the harness's environment, tokens
 * on stdin, the rate control file rewritten mid-run, replicas on one
 * database, SIGKILL and restart. Each case runs ~20 s of real load.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchAdapter, paceTokens, ticks, totals, type AdapterLine, type AdapterProcess } from '../bench/portable/launch.ts';
import { createTestDatabase } from './support/db.ts';
import { ROOT } from './support/server.ts';

const TASK = 'portable_job';
const SAMPLE_EVERY_S = 2;
const BATCH_MAX = 64;
const ALL_METRICS = [
  'claim_p50_ms',
  'claim_p95_ms',
  'claim_p99_ms',
  'end_to_end_p50_ms',
  'end_to_end_p95_ms',
  'end_to_end_p99_ms',
  'enqueue_rate',
  'completion_rate',
  'queue_depth',
  'producer_target_rate',
];
/** Global observations: instance 0 alone reports them. */
const OBSERVER_METRICS = ['queue_depth', 'producer_target_rate'];
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'bench/portable/adapter.json'), 'utf8')) as { event_tables: string[] };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function harnessEnv(url: string, o: { rate: number; controlFile: string; instance: number }): Record<string, string> {
  return {
    DATABASE_URL: url,
    SCENARIO: 'long_horizon',
    PRODUCER_MODE: 'fixed',
    PRODUCER_PACING: 'harness',
    PRODUCER_RATE: String(o.rate),
    PRODUCER_RATE_CONTROL_FILE: o.controlFile,
    PRODUCER_BATCH_MAX: String(BATCH_MAX),
    PRODUCER_BATCH_MS: '25',
    TARGET_DEPTH: '1000',
    WORKER_COUNT: '8',
    JOB_PAYLOAD_BYTES: '256',
    JOB_WORK_MS: '1',
    SAMPLE_EVERY_S: String(SAMPLE_EVERY_S),
    BENCH_INSTANCE_ID: String(o.instance),
    MALLOC_ARENA_MAX: '2',
    // Claims of a killed replica come back after 2 s instead of 30 s.
    BATON_CLAIM_TTL_MS: '2000',
  };
}

/** Every tick: the expected metrics, each a finite number >= 0, stamped with the instance, on a wall-clock boundary. */
function checkTicks(adapter: AdapterProcess, instance: number): Map<string, Map<string, AdapterLine>> {
  assert.deepEqual(adapter.garbage, [], 'every stdout line is JSON');
  const expected = instance === 0 ? ALL_METRICS : ALL_METRICS.filter((m) => !OBSERVER_METRICS.includes(m));
  const byTick = ticks(adapter.lines);
  for (const [t, tick] of byTick) {
    assert.equal(Date.parse(t) % (SAMPLE_EVERY_S * 1000), 0, `tick ${t} is on a ${SAMPLE_EVERY_S} s boundary`);
    assert.deepEqual([...tick.keys()].sort(), [...expected].sort(), `tick ${t} has the metrics of instance ${instance}`);
    for (const [metric, line] of tick) {
      assert.equal(line.instance_id, instance, `${metric} at ${t} names its instance`);
      assert.equal(line.system, 'baton');
      assert.equal(line.subject_kind, 'adapter');
      assert.ok(typeof line.value === 'number' && Number.isFinite(line.value) && line.value >= 0, `${metric} at ${t} is a number >= 0 (got ${String(line.value)})`);
      assert.equal(line.window_s, metric.includes('_p') ? 30 : metric.endsWith('_rate') && metric !== 'producer_target_rate' ? SAMPLE_EVERY_S : 0, `${metric} window`);
    }
  }
  return byTick;
}

const value = (tick: Map<string, AdapterLine>, metric: string) => tick.get(metric)!.value as number;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * tolerance, `${what}: ${actual.toFixed(1)} is not within ${tolerance * 100}% of ${expected}`);
}

describe('portable benchmark adapter (driven as the harness drives it)', function () {
  this.timeout(90_000);
  let work: string;
  const adapters: AdapterProcess[] = [];
  const pacers: { stop(): void }[] = [];
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;

  beforeEach(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'baton-portable-'));
    // An empty database, as the harness creates it: the adapter migrates it itself.
    db = await createTestDatabase({ empty: true });
  });

  afterEach(async () => {
    for (const p of pacers.splice(0)) p.stop();
    await Promise.all(adapters.splice(0).map((a) => (a.child.exitCode === null && a.child.signalCode === null ? a.kill() : a.exited)));
    await db?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  function start(env: Record<string, string>): AdapterProcess {
    const a = launchAdapter(env);
    adapters.push(a);
    return a;
  }

  it('follows harness tokens and the rate control file, reports every metric every tick, and exits 0 on SIGTERM', async () => {
    const base = 200;
    const controlFile = path.join(work, 'producer_rate.txt');
    writeFileSync(controlFile, String(base));
    const adapter = start(harnessEnv(db!.url, { rate: base, controlFile, instance: 0 }));

    const descriptor = await adapter.waitFor((l) => l.kind === 'descriptor', 30_000);
    assert.equal(descriptor.system, 'baton');
    assert.equal(descriptor.instance_id, 0);
    assert.equal(descriptor.db_name, db!.name);
    assert.equal(descriptor.version, (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    assert.match(String(descriptor.schema_version), /^[1-9]\d*$/);
    assert.ok(!Number.isNaN(Date.parse(String(descriptor.started_at))));
    for (const table of manifest.event_tables) assert.ok((descriptor.event_tables as string[]).includes(table), `descriptor lists ${table}`);
    assert.deepEqual(descriptor.extensions, []);

    // Stdin is drained: 256 KiB (four pipes' worth) of lines it must read and ignore goes through at once.
    const t0 = performance.now();
    await Promise.race([adapter.write('NOT-A-TOKEN\n'.repeat(256 * 1024 / 12)), sleep(5_000).then(() => assert.fail('stdin is not read'))]);
    assert.ok(performance.now() - t0 < 5_000);

    // 10 s at the base rate, then 10 s at 1.5x written into the control file (the high-load phase).
    const pacer = paceTokens(adapter, { rate: base, batchMax: BATCH_MAX, periodMs: 25 });
    pacers.push(pacer);
    const startedAt = Date.now();
    await sleep(10_000);
    const tokensBefore = pacer.sent();
    writeFileSync(controlFile, String(base * 1.5));
    const switchedAt = Date.now();
    await sleep(10_000);
    pacer.stop();
    const tokensAfter = pacer.sent() - tokensBefore;
    await sleep(1_000); // the last tokens reach the queue

    const stopped = await adapter.stop();
    assert.equal(stopped.code, 0, `exit code (stderr:\n${adapter.stderr()})`);
    assert.ok(stopped.ms < 5_000, `exited in ${stopped.ms.toFixed(0)} ms`);

    const byTick = checkTicks(adapter, 0);
    assert.ok(byTick.size >= 9, `${byTick.size} ticks in ~22 s`);
    // Ticks whose whole window lies in one phase (1 s of slack for the first tokens, 0.5 s for the control file's re-read).
    const window = (t: string) => [Date.parse(t) - SAMPLE_EVERY_S * 1000, Date.parse(t)] as const;
    const low = [...byTick].filter(([t]) => window(t)[0] >= startedAt + 1_000 && window(t)[1] <= switchedAt);
    const high = [...byTick].filter(([t]) => window(t)[0] >= switchedAt + 500 && window(t)[1] <= startedAt + 20_000);
    assert.ok(low.length >= 3 && high.length >= 3, `steady ticks: ${low.length} at the base rate, ${high.length} at 1.5x`);
    for (const [t, tick] of low) {
      assert.equal(value(tick, 'producer_target_rate'), base, `target rate at ${t}`);
      near(value(tick, 'enqueue_rate'), base, 0.15, `enqueue rate at ${t}`);
      near(value(tick, 'completion_rate'), base, 0.25, `completion rate at ${t}`);
    }
    for (const [t, tick] of high) {
      assert.equal(value(tick, 'producer_target_rate'), base * 1.5, `target rate at ${t}`);
      near(value(tick, 'enqueue_rate'), base * 1.5, 0.15, `enqueue rate at ${t}`);
      near(value(tick, 'completion_rate'), base * 1.5, 0.25, `completion rate at ${t}`);
    }
    for (const [t, tick] of [...low, ...high]) {
      // End to end includes the claim and 1 ms of work.
      assert.ok(value(tick, 'claim_p50_ms') > 0, `claim p50 at ${t}`);
      assert.ok(value(tick, 'end_to_end_p50_ms') >= 1, `end-to-end p50 at ${t}: ${value(tick, 'end_to_end_p50_ms')}`);
      assert.ok(value(tick, 'end_to_end_p99_ms') >= value(tick, 'claim_p50_ms'), `end-to-end p99 >= claim p50 at ${t}`);
    }

    // Every token was honoured, scaled by the control file (re-read within 0.2 s of the change).
    const done = totals(adapter.stderr());
    assert.ok(done, `the adapter printed its totals:\n${adapter.stderr()}`);
    const expected = tokensBefore + tokensAfter * 1.5;
    assert.ok(Math.abs(done.enqueued - expected) <= 0.2 * base * 0.5 + BATCH_MAX, `enqueued ${done.enqueued}, expected about ${expected}`);
    const { rows } = await query(db!.url, `select count(*)::int as n from baton.workflows where name = $1`, [TASK]);
    assert.equal(rows[0]!.n, done.enqueued, 'what it counted is what is in the database');
  });

  it('depth-target mode holds TARGET_DEPTH ready jobs, and says so in queue_depth', async () => {
    const target = 400;
    const adapter = start({
      ...harnessEnv(db!.url, { rate: 0, controlFile: path.join(work, 'none'), instance: 0 }),
      PRODUCER_MODE: 'depth-target',
      TARGET_DEPTH: String(target),
      WORKER_COUNT: '4',
      JOB_WORK_MS: '5',
    });
    await adapter.waitFor((l) => l.kind === 'descriptor', 30_000);
    const from = Date.now() + 2_000;
    await sleep(10_000);
    const stopped = await adapter.stop();
    assert.equal(stopped.code, 0, adapter.stderr());
    const steady = [...checkTicks(adapter, 0)].filter(([t]) => Date.parse(t) >= from);
    assert.ok(steady.length >= 3, `${steady.length} ticks after the first 2 s`);
    // Each sample is one instantaneous read of a queue that the workers drain by up to 80 jobs between
    // two of the producer's top-ups (every 100 ms): the depth it holds is the mean, and no sample may
    // show the queue run down to less than half of the target.
    near(mean(steady.map(([, tick]) => value(tick, 'queue_depth'))), target, 0.25, 'mean queue depth');
    for (const [t, tick] of steady) {
      assert.ok(value(tick, 'queue_depth') >= target / 2, `queue depth at ${t}: ${value(tick, 'queue_depth')}, under half of ${target}`);
      assert.ok(value(tick, 'completion_rate') > 0, `completions at ${t}`);
      assert.equal(value(tick, 'producer_target_rate'), 0);
    }
  });

  it('two replicas on one database: one killed and restarted, every job completes once, totals add up', async () => {
    const rate = 100;
    const controlFile = path.join(work, 'producer_rate.txt');
    writeFileSync(controlFile, String(rate));
    const a = start(harnessEnv(db!.url, { rate, controlFile, instance: 0 }));
    // One at a time: both migrate at start, under Baton's advisory lock.
    await a.waitFor((l) => l.kind === 'descriptor', 30_000);
    const b1 = start(harnessEnv(db!.url, { rate, controlFile, instance: 1 }));
    assert.equal((await b1.waitFor((l) => l.kind === 'descriptor', 30_000)).instance_id, 1);

    const pa = paceTokens(a, { rate, batchMax: BATCH_MAX, periodMs: 25 });
    let pb = paceTokens(b1, { rate, batchMax: BATCH_MAX, periodMs: 25 });
    pacers.push(pa, pb);
    await b1.waitFor((l) => l.metric === 'completion_rate' && (l.value as number) > 0, 15_000);
    await sleep(2_000);
    pb.stop();
    const tokensB1 = pb.sent();
    await b1.kill();

    const b2 = start(harnessEnv(db!.url, { rate, controlFile, instance: 1 }));
    await b2.waitFor((l) => l.kind === 'descriptor', 30_000);
    pb = paceTokens(b2, { rate, batchMax: BATCH_MAX, periodMs: 25 });
    pacers.push(pb);
    await sleep(5_000);
    pa.stop();
    pb.stop();

    // The killed replica's claims expire (2 s) and the others finish its jobs.
    const deadline = Date.now() + 20_000;
    let left = -1;
    while (left !== 0 && Date.now() < deadline) {
      await sleep(500);
      left = (await query(db!.url, `select count(*)::int as n from baton.workflows where name = $1 and status <> 'completed'`, [TASK])).rows[0]!.n;
    }
    assert.equal(left, 0, 'every job completed');
    const [sa, sb] = await Promise.all([a.stop(), b2.stop()]);
    assert.equal(sa.code, 0, a.stderr());
    assert.equal(sb.code, 0, b2.stderr());

    checkTicks(a, 0);
    checkTicks(b1, 1);
    checkTicks(b2, 1);
    assert.ok(ticks(b1.lines).size >= 1 && ticks(b2.lines).size >= 1);

    const total = (await query(db!.url, `select count(*)::int as n from baton.workflows where name = $1`, [TASK])).rows[0]!.n;
    const ta = totals(a.stderr())!;
    const tb2 = totals(b2.stderr())!;
    assert.ok(ta && tb2, 'both survivors printed their totals');
    // The survivors inserted exactly what they were sent; the killed one at most what it was sent.
    assert.equal(ta.enqueued, pa.sent());
    assert.equal(tb2.enqueued, pb.sent());
    const byB1 = total - ta.enqueued - tb2.enqueued;
    assert.ok(byB1 >= 0 && byB1 <= tokensB1, `the killed replica inserted ${byB1} of the ${tokensB1} it was sent`);
    assert.ok(byB1 > 0, 'the killed replica had produced before it was killed');
    // No completion is counted twice: the survivors' counts and the killed one's (unknown, >= 0) add up to the jobs.
    assert.ok(ta.completed + tb2.completed <= total, `completions ${ta.completed} + ${tb2.completed} <= ${total} jobs`);
    assert.ok(ta.completed + tb2.completed >= total / 2, `the survivors did most of the work (${ta.completed} + ${tb2.completed} of ${total})`);
    const failed = (await query(db!.url, `select count(*)::int as n from baton.workflows where status = 'failed'`, [])).rows[0]!.n;
    assert.equal(failed, 0);
  });
});

async function query(url: string, text: string, values: unknown[]): Promise<{ rows: { n: number }[] }> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<{ n: number }>(text, values);
  } finally {
    await client.end();
  }
}
