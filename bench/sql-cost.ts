/**
 * The job path's SQL alone: what the server spends per one-task no-op job on
 * its enqueue (baton.start_many), its claim (baton.claim_tasks) and its commit
 * (baton.commit), by statement, from pg_stat_statements (nested statements
 * included), with the WAL each writes and the shared-buffer pages it touches.
 *
 *   npm run bench:sql -- [--jobs 30000] [--batch 120] [--runs 1] [--locale en_US.UTF-8]
 *
 * One session does everything, one statement at a time, with nothing else
 * running: no worker shares the CPU and no commit waits on another, so the
 * figures are the server's own cost per job and repeat within a few percent
 * (S1's wall-clock figure on 2 shared cores varies by 15%). That makes it the
 * place to read an A/B of a change to these functions. The batches are built
 * by the worker's own code (worker/plan.ts's planBatch over real claims, sent
 * by store/commit.ts), so the SQL is what a worker sends, minus the worker.
 *
 * Three drains, each of --jobs jobs in a fresh database:
 *   separate:  every claim its own statement, then the commit;
 *   riding:    the next claim rides in the commit (p_claim), as a busy
 *              worker's does;
 *   pipelined: a second session claims the next batch while the commit of
 *              this one runs, as a worker's claim-ahead does: the cost of a
 *              claim and a commit running at once, without a worker's CPU.
 * Needs pg_stat_statements (see bench/README.md, --pg-stats).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { migrate } from '../src/db/migrate.ts';
import { claimTasks, type ClaimedTask, type ClaimParams } from '../src/store/claims.ts';
import { commitBatch } from '../src/store/commit.ts';
import { HeldTask } from '../src/worker/held.ts';
import { planBatch } from '../src/worker/plan.ts';
import { taskWorkflow } from '../src/workflow/builder.ts';
import { UsageError } from './lib/args.ts';
import { connect, inFreshDatabase, openServer, type FreshDatabase, type Server } from './lib/db.ts';
import { PgStats, shortQuery } from './lib/pgstats.ts';
import { postmasterOfSession, serverCpuMs } from './lib/proc.ts';
import { fmt } from './lib/stats.ts';
import { batonBulk, batonDefinitions, BULK, registerBatonDefinitions } from './systems/baton.ts';

interface Options {
  jobs: number;
  batch: number;
  runs: number;
  /** The collation locale of the fresh databases (as npm run bench's --locale); undefined: the server's. */
  locale?: string;
}

function options(argv: string[]): Options {
  const o: Options = { jobs: 30_000, batch: 120, runs: 1 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--locale' && argv[i + 1]) {
      o.locale = argv[++i];
      continue;
    }
    const name = argv[i]!.replace(/^--/, '') as 'jobs' | 'batch' | 'runs';
    const value = Number(argv[++i]);
    if (!(name in o) || !Number.isInteger(value) || value <= 0) {
      throw new UsageError(`expected --jobs N, --batch N or --runs N (positive integers) or --locale NAME, got ${argv.slice(i - 1, i + 1).join(' ')}`);
    }
    o[name] = value;
  }
  return o;
}

interface Line {
  toplevel: boolean;
  calls: number;
  usPerJob: number;
  walPerJob: number;
  /** Shared buffers hit or read per job: pages touched, the work a plan does. */
  blocksPerJob: number;
  query: string;
}

/** This database's statements since the last reset, per job: time (execution + planning), WAL bytes and pages touched. */
async function read(server: Server, db: FreshDatabase, jobs: number): Promise<Line[]> {
  const c = await connect(server.adminUrl);
  try {
    const { rows } = await c.query<{ toplevel: boolean; calls: string; ms: number; wal: string; blocks: string; query: string }>(
      `select toplevel, calls::text, (total_exec_time + total_plan_time)::float8 as ms, wal_bytes::text as wal,
         (shared_blks_hit + shared_blks_read)::text as blocks, query
       from pg_stat_statements where dbid = $1::oid order by total_exec_time + total_plan_time desc`,
      [db.oid],
    );
    return rows.map((r) => ({ toplevel: r.toplevel, calls: Number(r.calls), usPerJob: (r.ms * 1000) / jobs, walPerJob: Number(r.wal) / jobs, blocksPerJob: Number(r.blocks) / jobs, query: r.query }));
  } finally {
    await c.end();
  }
}

