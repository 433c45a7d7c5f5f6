/**
 * The function files and their tooling (config/sql-functions.ts, config/sql-dump.ts), on a copy of
 * drizzle/ in a temporary folder: the three first migrations, with drizzle/functions/ recreated by
 * splitting 0001 and 0002 (which checksums.json keeps as they shipped) one function per file.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { generateDrizzleJson, generateMigration } from 'drizzle-kit/api';
import * as schema from '../src/schema/index.ts';
import { MIGRATIONS_FOLDER, migrate } from '../src/db/migrate.ts';
import {
  GENERATED_HEADER,
  check,
  checksumProblems,
  generate,
  installationOrder,
  plan,
  readJournal,
  sha256,
} from '../config/sql-functions.ts';
import { dropSignatures, parseFunctionFile, SqlToolError } from '../config/sql-text.ts';
import { normaliseDump } from '../config/sql-dump.ts';
import { runNode } from './support/cli.ts';
import { createTestDatabase } from './support/db.ts';
import { ROOT } from './support/server.ts';

const SHIPPED = ['0000_init', '0001_functions', '0002_claim_async_commit'];

/** drizzle/ as 0002 left it, with the functions split into files the way they were first split. */
function makeFixture(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'baton-sql-functions-'));
  mkdirSync(path.join(dir, 'meta'));
  mkdirSync(path.join(dir, 'functions'));
  const journal = readJournal(MIGRATIONS_FOLDER);
  journal.entries = journal.entries.filter((e) => SHIPPED.includes(e.tag));
  assert.equal(journal.entries.length, 3);
  writeFileSync(path.join(dir, 'meta', '_journal.json'), JSON.stringify(journal, null, 2));
  const sums: Record<string, string> = {};
  const recorded = JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'checksums.json'), 'utf8'));
  for (const e of journal.entries) {
    cpSync(path.join(MIGRATIONS_FOLDER, `${e.tag}.sql`), path.join(dir, `${e.tag}.sql`));
    const snapshot = `${String(e.idx).padStart(4, '0')}_snapshot.json`;
    cpSync(path.join(MIGRATIONS_FOLDER, 'meta', snapshot), path.join(dir, 'meta', snapshot));
    sums[e.tag] = recorded[e.tag];
    assert.equal(sha256(readFileSync(path.join(dir, `${e.tag}.sql`), 'utf8')), sums[e.tag], `${e.tag} is as it shipped`);
  }
  writeFileSync(path.join(dir, 'checksums.json'), JSON.stringify(sums, null, 2));
  const split = (chunk: string) => {
    const name = /CREATE OR REPLACE FUNCTION baton\.(\w+)\(/.exec(chunk)?.[1];
    if (name) writeFileSync(path.join(dir, 'functions', `${name}.sql`), `${chunk.replace(/^(\s*\n)+/, '').trimEnd()}\n`);
  };
  for (const chunk of readFileSync(path.join(dir, '0001_functions.sql'), 'utf8').split('--> statement-breakpoint\n')) split(chunk);
  split(readFileSync(path.join(dir, '0002_claim_async_commit.sql'), 'utf8').replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION'));
  return dir;
}

function edit(dir: string, name: string, change: (text: string) => string): void {
  const file = path.join(dir, 'functions', `${name}.sql`);
  const before = readFileSync(file, 'utf8');
  const after = change(before);
  assert.notEqual(after, before, `the edit of ${name}.sql changed nothing`);
  writeFileSync(file, after);
}

/** A fresh database migrated from `dir`; `use` runs with a client on it. */
async function migrated<T>(dir: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const db = await createTestDatabase({ empty: true });
  try {
    await migrate(db.url, { folder: dir });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  } finally {
    await db.drop();
  }
}

/** The body between a function file's $$ quotes. */
function body(dir: string, name: string): string {
  return /\$\$([\s\S]*)\$\$/.exec(readFileSync(path.join(dir, 'functions', `${name}.sql`), 'utf8'))![1]!;
}

describe('SQL function files (npm run sql:generate, sql:check)', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = makeFixture();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the split of 0001 and 0002 into files is what those migrations install: nothing to generate', () => {
    const p = plan(dir, readJournal(dir).entries);
    assert.equal(p.changed.length + p.dropped.length, 0, `would generate ${p.changed.map((f) => f.name)} ${p.dropped.map((d) => d.name)}`);
    assert.deepEqual(check(dir), []);
    assert.deepEqual(generate(dir), [`nothing to generate: ${dir}/functions matches what the migrations install`]);
    assert.equal(readJournal(dir).entries.length, 3);
  });

  it('changed files become one new migration, plpgsql before sql, that drizzle applies as written', async () => {
    edit(dir, 'aging_interval', (t) => t.replaceAll("'60000'", "'60001'"));
    edit(dir, 'delete_instances', (t) => `DROP FUNCTION IF EXISTS baton.delete_instances(integer);\n--> statement-breakpoint\n${t.replace('  GET DIAGNOSTICS', '  -- edited\n  GET DIAGNOSTICS')}`);
    const before = readJournal(dir).entries.at(-1)!;

    const out = generate(dir);
    assert.match(out[0]!, /^wrote .*0003_functions\.sql: delete_instances, aging_interval$/);

    const journal = readJournal(dir);
    const entry = journal.entries.at(-1)!;
    assert.deepEqual({ idx: entry.idx, tag: entry.tag, breakpoints: entry.breakpoints }, { idx: 3, tag: '0003_functions', breakpoints: true });
    assert.ok(entry.when > before.when);
    const sql = readFileSync(path.join(dir, '0003_functions.sql'), 'utf8');
    assert.ok(sql.startsWith(`${GENERATED_HEADER}\n-- function: delete_instances\nDROP FUNCTION IF EXISTS baton.delete_instances(integer);\n--> statement-breakpoint\n`));
    assert.ok(sql.indexOf('-- function: delete_instances') < sql.indexOf('-- function: aging_interval'), 'plpgsql first');

    // The snapshot is the previous one under a new id, as drizzle-kit generate --custom writes it.
    const prev = JSON.parse(readFileSync(path.join(dir, 'meta', '0002_snapshot.json'), 'utf8'));
    const snapshot = JSON.parse(readFileSync(path.join(dir, 'meta', '0003_snapshot.json'), 'utf8'));
    assert.equal(snapshot.prevId, prev.id);
    assert.notEqual(snapshot.id, prev.id);
    assert.deepEqual(snapshot.tables, prev.tables);
    // The same tables as 0002's: drizzle-kit sees the same changes from it to src/schema as from 0002 (none until
    // 0006_event_holds added columns).
    const current = generateDrizzleJson(schema as Record<string, unknown>, snapshot.id, ['baton']);
    assert.deepEqual(await generateMigration(snapshot, current), await generateMigration(prev, current));

    assert.deepEqual(checksumProblems(dir), []);
    assert.deepEqual(check(dir), [], 'the files now match the migrations');

    await migrated(dir, async (client) => {
      for (const name of ['delete_instances', 'aging_interval']) {
        const { rows } = await client.query(`select prosrc, pg_get_functiondef(oid) as def from pg_proc where oid = $1::regproc`, [`baton.${name}`]);
        assert.equal(rows[0].prosrc, body(dir, name), `baton.${name} is the file's`);
        assert.ok(rows[0].def.includes(body(dir, name)));
      }
      const { rows } = await client.query(`select baton.aging_interval() as i`);
      assert.equal(rows[0].i.minutes, 1);
      assert.equal(rows[0].i.milliseconds, 1);
    });
  });

  it('a deleted file drops its function by the signature the migrations installed', async () => {
    rmSync(path.join(dir, 'functions', 'claim_tasks_async_commit.sql'));
    assert.match(generate(dir)[0]!, /: claim_tasks_async_commit \(deleted\)$/);
    const sql = readFileSync(path.join(dir, '0003_functions.sql'), 'utf8');
    assert.ok(
      sql.includes(
        '-- function: claim_tasks_async_commit\nDROP FUNCTION IF EXISTS baton.claim_tasks_async_commit(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer, p_isolate_from integer, p_isolated_slots integer);',
      ),
      sql,
    );
    assert.deepEqual(check(dir), []);
    await migrated(dir, async (client) => {
      const { rows } = await client.query(`select proname from pg_proc where pronamespace = 'baton'::regnamespace and proname like 'claim_tasks%'`);
      assert.deepEqual(rows.map((r) => r.proname), ['claim_tasks']);
    });
    // Brought back, it is new again.
    writeFileSync(path.join(dir, 'functions', 'claim_tasks_async_commit.sql'), readFileSync(path.join(dir, '0002_claim_async_commit.sql'), 'utf8'));
    assert.match(generate(dir)[0]!, /0004_functions\.sql: claim_tasks_async_commit \(new\)$/);
  });

  it('--amend rewrites the last generated migration and its checksum; back to nothing, it is removed', () => {
    assert.throws(() => generate(dir, { amend: true }), /--amend rewrites only a functions migration .* the last one, 0002_claim_async_commit, is not/);
    edit(dir, 'enqueue', (t) => `-- one\n${t}`);
    generate(dir);
    edit(dir, 'send_event', (t) => `-- two\n${t}`);
    const out = generate(dir, { amend: true });
    assert.match(out[0]!, /^amended .*0003_functions\.sql: send_event, enqueue$/);
    assert.match(out[1]!, /checksum .* was replaced/);
    assert.equal(readJournal(dir).entries.length, 4);
    assert.deepEqual(checksumProblems(dir), []);
    assert.deepEqual(check(dir), []);

    // Hand edits to the generated migration are replaced too.
    writeFileSync(path.join(dir, '0003_functions.sql'), `${readFileSync(path.join(dir, '0003_functions.sql'), 'utf8')}-- hand edit\n`);
    generate(dir, { amend: true });
    assert.ok(!readFileSync(path.join(dir, '0003_functions.sql'), 'utf8').includes('hand edit'));

    makeFixtureFunctions(dir);
    assert.match(generate(dir, { amend: true })[0]!, /^no function differs from the migrations before 0003_functions: removed/);
    assert.equal(readJournal(dir).entries.length, 3);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(path.join(dir, 'checksums.json'), 'utf8'))), SHIPPED);
    assert.deepEqual(check(dir), []);
  });

  it('--amend also rewrites a hand-written *_functions migration holding nothing but functions, never 0001_functions', () => {
    edit(dir, 'enqueue', (t) => `-- one\n${t}`);
    edit(dir, 'commit', (t) => `DROP FUNCTION IF EXISTS baton.commit(integer);\n--> statement-breakpoint\n${t}`);
    generate(dir);
    // As if written by hand: no header, no markers.
    const file = path.join(dir, '0003_functions.sql');
    writeFileSync(file, readFileSync(file, 'utf8').replace(`${GENERATED_HEADER}\n`, '').replace(/^-- function: \w+\n/gm, '\n'));
    assert.deepEqual(check(dir).filter((p) => !p.includes('checksum')), [], 'hand-written, it still installs the files');
    edit(dir, 'send_event', (t) => `-- two\n${t}`);
    assert.match(generate(dir, { amend: true })[0]!, /^amended .*0003_functions\.sql: commit, send_event, enqueue$/);
    assert.ok(readFileSync(file, 'utf8').startsWith(GENERATED_HEADER));
    assert.deepEqual(check(dir), []);

    // 0001_functions also sets a table's fillfactor: never rewritten.
    const journal = readJournal(dir);
    journal.entries = journal.entries.slice(0, 2);
    writeFileSync(path.join(dir, 'meta', '_journal.json'), JSON.stringify(journal, null, 2));
    assert.throws(() => generate(dir, { amend: true }), /the last one, 0001_functions, is not/);
  });

  it('an edited or unrecorded migration is reported, and generate refuses to build on an edited one', () => {
    const sums = JSON.parse(readFileSync(path.join(dir, 'checksums.json'), 'utf8'));
    delete sums['0002_claim_async_commit'];
    writeFileSync(path.join(dir, 'checksums.json'), JSON.stringify(sums));
    writeFileSync(path.join(dir, '0001_functions.sql'), `${readFileSync(path.join(dir, '0001_functions.sql'), 'utf8')}\n-- edited\n`);
    const problems = checksumProblems(dir);
    assert.equal(problems.length, 2);
    assert.match(problems[0]!, /^0001_functions\.sql differs from its checksum in .*checksums\.json: shipped migrations are never edited; write a new one: npm run sql:generate$/);
    assert.match(problems[1]!, /^0002_claim_async_commit has no checksum/);
    assert.throws(() => generate(dir), (e: unknown) => e instanceof SqlToolError && /0001_functions\.sql differs/.test(e.message));
  });

  it('npm run sql:check fails with one line naming the functions and the command to run', async () => {
    edit(dir, 'commit', (t) => `-- changed\n${t}`);
    rmSync(path.join(dir, 'functions', 'aging_interval.sql'));
    const r = await runNode(['--import', 'tsx', path.join(ROOT, 'config', 'sql-functions.ts'), '--check', '--dir', dir]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `sql:check: ${dir}/functions: commit, aging_interval (deleted) differ from what the migrations install; run npm run sql:generate\n`);
  });

  it('orders plpgsql before sql, alphabetically, unless "-- after:" says otherwise; a cycle is an error', () => {
    const fn = (name: string, language: string, after = '') =>
      parseFunctionFile(name, `${after ? `-- after: ${after}\n` : ''}CREATE OR REPLACE FUNCTION baton.${name}() RETURNS int LANGUAGE ${language} AS $$ SELECT 1 $$;`);
    const order = (files: ReturnType<typeof fn>[]) => installationOrder(files).map((f) => f.name);
    assert.deepEqual(order([fn('a', 'sql'), fn('z', 'plpgsql'), fn('m', 'sql'), fn('b', 'plpgsql')]), ['b', 'z', 'a', 'm']);
    assert.deepEqual(order([fn('a', 'sql', 'm'), fn('z', 'plpgsql', 'a'), fn('m', 'sql')]), ['m', 'a', 'z']);
    assert.throws(() => installationOrder([fn('a', 'sql', 'b'), fn('b', 'sql', 'a')]), /cycle among a, b/);
    // The LANGUAGE word inside a body does not count.
    assert.equal(parseFunctionFile('q', `CREATE FUNCTION baton.q() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$; -- LANGUAGE sql`).language, 'plpgsql');
    assert.equal(parseFunctionFile('r', `CREATE FUNCTION baton.r() RETURNS int AS $b$ SELECT 1 -- LANGUAGE plpgsql\n$b$ LANGUAGE sql;`).language, 'sql');
    assert.throws(() => parseFunctionFile('s', 'CREATE FUNCTION baton.t() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;'), /does not create baton\.s/);
  });

  it('DROP signatures keep modes, names and types, without defaults', () => {
    assert.deepEqual(
      dropSignatures(`CREATE OR REPLACE FUNCTION baton.f(p_a numeric(10, 2) DEFAULT 1.5, p_b text DEFAULT 'a,(b', OUT p_c int,\n  p_d text[] = '{}') RETURNS int`, 'f'),
      ['p_a numeric(10, 2), p_b text, OUT p_c int, p_d text[]'],
    );
    assert.deepEqual(dropSignatures('CREATE FUNCTION baton.g() RETURNS int', 'g'), ['']);
  });

  it('"-- after:" counts only as a line of its own in the leading comment', () => {
    const text = '-- Does things.\n-- after: a, b\n--   after: not this one\nCREATE FUNCTION baton.f() RETURNS int LANGUAGE sql AS $$\n-- after: nor this\nSELECT 1 $$;';
    assert.deepEqual(parseFunctionFile('f', text).after, ['a', 'b']);
  });
});

