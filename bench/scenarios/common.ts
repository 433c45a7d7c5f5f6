/**
 * What scenarios share: their context, `serverProbe` (--pg-stats around a
 * measured run), and `drain`, the measurement behind S1, S3, S5 and S6: a
 * fresh database, work enqueued up front (not timed), worker processes
 * started, and the time from the first claim (the first handler start,
 * reported by a worker) to the last finished unit, counted by the workers
 * themselves and streamed over IPC (no database polling while it runs);
 * then one database check that nothing is left and nothing failed.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { Options } from '../lib/args.ts';
import { connect, inFreshDatabase, type FreshDatabase, type Server } from '../lib/db.ts';
import type { PgStats, PgStatsReport, PgStatsSnapshot } from '../lib/pgstats.ts';
import { completedUnits, cpuMs, firstStart, postmasterOfSession, serverCpuMs, startWorkers, stopAll, waitForUnits } from '../lib/proc.ts';
import type { Figure, ScenarioTitle } from '../lib/report.ts';
import { fmt, progress, sleep } from '../lib/stats.ts';
import type { System, SystemName, Workload } from '../systems/types.ts';

export interface Context {
  server: Server;
  options: Options;
  /** Record a figure (printed at the end and saved). */
  add(figure: Figure): void;
  /** The figures of the scenarios that ran before this one (each combined over its --repeat runs). */
  figures(): readonly Figure[];
  /** With --pg-stats: the statement statistics, and where reports go. */
  pgStats?: PgStats;
  addPgStats(report: PgStatsReport): void;
  /** True after Ctrl-C: finish the current measurement, start no other. */
  cancelled(): boolean;
}

export interface ServerProbe {
  /** The first worker process is ready: what ran so far was start-up, counted apart. */
  started(): Promise<void>;
  /** Read the statistics at the end of the run and record the report. */
  (unit: string, units: number): Promise<void>;
}

/**
 * With --pg-stats: reset the database's statement statistics now, and return
 * the function that reads them at the end of the run and records the report
 * (server time per unit by statement). Without it, a no-op. A failed read is
 * reported and does not fail the run.
 */
export async function serverProbe(ctx: Context, db: FreshDatabase, o: { scenario: string; system: string }): Promise<ServerProbe> {
  const stats = ctx.pgStats;
  if (!stats) return Object.assign(async () => undefined, { started: async () => undefined });
  await stats.reset(db);
  let since: PgStatsSnapshot | undefined;
  const started = async () => {
    since = await stats.snapshot(db);
  };
  return Object.assign(async (unit: string, units: number) => {
    try {
      const report = await stats.read(db, { ...o, unit, units }, since);
      ctx.addPgStats(report);
      progress(`[${o.scenario} ${o.system}] server time ${fmt(report.serverMsPerUnit, 3)} ms/${unit} (pg_stat_statements)`);
    } catch (error) {
      progress(`[${o.scenario} ${o.system}] pg_stat_statements read failed: ${(error as Error).message}`);
    }
  }, { started });
}

export interface Scenario {
  id: string;
  title(options: Options): string;
  notes?(options: Options): string[];
  /** Systems it runs when --systems is not given. */
  defaultSystems: readonly SystemName[];
  run(ctx: Context, systems: System[]): Promise<void>;
}

export function describeScenario(s: Scenario, options: Options): ScenarioTitle {
  return { id: s.id, title: s.title(options), notes: s.notes?.(options) ?? [] };
}

/** The node flags `npm run worker` starts a Baton worker with (package.json): Baton runs as users run it. */
const BATON_WORKER_FLAGS: string[] = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  const m = /^node\s+(.*?)\s*bin\/baton\.js worker$/.exec(pkg.scripts.worker ?? '');
  if (!m) throw new Error(`bench: cannot read the node flags of package.json's worker script (${pkg.scripts.worker})`);
  return m[1]!.split(/\s+/).filter(Boolean);
})();

