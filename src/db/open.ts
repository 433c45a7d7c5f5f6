/**
 * Open Baton's database for a client or a worker: resolve it (URL, a given
 * pool, or the embedded server), migrate under the advisory lock, and build a
 * pool whose sessions carry Baton's settings. `close()` ends what was opened
 * here (the pool, the embedded server if this process started it), never a
 * pool the caller passed in.
 */
import type pg from 'pg';
import type { BatonConfig } from '../config.ts';
import { openDatabase } from './connect.ts';
import { migrate } from './migrate.ts';
import { DatabaseUnavailableError } from '../errors.ts';
import { isTransient, retryTransient } from './transient.ts';
import { batonSettings, createPool, endPool } from './pool.ts';

export interface OpenOptions {
  config: BatonConfig;
  /** Use this connection string instead of DATABASE_URL / embedded. */
  connectionString?: string;
  /** Use this pool (its owner closes it). Its sessions should carry batonSettings(). */
  pool?: pg.Pool;
  /** Run migrations (default true). */
  migrate?: boolean;
  applicationName: string;
  log: (message: string) => void;
  onPoolError?: (error: Error) => void;
  poolSize?: number;
}

export interface OpenedDatabase {
  pool: pg.Pool;
  url: string | undefined;
  close(): Promise<void>;
}

export async function openBaton(o: OpenOptions): Promise<OpenedDatabase> {
  if (o.pool) {
    return { pool: o.pool, url: undefined, close: async () => undefined };
  }
  const db = await openDatabase({ ...o.config, databaseUrl: o.connectionString ?? o.config.databaseUrl }, o.log, { probe: o.migrate === false });
  const url = db.url;
  const pool = createPool(url, {
    max: o.poolSize ?? o.config.poolSize,
    applicationName: o.applicationName,
    settings: batonSettings(o.config),
    onError: o.onPoolError,
  });
  try {
    // The version is read on a pooled connection that then stays for the caller. A server that
    // cannot be reached at all fails at once (one line for the user); once it was reached, a
    // connection lost while migrating (a restart) is worth another try.
    if (o.migrate !== false) {
      await retryTransient(
        () => migrate(url, { pool }),
        8,
        (e) => o.log(`migration interrupted (${(e as Error).message}); retrying`),
        (e, attempt) => isTransient(e) && !(attempt === 1 && e instanceof DatabaseUnavailableError),
      );
    }
  } catch (error) {
    await endPool(pool).catch(() => undefined);
    await db.close();
    throw error;
  }
  const handle = db;
  return {
    pool,
    url: db.url,
    async close() {
      await endPool(pool).catch(() => undefined);
      await handle.close();
    },
  };
}
