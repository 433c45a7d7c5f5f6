/**
 * Baton adapter for the portable long-horizon benchmark harness
 * (postgresql-job-queue-benchmarking): one long-running process that produces
 * jobs at a fixed rate, runs a Baton worker that consumes them, and writes
 * JSON lines to stdout (a descriptor, then one record per metric every
 * SAMPLE_EVERY_S seconds, aligned to the wall clock). Logs go to stderr.
 *
 *   DATABASE_URL=postgres://... SCENARIO=long_horizon PRODUCER_MODE=fixed PRODUCER_RATE=500 \
 *   WORKER_COUNT=24 node --import tsx bench/portable/adapter.ts
 *
 * Pickup latency is measured from the producer's clock just before the
 * INSERT to the handler's start (same machine, same clock).
 */
import { readFileSync } from 'node:fs';
import { startWorker, defineTask, createPool } from '../../src/index.ts';
import { codeSchemaVersion } from '../../src/db/migrate.ts';
import { RollingHistogram } from './histogram.ts';

const SYSTEM = 'baton';
const TASK = 'portable_job';
const CLAIM_WINDOW_S = 30;
const manifest = JSON.parse(readFileSync(new URL('./adapter.json', import.meta.url), 'utf8')) as {
  event_tables: string[];
  extensions: string[];
};

function log(message: string): void {
  process.stderr.write(`[baton-adapter] ${message}\n`);
}

function fail(message: string): never {
  log(message);
  process.exit(2);
}

function intEnv(name: string, fallback: number, min = 0): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) fail(`${name} must be a number >= ${min} (got "${raw}")`);
  return n;
}

const env = {
  url: process.env.DATABASE_URL?.trim() || fail('DATABASE_URL is required'),
  scenario: process.env.SCENARIO?.trim() || 'long_horizon',
  mode: process.env.PRODUCER_MODE?.trim() || 'fixed',
  rate: intEnv('PRODUCER_RATE', 100),
  targetDepth: intEnv('TARGET_DEPTH', 1000),
  workers: Math.max(1, Math.floor(intEnv('WORKER_COUNT', 24, 1))),
  payloadBytes: Math.floor(intEnv('JOB_PAYLOAD_BYTES', 256)),
  workMs: intEnv('JOB_WORK_MS', 1),
  sampleEveryS: intEnv('SAMPLE_EVERY_S', 5, 0.1),
};
if (env.scenario !== 'long_horizon') fail(`SCENARIO "${env.scenario}" is not supported (long_horizon only)`);
if (env.mode !== 'fixed' && env.mode !== 'depth-target') fail(`PRODUCER_MODE must be fixed or depth-target (got "${env.mode}")`);

const now = () => performance.timeOrigin + performance.now();
const write = (record: object) => process.stdout.write(`${JSON.stringify(record)}\n`);

// ---- worker ----------------------------------------------------------------

const claims = new RollingHistogram(CLAIM_WINDOW_S);
let completed = 0;
let enqueued = 0;

const job = defineTask(TASK, async (input: { at: number }) => {
  const started = now();
  claims.record(started - input.at, started);
  if (env.workMs > 0) await new Promise((resolve) => setTimeout(resolve, env.workMs));
  return null;
});

const worker = await startWorker({
  tasks: [job],
  connectionString: env.url,
  concurrency: env.workers,
  config: { logLevel: 'warn' },
});
worker.events.on('task:success', () => (completed += 1));
const pool = createPool(env.url, { max: 2, applicationName: 'baton:adapter', onError: (e) => log(`pool: ${e.message}`) });

