/**
 * Baton's SQL functions, one file each: drizzle/functions/<name>.sql holds the
 * current definition of baton.<name>. Migrations install them; this script
 * writes those migrations (see drizzle/functions/README.md).
 *
 *   npm run sql:generate              a new migration installing every function file that differs
 *                                     from what the migrations install (and dropping deleted ones)
 *   npm run sql:generate -- --amend   rewrite the last migration instead, when it is a functions
 *                                     migration (the edit loop before a release)
 *   npm run sql:check                 fail when a function file differs from what the migrations
 *                                     install, or a migration differs from drizzle/checksums.json
 *   --dir <folder>                    the migrations folder (default: drizzle/)
 *
 * What the migrations install: every migration in journal order, split on
 * `--> statement-breakpoint`. A block belongs to function X when it follows a
 * marker line `-- function: X` (written by this script), or, before any marker
 * (the hand-written 0001 to 0003), when it contains
 * `CREATE [OR REPLACE] FUNCTION baton.X(` (or, creating nothing, drops baton.X).
 * X's installed text is its blocks in the last migration that touched X; X is
 * installed when that text creates it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BREAKPOINT,
  comparable,
  createdNames,
  dropSignatures,
  droppedNames,
  functionsDir,
  markerOf,
  readFunctionFiles,
  shown,
  SqlToolError,
  statements,
  type FunctionFile,
} from './sql-text.ts';


export const DEFAULT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../drizzle');
/** First line of every migration this script writes. */
export const GENERATED_HEADER = '-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.';


// ---------------------------------------------------------------- files

export interface JournalEntry {
  idx: number;
  version: string;
  when: number;
  tag: string;
  breakpoints: boolean;
}

export interface Journal {
  version: string;
  dialect: string;
  entries: JournalEntry[];
}

export function readJournal(dir: string): Journal {
  return JSON.parse(readFileSync(path.join(dir, 'meta', '_journal.json'), 'utf8')) as Journal;
}

function snapshotPath(dir: string, idx: number): string {
  return path.join(dir, 'meta', `${String(idx).padStart(4, '0')}_snapshot.json`);
}

function migrationPath(dir: string, tag: string): string {
  return path.join(dir, `${tag}.sql`);
}


// ---------------------------------------------------------------- what the migrations install

export interface Installed {
  /** The migration that touched the function last. */
  tag: string;
  statements: string[];
  /** False when the last migration touching it dropped it. */
  present: boolean;
}

export function installedFunctions(dir: string, entries: JournalEntry[]): Map<string, Installed> {
  const installed = new Map<string, Installed>();
  for (const entry of entries) {
    const touched = new Map<string, string[]>();
    const add = (name: string, text: string) => {
      const list = touched.get(name) ?? [];
      list.push(...statements(text));
      touched.set(name, list);
    };
    let current: string | undefined;
    for (const block of readFileSync(migrationPath(dir, entry.tag), 'utf8').replace(/\r\n/g, '\n').split(BREAKPOINT)) {
      const marker = markerOf(block);
      if (marker) {
        current = marker.name;
        add(current, marker.rest);
      } else if (current) {
        add(current, block);
      } else {
        // Without markers: the block creating X, or dropping it (before a CREATE with a new signature).
        const created = createdNames(block);
        for (const name of new Set(created.length > 0 ? created : droppedNames(block))) add(name, block);
      }
    }
    for (const [name, stmts] of touched) {
      installed.set(name, { tag: entry.tag, statements: stmts, present: stmts.some((s) => createdNames(s).includes(name)) });
    }
  }
  return installed;
}

// ---------------------------------------------------------------- the plan

export interface Dropped {
  name: string;
  /** The DROP statements, one per signature the last CREATE text declares. */
  statements: string[];
}

export interface Plan {
  /** Function files that differ from what the migrations install, in installation order. */
  changed: FunctionFile[];
  /** Names in `changed` that no migration installs yet. */
  added: Set<string>;
  dropped: Dropped[];
}

