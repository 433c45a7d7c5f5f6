/**
 * S2 start latency on an idle system: enqueue one job, time until its handler
 * starts (Date.now() in the handler, sent back over IPC; same machine, same
 * clock), wait until the job is finished in the database, then the next one.
 * The first WARMUP samples are not counted. Each system stops early when its
 * time budget is spent (pg-boss polls, so it is slow to sample).
 */
import { inFreshDatabase } from '../lib/db.ts';
import { startWorkers, stopAll } from '../lib/proc.ts';
import { fmt, mean, percentile, preciseNow, progress, sleep } from '../lib/stats.ts';
import { execArgvFor, perSystem, serverProbe, type Scenario } from './common.ts';

const WARMUP = 5;
const TIMEOUT_MS = 10_000;

export const s2: Scenario = {
  id: 'S2',
  title: (o) => `start latency: up to ${fmt(o.sizes.s2Samples)} sequential jobs on an idle system (budget ${o.sizes.s2BudgetS} s per system), enqueue to handler start`,
  notes: () => [`the first ${WARMUP} samples are warm-up and not counted; "n" in the JSON is the number of samples taken`],
  defaultSystems: ['baton', 'graphile', 'graphile-batched', 'pgboss', 'raw'],
  async run(ctx, systems) {
    const { s2Samples, s2BudgetS } = ctx.options.sizes;
    await perSystem(ctx, systems, { scenario: 'S2', metric: 'p50 ms', better: 'lower' }, async (system) => {
      const tag = `S2 ${system.name}`;
      await inFreshDatabase(ctx.server, `S2_${system.name}`, async (db) => {
        await system.prepare(db.url);
        const [proc] = await startWorkers(
          1,
          { system: system.name, url: db.url, concurrency: ctx.options.concurrency, workload: 'latency' },
          execArgvFor(ctx, system.name, 'S2'),
        );
        const producer = await system.openProducer(db.url);
        const waiting = new Map<number, (t: number) => void>();
        proc!.onMessage((m) => {
          if (m.type === 'sample') waiting.get(m.seq)?.(m.t);
        });
        try {
          await sleep(1_000); // let the worker settle into idle
          const readStats = await serverProbe(ctx, db, { scenario: 'S2', system: system.name });
          let jobs = 0;
          const samples: number[] = [];
          const deadline = Date.now() + s2BudgetS * 1000;
          let lastPrint = Date.now();
          for (let seq = 1; seq <= s2Samples + WARMUP && Date.now() < deadline; seq++) {
            const started = new Promise<number>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`job ${seq} did not start within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
              waiting.set(seq, (t) => {
                clearTimeout(timer);
                resolve(t);
              });
            });
            const t0 = preciseNow();
            const id = await producer.enqueue(seq);
            jobs += 1;
            const t = await started;
            waiting.delete(seq);
            if (seq > WARMUP) samples.push(t - t0);
            const doneBy = Date.now() + TIMEOUT_MS;
            while (!(await producer.isDone(id))) {
              if (Date.now() > doneBy) throw new Error(`job ${seq} did not finish within ${TIMEOUT_MS} ms`);
              await sleep(1);
            }
            if (Date.now() - lastPrint >= 2_000) {
              lastPrint = Date.now();
              progress(`[${tag}] ${samples.length} samples, p50 ${fmt(percentile(samples, 50))} ms`);
            }
          }
          await readStats('job', jobs);
          await stopAll([proc!]);
          const detail = { n: samples.length, mean: mean(samples), p90: percentile(samples, 90), max: Math.max(...samples) };
          progress(`[${tag}] done: ${samples.length} samples, p50 ${fmt(percentile(samples, 50))} ms, p99 ${fmt(percentile(samples, 99))} ms`);
          for (const p of [50, 99]) {
            ctx.add({ scenario: 'S2', system: system.name, metric: `p${p} ms`, value: percentile(samples, p), better: 'lower', rssMb: proc!.rssMb, detail });
          }
        } finally {
          await producer.close().catch(() => undefined);
          await stopAll([proc!]);
        }
      });
    });
  },
};