write({
  kind: 'descriptor',
  system: SYSTEM,
  event_tables: manifest.event_tables,
  extensions: manifest.extensions,
  version: (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version,
  schema_version: String(codeSchemaVersion().version),
  db_name: new URL(env.url).pathname.replace(/^\//, '') || null,
  started_at: new Date().toISOString(),
  worker_count: env.workers,
  producer_mode: env.mode,
  producer_rate: env.rate,
});

// ---- producer --------------------------------------------------------------

const pad = 'x'.repeat(Math.max(0, env.payloadBytes - 40));
// The payload refers to i, so that baton.enqueue runs once per row (an uncorrelated call would run once).
const ENQUEUE = `select count(*)::int as n from generate_series(1, $1::int) i, baton.enqueue('${TASK}', $2::jsonb || jsonb_build_object('i', i))`;
let running = true;
let depth = 0;

async function enqueue(count: number): Promise<void> {
  if (count <= 0) return;
  const { rows } = await pool.query<{ n: number }>(ENQUEUE, [count, JSON.stringify({ at: now(), pad })]);
  enqueued += rows[0]!.n;
}

/** Fixed rate: every tick, enqueue what is due since the start (catching up when behind, in batches of at most 5,000). */
async function produceFixed(): Promise<void> {
  const start = now();
  let produced = 0;
  while (running) {
    const due = Math.floor(((now() - start) / 1000) * env.rate) - produced;
    const batch = Math.min(due, 5_000);
    try {
      await enqueue(batch);
      produced += batch;
    } catch (error) {
      log(`enqueue failed: ${(error as Error).message}`);
      await sleep(500);
    }
    await sleep(10);
  }
}

/** Depth target (diagnostic): keep about TARGET_DEPTH jobs ready. */
async function produceToDepth(): Promise<void> {
  while (running) {
    try {
      await refreshDepth();
      await enqueue(Math.min(env.targetDepth - depth, 5_000));
    } catch (error) {
      log(`enqueue failed: ${(error as Error).message}`);
    }
    await sleep(100);
  }
}

async function refreshDepth(): Promise<void> {
  const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from baton.tasks where status = 'ready' and name = $1`, [TASK]);
  depth = rows[0]!.n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- sampler ---------------------------------------------------------------

let sampleTimer: NodeJS.Timeout | undefined;
let last = { enqueued: 0, completed: 0, at: now() };

async function sample(boundaryMs: number): Promise<void> {
  try {
    await refreshDepth();
  } catch (error) {
    log(`queue depth query failed: ${(error as Error).message}`);
  }
  const at = now();
  const elapsedS = Math.max(0.001, (at - last.at) / 1000);
  const [p50, p95, p99] = claims.percentiles([50, 95, 99], at);
  const t = new Date(boundaryMs).toISOString();
  const metrics: [string, number | null, number][] = [
    ['claim_p50_ms', p50 ?? null, CLAIM_WINDOW_S],
    ['claim_p95_ms', p95 ?? null, CLAIM_WINDOW_S],
    ['claim_p99_ms', p99 ?? null, CLAIM_WINDOW_S],
    ['enqueue_rate', (enqueued - last.enqueued) / elapsedS, env.sampleEveryS],
    ['completion_rate', (completed - last.completed) / elapsedS, env.sampleEveryS],
    ['queue_depth', depth, 0],
  ];
  last = { enqueued, completed, at };
  for (const [metric, value, window_s] of metrics) {
    write({ t, system: SYSTEM, kind: 'adapter', subject_kind: 'adapter', subject: '', metric, value, window_s });
  }
}

/** Schedule the next sample at the next wall-clock multiple of SAMPLE_EVERY_S. */
function scheduleSample(): void {
  const period = env.sampleEveryS * 1000;
  const next = Math.ceil((Date.now() + 1) / period) * period;
  sampleTimer = setTimeout(() => {
    void sample(next).finally(() => {
      if (running) scheduleSample();
    });
  }, next - Date.now());
}

// ---- run and shut down ---------------------------------------------------

async function shutdown(signal: string): Promise<void> {
  if (!running) return;
  running = false;
  log(`${signal}: stopping`);
  setTimeout(() => {
    log('could not stop in time; exiting');
    process.exit(0);
  }, 4_500).unref();
  clearTimeout(sampleTimer);
  await producing.catch(() => undefined);
  await worker.stop({ graceMs: 1_500 }).catch((e: Error) => log(`worker stop: ${e.message}`));
  await pool.end().catch(() => undefined);
  process.exit(0);
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

log(`running: ${env.mode} producer at ${env.mode === 'fixed' ? `${env.rate} jobs/s` : `depth ${env.targetDepth}`}, ${env.workers} workers, ${env.payloadBytes} B payloads, ${env.workMs} ms work`);
const producing = env.mode === 'fixed' ? produceFixed() : produceToDepth();
scheduleSample();
