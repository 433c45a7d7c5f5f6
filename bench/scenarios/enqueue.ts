/**
 * S0 enqueue: how fast each system takes jobs in, with no worker running.
 * Three paths, each in a fresh database with the schema prepared:
 *   single  one job per call from SINGLE_CALLERS concurrent callers
 *           (baton client.enqueue, graphile addJob, pg-boss send)
 *   batch   BATCH jobs per call through the client library from
 *           BATCH_CALLERS concurrent callers (baton client.enqueueMany,
 *           graphile addJobs, pg-boss insert)
 *   sql     SQL_CHUNK jobs per statement through the SQL API, one caller
 *           (baton.start_many, graphile_worker.add_jobs; pg-boss has none)
 * jobs/s = jobs / time from the first call to the last reply. The payload is a
 * small JSON object (E2eInput). Afterwards the database must hold exactly the
 * jobs enqueued.
 */
import { connect, inFreshDatabase } from '../lib/db.ts';
import { fmt, preciseNow, progress } from '../lib/stats.ts';
import type { E2eInput, Enqueuer, System } from '../systems/types.ts';
import { perSystem, serverProbe, type Context, type Scenario } from './common.ts';

export const SINGLE_CALLERS = 8;
export const BATCH = 500;
export const BATCH_CALLERS = 4;
export const SQL_CHUNK = 5_000;

type Path = 'single' | 'batch' | 'sql';

interface PathSpec {
  path: Path;
  metric: string;
  jobs: (ctx: Context) => number;
  callers: number;
  /** Jobs per call. */
  per: number;
}

const PATHS: PathSpec[] = [
  { path: 'single', metric: `jobs/s single (${SINGLE_CALLERS} callers)`, jobs: (c) => c.options.sizes.s0Single, callers: SINGLE_CALLERS, per: 1 },
  { path: 'batch', metric: `jobs/s batches of ${BATCH} (${BATCH_CALLERS} callers)`, jobs: (c) => c.options.sizes.s0Batched, callers: BATCH_CALLERS, per: BATCH },
  { path: 'sql', metric: `jobs/s SQL, ${fmt(SQL_CHUNK)} per statement`, jobs: (c) => c.options.sizes.s0Sql, callers: 1, per: SQL_CHUNK },
];

/** `callers` loops taking the next `per` jobs until `jobs` are enqueued; returns the seconds it took. */
async function enqueueAll(enqueuer: Enqueuer, spec: PathSpec, jobs: number): Promise<number> {
  let next = 0;
  const call = async (from: number, to: number) => {
    const t = preciseNow();
    const inputs: E2eInput[] = [];
    for (let i = from; i < to; i++) inputs.push({ i, t, p: 0 });
    if (spec.path === 'single') await enqueuer.single!(inputs[0]!);
    else if (spec.path === 'batch') await enqueuer.batch!(inputs);
    else await enqueuer.sql!(inputs);
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: spec.callers }, async () => {
      while (next < jobs) {
        const from = next;
        next = Math.min(jobs, next + spec.per);
        await call(from, next);
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

async function measure(ctx: Context, system: System, spec: PathSpec): Promise<void> {
  const jobs = spec.jobs(ctx);
  const tag = `S0 ${system.name} ${spec.path}`;
  await inFreshDatabase(ctx.server, `S0_${system.name}_${spec.path}`, async (db) => {
    await system.prepare(db.url);
    const enqueuer = await system.openEnqueuer(db.url, 'noop', Math.max(spec.callers, 2));
    try {
      if (!enqueuer[spec.path]) {
        progress(`[${tag}] not supported`);
        ctx.add({ scenario: 'S0', system: system.name, metric: spec.metric, value: null, better: 'higher', unsupported: `${system.name} has no ${spec.path === 'sql' ? 'SQL enqueue API' : `${spec.path} enqueue`}` });
        return;
      }
      const readStats = await serverProbe(ctx, db, { scenario: 'S0', system: `${system.name} ${spec.path}` });
      const seconds = await enqueueAll(enqueuer, spec, jobs);
      await readStats('job', jobs);
      const client = await connect(db.url);
      try {
        const r = await system.remaining(client, 'noop');
        if (r.remaining !== jobs) throw new Error(`${fmt(r.remaining)} jobs in the database after enqueueing ${fmt(jobs)}`);
      } finally {
        await client.end().catch(() => undefined);
      }
      progress(`[${tag}] ${fmt(jobs)} jobs in ${fmt(seconds)} s: ${fmt(jobs / seconds)} jobs/s`);
      ctx.add({
        scenario: 'S0',
        system: system.name,
        metric: spec.metric,
        value: jobs / seconds,
        better: 'higher',
        detail: { jobs, seconds, callers: spec.callers, jobsPerCall: spec.per, api: system.enqueueApi[spec.path] },
      });
    } finally {
      await enqueuer.close().catch(() => undefined);
    }
  });
}

export const s0: Scenario = {
  id: 'S0',
  title: (o) =>
    `enqueue, no worker: ${fmt(o.sizes.s0Single)} jobs one per call (${SINGLE_CALLERS} callers), ${fmt(o.sizes.s0Batched)} in batches of ${BATCH} (${BATCH_CALLERS} callers), ${fmt(o.sizes.s0Sql)} through SQL in statements of ${fmt(SQL_CHUNK)} (1 caller)`,
  notes: () => [
    'single: baton client.enqueue(), graphile workerUtils.addJob(), pg-boss boss.send(), raw an insert + pg_notify',
    'batch: baton client.enqueueMany(), graphile workerUtils.addJobs(), pg-boss boss.insert(), raw an insert from a JSON array + pg_notify',
    'SQL: baton.start_many(name, inputs, p_kind => task), graphile_worker.add_jobs(job_spec[]); pg-boss has no SQL API',
    'each path in a fresh database; payload a small JSON object {i, t, p}; graphile-batched enqueues as graphile does',
  ],
  defaultSystems: ['baton', 'graphile', 'pgboss', 'raw'],
  async run(ctx, systems) {
    for (const spec of PATHS) {
      if (ctx.cancelled()) return;
      await perSystem(ctx, systems, { scenario: 'S0', metric: spec.metric, better: 'higher' }, (system) => measure(ctx, system, spec));
    }
  },
};
