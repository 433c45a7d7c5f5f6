/**
 * Baton adapter for the portable long-horizon benchmark harness
 * (hardbyte/postgresql-job-queue-benchmarking): one long-running process that
 * produces jobs, runs a Baton worker that consumes them, and writes JSON
 * lines to stdout (a descriptor, then one record per metric every
 * SAMPLE_EVERY_S seconds, aligned to the wall clock). Logs go to stderr.
 *
 *   DATABASE_URL=postgres://... PRODUCER_MODE=fixed PRODUCER_RATE=500 WORKER_COUNT=24 \
 *     node --import tsx bench/portable/adapter.ts
 *
 * It uses Baton's public API only (`from 'baton'`): in this repository tsx
 * maps that to src/index.ts (tsconfig.json's paths); in the Docker image
 * (Dockerfile) it is the installed tarball. Pacing: pacing.ts. Settings:
 * settings.ts. What each metric means: README.md.
 *
 * Each job carries its own enqueue time (this process's clock, taken just
 * before the bulk call that inserts it, which holds at most
 * PRODUCER_BATCH_MAX rows). Claim latency ends at the handler's start,
 * end-to-end latency at the worker's `task:success` event, which follows the
 * commit of the result.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createClient, createPool, defineTask, startWorker } from 'baton';
import { RollingHistogram } from './histogram.ts';
import { ControlRate, Credit, readTokens, selfPace } from './pacing.ts';
import { readSettings, SettingsError, type Settings } from './settings.ts';

const SYSTEM = 'baton';
const TASK = 'portable_job';
const LATENCY_WINDOW_S = 30;
const DEPTH_POLL_MS = 100;
const DEPTH_PRODUCERS = 4;

const manifest = JSON.parse(readFileSync(new URL('./adapter.json', import.meta.url), 'utf8')) as {
  event_tables: string[];
  event_indexes: string[];
  extensions: string[];
};

function log(message: string): void {
  process.stderr.write(`[baton-adapter] ${message}\n`);
}

let env: Settings;
try {
  env = readSettings(process.env);
} catch (error) {
  if (!(error instanceof SettingsError)) throw error;
  log(error.message);
  process.exit(2);
}

// A signal during start-up (migrating, connecting) ends the process at once: nothing is running yet.
let onSignal: (signal: string) => void = (signal) => {
  log(`${signal} during start-up: exiting`);
  process.exit(0);
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));

const now = () => performance.timeOrigin + performance.now();
/**
 * Writes records as JSON lines in one write: a tick's lines (about 2 KB, under the pipe's atomic
 * 4 KB) reach the harness whole or not at all, even when the adapter is killed mid-tick.
 */
const write = (...records: object[]) =>
  process.stdout.write(records.map((record) => `${JSON.stringify({ ...record, instance_id: env.instanceId })}\n`).join(''));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- worker ----------------------------------------------------------------

const claims = new RollingHistogram(LATENCY_WINDOW_S);
const endToEnd = new RollingHistogram(LATENCY_WINDOW_S);
/** Enqueue time of each job a handler has started and whose commit is not reported yet (bounded by what is in flight). */
const startedAt = new Map<string, number>();
let completed = 0;
let enqueued = 0;

const job = defineTask(TASK, async (input: { at: number }, ctx) => {
  const started = now();
  claims.record(started - input.at, started);
  startedAt.set(ctx.workflowId, input.at);
  if (env.workMs > 0) await sleep(env.workMs);
  return null;
});

