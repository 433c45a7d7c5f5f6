/**
 * The fault suite's load: chains, fan-outs with joins, durable sleeps,
 * waitForEvent (events sent by another process), retries, and two
 * misbehaving tasks: one that kills its own process, one that never settles.
 *
 * Every attempt of a handler writes a row to chaos_ledger (which instance,
 * step, attempt, process and when) so the suite can measure how fast work
 * moved after a kill, independently of Baton's own tables.
 */
import pg from 'pg';
import { defineTask, defineWorkflow } from '../../src/index.ts';

let pool: pg.Pool | undefined;

function ledgerPool(): pg.Pool {
  if (!pool) {
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 3, connectionTimeoutMillis: 5_000 });
    pool.on('error', () => undefined);
  }
  return pool;
}

export async function closeLedger(): Promise<void> {
  await pool?.end();
  pool = undefined;
}

export const LEDGER_DDL = `create table if not exists public.chaos_ledger (
  id bigserial primary key, workflow_id text not null, task_key text not null, attempt int not null,
  pid int not null, at timestamptz not null default clock_timestamp())`;

/** Record the attempt; a lost connection must not fail the attempt (the fault suite kills connections). */
async function record(ctx: { workflowId: string; taskKey: string; attempt: number }): Promise<void> {
  try {
    await ledgerPool().query('insert into public.chaos_ledger (workflow_id, task_key, attempt, pid) values ($1, $2, $3, $4)', [
      ctx.workflowId,
      ctx.taskKey,
      ctx.attempt,
      process.pid,
    ]);
  } catch {
    // the ledger is best effort; Baton's own tables are what the checker judges
  }
}

const work = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });

/** A unit of work: ~20-120 ms, adds one. */
export const step = defineTask('chaos-step', async (n: number, ctx) => {
  await record(ctx);
  await work(20 + Math.floor(Math.random() * 100), ctx.signal);
  return n + 1;
});

export const join = defineTask('chaos-join', async (parts: number[], ctx) => {
  await record(ctx);
  return parts.reduce((a, b) => a + b, 0);
});

/** Fails its first attempt. */
export const flaky = defineTask(
  'chaos-flaky',
  async (n: number, ctx) => {
    await record(ctx);
    if (ctx.attempt === 1) throw new Error('first attempts fail');
    return n + 100;
  },
  { retry: { maxAttempts: 4, backoff: 'fixed', delayMs: 200, jitter: 0 } },
);

/** Kills the process that runs it, every attempt. */
export const poison = defineTask(
  'chaos-poison',
  async (_n: number, ctx) => {
    await record(ctx);
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => undefined);
  },
  { retry: { maxAttempts: 10 } },
);

/** Never settles and ignores its AbortSignal. */
export const hang = defineTask(
  'chaos-hang',
  async (_n: number, ctx) => {
    await record(ctx);
    await new Promise(() => undefined);
  },
  { timeoutMs: 500, retry: { maxAttempts: 2, backoff: 'fixed', delayMs: 50 } },
);

export const chain = defineWorkflow<number>('chaos-chain').then(step).then(step).then(step).then(step).then(step).build();
export const fan = defineWorkflow<number>('chaos-fan').then(step).parallel([step, step, step, step, step]).then(join).build();
export const napper = defineWorkflow<number>('chaos-sleep').then(step).sleep('1s').then(step).build();
export const waiter = defineWorkflow<number>('chaos-wait').then(step).waitForEvent<number>('go', { timeoutMs: '3m' }).then(step).build();
export const retrying = defineWorkflow<number>('chaos-retry').then(flaky).then(step).build();
export const poisoned = defineWorkflow<number>('chaos-poison').then(poison).build();
export const hanging = defineWorkflow<number>('chaos-hang').then(hang).build();

export const ALL = [chain, fan, napper, waiter, retrying, poisoned, hanging];

/** The mix of ordinary work and what each finishes with (input 0). */
export const MIX: { workflow: (typeof ALL)[number]; share: number; output: (input: number) => unknown }[] = [
  { workflow: chain, share: 0.4, output: (n) => n + 5 },
  { workflow: fan, share: 0.2, output: (n) => 5 * (n + 2) },
  { workflow: napper, share: 0.15, output: (n) => n + 2 },
  { workflow: waiter, share: 0.15, output: (n) => n + 1 + 1 },
  { workflow: retrying, share: 0.1, output: (n) => n + 101 },
];
