/**
 * Worker-count sweep of the portable adapter in depth-target mode: for each
 * worker count, a fresh database, the adapter holding TARGET_DEPTH jobs ready
 * (1 ms jobs by default), warm-up, then a measured window. Prints one row per
 * worker count and writes bench/results/portable-sweep-<time>.json.
 *
 *   npm run bench:portable-sweep -- --workers 16,64,128 --seconds 60 --warmup 15
 *
 * Server: DATABASE_URL (a role that may create databases), or without it the
 * embedded PostgreSQL of the bench (bench/lib/db.ts: .baton-bench/, port
 * 54340, 127.0.0.1 only), started here and stopped at the end.
 *
 * Figures per worker count, from the adapter's own samples (one a second):
 *   completion/s  mean completion_rate over the measured window
 *   enqueue/s     mean enqueue_rate (the producer refilling the queue)
 *   depth         mean and minimum queue_depth (ready jobs; the target held?)
 *   claim, e2e    median over the measured ticks of the adapter's rolling-30 s
 *                 p50 / p99; only ticks whose 30 s window lies after the
 *                 warm-up count, unless there are none (a short run: then the
 *                 last tick's, marked with *)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freshDatabase, openServer } from '../lib/db.ts';
import { machine, RESULTS_DIR } from '../lib/report.ts';
import { fmt, mean, median, progress, sleep } from '../lib/stats.ts';
import { launchAdapter, ticks, type AdapterLine } from './launch.ts';

const SAMPLE_EVERY_S = 1;
const LATENCY_WINDOW_S = 30;

interface Row {
  workers: number;
  completionRate: number;
  enqueueRate: number;
  depthMean: number;
  depthMin: number;
  claimP50: number;
  claimP99: number;
  e2eP50: number;
  e2eP99: number;
  /** Latencies from the last tick only (the run was shorter than warm-up + 30 s). */
  latencyFromLastTick: boolean;
  ticks: number;
}

function options() {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '16,64,128' },
      seconds: { type: 'string', default: '60' },
      warmup: { type: 'string', default: '15' },
      depth: { type: 'string', default: '4000' },
      'work-ms': { type: 'string', default: '1' },
      'batch-max': { type: 'string', default: '128' },
    },
  });
  const num = (name: keyof typeof values) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0 (got "${values[name]}")`);
    return n;
  };
  const workers = String(values.workers)
    .split(',')
    .map((w) => Number(w.trim()));
  if (workers.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`--workers takes whole numbers >= 1, comma-separated (got "${values.workers}")`);
  return { workers, seconds: num('seconds'), warmup: num('warmup'), depth: num('depth'), workMs: num('work-ms'), batchMax: num('batch-max') };
}

function summarise(workers: number, lines: AdapterLine[], measureFrom: number, measureTo: number): Row {
  const measured = [...ticks(lines)].filter(([t]) => Date.parse(t) > measureFrom && Date.parse(t) <= measureTo).map(([, tick]) => tick);
  if (measured.length === 0) throw new Error(`no samples in the measured window for ${workers} workers`);
  const series = (metric: string, from = measured) => from.map((tick) => tick.get(metric)?.value as number);
  const settled = [...ticks(lines)]
    .filter(([t]) => Date.parse(t) - LATENCY_WINDOW_S * 1000 >= measureFrom && Date.parse(t) <= measureTo)
    .map(([, tick]) => tick);
  const latencyTicks = settled.length > 0 ? settled : measured.slice(-1);
  return {
    workers,
    completionRate: mean(series('completion_rate')),
    enqueueRate: mean(series('enqueue_rate')),
    depthMean: mean(series('queue_depth')),
    depthMin: Math.min(...series('queue_depth')),
    claimP50: median(series('claim_p50_ms', latencyTicks)),
    claimP99: median(series('claim_p99_ms', latencyTicks)),
    e2eP50: median(series('end_to_end_p50_ms', latencyTicks)),
    e2eP99: median(series('end_to_end_p99_ms', latencyTicks)),
    latencyFromLastTick: settled.length === 0,
    ticks: measured.length,
  };
}

function table(rows: Row[]): string {
  const head = ['workers', 'completion/s', 'enqueue/s', 'depth mean', 'depth min', 'claim p50 ms', 'claim p99 ms', 'e2e p50 ms', 'e2e p99 ms'];
  const body = rows.map((r) => {
    const mark = r.latencyFromLastTick ? '*' : '';
    return [String(r.workers), fmt(r.completionRate, 0), fmt(r.enqueueRate, 0), fmt(r.depthMean, 0), fmt(r.depthMin, 0), fmt(r.claimP50) + mark, fmt(r.claimP99) + mark, fmt(r.e2eP50) + mark, fmt(r.e2eP99) + mark];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const out = [line(head), `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...body.map(line)];
  if (rows.some((r) => r.latencyFromLastTick)) out.push('* the run was shorter than warm-up + 30 s: latencies of the last tick (its 30 s window includes warm-up)');
  return out.join('\n');
}

async function main(): Promise<void> {
  const o = options();
  const server = await openServer(progress);
  const startedAt = new Date().toISOString();
  const rows: Row[] = [];
  try {
    progress(`PostgreSQL ${server.version}${server.embedded ? ' (embedded)' : ''}; depth target ${o.depth}, ${o.workMs} ms jobs, ${o.warmup} s warm-up + ${o.seconds} s per worker count`);
    for (const workers of o.workers) {
      const db = await freshDatabase(server, `portable_w${workers}`);
      try {
        const adapter = launchAdapter({
          DATABASE_URL: db.url,
          SCENARIO: 'long_horizon',
          PRODUCER_MODE: 'depth-target',
          TARGET_DEPTH: String(o.depth),
          PRODUCER_BATCH_MAX: String(o.batchMax),
          WORKER_COUNT: String(workers),
          JOB_PAYLOAD_BYTES: '256',
          JOB_WORK_MS: String(o.workMs),
          SAMPLE_EVERY_S: String(SAMPLE_EVERY_S),
          BENCH_INSTANCE_ID: '0',
        });
        try {
          await adapter.waitFor((l) => l.kind === 'descriptor', 60_000);
          const measureFrom = Date.now() + o.warmup * 1000;
          const measureTo = measureFrom + o.seconds * 1000;
          progress(`${workers} workers: warm-up ${o.warmup} s, then ${o.seconds} s measured`);
          await sleep(measureTo - Date.now() + 1_200); // the tick at measureTo is written
          const stopped = await adapter.stop();
          if (stopped.code !== 0) throw new Error(`the adapter exited with ${stopped.code ?? stopped.signal}:\n${adapter.stderr()}`);
          const row = summarise(workers, adapter.lines, measureFrom, measureTo);
          rows.push(row);
          progress(`${workers} workers: ${fmt(row.completionRate, 0)} completions/s, depth ${fmt(row.depthMean, 0)}`);
        } finally {
          if (adapter.child.exitCode === null && adapter.child.signalCode === null) await adapter.kill();
        }
      } finally {
        await db.drop().catch(() => undefined);
      }
    }
    console.log(table(rows));
    const file = path.join(RESULTS_DIR, `portable-sweep-${startedAt.replace(/[:.]/g, '-')}.json`);
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(file, `${JSON.stringify({ startedAt, options: o, machine: machine(server.version, server.embedded), rows }, null, 2)}\n`);
    progress(`results: ${path.relative(process.cwd(), file)}`);
  } finally {
    await server.close();
  }
}

await main();
