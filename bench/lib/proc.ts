/**
 * Worker processes: every system's worker runs in a child process of its own
 * (bench/lib/child.ts, bundled once per run into one JavaScript file that
 * plain `node` runs: see childScript), so that its memory is measured
 * alone. The child talks to the parent over the IPC channel (ChildMessage);
 * its stdout and stderr go to our stderr, so stdout stays the result table.
 * Finished units arrive as cumulative counts (ChildMessage 'progress');
 * waitForUnits ends a run on them, without polling the database.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { buildSync } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { ChildConfig, ChildMessage } from '../systems/types.ts';
import { fmt, progress } from './stats.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child.ts');
// Beside child.ts, so that paths the sources resolve from their own location (src/db/migrate.ts's
// ../../drizzle) resolve the same from the bundle. Ignored by git.
const CHILD_BUNDLE = path.join(path.dirname(CHILD), '.child.bundle.mjs');
let childBuilt = false;

/**
 * The child as one ES module: our TypeScript sources (the harness, every system's adapter, Baton's
 * src/) bundled by esbuild, every package left to node_modules. Every system's worker then runs
 * in plain `node`, as compiled code runs in production, instead of under tsx's loader, which
 * weighed about 35 MB of each worker's RSS (a bare `node` 41 MB, `node --import tsx` 76 MB).
 * Built once per process, before the first worker starts.
 */
export function childScript(): string {
  if (!childBuilt) {
    buildSync({ entryPoints: [CHILD], outfile: CHILD_BUNDLE, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
    childBuilt = true;
  }
  return CHILD_BUNDLE;
}

/** Peak resident set size (VmHWM) of a live process, in MB; undefined when it is gone. */
export function peakRssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system) a live process has used so far, in ms, from /proc (clock ticks, 10 ms
 * resolution); undefined when it is gone or /proc is not there.
 */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  // utime and stime (fields 14 and 15 of proc(5)).
  const fields = statFields(pid);
  return fields ? ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND : undefined;
}

/** /proc/<pid>/stat's fields after the command name (which may hold spaces); field n of proc(5) is [n - 3]. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * The PostgreSQL server's postmaster, found from one of its backends' pid (pg_backend_pid()): its
 * parent. Undefined when the server is not on this machine (no such process here, or one that is
 * not a postgres backend).
 */
export function postmasterOf(backendPid: number): number | undefined {
  try {
    if (!readFileSync(`/proc/${backendPid}/cmdline`, 'utf8').startsWith('postgres')) return undefined;
  } catch {
    return undefined;
  }
  const ppid = Number(statFields(backendPid)?.[1]);
  return Number.isInteger(ppid) && ppid > 1 ? ppid : undefined;
}