/** Node flags for a worker child: Baton's as above, plus CPU profiles with --profile. */

export function execArgvFor(ctx: Context, system: SystemName, tag: string): string[] {
  if (system !== 'baton') return [];
  // Node names each profile after pid and thread (the tsx loader thread writes one too).
  return [...BATON_WORKER_FLAGS, ...(ctx.options.profile ? ['--cpu-prof', `--cpu-prof-dir=bench/results/profiles/${tag}`] : [])];
}

export interface DrainResult {
  seconds: number;
  /** Largest peak RSS among the worker processes, MB. */
  rssMb: number | undefined;
  rssEachMb: (number | undefined)[];
  enqueueSeconds: number;
  /** ms from the last counted unit to the first database read showing none left (0 when the first check did). */
  tailMs: number;
  /** CPU time of the worker processes (all of them) per statsUnit (job, step, task), µs, from readiness to the last unit counted. */
  cpuUsPerUnit: number | undefined;
  /** CPU time of the whole PostgreSQL server per statsUnit, µs, over the same span (when it runs on this machine). */
  serverCpuUsPerUnit: number | undefined;
}

/** How long a system that counts at handler end may take to commit its last completions. */
const TAIL_TIMEOUT_MS = 10_000;
const TAIL_POLL_MS = 5;

/**
 * The one database check after a run the workers say is over: nothing left,
 * nothing failed. A system that counts at commit must show that at once;
 * one that counts at handler end (it commits right after) is read again every
 * TAIL_POLL_MS until it does, and the end of the run moves to that read.
 * Returns the end time.
 */
export async function confirmFinished(
  system: System,
  client: pg.Client,
  workload: Workload,
  end: number,
  o: { counted: number; unitName: string },
): Promise<{ end: number; tailMs: number }> {
  let r = await system.remaining(client, workload);
  let at = end;
  if (r.remaining > 0 && system.countsAt === 'handler') {
    const deadline = Date.now() + TAIL_TIMEOUT_MS;
    while (r.remaining > 0 && r.failed === 0 && Date.now() < deadline) {
      await sleep(TAIL_POLL_MS);
      r = await system.remaining(client, workload);
      at = Date.now();
    }
  }
  if (r.failed > 0) throw new Error(`${r.failed} ${o.unitName} failed`);
  if (r.remaining > 0) throw new Error(`the workers counted ${fmt(o.counted)} finished ${o.unitName} but the database shows ${fmt(r.remaining)} left`);
  return { end: Math.max(end, at), tailMs: Math.max(0, at - end) };
}

