/**
 * drizzle/schema.sql: the baton schema as the migrations leave it, for review.
 *
 *   npm run sql:dump                 write drizzle/schema.sql
 *   npm run sql:dump -- --check      compare instead; fail with a diff when it differs
 *   --dir <folder>                   the migrations folder (default: drizzle/)
 *
 * DATABASE_URL names the server (its role needs CREATEDB): a temporary database
 * is created there, migrated, dumped with `pg_dump --schema-only --no-owner
 * --no-privileges --schema=baton`, and dropped. pg_dump must have the server's
 * major version (/usr/lib/postgresql/<major>/bin/pg_dump, or pg_dump on PATH),
 * and the committed dump is compared only on the major version it came from
 * (CI: PostgreSQL 15; the embedded PostgreSQL ships no pg_dump).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../src/db/migrate.ts';
import { DEFAULT_DIR } from './sql-functions.ts';
import { SqlToolError } from './sql-text.ts';

const HEADER = (major: number) =>
  `-- The baton schema after every migration in drizzle/, dumped from PostgreSQL ${major}.\n` +
  '-- Written by `npm run sql:dump`, checked by `npm run sql:dump -- --check`: do not edit.\n';
const HEADER_MAJOR = /^-- The baton schema after every migration in drizzle\/, dumped from PostgreSQL (\d+)\./;

/**
 * Keep what describes the schema: drop the lines carrying versions, session
 * settings and pg_dump's per-run \restrict keys, and collapse blank lines.
 */
export function normaliseDump(dump: string): string {
  const kept = dump
    .replace(/\r\n/g, '\n')
    .split('\n')
    .filter(
      (line) =>
        !/^-- Dumped (from database|by pg_dump) version/.test(line) &&
        !/^SET \w+/.test(line) &&
        !/^SELECT pg_catalog\.set_config\(/.test(line) &&
        !/^\\(un)?restrict\b/.test(line),
    );
  return `${kept.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

function majorOf(versionText: string): number | undefined {
  const m = /(\d+)(?:\.\d+)?/.exec(versionText);
  return m ? Number(m[1]) : undefined;
}

/** The pg_dump whose major version is the server's. */
export function findPgDump(major: number): string {
  const candidates = [`/usr/lib/postgresql/${major}/bin/pg_dump`, 'pg_dump'];
  const seen: string[] = [];
  for (const bin of candidates) {
    if (bin.includes('/') && !existsSync(bin)) {
      seen.push(`${bin} (missing)`);
      continue;
    }
    const run = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (run.error || run.status !== 0) {
      seen.push(`${bin} (cannot run)`);
      continue;
    }
    const version = run.stdout.trim();
    if (majorOf(version.replace(/^\D*/, '')) === major) return bin;
    seen.push(`${bin} (${version})`);
  }
  throw new SqlToolError(`no pg_dump for PostgreSQL ${major}, the server's version: tried ${seen.join(', ')}; install the PostgreSQL ${major} client`);
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Migrate a temporary database on the server of `url`, dump its baton schema, drop it. */
export async function dumpSchema(url: string, dir: string): Promise<{ major: number; text: string }> {
  const admin = new pg.Client({ connectionString: url, application_name: 'baton:sql-dump' });
  admin.on('error', () => undefined);
  await admin.connect();
  const name = `baton_dump_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  try {
    const { rows } = await admin.query<{ v: string }>(`select current_setting('server_version_num') as v`);
    const major = Math.floor(Number(rows[0]!.v) / 10000);
    const pgDump = findPgDump(major);
    await admin.query(`create database ${admin.escapeIdentifier(name)}`);
    try {
      const target = withDatabase(url, name);
      await migrate(target, { folder: dir });
      const run = spawnSync(pgDump, ['--schema-only', '--no-owner', '--no-privileges', '--schema=baton', `--dbname=${target}`], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      if (run.error) throw run.error;
      if (run.status !== 0) throw new SqlToolError(`${pgDump} failed: ${run.stderr.trim()}`);
      return { major, text: HEADER(major) + normaliseDump(run.stdout) };
    } finally {
      await admin.query(`drop database if exists ${admin.escapeIdentifier(name)} with (force)`);
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** A unified diff of two texts (diff -u), at most `limit` lines of it. */
export function unifiedDiff(before: string, after: string, labels: [string, string], limit = 80): string {
  const tmp = mkdtempSync(path.join(tmpdir(), 'baton-sql-dump-'));
  try {
    writeFileSync(path.join(tmp, 'a'), before);
    writeFileSync(path.join(tmp, 'b'), after);
    const run = spawnSync('diff', ['-u', '--label', labels[0], '--label', labels[1], path.join(tmp, 'a'), path.join(tmp, 'b')], { encoding: 'utf8' });
    if (run.error) return `(diff is not available: ${run.error.message})`;
    const lines = run.stdout.trimEnd().split('\n');
    return lines.length > limit ? [...lines.slice(0, limit), `... ${lines.length - limit} more lines`].join('\n') : lines.join('\n');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  let dir = DEFAULT_DIR;
  let checkOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--check') checkOnly = true;
    else if (arg === '--dir' && argv[i + 1]) dir = path.resolve(argv[++i]!);
    else throw new SqlToolError(`unknown argument ${arg} (expected --check, --dir <folder>)`);
  }
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new SqlToolError('set DATABASE_URL to a PostgreSQL server whose role may CREATEDB (the embedded PostgreSQL ships no pg_dump), e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres');
  }
  const file = path.join(dir, 'schema.sql');
  const shown = path.relative(process.cwd(), file).startsWith('..') ? file : path.relative(process.cwd(), file);
  if (checkOnly) {
    if (!existsSync(file)) throw new SqlToolError(`${shown} is missing; run npm run sql:dump`);
    const committed = readFileSync(file, 'utf8');
    const committedMajor = Number(HEADER_MAJOR.exec(committed)?.[1]);
    const { major, text } = await dumpSchema(url, dir);
    if (committedMajor && committedMajor !== major) {
      throw new SqlToolError(`${shown} was dumped from PostgreSQL ${committedMajor} and this server is ${major}: check it against PostgreSQL ${committedMajor}`);
    }
    if (committed === text) {
      console.log(`sql:dump: ${shown} matches the migrations (PostgreSQL ${major})`);
      return 0;
    }
    console.error(unifiedDiff(committed, text, [shown, 'migrations (pg_dump)']));
    console.error(`sql:dump: ${shown} is not what the migrations produce (diff above); run npm run sql:dump and commit it`);
    return 1;
  }
  const { major, text } = await dumpSchema(url, dir);
  const before = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  writeFileSync(file, text);
  console.log(`sql:dump: ${before === text ? 'unchanged' : 'wrote'} ${shown} (PostgreSQL ${major}, ${text.split('\n').length - 1} lines)`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    console.error(`sql:dump: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
