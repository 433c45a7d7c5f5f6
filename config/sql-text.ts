/**
 * The SQL text of Baton's function files and migrations, as config/sql-functions.ts
 * reads it: statements split as drizzle's migrator splits them, the functions a
 * block creates or drops, the `-- function:` markers this tooling writes, the
 * `-- after:` ordering lines, and the function files themselves.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export class SqlToolError extends Error {}

export const BREAKPOINT = '--> statement-breakpoint';

export const MARKER = /^-- function: (\w+)\s*$/;
const CREATES = /\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+"?baton"?\s*\.\s*"?(\w+)"?\s*\(/gi;
const DROPS = /\bDROP\s+FUNCTION\s+(?:IF\s+EXISTS\s+)?"?baton"?\s*\.\s*"?(\w+)"?/gi;
const AFTER = /^-- after: (\w+(?:\s*,\s*\w+)*)\s*$/;

/** Paths in messages: relative to the working directory. */
export function shown(p: string): string {
  const relative = path.relative(process.cwd(), p);
  return relative === '' ? '.' : relative.startsWith('..') ? p : relative;
}

// ---------------------------------------------------------------- SQL text

/** Statements of a text split as drizzle's migrator splits it, each trimmed, empty ones left out. */
export function statements(text: string): string[] {
  return text
    .replace(/\r\n/g, '\n')
    .split(BREAKPOINT)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The form two texts are compared in: trimmed statements; `CREATE FUNCTION` counts as `CREATE OR REPLACE FUNCTION`. */
export function comparable(stmts: string[]): string {
  return stmts.map((s) => s.replace(/\bCREATE\s+FUNCTION\b/gi, 'CREATE OR REPLACE FUNCTION')).join(`\n${BREAKPOINT}\n`);
}

/** Names of the baton functions a text creates, in order of appearance. */
export function createdNames(text: string): string[] {
  return [...text.matchAll(CREATES)].map((m) => m[1]!);
}

/** Names of the baton functions a text drops. */
export function droppedNames(text: string): string[] {
  return [...text.matchAll(DROPS)].map((m) => m[1]!);
}

/** A block's marker: the first `-- function: X` line among its leading comment lines, and the text after it. */
export function markerOf(block: string): { name: string; rest: string } | undefined {
  const lines = block.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const m = MARKER.exec(line);
    if (m) return { name: m[1]!, rest: lines.slice(i + 1).join('\n') };
    if (!line.startsWith('--')) return undefined;
  }
  return undefined;
}

/** Index of the parenthesis closing the one at `open`, skipping quoted text. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) break;
      i = end;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new SqlToolError(`unbalanced parentheses in: ${text.slice(open, open + 80)}...`);
}

/** Split on commas outside parentheses and quotes. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) break;
      i = end;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/**
 * The argument lists of every `CREATE FUNCTION baton.<name>(...)` in a text, as DROP FUNCTION takes them:
 * modes, names and types kept (DROP ignores names and OUT arguments), defaults removed.
 */
export function dropSignatures(text: string, name: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(CREATES)) {
    if (m[1] !== name) continue;
    const open = m.index! + m[0].length - 1;
    const args = splitTopLevel(text.slice(open + 1, closingParen(text, open))).map((arg) =>
      arg
        .replace(/\s+DEFAULT\b[\s\S]*$/i, '')
        .replace(/\s*=[\s\S]*$/, '')
        .replace(/\s+/g, ' ')
        .trim(),
    );
    out.push(args.join(', '));
  }
  return out;
}

/** The LANGUAGE of the statement creating `name`, read outside dollar-quoted bodies and comments. */
function languageOf(stmts: string[], name: string): string {
  const create = stmts.find((s) => createdNames(s).includes(name)) ?? '';
  const outside = create.replace(/\$(\w*)\$[\s\S]*?\$\1\$/g, ' ').replace(/--.*$/gm, ' ');
  return (/\bLANGUAGE\s+'?(\w+)'?/i.exec(outside)?.[1] ?? '').toLowerCase();
}

// ---------------------------------------------------------------- function files

export interface FunctionFile {
  name: string;
  file: string;
  statements: string[];
  /** `sql` or `plpgsql` (or another language, ordered with plpgsql). */
  language: string;
  /** Functions named by `-- after: a, b` lines: this one is installed after them. */
  after: string[];
}

export function functionsDir(dir: string): string {
  return path.join(dir, 'functions');
}

export function parseFunctionFile(name: string, text: string, file = `${name}.sql`): FunctionFile {
  if (!/^\w+$/.test(name)) throw new SqlToolError(`${file}: a function file is named <function name>.sql (letters, digits, _)`);
  const stmts = statements(text);
  const created = new Set(stmts.flatMap(createdNames));
  if (!created.has(name)) throw new SqlToolError(`${file} does not create baton.${name} (expected CREATE OR REPLACE FUNCTION baton.${name}(...))`);
  const others = [...created].filter((n) => n !== name);
  if (others.length > 0) throw new SqlToolError(`${file} also creates ${others.map((n) => `baton.${n}`).join(', ')}: one function per file`);
  const after: string[] = [];
  for (const line of (stmts[0] ?? '').split('\n')) {
    if (!line.startsWith('--')) break; // only the leading comment's lines count
    const m = AFTER.exec(line.trimEnd());
    if (m) after.push(...m[1]!.split(/\s*,\s*/));
  }
  return { name, file, statements: stmts, language: languageOf(stmts, name), after };
}

export function readFunctionFiles(dir: string): Map<string, FunctionFile> {
  const folder = functionsDir(dir);
  const files = new Map<string, FunctionFile>();
  if (!existsSync(folder)) return files;
  for (const entry of readdirSync(folder).filter((f) => f.endsWith('.sql')).sort()) {
    const file = path.join(folder, entry);
    files.set(entry.slice(0, -4), parseFunctionFile(entry.slice(0, -4), readFileSync(file, 'utf8'), shown(file)));
  }
  for (const f of files.values()) {
    for (const a of f.after) if (!files.has(a)) throw new SqlToolError(`${f.file}: "-- after: ${a}" names no file in ${shown(folder)}`);
  }
  return files;
}
