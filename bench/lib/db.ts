/**
 * The PostgreSQL server the benchmarks run on: DATABASE_URL when set,
 * otherwise Baton's embedded server with its own data directory
 * (.baton-bench/, port 54340), stopped at the end. Every system and scenario
 * gets a fresh database, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../../src/db/embedded.ts';

export interface Server {
  /** Connection string of the maintenance database. */
  adminUrl: string;
  version: string;
  embedded: boolean;
  /** The collation locale each fresh database is created with (--locale), or undefined: the server's default. */
  locale: string | undefined;
  /** Connection string of another database on the same server. */
  urlFor(database: string): string;
  close(): Promise<void>;
}

export const EMBEDDED_DIR = '.baton-bench';
export const EMBEDDED_PORT = 54340;

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * The server flags --pg-stats needs (pg_stat_statements is loaded only at
 * server start). On the embedded server they go through startEmbedded's
 * `postgresFlags` (extra postgres arguments); a server started without them
 * is reported by PgStats.open (bench/lib/pgstats.ts).
 */
export const PG_STATS_FLAGS = ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'];

export async function openServer(log: (m: string) => void, o: { pgStats?: boolean; locale?: string } = {}): Promise<Server> {
  let embedded: EmbeddedServer | undefined;
  let adminUrl = process.env.DATABASE_URL?.trim();
  if (!adminUrl) {
    log(`DATABASE_URL is not set: starting an embedded PostgreSQL in ${EMBEDDED_DIR}/ on port ${EMBEDDED_PORT}`);
    // A variable, not a literal: the option is ignored by a startEmbedded that does not know it yet.
    const options: Parameters<typeof startEmbedded>[0] = {
      dataDir: EMBEDDED_DIR,
      port: EMBEDDED_PORT,
      database: 'postgres',
      log,
      ...(o.pgStats ? { postgresFlags: PG_STATS_FLAGS } : {}),
    };
    embedded = await startEmbedded(options);
    adminUrl = embedded.url;
  }
  const client = new pg.Client({ connectionString: adminUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>('select current_setting($1) as v', ['server_version']);
    return {
      adminUrl,
      version: rows[0]!.v,
      embedded: embedded !== undefined,
      locale: o.locale,
      urlFor: (database) => withDatabase(adminUrl!, database),
      close: async () => {
        await embedded?.stop();
      },
    };
  } catch (error) {
    await embedded?.stop();
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function admin<T>(server: Server, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface FreshDatabase {
  name: string;
  /** pg_database.oid (pg_stat_statements.dbid). */
  oid: number;
  url: string;
  drop(): Promise<void>;
}

/** Create an empty database named after what runs in it. */
export async function freshDatabase(server: Server, label: string): Promise<FreshDatabase> {
  const name = `bench_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${randomBytes(3).toString('hex')}`;
  const oid = await admin(server, async (c) => {
    // A locale other than the server's default can only be given to a copy of template0.
    const locale = server.locale === undefined ? '' : ` template template0 locale ${c.escapeLiteral(server.locale)}`;
    await c.query(`create database ${c.escapeIdentifier(name)}${locale}`);
    const { rows } = await c.query<{ oid: string }>('select oid::text as oid from pg_database where datname = $1', [name]);
    return Number(rows[0]!.oid);
  });
  return {
    name,
    oid,
    url: server.urlFor(name),
    drop: () =>
      admin(server, async (c) => {
        await c.query(`drop database if exists ${c.escapeIdentifier(name)} with (force)`);
        // Its pg_stat_statements entries (with track = all, some 400 per run) would outlive it, fill
        // the table (pg_stat_statements.max) and make every later new statement pay for deallocations.
        // (Without the extension this fails, and there is nothing to drop.)
        await c.query('select pg_stat_statements_reset(dbid => $1::oid)', [oid]).catch(() => undefined);
      }),
  };
}

/** Run `fn` in a fresh database and drop it afterwards, whatever happens. */
export async function inFreshDatabase<T>(server: Server, label: string, fn: (db: FreshDatabase) => Promise<T>): Promise<T> {
  const db = await freshDatabase(server, label);
  try {
    return await fn(db);
  } finally {
    await db.drop().catch(() => undefined);
  }
}

export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench' });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}
