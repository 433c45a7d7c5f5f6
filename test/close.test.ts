import assert from 'node:assert/strict';
import { createClient } from '../src/index.ts';
import type { Logger } from '../src/types.ts';
import pg from 'pg';
import { createTestDatabase } from './support/db.ts';

/** A logger that keeps its warnings and errors. */
function recording(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (obj: object | string, msg?: string) => void lines.push(typeof obj === 'string' ? obj : (msg ?? JSON.stringify(obj)));
  const logger: Logger = { debug: () => undefined, info: () => undefined, warn: keep, error: keep, child: () => logger };
  return { logger, lines };
}

describe('closing a client', function () {
  this.timeout(60_000);

  it('returns once its connections are closed, and says nothing of them ending, even when the database goes away right then', async () => {
    // pg's pool.end() resolves once its connections are taken out of the pool, before their sockets
    // have closed: a DROP DATABASE ... WITH (FORCE) right after close() (a test's clean-up, a deploy
    // tearing down) terminated them, and each logged "a database connection was lost". Several rounds,
    // because the window is short.
    const admin = new pg.Client({ connectionString: process.env.BATON_TEST_ADMIN_URL });
    await admin.connect();
    try {
      for (let round = 0; round < 10; round++) {
        const db = await createTestDatabase();
        const { logger, lines } = recording();
        const client = await createClient({ connectionString: db.url, logger, config: { poolSize: 16 } });
        // Sixteen connections open at once, all idle in the pool by the time close() runs.
        await Promise.all(Array.from({ length: 16 }, () => client.pool.query('select pg_sleep(0.02)')));
        assert.equal(client.pool.totalCount, 16);
        await client.close();
        const left = await admin.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1', [db.name]);
        assert.equal(left.rows[0]!.n, 0, `round ${round}: close() returned with connections of the client still open`);
        await admin.query(`drop database ${admin.escapeIdentifier(db.name)} with (force)`);
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(lines, [], `round ${round}`);
      }
    } finally {
      await admin.end();
    }
  });
});
