/**
 * How the store talks to PostgreSQL. Every operation takes an Executor first
 * (a pg Pool, PoolClient or Client), so the caller chooses the transaction.
 * Operations that need several statements to be atomic open a transaction
 * when given a pool; given a client, they run on it as part of the caller's
 * transaction.
 */
import type pg from 'pg';
import type { QueryResultRow } from 'pg';
import { ConflictError, InvalidStateError, NotFoundError, ValidationError, WaitpointTokenError, type WaitpointRefusal } from '../errors.ts';
import type { Executor } from '../types.ts';

export type { Executor };

export function isPool(ex: Executor): ex is pg.Pool {
  return typeof (ex as pg.Pool).connect === 'function' && typeof (ex as pg.Pool).totalCount === 'number';
}

/** Our SQLSTATEs (class BT, raised by the functions in drizzle/) become typed errors. */
export function mapDbError(error: unknown): unknown {
  const e = error as { code?: string; message?: string; detail?: string; hint?: string };
  if (typeof e?.code !== 'string' || !e.code.startsWith('BT')) return error;
  const message = e.hint ? `${e.message} (${e.hint})` : (e.message ?? 'error');
  switch (e.code.slice(0, 3)) {
    case 'BTV':
      return new ValidationError(message);
    case 'BTN':
      return new NotFoundError(message);
    case 'BTC':
      return new ConflictError(message, e.detail ? { status: e.detail } : undefined);
    case 'BTS':
      return new InvalidStateError(message, e.detail ?? 'unknown');
    case 'BTW':
      return new WaitpointTokenError((e.detail ?? 'closed') as WaitpointRefusal, message);
    default:
      return error;
  }
}

export async function query<R extends QueryResultRow>(ex: Executor, text: string, values?: unknown[]): Promise<R[]> {
  try {
    return (await ex.query<R>(text, values)).rows;
  } catch (error) {
    throw mapDbError(error);
  }
}

/**
 * A hot-path statement as a named prepared statement: each connection parses
 * and plans it once, and every call then sends only its parameters. Falls
 * back to a plain statement on executors that are not node-postgres: the
 * Drizzle transaction adapter (client/tx.ts) accepts the same query config.
 */
export async function prepared<R extends QueryResultRow>(ex: Executor, name: string, text: string, values: unknown[]): Promise<R[]> {
  try {
    const q = ex as unknown as { query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: R[] }> };
    return (await q.query({ name, text, values })).rows;
  } catch (error) {
    throw mapDbError(error);
  }
}

/** Run fn in a transaction: its own when given a pool, the caller's when given a client. */
export async function inTransaction<T>(ex: Executor, fn: (client: Executor) => Promise<T>): Promise<T> {
  if (!isPool(ex)) return fn(ex);
  const client = await ex.connect();
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw mapDbError(error);
  } finally {
    client.release();
  }
}
