/**
 * Workflows the runtime tests run, in-process and in child worker processes.
 * Handlers leave marks in a `marks` table (when they start, which process ran
 * them) so tests can see inside the workers without mocks.
 */
import pg from 'pg';
import { defineTask, defineWorkflow, NonRetryableError } from '../../src/index.ts';
import { trackFixturePool } from './leaks.ts';

const pools = new Map<string, pg.Pool>();

function markPool(): pg.Pool {
  const url = process.env.BATON_TEST_DB_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('no database for marks');
  let pool = pools.get(url);
  if (!pool) {
    pool = trackFixturePool(new pg.Pool({ connectionString: url, max: 4 }));
    pool.on('error', () => undefined);
    pools.set(url, pool);
  }
  return pool;
}

export async function closeMarkPools(): Promise<void> {
  for (const pool of pools.values()) await pool.end();
  pools.clear();
}

export async function ensureMarks(pool: pg.Pool): Promise<void> {
  await pool.query(`create table if not exists public.marks (id bigserial primary key, name text not null, pid int, at timestamptz default clock_timestamp())`);
}

export async function mark(name: string): Promise<void> {
  await markPool().query('insert into public.marks (name, pid) values ($1, $2)', [name, process.pid]);
}

export const sleepFor = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

export const inc = defineTask('inc', async (n: number) => n + 1);
export const double = defineTask('double', async (n: number) => n * 2);

/** Marks its start, then works for input.ms; `abortable` decides whether it listens to its signal. */
export const slow = defineTask('slow', async (input: { ms: number; tag?: string; abortable?: boolean }, ctx) => {
  await mark(`start:${ctx.workflowId}:${ctx.attempt}`);
  await sleepFor(input.ms, input.abortable === false ? undefined : ctx.signal);
  await mark(`end:${ctx.workflowId}:${ctx.attempt}`);
  return { ranBy: process.pid, attempt: ctx.attempt };
});

export const chain10 = defineWorkflow('chain10')
  .then(inc).then(inc).then(inc).then(inc).then(inc)
  .then(inc).then(inc).then(inc).then(inc).then(inc)
  .build();

const branchA = defineTask('branch-a', async (n: number, ctx) => {
  await mark(`branch-a:${ctx.workflowId}`);
  await sleepFor(n, ctx.signal);
  return `a:${process.pid}`;
});
const branchB = defineTask('branch-b', async (n: number, ctx) => {
  await mark(`branch-b:${ctx.workflowId}`);
  await sleepFor(n, ctx.signal);
  return `b:${process.pid}`;
});
export const joinTask = defineTask('join', async (parts: string[], ctx) => {
  await mark(`join:${ctx.workflowId}`);
  return parts;
});
export const forkJoin = defineWorkflow<number>('fork-join').parallel([branchA, branchB]).then(joinTask).build();

/** Fails until the attempt number reaches input.succeedOn. */
export const flaky = defineTask(
  'flaky',
  async (input: { succeedOn: number }, ctx) => {
    if (ctx.attempt < input.succeedOn) throw new Error(`attempt ${ctx.attempt} failed`);
    return { attempt: ctx.attempt };
  },
  { retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 50, jitter: 0 } },
);

export const fatal = defineTask('fatal', async () => {
  throw new NonRetryableError('card declined');
}, { retry: { maxAttempts: 5 } });

/** Handlers that ignore their signal wait here until a test lets them go. */
const runaways = new Set<() => void>();
export function releaseRunaways(): void {
  for (const release of runaways) release();
  runaways.clear();
}

export const timesOut = defineTask(
  'times-out',
  async (input: { ignoreSignal: boolean }, ctx) => {
    if (input.ignoreSignal) await new Promise<void>((resolve) => runaways.add(resolve));
    else await sleepFor(60_000, ctx.signal);
    return 'never';
  },
  { timeoutMs: 300, retry: { maxAttempts: 2, backoff: 'fixed', delayMs: 10 } },
);

export const napper = defineWorkflow<number>('napper').then(inc).sleep(1_500).then(inc).build();

export const waiter = defineWorkflow<number>('waiter').then(inc).waitForEvent<{ v: number }>('go', { timeoutMs: 1_500 }).build();
/** The same, waiting long enough for a CLI process (which starts in 1-2 s under load) to send the event. */
export const patientWaiter = defineWorkflow<number>('patient-waiter').then(inc).waitForEvent<{ v: number }>('go', { timeoutMs: 60_000 }).build();

export const childWf = defineWorkflow<number>('child-wf').then(double).then(inc).build();
export const parentWf = defineWorkflow<number>('parent-wf').then(inc).child(childWf).then(double).build();

export const router = defineWorkflow<number>('router')
  .branch((n) => (n >= 10 ? 'big' : 'small'), { big: (f) => f.then(double).then(double), small: inc })
  .then(inc)
  .build();

export const looper = defineWorkflow<number>('looper').loop((f) => f.then(inc), { until: (n) => n >= 5, max: 10 }).build();
export const runaway = defineWorkflow<number>('runaway').loop((f) => f.then(inc), { until: () => false, max: 4 }).build();

export const gpuOnly = defineTask('gpu-only', async () => 'rendered', { tags: ['gpu'] });

/**
 * Limited tasks (test/limits.test.ts): each records the span of its handler in public.limit_runs
 * (database clock), so a test can compute the most that ever ran at once, per key.
 */
async function recordRun(task: string, key: string, ms: number, signal: AbortSignal): Promise<{ ranBy: number }> {
  const { rows } = await markPool().query<{ id: string }>(
    'insert into public.limit_runs (task, key, pid) values ($1, $2, $3) returning id',
    [task, key, process.pid],
  );
  await sleepFor(ms, signal);
  await markPool().query('update public.limit_runs set ended_at = clock_timestamp() where id = $1', [rows[0]!.id]);
  return { ranBy: process.pid };
}
export const perCustomer = defineTask(
  'per-customer',
  (input: { customer: string; ms: number }, ctx) => recordRun('per-customer', input.customer, input.ms, ctx.signal),
  { concurrency: { limit: 2, key: (input) => input.customer } },
);
export const fleetWide = defineTask('fleet-wide', (input: { ms: number }, ctx) => recordRun('fleet-wide', '', input.ms, ctx.signal), {
  concurrency: { limit: 3 },
});
export const rated = defineTask('rated', (input: { ms: number }, ctx) => recordRun('rated', '', input.ms, ctx.signal), {
  rateLimit: { limit: 3, periodMs: 1_000 },
});
const passOn = defineTask('pass-on', async (input: { customer: string; ms: number }) => input);
/** The limited task as a second step: its key is computed by the worker that schedules it. */
export const limitedFlow = defineWorkflow<{ customer: string; ms: number }>('limited-flow').then(passOn).then(perCustomer).build();

export const all = {
  workflows: [chain10, forkJoin, napper, waiter, patientWaiter, parentWf, router, looper, runaway, limitedFlow],
  tasks: [slow, flaky, fatal, timesOut, inc, gpuOnly, perCustomer, fleetWide, rated],
};
