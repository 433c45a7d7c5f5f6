/**
 * Bookkeeping files of the embedded server under its data directory (see
 * embedded.ts for the design):
 *
 *   start.lock/pid   who is starting or stopping the server right now
 *   users/<pid>      one file per process using the server (JSON: pid and its start time)
 *   owner.json       the process that started (or adopted) it, for messages
 *
 * A process is named by its pid and, where /proc has it, its start time, so a
 * pid reused by an unrelated process does not count as the one that wrote it.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DatabaseUnavailableError } from '../errors.ts';

export interface ProcessRef {
  pid: number;
  /** Start time (clock ticks since boot, /proc/<pid>/stat field 22); absent without /proc. */
  start?: string;
}

/** True while the process runs. A zombie (killed, not yet reaped: common in containers) counts as gone. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function self(): ProcessRef {
  const start = startTime(process.pid);
  return start === undefined ? { pid: process.pid } : { pid: process.pid, start };
}

/** True while the named process runs (and is the one named, not a later process with its pid). */
export function running(ref: ProcessRef | undefined): boolean {
  if (!ref || !Number.isInteger(ref.pid) || ref.pid <= 0 || !alive(ref.pid)) return false;
  if (ref.start === undefined) return true;
  const now = startTime(ref.pid);
  return now === undefined || now === ref.start;
}

export function readJsonSync<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Record this process as a user of the server. */
export function addUser(dir: string): void {
  const users = path.join(dir, 'users');
  mkdirSync(users, { recursive: true });
  writeFileSync(path.join(users, String(process.pid)), JSON.stringify(self()));
}

export function removeUser(dir: string): void {
  rmSync(path.join(dir, 'users', String(process.pid)), { force: true });
}

/** The processes using the server, other than this one; files of processes that are gone are removed. */
export function otherUsers(dir: string): ProcessRef[] {
  const users = path.join(dir, 'users');
  let names: string[];
  try {
    names = readdirSync(users);
  } catch {
    return [];
  }
  const live: ProcessRef[] = [];
  for (const name of names) {
    const file = path.join(users, name);
    const ref = readJsonSync<ProcessRef>(file);
    if (ref?.pid === process.pid) continue;
    if (running(ref)) live.push(ref!);
    else rmSync(file, { force: true });
  }
  return live;
}

/** A lock directory with the holder's pid; a lock whose holder died is broken. Held while the server starts or stops. */
export async function withStartLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, 'start.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fs.mkdir(lock);
      await fs.writeFile(path.join(lock, 'pid'), JSON.stringify(self()));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = await holderOf(lock);
      const stat = await fs.stat(lock).catch(() => undefined);
      const young = stat !== undefined && Date.now() - stat.mtimeMs < 2_000;
      if ((holder && !running(holder)) || (!holder && stat && !young)) {
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new DatabaseUnavailableError(`timed out waiting for process ${holder?.pid ?? '?'} to start or stop the embedded PostgreSQL (lock ${lock})`);
      }
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

/** The lock's holder: JSON, or a bare pid as earlier versions wrote it. */
async function holderOf(lock: string): Promise<ProcessRef | undefined> {
  const text = await fs.readFile(path.join(lock, 'pid'), 'utf8').catch(() => '');
  if (/^\d+$/.test(text.trim())) return { pid: Number(text.trim()) };
  try {
    return JSON.parse(text) as ProcessRef;
  } catch {
    return undefined;
  }
}

/** Take the lock now or not at all (at process exit, when nothing can wait). */
export function tryStartLockSync(dir: string): (() => void) | undefined {
  const lock = path.join(dir, 'start.lock');
  try {
    mkdirSync(lock);
  } catch {
    return undefined;
  }
  writeFileSync(path.join(lock, 'pid'), JSON.stringify(self()));
  return () => rmSync(lock, { recursive: true, force: true });
}
