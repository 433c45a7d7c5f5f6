/**
 * graphile-worker 0.17.3, two ways:
 *   defaults  run({ concurrency }) as it ships: one job fetched per free slot, one completion per job
 *   batched   its documented batching: a local queue of 500 prefetched jobs
 *             (preset.worker.localQueue.size) and completions/failures batched
 *             over 2 ms (completeJobBatchDelay / failJobBatchDelay)
 * Chains enqueue the next step from the handler (helpers.addJob); fan-outs
 * count finished branches in a table and enqueue the join from the last one.
 * A unit is counted on the runner's 'job:success' event (the handler returned;
 * graphile-worker completes the job in the database right after, without
 * waiting: it has no event after that write, its 'job:complete' fires
 * before it too): a job, a chain's last step, a fan-out's join.
 * S0 and S7 enqueue with makeWorkerUtils(): addJob(), addJobs(), and the SQL
 * function graphile_worker.add_jobs() through the utils' pool.
 */
import { Logger, makeWorkerUtils, run, runMigrations, type TaskList, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { BENCH_SQL, CHAIN_STEPS, FAN_BRANCHES, PAD_SQL, type E2eInput, type System, type Workload } from './types.ts';
import { preciseNow } from '../lib/stats.ts';

type Variant = 'defaults' | 'batched';

const quiet = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`[graphile-worker] ${level}: ${message}\n`);
});

/**
 * graphile-worker's utilities and migrations run over pools of our own, ended (and awaited) by us:
 * the pools graphile-worker makes itself are ended by release() without waiting, their error
 * handlers taken off first, so the DROP DATABASE ... WITH (FORCE) that follows a measurement could
 * terminate a client still closing and crash the whole run with an unhandled 'error' event (it did,
 * once, in S0).
 */
function ownPool(url: string, max?: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, ...(max === undefined ? {} : { max }) });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

async function utilsOn(url: string, max?: number): Promise<{ utils: WorkerUtils; close: () => Promise<void> }> {
  const pool = ownPool(url, max);
  const utils = await makeWorkerUtils({ pgPool: pool, logger: quiet });
  return {
    utils,
    close: async () => {
      await utils.release();
      await pool.end();
    },
  };
}

// graphile_worker.add_jobs() inserts a whole chunk in one call (add_job per row is ~1,000 jobs/s).
const addJobs = (identifier: string, payload: string, from = 'generate_series($1::int, $2::int) i') =>
  `select count(*) from graphile_worker.add_jobs(array(
     select row('${identifier}', ${payload}, null, null, null, null, null, null)::graphile_worker.job_spec from ${from}))`;

const BULK: Record<Workload, string[]> = {
  noop: [addJobs('noop', `json_build_object('i', i)`)],
  latency: [addJobs('latency', `json_build_object('seq', i)`)],
  chain: [addJobs('chain', `json_build_object('wf', i, 'step', 1)`)],
  e2e: [addJobs('e2e', `json_build_object('i', i, 't', 0, 'p', 0)`)],
  padded: [addJobs('noop', `json_build_object('i', i, 'pad', ${PAD_SQL})`)],
  fanout: [
    `insert into bench_fan (wf, remaining) select i, ${FAN_BRANCHES} from generate_series($1::int, $2::int) i`,
    addJobs('branch', `json_build_object('wf', i)`, `generate_series($1::int, $2::int) i, generate_series(1, ${FAN_BRANCHES}) b`),
  ],
};

