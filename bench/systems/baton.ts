/**
 * Baton, as users run it: startWorker() with its defaults (prefetch,
 * completion batching, LISTEN, reconciler) at the benchmark's concurrency.
 * Work is enqueued up front with the SQL API (baton.enqueue /
 * baton.start_workflow over generate_series) once the definitions are
 * registered; latency samples go through client.enqueue().
 */
import type pg from 'pg';
import { createClient, defineTask, defineWorkflow, startWorker, type Task, type Workflow } from '../../src/index.ts';
import { migrate } from '../../src/db/migrate.ts';
import { registerDefinitions } from '../../src/store/definitions.ts';
import { taskWorkflow } from '../../src/workflow/builder.ts';
import { definitionRecord } from '../../src/workflow/definition.ts';
import { CHAIN_STEPS, FAN_BRANCHES, type Hooks, type System, type Workload } from './types.ts';
import { preciseNow } from '../lib/stats.ts';

const idle: Hooks = { started() {}, sample() {}, completed() {} };

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
  let chain = defineWorkflow<number>('chain').then(step);
  for (let i = 1; i < CHAIN_STEPS; i++) chain = chain.then(step);
  const fan = defineWorkflow<number>('fan')
    .parallel(Array.from({ length: FAN_BRANCHES }, () => branch))
    .then(join)
    .build();
  const tasks: Task[] = [noop, latency];
  const workflows: Workflow[] = [chain.build(), fan];
  return { noop, latency, tasks, workflows };
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

const BULK: Record<Workload, string> = {
  noop: `select count(*) from generate_series($1::int, $2::int) i, baton.enqueue('noop', to_jsonb(i))`,
  latency: `select count(*) from generate_series($1::int, $2::int) i, baton.enqueue('latency', jsonb_build_object('seq', i))`,
  chain: `select count(*) from generate_series($1::int, $2::int) i, baton.start_workflow('chain', to_jsonb(i))`,
  fanout: `select count(*) from generate_series($1::int, $2::int) i, baton.start_workflow('fan', to_jsonb(i))`,
};

export const baton: System = {
  name: 'baton',
  describe: "startWorker({ concurrency }) with Baton's defaults (claim-ahead prefetch, batched commits, LISTEN, reconciler on), node started as npm run worker starts it (--max-semi-space-size=4)",
  workloads: ['noop', 'latency', 'chain', 'fanout'],

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
    // Two index scans (workflows_status_created_idx), cheap while polled during a run.
    const { rows } = await client.query<{ remaining: number; failed: number }>(
      `select (select count(*) from baton.workflows where status in ('pending', 'running', 'paused'))::int as remaining,
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
        const { rows } = await client.pool.query<{ status: string }>('select status from baton.workflows where id = $1', [id]);
        return rows[0]?.status === 'completed';
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
    });
    worker.events.on('task:success', () => hooks.completed(1));
    return { stop: () => worker.stop() };
  },
};