/** Start-up errors (an unreachable database, a schema from a newer Baton) in one line; Baton's messages redact the password. */
function startFailed(error: unknown): never {
  log(`could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const worker = await startWorker({ tasks: [job], connectionString: env.url, concurrency: env.workers, config: { logLevel: 'warn' } }).catch(startFailed);
worker.events.on('task:success', (t) => {
  if (t.name !== TASK) return;
  completed += 1;
  const at = startedAt.get(t.workflowId);
  startedAt.delete(t.workflowId);
  if (at !== undefined) {
    const done = now();
    endToEnd.record(done - at, done);
  }
});
for (const event of ['task:failure', 'task:lost', 'task:released', 'task:refused'] as const) {
  worker.events.on(event, (t) => startedAt.delete(t.workflowId));
}
const client = await createClient({ connectionString: env.url, config: { logLevel: 'warn' } }).catch(startFailed);
const depthPool = createPool(env.url, { max: 1, applicationName: 'baton:adapter-depth', onError: (e) => log(`depth pool: ${e.message}`) });

async function schemaVersion(): Promise<string> {
  try {
    const { rows } = await depthPool.query<{ n: number }>('select count(*)::int as n from baton.__migrations');
    return String(rows[0]!.n);
  } catch {
    return 'unknown';
  }
}

write({
  kind: 'descriptor',
  system: SYSTEM,
  event_tables: manifest.event_tables,
  event_indexes: manifest.event_indexes,
  extensions: manifest.extensions,
  version: (createRequire(import.meta.url)('baton/package.json') as { version: string }).version,
  schema_version: await schemaVersion(),
  db_name: new URL(env.url).pathname.replace(/^\//, '') || null,
  started_at: new Date().toISOString(),
  worker_count: env.workers,
  producer_mode: env.mode,
  producer_pacing: env.pacing,
  producer_rate: env.rate,
  producer_batch_max: env.batchMax,
});

// ---- queue depth -------------------------------------------------------------

/** Ready tasks of our task (enqueued, not yet claimed by any worker), as last read from the database. */
let depth = 0;
/** Jobs this process enqueued after the last depth read began (that read may not have seen them). */
let enqueuedSinceRead = 0;
let depthTimer: NodeJS.Timeout | undefined;
const observes = env.instanceId === 0;

async function pollDepth(): Promise<void> {
  const before = enqueued;
  try {
    const { rows } = await depthPool.query<{ n: number }>(`select count(*)::int as n from baton.tasks where status = 'ready' and name = $1`, [TASK]);
    depth = rows[0]!.n;
    enqueuedSinceRead = enqueued - before;
  } catch (error) {
    log(`queue depth query failed: ${(error as Error).message}`);
  }
}

function scheduleDepthPoll(): void {
  depthTimer = setTimeout(() => {
    void pollDepth().finally(() => {
      if (running) scheduleDepthPoll();
    });
  }, DEPTH_POLL_MS);
}

// ---- producer ----------------------------------------------------------------

const pad = 'x'.repeat(Math.max(0, env.payloadBytes - 40));
const control = new ControlRate(env.rate, env.controlFile);
const credit = new Credit();
let running = true;
let producing: Promise<void> = Promise.resolve();
let clock: { stop(): void } | undefined;
let failures = 0;

/** One bulk call; whether it went in. */
async function enqueue(count: number): Promise<boolean> {
  const at = now();
  const inputs = Array.from({ length: count }, () => ({ at, pad }));
  try {
    await client.enqueueMany(job, inputs);
    enqueued += count;
    return true;
  } catch (error) {
    // Offered load that did not reach the queue is not counted; say so, without flooding stderr.
    if (failures++ % 100 === 0) log(`enqueue failed (${failures} so far): ${(error as Error).message}`);
    await sleep(200);
    return false;
  }
}

async function produceFixed(): Promise<void> {
  while (running) {
    await credit.wait();
    const n = credit.take(env.batchMax);
    if (n > 0 && running) await enqueue(n);
  }
}

/**
 * Depth target (diagnostic): keep TARGET_DEPTH jobs ready. What is ready is
 * the last read, plus what was enqueued since it began, plus what is being
 * enqueued. Up to DEPTH_PRODUCERS bulk calls run at once: one call at a time
 * (128 rows, ~25 ms on a busy 2-core machine) could not refill the queue as
 * fast as 16 workers drained 1 ms jobs (measured: depth fell to a few hundred
 * of 4,000).
 */
async function produceToDepth(): Promise<void> {
  let inFlight = 0;
  const calls = new Set<Promise<void>>();
  while (running) {
    const missing = env.targetDepth - (depth + enqueuedSinceRead + inFlight);
    if (missing <= 0 || calls.size >= DEPTH_PRODUCERS) {
      await (calls.size >= DEPTH_PRODUCERS ? Promise.race(calls) : sleep(5));
      continue;
    }
    const n = Math.min(missing, env.batchMax);
    inFlight += n;
    const call: Promise<void> = enqueue(n).then((ok) => {
      inFlight -= n;
      if (ok) enqueuedSinceRead += n;
      calls.delete(call);
    });
    calls.add(call);
  }
  await Promise.all(calls);
}

// Always read stdin: a pipe left unread fills and blocks the harness's writes.
const tokens = readTokens(
  process.stdin,
  (n) => {
    if (env.mode === 'fixed' && env.pacing === 'harness' && env.produces) credit.add(n * control.scale());
  },
  () => {
    if (running && env.mode === 'fixed' && env.pacing === 'harness' && env.produces) {
      log('stdin ended: pacing the producer on its own clock');
      clock = selfPace(credit, control, env.batchMs);
    }
  },
);

// ---- sampler -----------------------------------------------------------------

let sampleTimer: NodeJS.Timeout | undefined;
let last = { enqueued: 0, completed: 0, at: now() };

function sample(boundaryMs: number): void {
  const at = now();
  const elapsedS = Math.max(0.001, (at - last.at) / 1000);
  const [c50, c95, c99] = claims.percentiles([50, 95, 99], at);
  const [e50, e95, e99] = endToEnd.percentiles([50, 95, 99], at);
  const metrics: [string, number | null | undefined, number][] = [
    ['claim_p50_ms', c50, LATENCY_WINDOW_S],
    ['claim_p95_ms', c95, LATENCY_WINDOW_S],
    ['claim_p99_ms', c99, LATENCY_WINDOW_S],
    ['end_to_end_p50_ms', e50, LATENCY_WINDOW_S],
    ['end_to_end_p95_ms', e95, LATENCY_WINDOW_S],
    ['end_to_end_p99_ms', e99, LATENCY_WINDOW_S],
    ['enqueue_rate', (enqueued - last.enqueued) / elapsedS, env.sampleEveryS],
    ['completion_rate', (completed - last.completed) / elapsedS, env.sampleEveryS],
  ];
  // Global observations: one replica reports them, so that N replicas do not report N copies.
  if (observes) {
    metrics.push(['queue_depth', depth, 0]);
    metrics.push(['producer_target_rate', env.mode === 'fixed' && env.produces ? control.current() : 0, 0]);
  }
  last = { enqueued, completed, at };
  const t = new Date(boundaryMs).toISOString();
  // An empty latency window is 0, never null: the harness's aggregates take numbers.
  write(...metrics.map(([metric, value, window_s]) => ({ t, system: SYSTEM, kind: 'adapter', subject_kind: 'adapter', subject: '', metric, value: value ?? 0, window_s })));
}

/** Sample at every wall-clock multiple of SAMPLE_EVERY_S. */
function scheduleSample(): void {
  const period = env.sampleEveryS * 1000;
  let next = Math.ceil((Date.now() + 1) / period) * period;
  // A sample whose timer fired late (a busy event loop) must not leave the next one a window of a
  // few ms, whose rates would read 0: such a boundary is skipped, and its sample covers two.
  if (next - last.at < period / 2) next += period;
  sampleTimer = setTimeout(() => {
    sample(next);
    if (running) scheduleSample();
  }, next - Date.now());
}

// ---- run and shut down -------------------------------------------------------

async function shutdown(signal: string): Promise<void> {
  if (!running) return;
  running = false;
  log(`${signal}: stopping`);
  setTimeout(() => {
    log('could not stop within 4.5 s; exiting anyway');
    process.exit(1);
  }, 4_500).unref();
  clearTimeout(sampleTimer);
  clearTimeout(depthTimer);
  clock?.stop();
  tokens.close();
  credit.wake();
  await Promise.race([producing, sleep(1_000)]);
  await worker.stop({ graceMs: 1_500 }).catch((e: Error) => log(`worker stop: ${e.message}`));
  await client.close().catch(() => undefined);
  await depthPool.end().catch(() => undefined);
  log(`stopped: enqueued ${enqueued}, completed ${completed}`);
  process.exit(0);
}

onSignal = (signal) => void shutdown(signal);

// Depth is polled where it is reported (instance 0) or where it drives the producer (depth-target).
if (observes || (env.mode === 'depth-target' && env.produces)) {
  await pollDepth();
  scheduleDepthPoll();
}
if (env.produces) {
  if (env.mode === 'depth-target') producing = produceToDepth();
  else {
    if (env.pacing === 'adapter') clock = selfPace(credit, control, env.batchMs);
    producing = produceFixed();
  }
}
const pace = env.mode === 'depth-target' ? `depth ${env.targetDepth}` : `${env.rate} jobs/s (${env.pacing} pacing${env.controlFile ? ', control file' : ''})`;
log(`instance ${env.instanceId}: ${env.produces ? `producing to ${pace}` : 'consuming only'}, ${env.workers} workers, batches <= ${env.batchMax}, ${env.payloadBytes} B payloads, ${env.workMs} ms work`);
scheduleSample();