export async function drain(
  ctx: Context,
  system: System,
  o: {
    scenario: string;
    workload: Workload;
    units: number;
    processes?: number;
    unitName: string;
    statsUnit: { name: string; count: number };
    /** S8: called with the empty schema, after the enqueue, and after the drain with the workers stopped. */
    inspect?: (client: pg.Client, when: 'empty' | 'enqueued' | 'drained') => Promise<void>;
  },
): Promise<DrainResult> {
  const processes = o.processes ?? 1;
  const tag = `${o.scenario} ${system.name}${processes > 1 ? ` x${processes}` : ''}`;
  return inFreshDatabase(ctx.server, `${o.scenario}_${system.name}`, async (db) => {
    await system.prepare(db.url);
    const client = await connect(db.url);
    try {
      await o.inspect?.(client, 'empty');
      const t0 = Date.now();
      await system.enqueueBulk(client, o.workload, o.units);
      const enqueueSeconds = (Date.now() - t0) / 1000;
      // A cheap guard against an enqueue that silently wrote less than asked (peers count jobs, so fan-outs have more).
      const before = await system.remaining(client, o.workload);
      if (before.remaining < o.units) throw new Error(`enqueued ${before.remaining} of ${o.units} ${o.unitName}`);
      await o.inspect?.(client, 'enqueued');
      await client.query('vacuum analyze');
      progress(`[${tag}] enqueued ${fmt(o.units)} ${o.unitName} in ${fmt(enqueueSeconds)} s; starting ${processes} worker process(es)`);
      const readStats = await serverProbe(ctx, db, { scenario: o.scenario, system: tag.slice(o.scenario.length + 1) });
      const postmaster = await postmasterOfSession(client);
      let serverAtStart: number | undefined;
      const procs = await startWorkers(
        processes,
        {
          system: system.name,
          url: db.url,
          concurrency: ctx.options.concurrency,
          workload: o.workload,
          ...(processes === 1 ? { target: o.units } : {}),
          ...(ctx.options.allocProfile ? { allocProfileDir: `bench/results/profiles/${o.scenario}` } : {}),
        },
        execArgvFor(ctx, system.name, o.scenario),
        // The span starts when the first process is ready: it may drain much before the last one is.
        async () => {
          serverAtStart = serverCpuMs(postmaster);
          await readStats.started();
        },
      );
      try {
        // Each process's CPU from its own readiness.
        const cpuAtStart = procs.map((p) => p.cpuAtReady);
        const counted = await waitForUnits(procs, o.units, { tag, unitName: o.unitName });
        const cpuUsed = procs.map((p, i) => {
          const now = cpuMs(p.pid);
          const then = cpuAtStart[i];
          return now === undefined || then === undefined ? undefined : now - then;
        });
        const cpuUsPerUnit = cpuUsed.every((c) => c !== undefined) ? (cpuUsed.reduce((a, c) => a + c!, 0) * 1000) / o.statsUnit.count : undefined;
        const serverNow = serverCpuMs(postmaster);
        const serverCpuUsPerUnit =
          serverNow === undefined || serverAtStart === undefined ? undefined : ((serverNow - serverAtStart) * 1000) / o.statsUnit.count;
        await readStats(o.statsUnit.name, o.statsUnit.count);
        const { end, tailMs } = await confirmFinished(system, client, o.workload, counted, { counted: completedUnits(procs), unitName: o.unitName });
        const firstAt = firstStart(procs);
        if (firstAt === undefined) throw new Error(`[${tag}] no worker process reported its first start`);
        const seconds = (end - firstAt) / 1000;
        await stopAll(procs);
        await o.inspect?.(client, 'drained');
        const rssEachMb = procs.map((p) => p.rssMb);
        const known = rssEachMb.filter((r): r is number => r !== undefined);
        progress(
          `[${tag}] done: ${fmt(o.units)} ${o.unitName} in ${fmt(seconds)} s (${fmt(o.units / seconds)} ${o.unitName}/s` +
            `${cpuUsPerUnit === undefined ? '' : `, worker CPU ${fmt(cpuUsPerUnit, 0)} µs/${o.statsUnit.name}`}` +
            `${serverCpuUsPerUnit === undefined ? '' : `, server CPU ${fmt(serverCpuUsPerUnit, 0)} µs/${o.statsUnit.name}`})${tailMs > 0 ? `, last commits seen ${tailMs} ms after the count` : ''}`);
        return { seconds, rssMb: known.length ? Math.max(...known) : undefined, rssEachMb, enqueueSeconds, tailMs, cpuUsPerUnit, serverCpuUsPerUnit };
      } finally {
        await stopAll(procs);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  });
}

/** Run `fn` per system; a failure becomes an error figure instead of stopping the run. */
export async function perSystem(
  ctx: Context,
  systems: System[],
  base: Omit<Figure, 'system' | 'value'>,
  fn: (system: System) => Promise<void>,
): Promise<void> {
  for (const system of systems) {
    if (ctx.cancelled()) return;
    try {
      await fn(system);
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      progress(`[${base.scenario} ${system.name}] failed: ${message}`);
      ctx.add({ ...base, system: system.name, value: null, error: message });
    }
  }
}