export function graphile(variant: Variant): System {
  return {
    name: variant === 'batched' ? 'graphile-batched' : 'graphile',
    describe:
      variant === 'batched'
        ? 'graphile-worker 0.17.3 run({ concurrency }) + localQueue.size 500, completeJobBatchDelay 2, failJobBatchDelay 2'
        : 'graphile-worker 0.17.3 run({ concurrency }) with its defaults',
    workloads: ['noop', 'latency', 'chain', 'fanout', 'e2e', 'padded'],
    countsAt: 'handler',
    enqueueApi: { single: 'workerUtils.addJob()', batch: 'workerUtils.addJobs()', sql: 'graphile_worker.add_jobs()' },

    async prepare(url) {
      const pool = ownPool(url);
      try {
        await runMigrations({ pgPool: pool, logger: quiet });
      } finally {
        await pool.end();
      }
      const { connect } = await import('../lib/db.ts');
      const client = await connect(url);
      try {
        await client.query('create table bench_fan (wf int primary key, remaining int not null)');
      } finally {
        await client.end();
      }
    },

    async enqueueBulk(client, workload, units) {
      const chunk = 5_000;
      for (let from = 1; from <= units; from += chunk) {
        for (const sql of BULK[workload]) await client.query(sql, [from, Math.min(units, from + chunk - 1)]);
      }
    },

    async remaining(client) {
      const { rows } = await client.query<{ remaining: number; failed: number }>(
        `${BENCH_SQL} count(*)::int as remaining, count(*) filter (where last_error is not null)::int as failed
         from graphile_worker._private_jobs`,
      );
      return rows[0]!;
    },

    async openProducer(url) {
      const { utils, close } = await utilsOn(url);
      return {
        async enqueue(seq) {
          return (await utils.addJob('latency', { seq })).id;
        },
        async isDone(id) {
          const { rows } = await utils.withPgClient((c) => c.query(`${BENCH_SQL} 1 from graphile_worker._private_jobs where id = $1`, [id]));
          return rows.length === 0;
        },
        close,
      };
    },

    async openEnqueuer(url, task, pool) {
      const { utils, close } = await utilsOn(url, pool);
      return {
        async single(input) {
          await utils.addJob(task, input);
        },
        async batch(inputs) {
          await utils.addJobs(inputs.map((payload) => ({ identifier: task, payload })));
        },
        async sql(inputs) {
          await utils.withPgClient((c) =>
            c.query(
              `select count(*) from graphile_worker.add_jobs(array(
                 select row($1::text, x::json, null, null, null, null, null, null)::graphile_worker.job_spec
                 from jsonb_array_elements($2::jsonb) x))`,
              [task, JSON.stringify(inputs)],
            ),
          );
        },
        close,
      };
    },

    async startWorker(config, hooks) {
      const taskList: TaskList = {
        noop: async () => {
          hooks.started();
        },
        latency: async (payload) => {
          const t = preciseNow();
          hooks.started();
          hooks.sample((payload as { seq: number }).seq, t);
        },
        chain: async (payload, helpers) => {
          hooks.started();
          const p = payload as { wf: number; step: number };
          if (p.step < CHAIN_STEPS) await helpers.addJob('chain', { wf: p.wf, step: p.step + 1 });
        },
        branch: async (payload, helpers) => {
          hooks.started();
          const { wf } = payload as { wf: number };
          const { rows } = await helpers.query<{ remaining: number }>(
            'update bench_fan set remaining = remaining - 1 where wf = $1 returning remaining',
            [wf],
          );
          if (rows[0]?.remaining === 0) await helpers.addJob('join', { wf });
        },
        join: async () => undefined,
        e2e: async (payload) => {
          hooks.started();
          const p = payload as E2eInput;
          hooks.endToEnd(p.p, p.t);
        },
      };
      const runner = await run({
        connectionString: config.url,
        concurrency: config.concurrency,
        taskList,
        noHandleSignals: true,
        logger: quiet,
        ...(variant === 'batched'
          ? { preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 2, failJobBatchDelay: 2 } } }
          : {}),
      });
      // The finished units (see the top of the file).
      runner.events.on('job:success', ({ job }) => {
        const id = job.task_identifier;
        if (id === 'chain' ? (job.payload as { step: number }).step === CHAIN_STEPS : id !== 'branch') hooks.completed(1);
      });
      runner.events.on('job:failed', () => hooks.failed(1));
      return { stop: () => runner.stop() };
    },
  };
}
