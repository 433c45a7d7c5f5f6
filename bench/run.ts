/**
 * npm run bench [-- --quick] [--scenarios S1,S3] [--systems baton,raw] [--size s1Jobs=50000] [--pg-stats] [--repeat 3]
 *   [--server-cpus 0]
 *
 * Runs the scenarios against Baton and its peers on one PostgreSQL server
 * (DATABASE_URL, or an embedded one in .baton-bench/), prints a table per
 * scenario to stdout (progress goes to stderr), and writes
 * bench/results/<timestamp>.json and bench/results/latest.json.
 */
import { parseArgs, UsageError, type Options } from './lib/args.ts';
import { CpuSplitError, splitCpus, type CpuSplit } from './lib/cpus.ts';
import { connect, openServer } from './lib/db.ts';
import { postmasterOfSession } from './lib/proc.ts';
import { PgStats, PgStatsUnavailable, renderPgStats, type PgStatsReport } from './lib/pgstats.ts';
import { describeScenario, type Context, type Scenario } from './scenarios/common.ts';
import { machine, renderTable, saveResults, type Figure } from './lib/report.ts';
import { combineRounds, roundOrder } from './lib/rounds.ts';
import { progress } from './lib/stats.ts';
import { s3 } from './scenarios/chain.ts';
import { s6 } from './scenarios/fanout.ts';
import { s2 } from './scenarios/latency.ts';
import { s4 } from './scenarios/backlog.ts';
import { s0 } from './scenarios/enqueue.ts';
import { s7 } from './scenarios/steady.ts';
import { s8 } from './scenarios/storage.ts';
import { sm } from './scenarios/model.ts';
import { s1, s5 } from './scenarios/throughput.ts';
import { loadSystem } from './systems/index.ts';
import type { System } from './systems/types.ts';

const ALL: Scenario[] = [s0, s1, sm, s2, s3, s4, s5, s6, s7, s8];

async function main(options: Options): Promise<number> {
  const startedAt = new Date().toISOString();
  const server = await openServer(progress, { pgStats: options.pgStats, locale: options.locale });
  const figures: Figure[] = [];
  const pgStatsReports: PgStatsReport[] = [];
  const used = new Map<string, System>();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) {
      progress('interrupted twice: exiting now (fresh databases may be left behind)');
      process.exit(130);
    }
    interrupted = true;
    progress('interrupted: finishing the current measurement, then stopping (Ctrl-C again to exit at once)');
  };
  process.on('SIGINT', onSignal);
  let split: CpuSplit | undefined;
  try {
    if (options.serverCpus) {
      const c = await connect(server.adminUrl);
      try {
        split = splitCpus(await postmasterOfSession(c), options.serverCpus);
      } finally {
        await c.end();
      }
      progress(split.describe);
    }
    progress(`PostgreSQL ${server.version}${server.embedded ? ' (embedded)' : ''}; sizes ${JSON.stringify(options.sizes)}`);
    const pgStats = options.pgStats ? await PgStats.open(server) : undefined;
    if (pgStats && pgStats.track !== 'all') progress(`pg_stat_statements.track = ${pgStats.track}: statements nested in functions are not recorded (set it to all)`);
    const ctx: Context = {
      server,
      options,
      add: (f) => figures.push(f),
      figures: () => figures,
      pgStats,
      addPgStats: (r) => pgStatsReports.push(r),
      cancelled: () => interrupted,
    };
    for (const scenario of ALL.filter((s) => options.scenarios.includes(s.id as never))) {
      if (interrupted) break;
      const names = options.systems ? scenario.defaultSystems.filter((n) => options.systems!.includes(n)) : scenario.defaultSystems;
      if (options.systems && names.length === 0) continue;
      const systems = await Promise.all(names.map(loadSystem));
      for (const s of systems) used.set(s.name, s);
      const rounds: Figure[][] = [];
      for (let round = 1; round <= options.repeat && !(round > 1 && interrupted); round++) {
        const run = options.repeat > 1 ? ` (run ${round} of ${options.repeat})` : '';
        progress(`== ${scenario.id} ${scenario.title(options)}${run}`);
        const got: Figure[] = [];
        // --pg-stats reports the first run only: the runs repeat one another's statements.
        const roundCtx: Context = { ...ctx, add: (f) => got.push(f), addPgStats: (r) => { if (round === 1) ctx.addPgStats(r); } };
        const t = Date.now();
        await scenario.run(roundCtx, roundOrder(systems, round));
        progress(`== ${scenario.id} took ${Math.round((Date.now() - t) / 1000)} s${run}`);
        rounds.push(got);
      }
      figures.push(...combineRounds(rounds));
    }
  } finally {
    process.off('SIGINT', onSignal);
    split?.restore();
    await server.close();
  }

  const titles = ALL.filter((s) => figures.some((f) => f.scenario === s.id)).map((s) => describeScenario(s, options));
  const out = [`Baton benchmarks (${options.quick ? 'quick' : 'full'}), PostgreSQL ${server.version}${server.locale ? ` (databases in locale ${server.locale})` : ''}, ${machine(server.version, server.embedded).cpus} cores${split ? ` (${split.describe})` : ''}, Node ${process.version}`];
  for (const title of titles) {
    out.push('', renderTable(title, figures.filter((f) => f.scenario === title.id)));
    const reports = pgStatsReports.filter((r) => r.scenario === title.id);
    if (reports.length > 0) out.push(renderPgStats(reports));
  }
  out.push('', 'Systems:', ...[...used.values()].map((s) => `  ${s.name}: ${s.describe}`));
  process.stdout.write(`${out.join('\n')}\n`);

  if (options.save) {
    const file = await saveResults({
      startedAt,
      finishedAt: new Date().toISOString(),
      command: process.argv.slice(2),
      machine: { ...machine(server.version, server.embedded), ...(split ? { serverCpus: split.serverCpus, benchCpus: split.benchCpus } : {}) },
      options,
      systems: Object.fromEntries([...used.values()].map((s) => [s.name, s.describe])),
      scenarios: titles,
      figures,
      ...(options.pgStats ? { pgStats: pgStatsReports } : {}),
    });
    progress(`results written to ${file} and bench/results/latest.json`);
  }
  return figures.some((f) => f.error) ? 1 : 0;
}

let options: Options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
main(options).then(
  (code) => process.exit(code),
  (error) => {
    if (error instanceof PgStatsUnavailable || error instanceof CpuSplitError) {
      process.stderr.write(`bench: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`bench: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