/**
 * `cpuUs`: the whole server's CPU time per job over the same span (undefined when it is not on this
 * machine); `clientUs`: this process's, for a drain (the worker's part of the job path without its
 * handlers: parsing claims, planning, encoding and sending commits).
 */
function render(title: string, lines: Line[], cpuUs: number | undefined, clientUs?: number): string {
  const top = lines.filter((l) => l.toplevel);
  const total = top.reduce((a, l) => a + l.usPerJob, 0);
  const wal = top.reduce((a, l) => a + l.walPerJob, 0);
  const cpu = [cpuUs === undefined ? '' : `server CPU ${fmt(cpuUs, 1)}`, clientUs === undefined ? '' : `client CPU ${fmt(clientUs, 1)}`]
    .filter(Boolean)
    .join(', ');
  const cpuText = cpu ? ` (${cpu} µs/job)` : '';
  const out = [`  ${title}: ${fmt(total, 1)} server µs/job${cpuText}, ${fmt(wal, 0)} WAL bytes/job`];
  const shown = [...top.filter((l) => l.usPerJob >= 0.5), ...lines.filter((l) => !l.toplevel && l.usPerJob >= 0.5)];
  for (const l of shown) {
    out.push(`    ${(l.toplevel ? '' : '  ') + fmt(l.usPerJob, 1).padStart(7)} µs  ${fmt(l.walPerJob, 0).padStart(5)} B  ${fmt(l.blocksPerJob, 1).padStart(5)} pages  ${String(l.calls).padStart(5)} calls  ${shortQuery(l.query, 90)}`);
  }
  return out.join('\n');
}

const WORKER = `bench-sql:${randomUUID().slice(0, 8)}`;

type Mode = 'separate' | 'riding' | 'pipelined';
const TITLES: Record<Mode, string> = {
  separate: 'separate claims',
  riding: 'claims riding in the commits',
  pipelined: 'claims pipelined with the commits (a second session)',
};

/** Complete every claimed task of a batch through the worker's planner and commit. */
async function complete(c: pg.Client, def: ReturnType<typeof taskWorkflow>, claimed: ClaimedTask[], claim?: Omit<ClaimParams, 'workerId'>) {
  const finished = claimed.map((task) => ({
    held: new HeldTask(task, def, task.leaseExpiresAt.getTime()),
    outcome: { kind: 'completed' as const, output: null },
  }));
  const r = await commitBatch(c, WORKER, planBatch(WORKER, finished, new Map()), claim);
  if (r.results.length > 0) throw new Error(`bench:sql: the commit did not apply everything: ${JSON.stringify(r.results.slice(0, 3))}`);
  return r.claimed;
}

/** The claim of the next batch runs on `other` while this batch's commit runs on `c`. */
async function drainPipelined(c: pg.Client, other: pg.Client, o: Options): Promise<number> {
  const def = taskWorkflow(batonDefinitions().noop);
  const claim = { limit: o.batch, tags: [] as string[], hashes: [def.hash], ttlMs: 60_000, declares: true };
  let done = 0;
  let next = claimTasks(other, { workerId: WORKER, ...claim });
  for (let claimed = await next; claimed.length > 0; claimed = await next) {
    next = claimTasks(other, { workerId: WORKER, ...claim });
    await complete(c, def, claimed);
    done += claimed.length;
  }
  return done;
}