/** The postmaster of the server `c` is connected to (see postmasterOf). */
export async function postmasterOfSession(c: pg.ClientBase): Promise<number | undefined> {
  return postmasterOf((await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
}

/**
 * CPU time (user + system) the whole server has used so far, in ms: the postmaster's own, that of
 * its children which have exited (cutime + cstime, added when it reaps them: the backends of
 * connections closed meanwhile), and that of its live children (backends, WAL writer,
 * checkpointer, ...). Undefined when /proc does not show the postmaster.
 */
export function serverCpuMs(postmaster: number | undefined): number | undefined {
  if (postmaster === undefined) return undefined;
  const own = statFields(postmaster);
  if (!own) return undefined;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const child of childProcesses(postmaster)) ticks += Number(child.fields[11]) + Number(child.fields[12]);
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** The live children of `parent` (the postmaster's: backends and background processes), with their stat fields. */
export function childProcesses(parent: number): { pid: number; fields: string[] }[] {
  const children: { pid: number; fields: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === parent) children.push({ pid: Number(entry), fields });
  }
  return children;
}

/** USER_HZ: 100 on every Linux build Node runs on. */
const TICKS_PER_SECOND = 100;

export class WorkerProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  /** Time of the first handler start (the first claim), Date.now() in the child. */
  readonly first: Promise<number>;
  /** Time when the configured number of completions was committed. */
  readonly target: Promise<number>;
  private listeners = new Set<(m: ChildMessage) => void>();
  private exited: Promise<number | null>;
  /** Rejects when the child exits or reports an error (a stop counts as an exit: race it only while running). */
  readonly crashed: Promise<never>;
  /** Peak RSS read just before the stop. */
  rssMb: number | undefined;
  /** Units finished so far (cumulative, as last reported), units failed, and the time (Date.now()) of the last one counted. */
  completed = 0;
  failed = 0;
  completedAt = 0;
  /** When this process's first handler started (Date.now() in the child), once it has. */
  firstAt: number | undefined;
  /** This process's CPU time (ms) when it reported ready: its own start of the measured span. */
  cpuAtReady: number | undefined;

  constructor(config: ChildConfig, extraExecArgv: string[] = []) {
    this.child = fork(childScript(), [], {
      execArgv: extraExecArgv,
      env: { ...process.env, BENCH_CHILD: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child.stdout!.pipe(process.stderr, { end: false });
    this.child.stderr!.pipe(process.stderr, { end: false });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    const failed = new Promise<never>((_, reject) => {
      this.child.once('exit', (code) => reject(new Error(`${config.system} worker exited (code ${code})`)));
      this.child.on('message', (m: ChildMessage) => {
        if (m.type === 'error') reject(new Error(`${config.system} worker: ${m.message}`));
      });
    });
    failed.catch(() => undefined);
    this.crashed = failed;
    const waitFor = <T>(pick: (m: ChildMessage) => T | undefined) =>
      Promise.race([
        new Promise<T>((resolve) => {
          const on = (m: ChildMessage) => {
            const v = pick(m);
            if (v !== undefined) {
              this.listeners.delete(on);
              resolve(v);
            }
          };
          this.listeners.add(on);
        }),
        failed,
      ]);
    this.child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') this.cpuAtReady = cpuMs(this.child.pid);
      if (m.type === 'first') this.firstAt = m.t;
      if (m.type === 'progress') {
        this.completed = Math.max(this.completed, m.completed);
        this.failed = Math.max(this.failed, m.failed);
        this.completedAt = Math.max(this.completedAt, m.t);
      }
      this.listeners.forEach((l) => l(m));
    });
    this.ready = waitFor((m) => (m.type === 'ready' ? true : undefined)).then(() => undefined);
    this.first = waitFor((m) => (m.type === 'first' ? m.t : undefined));
    this.target = waitFor((m) => (m.type === 'target' ? m.t : undefined));
    for (const p of [this.ready, this.first, this.target]) p.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  onMessage(listener: (m: ChildMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Read the peak RSS, ask the worker to stop gracefully, and wait (killing it after `timeoutMs`). */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.rssMb = peakRssMb(this.pid) ?? this.rssMb;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.send({ type: 'stop' });
    else this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Start `count` worker processes and wait until all of them run. A process works as soon as it is
 * ready, while the others may still be starting (with a small load, the first can drain it alone):
 * `onFirstReady` runs when the first is ready, to start what is measured from there.
 */
export async function startWorkers(
  count: number,
  config: ChildConfig,
  execArgv: string[] = [],
  onFirstReady?: () => Promise<void> | void,
): Promise<WorkerProcess[]> {
  const procs = Array.from({ length: count }, () => new WorkerProcess(config, execArgv));
  try {
    const first = Promise.race(procs.map((p) => p.ready)).then(() => onFirstReady?.());
    await Promise.all([...procs.map((p) => p.ready), first]);
    return procs;
  } catch (error) {
    await stopAll(procs);
    throw error;
  }
}

export async function stopAll(procs: WorkerProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => p.stop().catch(() => undefined)));
}

/** When the first handler of any of these processes started (they report it each on its own). */
export function firstStart(procs: WorkerProcess[]): number | undefined {
  const known = procs.map((p) => p.firstAt).filter((t): t is number => t !== undefined);
  return known.length ? Math.min(...known) : undefined;
}

/** Finished units over all processes. */
export function completedUnits(procs: WorkerProcess[]): number {
  return procs.reduce((n, p) => n + p.completed, 0);
}

/**
 * Wait until the worker processes have reported `units` finished units, and
 * return when the last of them finished (Date.now() in its child). Fails when
 * a unit fails, a process dies, or the count stands still for `idleMs`.
 * Prints progress every second under `tag`.
 */
export function waitForUnits(procs: WorkerProcess[], units: number, o: { tag: string; unitName: string; idleMs?: number }): Promise<number> {
  const idleMs = o.idleMs ?? 60_000;
  return new Promise<number>((resolve, reject) => {
    let lastTotal = -1;
    let lastChange = Date.now();
    const offs: (() => void)[] = [];
    const finish = (error?: Error) => {
      clearInterval(tick);
      offs.forEach((off) => off());
      if (error) reject(error);
      else resolve(Math.max(...procs.map((p) => p.completedAt)));
    };
    const check = () => {
      const total = completedUnits(procs);
      const failed = procs.reduce((n, p) => n + p.failed, 0);
      if (failed > 0) return finish(new Error(`${failed} ${o.unitName} failed`));
      if (total >= units) return finish();
      const now = Date.now();
      if (total !== lastTotal) {
        lastTotal = total;
        lastChange = now;
      } else if (now - lastChange > idleMs) {
        finish(new Error(`no progress for ${Math.round(idleMs / 1000)} s (${fmt(units - total)} ${o.unitName} left)`));
      }
    };
    const tick = setInterval(() => {
      check();
      progress(`[${o.tag}] ${fmt(completedUnits(procs))}/${fmt(units)} ${o.unitName} done`);
    }, 1_000);
    for (const p of procs) {
      offs.push(p.onMessage((m) => m.type === 'progress' && check()));
      p.crashed.catch((error: Error) => finish(new Error(`a worker process failed: ${error.message}`)));
    }
    check();
  });
}
