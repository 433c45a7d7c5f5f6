/**
 * Worker metrics: what GET /metrics serves (exact counters, histogram
 * buckets, gauges), where it listens, and how a bad port fails the start.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { defineTask, NonRetryableError, PortInUseError, taskWorkflow, type Client, type Worker } from '../src/index.ts';
import { READY_TASKS_SETTINGS, READY_TASKS_SQL } from '../src/store/metrics.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { enqueueMany, fixtureClient, register, sleep, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';

const ok = defineTask('metrics-ok', async () => 1);
const flaky = defineTask(
  'metrics-flaky',
  async (_input: null, ctx) => {
    if (ctx.attempt < 2) throw new Error(`attempt ${ctx.attempt} failed`);
    return ctx.attempt;
  },
  { retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 20, jitter: 0 } },
);
const fatal = defineTask('metrics-fatal', async () => {
  throw new NonRetryableError('no');
});
/** Waits for its claim to be lost (or the worker to stop). */
const hang = defineTask('metrics-hang', (_input: null, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))));
/** No worker here runs it: its jobs stay ready. */
const nobody = defineTask('metrics-nobody', async () => null);
const tasks = [ok, flaky, fatal, hang];

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A GET on its own connection (closed after the reply: nothing left open for the leak check). */
function get(port: number, path = '/metrics', host = '127.0.0.1'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with this name and these labels (undefined when there is none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);
  assert.ok(found.length <= 1, `one sample ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await get(port);
  assert.equal(res.status, 200);
  return parse(res.body);
}

describe('worker metrics', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker | undefined;

  before(async () => {
    client = await fixtureClient(db.url);
    await register(db.pool, taskWorkflow(nobody));
  });
  afterEach(async () => {
    await worker?.stop({ graceMs: 200 });
    worker = undefined;
    delete process.env.BATON_METRICS_PORT;
  });
  after(async () => {
    await client.close();
  });

  it('counts claims and attempts by task and outcome, and serves their histograms and the worker gauges', async () => {
    const port = await freePort();
    worker = await inProcessWorker(db.url, { tasks, workflows: [], concurrency: 4, metrics: { port } });
    const jobs = [
      ...(await Promise.all([1, 2, 3].map(() => client.enqueue(ok, null)))),
      ...(await Promise.all([1, 2].map(() => client.enqueue(flaky, null)))),
    ];
    const doomed = await client.enqueue(fatal, null);
    for (const job of jobs) await job.result({ timeoutMs: 20_000 });
    await assert.rejects(doomed.result({ timeoutMs: 20_000 }), /no/);
    // A result is awaited once committed; the worker counts it as its commit returns.
    const s = await until(async () => {
      const samples = await scrape(port);
      const total = samples.filter((x) => x.name === 'baton_task_attempts_total').reduce((sum, x) => sum + x.value, 0);
      return total >= 8 && samples;
    });

    const claimed = (task: string) => value(s, 'baton_tasks_claimed_total', { task });
    assert.deepEqual([claimed('metrics-ok'), claimed('metrics-flaky'), claimed('metrics-fatal')], [3, 4, 1]);
    const attempts = (task: string, outcome: string) => value(s, 'baton_task_attempts_total', { task, outcome });
    assert.equal(attempts('metrics-ok', 'completed'), 3);
    assert.equal(attempts('metrics-flaky', 'retried'), 2);
    assert.equal(attempts('metrics-flaky', 'completed'), 2);
    assert.equal(attempts('metrics-fatal', 'failed'), 1);
    assert.equal(s.filter((x) => x.name === 'baton_task_attempts_total').length, 4, 'no other outcome was counted');
    assert.equal(s.filter((x) => x.name === 'baton_task_leases_lost_total').length, 0);

    // Histograms: cumulative buckets ending at +Inf, with _sum and _count.
    for (const [name, task, n] of [
      ['baton_task_duration_seconds', 'metrics-flaky', 4],
      ['baton_task_wait_seconds', 'metrics-ok', 3],
    ] as const) {
      const buckets = s.filter((x) => x.name === `${name}_bucket` && x.labels.task === task);
      assert.equal(buckets.length, 17, `${name}: 16 bounds and +Inf`);
      assert.equal(buckets.at(-1)!.labels.le, '+Inf');
      assert.equal(buckets.at(-1)!.value, n);
      assert.ok(buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1]!.value), 'cumulative');
      assert.equal(value(s, `${name}_count`, { task }), n);
      assert.ok(value(s, `${name}_sum`, { task })! >= 0);
    }
    assert.ok(value(s, 'baton_claim_duration_seconds_count')! >= 1);
    assert.ok(value(s, 'baton_claim_duration_seconds_bucket', { le: '+Inf' })! >= 1);
    assert.ok(value(s, 'baton_commit_duration_seconds_count')! >= 1);
    assert.equal(value(s, 'baton_worker_slots'), 4);
    assert.equal(value(s, 'baton_worker_slots_busy'), 0);
    assert.equal(value(s, 'baton_worker_leases_held'), 0);
    // Never an instance or worker id in a label.
    const labelNames = new Set(s.flatMap((x) => Object.keys(x.labels)));
    assert.deepEqual([...labelNames].sort(), ['le', 'outcome', 'task']);
    assert.ok(s.every((x) => x.name.startsWith('baton_')));
  });

  it('gauges the ready tasks by name and the age of the oldest, fleet-wide, from the database', async () => {
    const port = await freePort();
    worker = await inProcessWorker(db.url, { tasks, workflows: [], metrics: { port } });
    let s = await scrape(port);
    assert.equal(value(s, 'baton_ready_tasks', { task: 'metrics-nobody' }), undefined, 'nothing ready yet');
    await enqueueMany(db.pool, 5, { task: 'metrics-nobody', prefix: 'nobody-' });
    await sleep(1_100);
    s = await scrape(port);
    assert.equal(value(s, 'baton_ready_tasks', { task: 'metrics-nobody' }), 5);
    const age = value(s, 'baton_ready_oldest_age_seconds', { task: 'metrics-nobody' })!;
    assert.ok(age >= 1 && age < 30, `the oldest has waited about a second (got ${age})`);
    await db.pool.query(`update baton.tasks set status = 'cancelled', ready_key = null where name = 'metrics-nobody'`);
    s = await scrape(port);
    assert.equal(value(s, 'baton_ready_tasks', { task: 'metrics-nobody' }), undefined, 'gone once not ready');
  });

  it('reads the ready tasks through the partial index, never by scanning the task table', async () => {
    const c = await db.pool.connect();
    try {
      await c.query('begin');
      // Mostly ready rows in a small table: left to itself, the planner would read the whole table.
      await c.query(`select baton.enqueue('metrics-nobody', to_jsonb(i), 'explain-' || i, null, '{}'::text[]) from generate_series(1, 3000) i`);
      await c.query('analyze baton.tasks');
      await c.query(READY_TASKS_SETTINGS, ['1000']);
      const { rows } = await c.query<{ 'QUERY PLAN': string }>(`explain ${READY_TASKS_SQL.replace('$1', '200')}`);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      assert.match(plan, /tasks_ready_idx/, plan);
      assert.doesNotMatch(plan, /Seq Scan on tasks/, plan);
      assert.equal((await c.query<{ t: string }>(`select current_setting('statement_timeout') as t`)).rows[0]!.t, '1s');
    } finally {
      await c.query('rollback');
      c.release();
    }
  });

  it('counts a lost lease and the refused result of its attempt', async () => {
    const port = await freePort();
    worker = await inProcessWorker(db.url, { tasks, workflows: [], metrics: { port } });
    const job = await client.enqueue(hang, null);
    await until(async () => (await db.pool.query(`select 1 from baton.tasks where workflow_id = $1 and status = 'running'`, [job.id])).rowCount);
    // Another worker took it over: the next renewal finds the claim gone, and the commit is refused.
    await db.pool.query(`update baton.tasks set claimed_by = 'someone-else' where workflow_id = $1`, [job.id]);
    const s = await until(async () => {
      const samples = await scrape(port);
      return value(samples, 'baton_task_attempts_total', { task: 'metrics-hang', outcome: 'refused' }) === 1 && samples;
    });
    assert.equal(value(s, 'baton_task_leases_lost_total', { task: 'metrics-hang', reason: 'lease' }), 1);
    assert.equal(value(s, 'baton_task_duration_seconds_count', { task: 'metrics-hang' }), 1);
    await client.cancel(job.id);
  });

  it('listens on 127.0.0.1 only by default, and answers 404 off /metrics', async () => {
    const port = await freePort();
    worker = await inProcessWorker(db.url, { tasks, workflows: [], metrics: { port } });
    const res = await get(port);
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    // Another loopback address reaches a server bound to every interface, not one bound to 127.0.0.1.
    await assert.rejects(get(port, '/metrics', '127.0.0.2'), /ECONNREFUSED/);
    assert.equal((await get(port, '/')).status, 404);
    assert.equal((await get(port, '/metrics/x')).status, 404);
  });

  it('serves on BATON_METRICS_PORT, and stops serving when the worker stops', async () => {
    const port = await freePort();
    process.env.BATON_METRICS_PORT = String(port);
    worker = await inProcessWorker(db.url, { tasks, workflows: [] });
    assert.equal((await get(port)).status, 200);
    await worker.stop();
    await assert.rejects(get(port), /ECONNREFUSED/);
  });

  it('worker.metrics() is the registry, per worker, with nothing served when no port is set', async () => {
    worker = await inProcessWorker(db.url, { tasks, workflows: [] });
    const second = await inProcessWorker(db.url, { tasks: [fatal], workflows: [], metrics: false });
    try {
      await (await client.enqueue(ok, null)).result({ timeoutMs: 20_000 });
      const text = await until(async () => {
        const t = (await worker!.metrics().metrics()) + (await second.metrics().metrics());
        return /baton_task_attempts_total\{task="metrics-ok",outcome="completed"\} 1/.test(t) && t;
      });
      assert.match(text, /# TYPE baton_ready_tasks gauge/);
      assert.equal(await second.metrics().metrics(), '\n', 'metrics: false counts nothing');
      assert.notEqual(worker.metrics(), second.metrics());
    } finally {
      await second.stop();
    }
  });

  it('fails the start with PortInUseError when the port is taken, leaving nothing running', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      await assert.rejects(inProcessWorker(db.url, { tasks, workflows: [], metrics: { port } }), (error: unknown) => {
        assert.ok(error instanceof PortInUseError);
        assert.equal(error.code, 'PORT_IN_USE');
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}.*in use`));
        return true;
      });
      // The command says so on one line, without a stack trace.
      const cli = await runCli(['worker'], { env: { DATABASE_URL: db.url, BATON_METRICS_PORT: String(port), BATON_LOG_LEVEL: 'error' }, timeoutMs: 30_000 });
      assert.equal(cli.code, 1, cli.stderr);
      assert.match(cli.stderr, /in use/);
      assert.doesNotMatch(cli.stderr, /\n\s+at /);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('refuses a bad port option before connecting', async () => {
    await assert.rejects(inProcessWorker(db.url, { tasks, metrics: { port: 70_000 } }), /metrics.port must be a TCP port from 1 to 65535/);
  });
});
