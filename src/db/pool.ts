/**
 * Connection pools. Every pool has an owner that ends it; idle-client errors
 * (a server restart, pg_terminate_backend) are reported, never thrown, so a
 * dropped connection cannot crash a worker.
 */
import pg from 'pg';

/** int8 as a JS number: epochs and counters stay far below 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export interface PoolOptions {
  max?: number;
  applicationName?: string;
  onError?: (error: Error) => void;
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
  });
  pool.on('error', (error) => options.onError?.(error));
  return pool;
}

export function createClient(url: string, applicationName = 'baton'): pg.Client {
  return new pg.Client({ connectionString: url, application_name: applicationName, types, keepAlive: true, connectionTimeoutMillis: 10_000 });
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
