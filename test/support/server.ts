/**
 * The PostgreSQL server the suite runs against: DATABASE_URL when set (CI runs
 * the suite on PostgreSQL 15 that way), otherwise an embedded server in
 * .baton-test/ on its own port, started by the global setup and stopped by the
 * global teardown.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TEST_DATA_DIR = path.join(ROOT, '.baton-test');
export const TEST_PORT = Number(process.env.BATON_TEST_PORT ?? 54330);

/** Connection string of a database on the test server. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
