/**
 * Migrations at start-up. Drizzle's migrator applies pending files in one
 * transaction but takes no lock, so we hold a session advisory lock around it:
 * many processes starting at once apply each migration exactly once.
 *
 * Versions are counted: the database's version is the number of migrations it
 * has applied, ours is the number in drizzle/meta/_journal.json. A database
 * that has applied more than we know is refused before anything is touched.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { SchemaVersionError } from '../errors.ts';
import { createClient, unreachable } from './pool.ts';

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../drizzle');
export const MIGRATIONS_SCHEMA = 'baton';
export const MIGRATIONS_TABLE = '__migrations';
/** Key of the advisory lock held while migrating ("baton" in ASCII). */
const MIGRATE_LOCK = 0x626174_6f6e;

interface JournalEntry {
  idx: number;
  when: number;
  tag: string;
}

export function codeSchemaVersion(folder = MIGRATIONS_FOLDER): { version: number; entries: JournalEntry[] } {
  const journal = JSON.parse(readFileSync(path.join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] };
  return { version: journal.entries.length, entries: journal.entries };
}

/** How many migrations the database has applied (0 for an empty database). */
export async function databaseSchemaVersion(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ exists: boolean }>(
    `select to_regclass($1) is not null as exists`,
    [`${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`],
  );
  if (!rows[0]!.exists) return 0;
  const count = await client.query<{ n: number }>(`select count(*)::int as n from ${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`);
  return count.rows[0]!.n;
}

export interface MigrateResult {
  /** Migrations applied by this call (0 when the database was current). */
  applied: number;
  version: number;
}

/**
 * Bring the database to this code's schema. With `pool`, the version is first read on one of
 * its connections, which the caller goes on using: opening a current database costs no
 * connection of its own (a connection takes about 20 ms here). Migrating uses a dedicated one.
 */
export async function migrate(url: string, options: { folder?: string; pool?: pg.Pool } = {}): Promise<MigrateResult> {
  const folder = options.folder ?? MIGRATIONS_FOLDER;
  const { version: codeVersion } = codeSchemaVersion(folder);
  if (options.pool) {
    const pooled = await options.pool.connect().catch((cause: unknown) => {
      throw unreachable(url, cause);
    });
    let seen: number;
    try {
      seen = await databaseSchemaVersion(pooled);
    } finally {
      pooled.release();
    }
    if (seen > codeVersion) throw new SchemaVersionError(seen, codeVersion);
    if (seen === codeVersion) return { applied: 0, version: seen };
  }
  const client = createClient(url, 'baton:migrate');
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    throw unreachable(url, cause);
  }
  try {
    // A current database (every start but the first after an upgrade) is seen without the lock:
    // migrations only ever add, so a version equal to ours cannot change under us.
    const seen = await databaseSchemaVersion(client);
    if (seen > codeVersion) throw new SchemaVersionError(seen, codeVersion);
    if (seen === codeVersion) return { applied: 0, version: seen };
    await client.query('select pg_advisory_lock($1)', [MIGRATE_LOCK]);
    try {
      const before = await databaseSchemaVersion(client);
      if (before > codeVersion) throw new SchemaVersionError(before, codeVersion);
      if (before < codeVersion) {
        // Drizzle's migrator is loaded only when there is something to apply: opening a current database stays light.
        const [{ drizzle }, { migrate: drizzleMigrate }] = await Promise.all([
          import('drizzle-orm/node-postgres'),
          import('drizzle-orm/node-postgres/migrator'),
        ]);
        await drizzleMigrate(drizzle(client), {
          migrationsFolder: folder,
          migrationsSchema: MIGRATIONS_SCHEMA,
          migrationsTable: MIGRATIONS_TABLE,
        });
      }
      const after = await databaseSchemaVersion(client);
      return { applied: after - before, version: after };
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATE_LOCK]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
