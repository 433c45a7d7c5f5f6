/**
 * Connection pools. Every pool has an owner that ends it; idle-client errors
 * (a server restart, pg_terminate_backend) are reported, never thrown, so a
 * dropped connection cannot crash a worker.
 */
import pg from 'pg';
import { DatabaseUnavailableError } from '../errors.ts';
import { parseTimestamptz } from './timestamptz.ts';

const pgTimestamptz = pg.types.getTypeParser(1184, 'text');
const timestamptz = (value: string) => parseTimestamptz(value, pgTimestamptz);

/** int8 as a JS number: epochs and counters stay far below 2^53. timestamptz: see db/timestamptz.ts. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (value: string) => Number(value);
    if (oid === 1184 && format !== 'binary') return timestamptz;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export interface PoolOptions {
  max?: number;
  applicationName?: string;
  onError?: (error: Error) => void;
  /** Session settings sent at connection start (no extra round trip), e.g. baton.aging_interval_ms. */
  settings?: Record<string, string | number>;
}

/** `-c name=value` startup options; values are plain numbers or words, escaped as PostgreSQL expects. */
export function startupOptions(settings: Record<string, string | number> | undefined): string | undefined {
  if (!settings) return undefined;
  const parts = Object.entries(settings).map(([k, v]) => `-c ${k}=${String(v).replace(/[\\ ]/g, (c) => `\\${c}`)}`);
  return parts.length ? parts.join(' ') : undefined;
}

/** The session settings every Baton connection carries. */
export function batonSettings(config: { agingIntervalMs: number; maxPayloadBytes: number }): Record<string, number> {
  return { 'baton.aging_interval_ms': config.agingIntervalMs, 'baton.max_payload_bytes': config.maxPayloadBytes };
}

export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 8,
    application_name: options.applicationName ?? 'baton',
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    types,
    options: startupOptions(options.settings),
  });
  // Once the pool is being ended, a connection that errors is one of ours going away: not news.
  const onError = (error: Error) => {
    if (!pool.ending) options.onError?.(error);
  };
  pool.on('error', onError);
  // A connection killed while checked out (pg_terminate_backend, a server restart) errors on the
  // client itself; without a listener that would crash the process. The query in flight still fails.
  pool.on('connect', (client) => client.on('error', onError));
  return pool;
}

/**
 * End a pool and wait until its connections are closed, not only taken out of it: pg's pool.end()
 * resolves before their sockets close, so the server still had them (a DROP DATABASE ... WITH
 * (FORCE) right after terminated them). Each connection's close is the pool's 'remove' event; one
 * that was still connecting may never send it, hence the bound.
 */
export async function endPool(pool: pg.Pool, boundMs = 2_000): Promise<void> {
  const open = pool.totalCount;
  let removed = 0;
  let timer: NodeJS.Timeout | undefined;
  let onRemove: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) return resolve();
    onRemove = () => {
      if (++removed >= open) resolve();
    };
    pool.on('remove', onRemove);
    timer = setTimeout(resolve, boundMs);
  });
  try {
    await pool.end();
    await closed;
  } finally {
    clearTimeout(timer);
    if (onRemove) pool.off('remove', onRemove);
  }
}

export function createClient(url: string, applicationName = 'baton', settings?: Record<string, string | number>): pg.Client {
  return new pg.Client({
    connectionString: url,
    application_name: applicationName,
    types,
    keepAlive: true,
    connectionTimeoutMillis: 10_000,
    options: startupOptions(settings),
  });
}

/** The one-line error for a server that cannot be reached (the password hidden). */
export function unreachable(url: string, cause: unknown): DatabaseUnavailableError {
  return new DatabaseUnavailableError(`cannot connect to ${redactUrl(url)}: ${(cause as Error).message || String(cause)}`, cause);
}

/** A connection string with its password hidden, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    parsed.searchParams.delete('password');
    return parsed.toString();
  } catch {
    return '<unparseable database url>';
  }
}
