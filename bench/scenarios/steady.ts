/**
 * S7 end to end, steady state: producers and one worker process run at once,
 * as in the public postgresql-job-queue-benchmarking harness. PRODUCERS loops
 * (in the bench process) enqueue batches of BATCH no-op jobs through the
 * system's client (Enqueuer.batch); each job carries its enqueue time
 * (preciseNow(), taken just before the batch is sent) and its phase. The
 * worker child measures end-to-end latency as handler end - enqueue time
 * (same machine, same clock; "handler end", not commit: not every system
 * says when its commit is done) and streams the values to us by phase.
 *
 *   1. probe: the producers go flat out, but keep at most PROBE_DEPTH jobs
 *      waiting, so the worker never runs dry and the backlog never grows
 *      without bound; after PROBE_WARMUP_S, the completion rate over s7ProbeS
 *      seconds is the system's sustained throughput (the most its worker keeps
 *      up with while producers run beside it);
 *   2. the producers run open loop (on a schedule, whatever the worker does)
 *      at 50%, then 90%, of that rate for s7WindowS seconds each; after each
 *      window they stop and the worker finishes what is left. Reported: the
 *      completion rate during the window and the p50/p99 end-to-end latency
 *      of its jobs; in the JSON the offered rate, the backlog left at the
 *      window's end, and keptUp (it did not grow). The probe's rate is a
 *      drain rate with jobs waiting: a worker that batches less on a shallow
 *      queue may not hold 90% of it, which keptUp shows.
 * --pg-stats reads the server time of the 90% window (its jobs, produced and
 * worked).
 */
import { connect, inFreshDatabase } from '../lib/db.ts';
import { startWorkers, stopAll, type WorkerProcess } from '../lib/proc.ts';
import { fmt, percentile, preciseNow, progress, sleep } from '../lib/stats.ts';
import type { E2eInput, Enqueuer } from '../systems/types.ts';
import { confirmFinished, execArgvFor, perSystem, serverProbe, type Scenario } from './common.ts';

export const PRODUCERS = 4;
export const BATCH = 100;
const PROBE_WARMUP_S = 1;
const PROBE_DEPTH = 2_000;
/** How long the worker may take to finish a phase's backlog once the producers stopped. */
const DRAIN_TIMEOUT_MS = 30_000;
const LEVELS = [50, 90] as const;

interface Shared {
  enqueuer: Enqueuer;
  proc: WorkerProcess;
  /** Jobs sent (or being sent) so far, all phases. */
  enqueued: number;
  seq: number;
  /** End-to-end latencies (ms) by phase, from the worker. */
  e2e: Map<number, number[]>;
}

async function sendBatch(s: Shared, phase: number): Promise<void> {
  const t = preciseNow();
  const inputs: E2eInput[] = [];
  for (let j = 0; j < BATCH; j++) inputs.push({ i: s.seq++, t, p: phase });
  s.enqueued += BATCH;
  await s.enqueuer.batch!(inputs);
}

/** The worker's count and the time of its last counted unit, for a rate between two snapshots. */
const snapshot = (proc: WorkerProcess) => ({ count: proc.completed, t: proc.completedAt });
const rateBetween = (a: { count: number; t: number }, b: { count: number; t: number }) => (b.t > a.t ? ((b.count - a.count) * 1000) / (b.t - a.t) : 0);

/** Wait until the worker finished every job sent, or DRAIN_TIMEOUT_MS passed: the ms it took, and the jobs still left (0: done). */
async function drained(s: Shared): Promise<{ ms: number; left: number }> {
  const t0 = Date.now();
  while (s.proc.completed < s.enqueued) {
    if (Date.now() - t0 > DRAIN_TIMEOUT_MS) return { ms: Date.now() - t0, left: s.enqueued - s.proc.completed };
    if (s.proc.child.exitCode !== null) throw new Error(`the worker process exited (code ${s.proc.child.exitCode})`);
    await sleep(10);
  }
  return { ms: Date.now() - t0, left: 0 };
}

const unfinished = (left: number) => `the worker did not finish the backlog (${fmt(left)} jobs) within ${DRAIN_TIMEOUT_MS / 1000} s`;