/**
 * Installation order: LANGUAGE plpgsql (and others) before LANGUAGE sql, whose bodies are checked
 * at creation and may call the others; alphabetical otherwise; `-- after:` lines win over both.
 */
export function installationOrder(files: FunctionFile[]): FunctionFile[] {
  const rank = (f: FunctionFile) => (f.language === 'sql' ? 1 : 0);
  const pending = [...files].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const inSet = new Set(files.map((f) => f.name));
  const done = new Set<string>();
  const out: FunctionFile[] = [];
  while (pending.length > 0) {
    const i = pending.findIndex((f) => f.after.every((a) => !inSet.has(a) || done.has(a)));
    if (i < 0) throw new SqlToolError(`"-- after:" lines form a cycle among ${pending.map((f) => f.name).join(', ')}`);
    const [next] = pending.splice(i, 1);
    out.push(next!);
    done.add(next!.name);
  }
  return out;
}

export function plan(dir: string, entries: JournalEntry[]): Plan {
  const files = readFunctionFiles(dir);
  const installed = installedFunctions(dir, entries);
  const changed: FunctionFile[] = [];
  const added = new Set<string>();
  for (const f of files.values()) {
    const now = installed.get(f.name);
    if (!now?.present) added.add(f.name);
    if (!now?.present || comparable(now.statements) !== comparable(f.statements)) changed.push(f);
  }
  const dropped: Dropped[] = [];
  for (const [name, now] of [...installed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!now.present || files.has(name)) continue;
    const signatures = dropSignatures(now.statements.join('\n'), name);
    dropped.push({
      name,
      statements: signatures.length > 0 ? signatures.map((s) => `DROP FUNCTION IF EXISTS baton.${name}(${s});`) : [`DROP FUNCTION IF EXISTS baton.${name};`],
    });
  }
  return { changed: installationOrder(changed), added, dropped };
}

export function isEmpty(p: Plan): boolean {
  return p.changed.length === 0 && p.dropped.length === 0;
}

export function describe(p: Plan): string {
  return [
    ...p.changed.map((f) => (p.added.has(f.name) ? `${f.name} (new)` : f.name)),
    ...p.dropped.map((d) => `${d.name} (deleted)`),
  ].join(', ');
}

/** The migration's SQL: each function's statements under its marker, drops last. */
export function renderMigration(p: Plan): string {
  const sections = [
    ...p.changed.map((f) => `-- function: ${f.name}\n${f.statements.join(`\n${BREAKPOINT}\n`)}`),
    ...p.dropped.map((d) => `-- function: ${d.name}\n${d.statements.join(`\n${BREAKPOINT}\n`)}`),
  ];
  return `${GENERATED_HEADER}\n${sections.join(`\n${BREAKPOINT}\n`)}\n`;
}

// ---------------------------------------------------------------- checksums