/** Put back the function files as the fixture first split them (leaving the migrations as they are). */
function makeFixtureFunctions(dir: string): void {
  const fresh = makeFixture();
  try {
    rmSync(path.join(dir, 'functions'), { recursive: true });
    cpSync(path.join(fresh, 'functions'), path.join(dir, 'functions'), { recursive: true });
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
}

describe('schema dump (npm run sql:dump)', () => {
  it('keeps the schema and drops version lines, settings and \\restrict keys', () => {
    const dump = [
      '--',
      '-- PostgreSQL database dump',
      '--',
      '',
      '\\restrict AbC123',
      '',
      '-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)',
      '-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)',
      '',
      'SET statement_timeout = 0;',
      "SELECT pg_catalog.set_config('search_path', '', false);",
      'SET default_tablespace = \'\';',
      '',
      '',
      'CREATE SCHEMA baton;',
      '',
      '\\unrestrict AbC123',
      '',
    ].join('\n');
    assert.equal(normaliseDump(dump), '--\n-- PostgreSQL database dump\n--\n\nCREATE SCHEMA baton;\n');
  });

  it('drizzle/schema.sql says which PostgreSQL it was dumped from', () => {
    assert.match(readFileSync(path.join(MIGRATIONS_FOLDER, 'schema.sql'), 'utf8'), /^-- The baton schema after every migration in drizzle\/, dumped from PostgreSQL \d+\.\n/);
  });
});