/** Flat out, at most PROBE_DEPTH jobs waiting: the completion rate over `seconds` after the warm-up. */
async function probe(s: Shared, seconds: number) {
  let running = true;
  const producers = Array.from({ length: PRODUCERS }, async () => {
    while (running) {
      if (s.enqueued - s.proc.completed >= PROBE_DEPTH) await sleep(1);
      else await sendBatch(s, 1);
    }
  });
  const e0 = s.enqueued;
  await sleep(PROBE_WARMUP_S * 1000);
  const a = snapshot(s.proc);
  const e1 = s.enqueued;
  await sleep(seconds * 1000);
  const b = snapshot(s.proc);
  const e2 = s.enqueued;
  running = false;
  await Promise.all(producers);
  const backlog = s.enqueued - s.proc.completed;
  const drain = await drained(s);
  if (drain.left > 0) throw new Error(unfinished(drain.left));
  s.e2e.delete(1); // the probe's latencies are not reported
  return { rate: rateBetween(a, b), enqueuedPerSecond: (e2 - e1) / seconds, warmupJobs: e1 - e0, backlogAtEnd: backlog, drainMs: drain.ms };
}

/** Open loop at `rate` jobs/s for `seconds`: batches on a fixed schedule, shared by the producers. */
async function steadyWindow(s: Shared, phase: number, rate: number, seconds: number) {
  const interval = (BATCH / rate) * 1000;
  const start = performance.now();
  const stopAt = start + seconds * 1000;
  const e0 = s.enqueued;
  const c0 = s.proc.completed;
  let k = 0;
  let late = 0;
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      for (;;) {
        const due = start + k++ * interval;
        if (due >= stopAt) return;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        else if (wait < -interval) late += 1;
        await sendBatch(s, phase);
      }
    }),
  );
  // Rates over the window as scheduled (the last batch goes out before its end).
  const rest = stopAt - performance.now();
  if (rest > 0) await sleep(rest);
  const elapsed = (performance.now() - start) / 1000;
  const c1 = s.proc.completed;
  const jobs = s.enqueued - e0;
  const backlog = s.enqueued - s.proc.completed;
  const drain = await drained(s);
  const values = s.e2e.get(phase) ?? [];
  // A worker that fell so far behind that it did not finish within the time-out keeps its rates; its
  // latencies are not known (those of the jobs it did not finish are missing, and the longest).
  if (drain.left > 0) {
    const none = null as number | null;
    return { keptUp: false, targetRate: rate, offeredRate: jobs / seconds, completedRate: (c1 - c0) / elapsed, jobs, lateBatches: late,
      backlogAtEnd: backlog, drainMs: drain.ms, left: drain.left, p50: none, p90: none, p99: none, max: none };
  }
  if (values.length < jobs) throw new Error(`${fmt(values.length)} latencies reported for ${fmt(jobs)} jobs`);
  return {
    // The backlog did not grow: at most what the producers have in flight, or 5% of the window's jobs.
    keptUp: backlog <= Math.max(PRODUCERS * BATCH, jobs * 0.05),
    targetRate: rate,
    offeredRate: jobs / seconds,
    // The window starts with nothing waiting: what completes in it is its own jobs.
    completedRate: (c1 - c0) / elapsed,
    jobs,
    lateBatches: late,
    backlogAtEnd: backlog,
    drainMs: drain.ms,
    left: 0,
    p50: percentile(values, 50) as number | null,
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.reduce((a, v) => (v > a ? v : a), 0),
  };
}

