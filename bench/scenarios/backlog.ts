/**
 * S4 backlog: does claiming stay fast when the queue is deep?
 *
 * For each backlog (small, large, large with every second job requiring a
 * tag the worker lacks), in a fresh database:
 *   1. claim micro-benchmark: CLAIM_LOOPS concurrent loops call claimTasks()
 *      (src/store/claims.ts) with batch 24 until s4Claims tasks are claimed;
 *   2. drain: a worker process (concurrency 24) runs until s4Drain
 *      completions are committed (counted in the worker), s4Rounds times,
 *      the small backlog topped up before each round (--pg-stats: the last
 *      round's server time per job).
 * Targets: large/small >= 0.7, tagged/untagged >= 0.5. The raw-SQL ceiling
 * drains the same small and large backlogs for reference.
 */
import pg from 'pg';
import { claimTasks } from '../../src/store/claims.ts';
import { connect, inFreshDatabase, type FreshDatabase } from '../lib/db.ts';
import { startWorkers, stopAll } from '../lib/proc.ts';
import type { Figure } from '../lib/report.ts';
import { fmt, median, percentile, progress } from '../lib/stats.ts';
import { batonBulk, noopHash } from '../systems/baton.ts';
import type { System } from '../systems/types.ts';
import { buildBatonBacklog, readyCount } from './backlog-setup.ts';
import { execArgvFor, perSystem, serverProbe, type Context, type Scenario } from './common.ts';

const CLAIM_LOOPS = 4;
const CLAIM_BATCH = 24;

interface Backlog {
  label: string;
  size: number;
  tagged: boolean;
}

const short = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1_000 ? `${n / 1_000}k` : String(n));

