/**
 * A fresh database per test file, cloned from the migrated template.
 *
 *   const db = useTestDatabase();      // inside describe()
 *   it('...', async () => { await db.pool.query(...) });
 */
import pg from 'pg';
import { createPool } from '../../src/db/pool.ts';
import { trackFixturePool } from './leaks.ts';
import { databaseUrl } from './server.ts';

export interface TestDatabase {
  /** Connection string of this file's database. */
  url: string;
  name: string;
  pool: pg.Pool;
}

let counter = 0;

function admin(): pg.Client {
  const url = process.env.BATON_TEST_ADMIN_URL;
  if (!url) throw new Error('the test server is not set up (run the suite through mocha, which loads test/support/hooks.ts)');
  return new pg.Client({ connectionString: url });
}

/**
 * `empty`: no schema (cloned from template0). `icuLocale`: an empty database whose collation is
 * that ICU locale (as most production databases compare text by a locale, not by bytes).
 */
export async function createTestDatabase(options: { empty?: boolean; icuLocale?: string } = {}): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `baton_t_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
  const client = admin();
  await client.connect();
  try {
    const template = options.empty || options.icuLocale ? 'template0' : process.env.BATON_TEST_TEMPLATE!;
    const locale = options.icuLocale ? ` locale_provider icu icu_locale ${client.escapeLiteral(options.icuLocale)}` : '';
    await client.query(`create database ${client.escapeIdentifier(name)} template ${client.escapeIdentifier(template)}${locale}`);
  } finally {
    await client.end();
  }
  return {
    url: databaseUrl(process.env.BATON_TEST_ADMIN_URL!, name),
    name,
    async drop() {
      const c = admin();
      await c.connect();
      try {
        await c.query(`drop database if exists ${c.escapeIdentifier(name)} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Registers before/after hooks in the enclosing describe(); fields are filled in before the first test. */
export function useTestDatabase(options: { empty?: boolean; icuLocale?: string } = {}): TestDatabase {
  const db = {} as TestDatabase;
  let drop: (() => Promise<void>) | undefined;
  before(async () => {
    const created = await createTestDatabase(options);
    drop = () => created.drop();
    db.url = created.url;
    db.name = created.name;
    db.pool = trackFixturePool(createPool(created.url, { max: 10 }));
  });
  after(async () => {
    await db.pool?.end();
    await drop?.();
  });
  return db;
}
