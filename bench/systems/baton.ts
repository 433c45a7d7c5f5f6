/**
 * Baton, as users run it: startWorker() with its defaults (prefetch,
 * completion batching, LISTEN, reconciler) at the benchmark's concurrency.
 * Work is enqueued up front with the SQL API (baton.start_many, one statement
 * per chunk of 5,000 inputs) once the definitions are registered; latency
 * samples go through client.enqueue(), S0 and S7 through client.enqueue(),
 * client.enqueueMany() and baton.start_many.
 * A unit is counted when its instance finishes (worker event
 * 'workflow:finished', emitted once the commit that finished it returned): a
 * job, a chain's last step, a fan-out's join.
 */
import type pg from 'pg';
import { createClient, defineTask, defineWorkflow, startWorker, type Task, type Workflow } from '../../src/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { registerDefinitions } from '../../src/store/definitions.ts';
import { taskWorkflow } from '../../src/workflow/builder.ts';
import { definitionRecord } from '../../src/workflow/definition.ts';
import { BENCH_SQL, CHAIN_STEPS, FAN_BRANCHES, PAD_SQL, type E2eInput, type Hooks, type System, type Workload } from './types.ts';
import { preciseNow } from '../lib/stats.ts';

const idle: Hooks = { started() {}, sample() {}, completed() {}, failed() {}, endToEnd() {} };

/** The benchmark's tasks and workflows. Handlers report to `hooks`; the definitions (and hashes) do not depend on them. */
export function batonDefinitions(hooks: Hooks = idle) {
  const noop = defineTask('noop', async () => {
    hooks.started();
    return null;
  });
  const latency = defineTask('latency', async (input: { seq: number }) => {
    const t = preciseNow();
    hooks.started();
    hooks.sample(input.seq, t);
    return null;
  });
  const step = defineTask('step', async (input: number) => {
    hooks.started();
    return input;
  });
  const branch = defineTask('branch', async () => {
    hooks.started();
    return 1;
  });
  const join = defineTask('join', async (parts: number[]) => parts.length);
  const e2e = defineTask('e2e', async (input: E2eInput) => {
    hooks.started();
    hooks.endToEnd(input.p, input.t);
    return null;
  });
  let chain = defineWorkflow<number>('chain').then(step);
  for (let i = 1; i < CHAIN_STEPS; i++) chain = chain.then(step);
  const fan = defineWorkflow<number>('fan')
    .parallel(Array.from({ length: FAN_BRANCHES }, () => branch))
    .then(join)
    .build();
  const tasks: Task[] = [noop, latency, e2e];
  const workflows: Workflow[] = [chain.build(), fan];
  return { noop, latency, e2e, tasks, workflows };
}

/** The definition hash a one-task job of `noop` runs under (for claimTasks). */
export function noopHash(): string {
  return taskWorkflow(batonDefinitions().noop).hash;
}

export async function registerBatonDefinitions(ex: pg.ClientBase): Promise<void> {
  const { tasks, workflows } = batonDefinitions();
  await registerDefinitions(ex, [...tasks.map((t) => taskWorkflow(t)), ...workflows].map(definitionRecord));
}

/** Enqueue in chunks so that one statement never holds a huge transaction. */
export async function batonBulk(client: pg.Client, sql: string, units: number, extra: unknown[] = []): Promise<void> {
  const chunk = 5_000;
  for (let from = 1; from <= units; from += chunk) {
    const to = Math.min(units, from + chunk - 1);
    await client.query(sql, [from, to, ...extra]);
  }
}

/** One baton.start_many call per chunk, over the chunk's inputs. */
const startMany = (name: string, kind: 'task' | 'workflow', input: string) =>
  `select count(*) from baton.start_many('${name}', (select jsonb_agg(${input} order by i) from generate_series($1::int, $2::int) i), p_kind => '${kind}')`;

/** The SQL of each workload's bulk enqueue ($1, $2: the range of a chunk), for batonBulk. */
export const BULK: Record<Workload, string> = {
  noop: startMany('noop', 'task', 'to_jsonb(i)'),
  latency: startMany('latency', 'task', `jsonb_build_object('seq', i)`),
  chain: startMany('chain', 'workflow', 'to_jsonb(i)'),
  fanout: startMany('fan', 'workflow', 'to_jsonb(i)'),
  e2e: startMany('e2e', 'task', `jsonb_build_object('i', i, 't', 0, 'p', 0)`),
  padded: startMany('noop', 'task', `jsonb_build_object('i', i, 'pad', ${PAD_SQL})`),
};

export const baton: System = {
  name: 'baton',
  describe: "startWorker({ concurrency }) with Baton's defaults (claim-ahead prefetch, batched commits, LISTEN, reconciler on), node started as npm run worker starts it (--max-semi-space-size=4)",
  workloads: ['noop', 'latency', 'chain', 'fanout', 'e2e', 'padded'],
  countsAt: 'commit',
  enqueueApi: { single: 'client.enqueue()', batch: 'client.enqueueMany()', sql: 'baton.start_many()' },

  async prepare(url) {
    await migrate(url);
    const { connect } = await import('../lib/db.ts');
    const client = await connect(url);
    try {
      await registerBatonDefinitions(client);
    } finally {
      await client.end();
    }
  },

  async enqueueBulk(client, workload, units) {
    await batonBulk(client, BULK[workload], units);
  },

  async remaining(client) {
    // Read once after a run (and before it), not polled while it runs.
    const { rows } = await client.query<{ remaining: number; failed: number }>(
      `${BENCH_SQL} (select count(*) from baton.workflows where status in ('pending', 'running', 'paused'))::int as remaining,
              (select count(*) from baton.workflows where status in ('failed', 'cancelled'))::int as failed`,
    );
    return rows[0]!;
  },

  async openProducer(url) {
    const client = await createClient({ connectionString: url, config: { logLevel: 'warn' } });
    const { latency } = batonDefinitions();
    return {
      async enqueue(seq) {
        return (await client.enqueue(latency, { seq })).id;
      },
      async isDone(id) {
        const { rows } = await client.pool.query<{ status: string }>(`${BENCH_SQL} status from baton.workflows where id = $1`, [id]);
        return rows[0]?.status === 'completed';
      },
      close: () => client.close(),
    };
  },

  async openEnqueuer(url, task, pool) {
    const client = await createClient({ connectionString: url, config: { logLevel: 'warn', poolSize: pool } });
    const defs = batonDefinitions();
    const t = task === 'e2e' ? defs.e2e : (defs.noop as unknown as Task<E2eInput, null>);
    return {
      async single(input) {
        await client.enqueue(t, input);
      },
      async batch(inputs) {
        await client.enqueueMany(t, inputs);
      },
      async sql(inputs) {
        await client.pool.query(`select count(*) from baton.start_many($1, $2::jsonb, p_kind => 'task')`, [task, JSON.stringify(inputs)]);
      },
      close: () => client.close(),
    };
  },

  async startWorker(config, hooks) {
    const worker = await startWorker({
      ...batonDefinitions(hooks),
      connectionString: config.url,
      concurrency: config.concurrency,
      tags: config.tags ?? [],
      config: { logLevel: 'warn' },
      // BENCH_METRICS=off: no metrics at all, to measure what they cost (BATON_METRICS_PORT also serves them).
      ...(process.env.BENCH_METRICS === 'off' ? { metrics: false as const } : {}),
    });
    // One per instance (job or workflow), after the commit that finished it.
    worker.events.on('workflow:finished', ({ status }) => (status === 'completed' ? hooks.completed(1) : hooks.failed(1)));
    return { stop: () => worker.stop() };
  },
};
