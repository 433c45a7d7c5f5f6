/**
 * What scenarios share: their context, and `drain`, the measurement behind
 * S1, S3, S5 and S6: a fresh database, work enqueued up front (not timed),
 * worker processes started, and the time from the first claim (the first
 * handler start, reported by a worker) to the moment the database shows all
 * work finished (polled every 20 ms).
 */
import { readFileSync } from 'node:fs';
import type { Options } from '../lib/args.ts';
import { connect, inFreshDatabase, type Server } from '../lib/db.ts';
import { startWorkers, stopAll } from '../lib/proc.ts';
import type { Figure, ScenarioTitle } from '../lib/report.ts';
import { fmt, progress, sleep } from '../lib/stats.ts';
import { loadSystem } from '../systems/index.ts';
import type { System, SystemName, Workload } from '../systems/types.ts';

export interface Context {
  server: Server;
  options: Options;
  /** Record a figure (printed at the end and saved). */
  add(figure: Figure): void;
  /** True after Ctrl-C: finish the current measurement, start no other. */
  cancelled(): boolean;
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
}

export async function drain(
  ctx: Context,
  system: System,
  o: { scenario: string; workload: Workload; units: number; processes?: number; unitName: string },
): Promise<DrainResult> {
  const processes = o.processes ?? 1;
  const tag = `${o.scenario} ${system.name}${processes > 1 ? ` x${processes}` : ''}`;
  return inFreshDatabase(ctx.server, `${o.scenario}_${system.name}`, async (db) => {
    await system.prepare(db.url);
    const client = await connect(db.url);
    try {
      const t0 = Date.now();
      await system.enqueueBulk(client, o.workload, o.units);
      const enqueueSeconds = (Date.now() - t0) / 1000;
      // A cheap guard against an enqueue that silently wrote less than asked (peers count jobs, so fan-outs have more).
      const before = await system.remaining(client, o.workload);
      if (before.remaining < o.units) throw new Error(`enqueued ${before.remaining} of ${o.units} ${o.unitName}`);
      await client.query('vacuum analyze');
      progress(`[${tag}] enqueued ${fmt(o.units)} ${o.unitName} in ${fmt(enqueueSeconds)} s; starting ${processes} worker process(es)`);
      const procs = await startWorkers(
        processes,
        { system: system.name, url: db.url, concurrency: ctx.options.concurrency, workload: o.workload },
        execArgvFor(ctx, system.name, o.scenario),
      );
      try {
        const first = Promise.race(procs.map((p) => p.first));
        let lastPrint = Date.now();
        let lastChange = Date.now();
        let lastRemaining = Infinity;
        let end: number;
        for (;;) {
          const r = await system.remaining(client, o.workload);
          const now = Date.now();
          if (r.failed > 0) throw new Error(`${r.failed} ${o.unitName} failed`);
          if (r.remaining === 0) {
            end = now;
            break;
          }
          if (r.remaining !== lastRemaining) {
            lastRemaining = r.remaining;
            lastChange = now;
          } else if (now - lastChange > 60_000) throw new Error(`no progress for 60 s (${r.remaining} ${o.unitName} left)`);
          const dead = procs.find((p) => p.child.exitCode !== null);
          if (dead) throw new Error(`a worker process exited (code ${dead.child.exitCode})`);
          if (now - lastPrint >= 1_000) {
            lastPrint = now;
            progress(`[${tag}] ${fmt(o.units - r.remaining)}/${fmt(o.units)} ${o.unitName} done`);
          }
          await sleep(20);
        }
        const seconds = (end - (await first)) / 1000;
        await stopAll(procs);
        const rssEachMb = procs.map((p) => p.rssMb);
        const known = rssEachMb.filter((r): r is number => r !== undefined);
        progress(`[${tag}] done: ${fmt(o.units)} ${o.unitName} in ${fmt(seconds)} s (${fmt(o.units / seconds)} ${o.unitName}/s)`);
        return { seconds, rssMb: known.length ? Math.max(...known) : undefined, rssEachMb, enqueueSeconds };
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

export { loadSystem };