export function checksumsPath(dir: string): string {
  return path.join(dir, 'checksums.json');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function readChecksums(dir: string): Record<string, string> {
  const file = checksumsPath(dir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
}

function writeChecksums(dir: string, journal: Journal, sums: Record<string, string>): void {
  // In journal order; tags the journal no longer names are kept (the check reports them).
  const ordered: Record<string, string> = {};
  for (const e of journal.entries) if (sums[e.tag]) ordered[e.tag] = sums[e.tag]!;
  for (const [tag, sum] of Object.entries(sums)) if (!(tag in ordered)) ordered[tag] = sum;
  writeFileSync(checksumsPath(dir), `${JSON.stringify(ordered, null, 2)}\n`);
}

const FROZEN = 'shipped migrations are never edited; write a new one: npm run sql:generate';

/** One line per migration whose file is not what drizzle/checksums.json records. */
export function checksumProblems(dir: string, options: { except?: string } = {}): string[] {
  const journal = readJournal(dir);
  const sums = readChecksums(dir);
  const file = shown(checksumsPath(dir));
  const problems: string[] = [];
  for (const e of journal.entries) {
    if (e.tag === options.except) continue;
    const recorded = sums[e.tag];
    const actual = sha256(readFileSync(migrationPath(dir, e.tag), 'utf8'));
    if (!recorded) problems.push(`${e.tag} has no checksum in ${file} (npm run sql:generate records it)`);
    else if (recorded !== actual) problems.push(`${e.tag}.sql differs from its checksum in ${file}: ${FROZEN}`);
  }
  const tags = new Set(journal.entries.map((e) => e.tag));
  for (const tag of Object.keys(sums)) if (!tags.has(tag)) problems.push(`${file} names ${tag}, which meta/_journal.json does not`);
  return problems;
}

// ---------------------------------------------------------------- writing migrations

/** Add a migration as `drizzle-kit generate --custom` does: the previous snapshot with a new id, a journal entry. */
function addMigration(dir: string, journal: Journal, name: string, sql: string): JournalEntry {
  const last = journal.entries.at(-1);
  if (!last) throw new SqlToolError(`${shown(dir)} has no migration yet: create the schema first (npm run generate)`);
  const idx = last.idx + 1;
  const tag = `${String(idx).padStart(4, '0')}_${name}`;
  const { id: prevId, prevId: _previous, ...rest } = JSON.parse(readFileSync(snapshotPath(dir, last.idx), 'utf8')) as Record<string, unknown>;
  const snapshot: Record<string, unknown> = { id: randomUUID(), prevId, ...rest };
  snapshot._meta = { columns: {}, schemas: {}, tables: {} };
  // The migrator applies a migration when its `when` is later than the last applied one's.
  const entry: JournalEntry = { idx, version: last.version, when: Math.max(Date.now(), last.when + 1), tag, breakpoints: true };
  writeFileSync(snapshotPath(dir, idx), JSON.stringify(snapshot, null, 2));
  writeFileSync(migrationPath(dir, tag), sql);
  journal.entries.push(entry);
  writeFileSync(path.join(dir, 'meta', '_journal.json'), JSON.stringify(journal, null, 2));
  return entry;
}

function removeLastMigration(dir: string, journal: Journal): JournalEntry {
  const last = journal.entries.pop()!;
  rmSync(migrationPath(dir, last.tag), { force: true });
  rmSync(snapshotPath(dir, last.idx), { force: true });
  writeFileSync(path.join(dir, 'meta', '_journal.json'), JSON.stringify(journal, null, 2));
  return last;
}

/** Every statement of a migration is a function's: nothing else would be lost by rewriting it. */
function onlyFunctions(sql: string): boolean {
  let marked = false;
  for (const block of sql.replace(/\r\n/g, '\n').split(BREAKPOINT)) {
    if (marked || markerOf(block)) {
      marked = true;
      continue;
    }
    if (block.replace(/--.*$/gm, '').trim() === '') continue;
    if (createdNames(block).length === 0 && droppedNames(block).length === 0) return false;
  }
  return true;
}

/**
 * A migration --amend may rewrite: one this script wrote, or a hand-written `*_functions` one holding
 * nothing but functions (not 0001_functions, which also sets a table's fillfactor).
 */
function isAmendable(dir: string, entry: JournalEntry | undefined): boolean {
  if (!entry) return false;
  const sql = readFileSync(migrationPath(dir, entry.tag), 'utf8');
  return sql.startsWith(GENERATED_HEADER) || (/_functions$/.test(entry.tag) && onlyFunctions(sql));
}

/** Run sql:generate; returns the lines to print. */
export function generate(dir: string, options: { amend?: boolean } = {}): string[] {
  const journal = readJournal(dir);
  const last = journal.entries.at(-1);
  if (options.amend && !isAmendable(dir, last)) {
    throw new SqlToolError(
      `--amend rewrites only a functions migration (written by sql:generate, or a *_functions one holding nothing but functions), and the last one, ${last?.tag ?? '(none)'}, is not; run npm run sql:generate without --amend to add one`,
    );
  }
  const problems = checksumProblems(dir, { except: options.amend ? last!.tag : undefined }).filter((p) => !p.includes('has no checksum'));
  if (problems.length > 0) throw new SqlToolError(problems.join('\n'));

  const out: string[] = [];
  const sums = readChecksums(dir);
  const base = options.amend ? journal.entries.slice(0, -1) : journal.entries;
  const p = plan(dir, base);
  if (options.amend) {
    const amended = last!;
    delete sums[amended.tag];
    if (isEmpty(p)) {
      removeLastMigration(dir, journal);
      out.push(
        `no function differs from the migrations before ${amended.tag}: removed ${shown(migrationPath(dir, amended.tag))}, its snapshot, journal entry and checksum`,
      );
    } else {
      const sql = renderMigration(p);
      const file = migrationPath(dir, amended.tag);
      sums[amended.tag] = sha256(sql);
      if (readFileSync(file, 'utf8') === sql) {
        out.push(`nothing to amend: ${shown(file)} already installs ${describe(p)}`);
      } else {
        writeFileSync(file, sql);
        out.push(`amended ${shown(file)}: ${describe(p)}`);
        out.push(`its checksum in ${shown(checksumsPath(dir))} was replaced: amend only a migration that no release has shipped`);
      }
    }
  } else if (isEmpty(p)) {
    out.push(`nothing to generate: ${shown(functionsDir(dir))} matches what the migrations install`);
  } else {
    const sql = renderMigration(p);
    const entry = addMigration(dir, journal, 'functions', sql);
    sums[entry.tag] = sha256(sql);
    out.push(`wrote ${shown(migrationPath(dir, entry.tag))}: ${describe(p)}`);
    out.push(`  with ${shown(snapshotPath(dir, entry.idx))}, its journal entry and its checksum; next: npm run sql:dump`);
  }
  for (const e of journal.entries) {
    if (sums[e.tag]) continue;
    sums[e.tag] = sha256(readFileSync(migrationPath(dir, e.tag), 'utf8'));
    out.push(`recorded the checksum of ${e.tag}`);
  }
  writeChecksums(dir, journal, sums);
  return out;
}

/** Run sql:check; returns the problems (none: all is well). */
export function check(dir: string): string[] {
  const problems = checksumProblems(dir);
  const p = plan(dir, readJournal(dir).entries);
  if (!isEmpty(p)) {
    problems.push(`${shown(functionsDir(dir))}: ${describe(p)} differ${p.changed.length + p.dropped.length === 1 ? 's' : ''} from what the migrations install; run npm run sql:generate`);
  }
  return problems;
}

// ---------------------------------------------------------------- command line

function main(argv: string[]): number {
  let dir = DEFAULT_DIR;
  let amend = false;
  let checkOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--amend') amend = true;
    else if (arg === '--check') checkOnly = true;
    else if (arg === '--dir' && argv[i + 1]) dir = path.resolve(argv[++i]!);
    else throw new SqlToolError(`unknown argument ${arg} (expected --amend, --check, --dir <folder>)`);
  }
  if (checkOnly && amend) throw new SqlToolError('--check and --amend do not go together');
  if (checkOnly) {
    const problems = check(dir);
    for (const line of problems) console.error(`sql:check: ${line}`);
    if (problems.length > 0) return 1;
    const n = readFunctionFiles(dir).size;
    console.log(`sql:check: ${n} function files match the migrations; every migration matches its checksum`);
    return 0;
  }
  for (const line of generate(dir, { amend })) console.log(line);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  try {
    process.exitCode = main(argv);
  } catch (error) {
    const prefix = argv.includes('--check') ? 'sql:check' : 'sql:generate';
    const message = error instanceof Error ? error.message : String(error);
    for (const line of message.split('\n')) console.error(`${prefix}: ${line}`);
    process.exitCode = 1;
  }
}