async function claimMicro(url: string, claims: number, tags: string[]) {
  const pool = new pg.Pool({ connectionString: url, max: CLAIM_LOOPS, application_name: 'bench:claims' });
  const hashes = [noopHash()];
  const latencies: number[] = [];
  let claimed = 0;
  try {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLAIM_LOOPS }, async (_, k) => {
        while (claimed < claims) {
          const s = performance.now();
          const rows = await claimTasks(pool, { workerId: `bench-claims-${k}`, limit: CLAIM_BATCH, tags, hashes, ttlMs: 600_000, declares: true });
          latencies.push(performance.now() - s);
          claimed += rows.length;
          if (rows.length === 0) break;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { tasksPerSecond: claimed / seconds, claimed, calls: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } finally {
    await pool.end();
  }
}

async function drainRounds(ctx: Context, system: System, db: FreshDatabase, client: pg.Client, backlog: Backlog) {
  const url = db.url;
  const { s4Drain, s4Rounds } = ctx.options.sizes;
  const rates: number[] = [];
  let rss: number | undefined;
  for (let round = 1; round <= s4Rounds; round++) {
    if (system.name === 'baton' && !backlog.tagged) {
      const missing = backlog.size - (await readyCount(client));
      if (missing > backlog.size * 0.05) await batonBulk(client, `select count(*) from generate_series($1::int, $2::int) i, baton.enqueue('noop', to_jsonb(i))`, missing);
    } else if (system.name === 'raw') {
      const { rows } = await client.query<{ n: number }>('select count(*)::int as n from bench_jobs');
      const missing = backlog.size - rows[0]!.n;
      if (missing > backlog.size * 0.05) await system.enqueueBulk(client, 'noop', missing);
    }
    // --pg-stats: the last round (after the top-up).
    const readStats = round === s4Rounds ? await serverProbe(ctx, db, { scenario: 'S4', system: `${system.name}@${backlog.label}` }) : undefined;
    const [proc] = await startWorkers(
      1,
      { system: system.name, url, concurrency: ctx.options.concurrency, workload: 'noop', target: s4Drain, tags: [] },
      execArgvFor(ctx, system.name, `S4-${backlog.label}`),
    );
    try {
      await readStats?.started();
      const [first, end] = await Promise.all([proc!.first, proc!.target]);
      await readStats?.('job', s4Drain);
      rates.push(s4Drain / ((end - first) / 1000));
    } finally {
      await stopAll([proc!]);
    }
    rss = Math.max(rss ?? 0, proc!.rssMb ?? 0);
    progress(`[S4 ${system.name}@${backlog.label}] round ${round}: ${fmt(rates.at(-1))} jobs/s`);
  }
  return { rate: median(rates), rates, rssMb: rss };
}

export const s4: Scenario = {
  id: 'S4',
  title: (o) =>
    `backlog: claim and drain at ${short(o.sizes.s4Small)} vs ${short(o.sizes.s4Large)} ready jobs, and ${short(o.sizes.s4Large)} with half requiring a tag the worker lacks`,
  notes: (o) => [
    `drain: a worker (concurrency ${o.concurrency}) times ${fmt(o.sizes.s4Drain)} committed completions, median of ${o.sizes.s4Rounds} round(s)`,
    `claim: ${CLAIM_LOOPS} loops calling claimTasks(batch ${CLAIM_BATCH}) until ${fmt(o.sizes.s4Claims)} tasks are claimed (no work, no commit)`,
    'targets: large/small >= 0.7; tagged/untagged >= 0.5',
  ],
  defaultSystems: ['baton', 'raw'],
  async run(ctx, systems) {
    const { s4Small, s4Large, s4Claims } = ctx.options.sizes;
    const backlogs: Backlog[] = [
      { label: short(s4Small), size: s4Small, tagged: false },
      { label: short(s4Large), size: s4Large, tagged: false },
      { label: `${short(s4Large)}-half-tagged`, size: s4Large, tagged: true },
    ];
    const byKey = new Map<string, number>();
    const add = (f: Figure) => {
      ctx.add(f);
      if (f.value !== null) byKey.set(`${f.system}|${f.metric}`, f.value);
    };
    await perSystem(ctx, systems, { scenario: 'S4', metric: 'drain jobs/s', better: 'higher' }, async (system) => {
      for (const backlog of backlogs.filter((b) => system.name === 'baton' || !b.tagged)) {
        if (ctx.cancelled()) return;
        const name = `${system.name}@${backlog.label}`;
        await inFreshDatabase(ctx.server, `S4_${system.name}_${backlog.label}`, async (db) => {
          await system.prepare(db.url);
          const client = await connect(db.url);
          try {
            progress(`[S4 ${name}] building a backlog of ${fmt(backlog.size)} jobs${backlog.tagged ? ', every second one tagged' : ''}`);
            const t0 = Date.now();
            if (system.name === 'baton') await buildBatonBacklog(client, backlog.size, backlog.tagged);
            else {
              await system.enqueueBulk(client, 'noop', backlog.size);
              await client.query('vacuum analyze');
            }
            const buildSeconds = (Date.now() - t0) / 1000;
            progress(`[S4 ${name}] backlog built in ${fmt(buildSeconds)} s`);
            if (system.name === 'baton') {
              const m = await claimMicro(db.url, s4Claims, []);
              progress(`[S4 ${name}] claimTasks: ${fmt(m.tasksPerSecond)} tasks/s, p50 ${fmt(m.p50)} ms per call`);
              add({ scenario: 'S4', system: name, metric: 'claim tasks/s', value: m.tasksPerSecond, better: 'higher', detail: { ...m, buildSeconds } });
            }
            const d = await drainRounds(ctx, system, db, client, backlog);
            add({ scenario: 'S4', system: name, metric: 'drain jobs/s', value: d.rate, better: 'higher', rssMb: d.rssMb, detail: { rounds: d.rates, buildSeconds } });
          } finally {
            await client.end();
          }
        });
      }
    });
    // The ratios the targets are about.
    const small = short(s4Small);
    const large = short(s4Large);
    for (const system of systems.map((s) => s.name)) {
      for (const metric of ['drain jobs/s', 'claim tasks/s']) {
        const a = byKey.get(`${system}@${small}|${metric}`);
        const b = byKey.get(`${system}@${large}|${metric}`);
        const c = byKey.get(`${system}@${large}-half-tagged|${metric}`);
        const kind = metric.split(' ')[0];
        if (a && b) add({ scenario: 'S4', system, metric: `${kind} ratio ${large}/${small} (target >= 0.7)`, value: b / a, better: 'higher', derived: true });
        if (b && c) add({ scenario: 'S4', system, metric: `${kind} ratio tagged/untagged (target >= 0.5)`, value: c / b, better: 'higher', derived: true });
      }
    }
  },
};