async function drain(c: pg.Client, o: Options, riding: boolean): Promise<number> {
  const def = taskWorkflow(batonDefinitions().noop);
  const claim = { limit: o.batch, tags: [] as string[], hashes: [def.hash], ttlMs: 60_000, declares: true };
  let done = 0;
  let claimed: ClaimedTask[] = await claimTasks(c, { workerId: WORKER, ...claim });
  while (claimed.length > 0) {
    const along = await complete(c, def, claimed, riding ? claim : undefined);
    done += claimed.length;
    claimed = riding ? along : await claimTasks(c, { workerId: WORKER, ...claim });
  }
  return done;
}

async function once(server: Server, stats: PgStats, o: Options, mode: Mode): Promise<string> {
  const first = mode === 'separate';
  return inFreshDatabase(server, `sql_${mode}`, async (db) => {
    await migrate(db.url);
    const c = await connect(db.url);
    const postmaster = await postmasterOfSession(c);
    const cpuPerJob = (since: number | undefined) => {
      const now = serverCpuMs(postmaster);
      return now === undefined || since === undefined ? undefined : ((now - since) * 1000) / o.jobs;
    };
    try {
      await registerBatonDefinitions(c);
      const parts: string[] = [];
      // The enqueue is the same for every drain: measured once.
      if (first) await stats.reset(db);
      const enqueueCpu = serverCpuMs(postmaster);
      await batonBulk(c, BULK.noop, o.jobs);
      if (first) parts.push(render(`enqueue (start_many, 5,000 per statement)`, await read(server, db, o.jobs), cpuPerJob(enqueueCpu)));
      // Every drain starts alike: fresh statistics, and a checkpoint just before, so that the first
      // change of each page in the drain logs a full-page image (as after any checkpoint in a long run).
      await c.query('vacuum analyze baton.tasks, baton.workflows');
      await c.query('checkpoint');
      await stats.reset(db);
      const drainCpu = serverCpuMs(postmaster);
      const own = process.cpuUsage();
      let done: number;
      if (mode === 'pipelined') {
        const other = await connect(db.url);
        try {
          done = await drainPipelined(c, other, o);
        } finally {
          await other.end();
        }
      } else done = await drain(c, o, mode === 'riding');
      const drainCpuUs = cpuPerJob(drainCpu);
      const ownUs = process.cpuUsage(own);
      const clientUs = (ownUs.user + ownUs.system) / o.jobs;
      if (done !== o.jobs) throw new Error(`bench:sql: drained ${done} of ${o.jobs} jobs`);
      parts.push(render(`drain, ${TITLES[mode]} of ${o.batch}`, await read(server, db, o.jobs), drainCpuUs, clientUs));
      return parts.join('\n');
    } finally {
      await c.end();
    }
  });
}

let o: Options;
try {
  o = options(process.argv.slice(2));
} catch (error) {
  // A mistake in the command line: one line, not a stack trace.
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`bench:sql: ${error.message}\n  npm run bench:sql -- [--jobs 30000] [--batch 120] [--runs 1] [--locale en_US.UTF-8]\n`);
  process.exit(2);
}
const log = (m: string) => process.stderr.write(`${m}\n`);
const server = await openServer(log, { pgStats: true, locale: o.locale });
try {
  const stats = await PgStats.open(server);
  if (stats.track !== 'all') log(`pg_stat_statements.track is '${stats.track}': the statements inside the functions are not listed (set it to 'all')`);
  console.log(`The job path's SQL alone, ${fmt(o.jobs, 0)} one-task no-op jobs, PostgreSQL ${server.version}${server.embedded ? ' (embedded)' : ''}${o.locale ? `, databases in locale ${o.locale}` : ''}`);
  for (let run = 1; run <= o.runs; run++) {
    if (o.runs > 1) console.log(`run ${run} of ${o.runs}`);
    for (const mode of Object.keys(TITLES) as Mode[]) console.log(await once(server, stats, o, mode));
  }
} finally {
  await server.close();
}