export const s7: Scenario = {
  id: 'S7',
  title: (o) =>
    `end to end, steady state: ${PRODUCERS} producers (batches of ${BATCH}) and 1 worker process at once; flat-out probe ${o.sizes.s7ProbeS} s, then ${o.sizes.s7WindowS} s at 50% and at 90% of its rate`,
  notes: () => [
    `sustained jobs/s: completions per second while producers run flat out with at most ${fmt(PROBE_DEPTH)} jobs waiting (after ${PROBE_WARMUP_S} s of warm-up)`,
    'jobs/s @50% / @90%: completions per second during a window run open loop at 50% / 90% of the system\'s own sustained rate (below the offered rate: the backlog grew, see keptUp in the JSON)',
    'latency: enqueue (just before the batch is sent) to handler end in the worker, for the jobs of the window',
    'producers enqueue through the client: baton client.enqueueMany(), graphile addJobs(), pg-boss insert(), raw an insert',
  ],
  defaultSystems: ['baton', 'graphile', 'graphile-batched', 'pgboss', 'raw'],
  async run(ctx, systems) {
    const { s7ProbeS, s7WindowS } = ctx.options.sizes;
    await perSystem(ctx, systems, { scenario: 'S7', metric: 'sustained jobs/s', better: 'higher' }, async (system) => {
      const tag = `S7 ${system.name}`;
      await inFreshDatabase(ctx.server, `S7_${system.name}`, async (db) => {
        await system.prepare(db.url);
        const [proc] = await startWorkers(
          1,
          { system: system.name, url: db.url, concurrency: ctx.options.concurrency, workload: 'e2e' },
          execArgvFor(ctx, system.name, 'S7'),
        );
        const enqueuer = await system.openEnqueuer(db.url, 'e2e', PRODUCERS);
        try {
          if (!enqueuer.batch) throw new Error(`${system.name} has no batch enqueue`);
          const s: Shared = { enqueuer, proc: proc!, enqueued: 0, seq: 0, e2e: new Map() };
          proc!.onMessage((m) => {
            if (m.type !== 'progress' || !m.e2e) return;
            for (const [phase, values] of Object.entries(m.e2e)) {
              const list = s.e2e.get(Number(phase)) ?? [];
              for (const v of values) list.push(v);
              s.e2e.set(Number(phase), list);
            }
          });

          const p = await probe(s, s7ProbeS);
          progress(`[${tag}] probe: ${fmt(p.rate)} jobs/s completed (${fmt(p.enqueuedPerSecond)} jobs/s enqueued), backlog ${fmt(p.backlogAtEnd)} drained in ${fmt(p.drainMs)} ms`);
          if (!(p.rate > 0)) throw new Error('the probe completed no jobs');
          const results: Record<number, Awaited<ReturnType<typeof steadyWindow>>> = {};
          for (const [i, level] of LEVELS.entries()) {
            if (ctx.cancelled()) break;
            const last = i === LEVELS.length - 1;
            const readStats = last ? await serverProbe(ctx, db, { scenario: 'S7', system: system.name }) : undefined;
            const w = await steadyWindow(s, 2 + i, (p.rate * level) / 100, s7WindowS);
            await readStats?.('job', w.jobs);
            results[level] = w;
            progress(
              `[${tag}] ${level}%: ${fmt(w.offeredRate)} jobs/s offered, ${fmt(w.completedRate)} completed, ` +
                (w.left > 0 ? `${unfinished(w.left)}: no latencies` : `p50 ${fmt(w.p50)} ms, p99 ${fmt(w.p99)} ms`) +
                `, backlog at end ${fmt(w.backlogAtEnd)}${w.keptUp ? '' : ' (did not keep up)'}`,
            );
            // The next window would start with that backlog still waiting.
            if (w.left > 0) break;
          }
          const stuck = Object.values(results).some((w) => w.left > 0);
          if (!stuck) {
            const client = await connect(db.url);
            try {
              await confirmFinished(system, client, 'e2e', Date.now(), { counted: proc!.completed, unitName: 'jobs' });
            } finally {
              await client.end().catch(() => undefined);
            }
          }
          await stopAll([proc!]);
          ctx.add({
            scenario: 'S7',
            system: system.name,
            metric: 'sustained jobs/s',
            value: p.rate,
            better: 'higher',
            rssMb: proc!.rssMb,
            detail: { probe: p, windows: results, producers: PRODUCERS, batch: BATCH, api: system.enqueueApi.batch },
          });
          for (const level of LEVELS) {
            const w = results[level];
            if (!w) continue;
            ctx.add({ scenario: 'S7', system: system.name, metric: `jobs/s @${level}%`, value: w.completedRate, better: 'higher', detail: { ...w } });
            for (const q of ['p50', 'p99'] as const) {
              const error = w.left > 0 ? unfinished(w.left) : undefined;
              ctx.add({ scenario: 'S7', system: system.name, metric: `${q} ms @${level}%`, value: w[q], better: 'lower', detail: { ...w }, ...(error ? { error } : {}) });
            }
          }
        } finally {
          await enqueuer.close().catch(() => undefined);
          await stopAll([proc!]);
        }
      });
    });
  },
};
