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

/**
 * A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it).
 * Another process may still take it before the caller binds; callers that start
 * a server retry with a fresh port when the bind fails.
 */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** True when a server failed to start because its port was taken. */
export function portTaken(error: unknown): boolean {
  return error instanceof Error && /is taken; set BATON_EMBEDDED_PORT/.test(error.message);
}
