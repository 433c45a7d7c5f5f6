import assert from 'node:assert/strict';
import path from 'node:path';
import pg from 'pg';
import { codeSchemaVersion, migrate } from '../src/db/migrate.ts';
import { SchemaVersionError } from '../src/errors.ts';
import { runCli, runNode } from './support/cli.ts';
import { createTestDatabase } from './support/db.ts';
import { ROOT } from './support/server.ts';

describe('migrations', () => {
  it('five processes migrating an empty database at once apply each migration exactly once and all succeed', async () => {
    const db = await createTestDatabase({ empty: true });
    try {
      const child = path.join(ROOT, 'test', 'support', 'migrate-child.ts');
      const results = await Promise.all(
        Array.from({ length: 5 }, () => runNode(['--import', 'tsx', child, db.url], { timeoutMs: 60_000 })),
      );
      for (const r of results) assert.equal(r.code, 0, `a migrating process failed: ${r.stderr}`);
      const applied = results.map((r) => JSON.parse(r.stdout).applied as number);
      const { version } = codeSchemaVersion();
      assert.equal(applied.reduce((a, b) => a + b, 0), version, `applied counts ${applied.join(',')}`);
      assert.equal(applied.filter((n) => n > 0).length, 1, 'exactly one process did the work');

      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query('select hash, count(*)::int as n from baton.__migrations group by hash');
        assert.equal(rows.length, version);
        assert.ok(rows.every((r) => r.n === 1));
        const tables = await client.query(`select count(*)::int as n from information_schema.tables where table_schema = 'baton'`);
        assert.ok(tables.rows[0].n >= 8);
      } finally {
        await client.end();
      }
      // Idempotent: a further run applies nothing.
      assert.deepEqual(await migrate(db.url), { applied: 0, version });
    } finally {
      await db.drop();
    }
  });

  it('refuses a database whose schema is newer than the code, naming both versions', async () => {
    const db = await createTestDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { version } = codeSchemaVersion();
      await client.query(`insert into baton.__migrations (hash, created_at) values ('from-the-future', $1)`, [Date.now() + 1e9]);
      await assert.rejects(migrate(db.url), (error: unknown) => {
        assert.ok(error instanceof SchemaVersionError);
        assert.equal(error.databaseVersion, version + 1);
        assert.equal(error.codeVersion, version);
        return true;
      });
      const before = await client.query('select count(*)::int as n from baton.__migrations');
      const cli = await runCli(['migrate'], { env: { DATABASE_URL: db.url } });
      assert.equal(cli.code, 1);
      const lines = cli.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line, no stack trace: ${cli.stderr}`);
      assert.match(lines[0]!, new RegExp(`version ${version + 1}, newer than this Baton understands \\(up to version ${version}\\)`));
      const after = await client.query('select count(*)::int as n from baton.__migrations');
      assert.equal(after.rows[0].n, before.rows[0].n, 'nothing was written');
    } finally {
      await client.end();
      await db.drop();
    }
  });
});
