/** Small helpers shared by tests: definitions, bulk instances, waiting. */
import type pg from 'pg';
import { createPool, batonSettings } from '../../src/db/pool.ts';
import { trackFixturePool } from './leaks.ts';
import { createClient, type Client } from '../../src/index.ts';
import { silentLogger } from '../../src/log.ts';
import { registerDefinitions } from '../../src/store/index.ts';
import { defineTask, definitionRecord, taskWorkflow, type Workflow } from '../../src/workflow/index.ts';

export const noop = defineTask('noop', async (input: unknown) => input);

export async function register(pool: pg.Pool, ...workflows: Workflow[]): Promise<void> {
  await registerDefinitions(pool, workflows.map(definitionRecord));
}

/** `count` one-task jobs of `task`, in one statement. Returns nothing; ids are job-1..job-n with the prefix. */
export async function enqueueMany(
  pool: pg.Pool,
  count: number,
  options: { task?: string; prefix?: string; priority?: number | null; tags?: string[] } = {},
): Promise<void> {
  await pool.query(
    `select baton.enqueue($1, to_jsonb(i), $2 || i, $3, $4::text[]) from generate_series(1, $5) i`,
    [options.task ?? 'noop', options.prefix ?? 'job-', options.priority ?? null, options.tags ?? [], count],
  );
}

/** A pool whose sessions carry Baton's settings (aging interval, payload limit). */
export function batonPool(url: string, options: { agingIntervalMs?: number; max?: number } = {}): pg.Pool {
  return trackFixturePool(
    createPool(url, {
      max: options.max ?? 10,
      settings: batonSettings({ agingIntervalMs: options.agingIntervalMs ?? 60_000, maxPayloadBytes: 1024 * 1024 }),
    }),
  );
}

export const noopWorkflow = taskWorkflow(noop);

export async function until<T>(check: () => Promise<T | undefined | null | false>, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'a condition'}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A client owned by a test file: its pool is tracked as a fixture and its LISTEN connection opened up front. */
export async function fixtureClient(url: string): Promise<Client> {
  const client = await createClient({ connectionString: url, logger: silentLogger });
  trackFixturePool(client.pool);
  await client.result('warm-up-the-listener').catch(() => undefined);
  return client;
}

/** Every invariant of `baton check` holds (the same code the command runs). */
export async function assertInvariants(pool: pg.Pool): Promise<void> {
  const { checkInvariants } = await import('../../src/store/check.ts');
  const report = await checkInvariants(pool, { expiredGraceMs: 3_000 });
  if (report.violations.length > 0) {
    throw new Error(`invariants violated:\n${report.violations.map((v) => `  ${v.invariant} ${v.workflowId} ${v.taskKey ?? ''}: ${v.detail}`).join('\n')}`);
  }
}
