/**
 * --server-cpus LIST: the PostgreSQL server on those CPUs, and the bench itself (this process, and so
 * every worker and producer it forks, and the model's psql and pgbench) on the others. On a machine
 * where the database and the workers share every core, a system whose worker burns more CPU takes
 * cores from its own database; split, each side has its own, as when the database runs on a machine
 * of its own, and a figure shows what the server's work per job allows. Linux only (taskset and
 * /proc), and only for a server on this machine; the server's processes get their CPUs back at the end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { childProcesses } from './proc.ts';

export class CpuSplitError extends Error {}

/** "0", "0,2", "0-3" or "0-1,4" as the CPU numbers it names, sorted and unique. */
export function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new CpuSplitError(`"${text}" is not a CPU list (for example 0, 0,1 or 0-1)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new CpuSplitError(`"${part}" is not a CPU range: it ends before it starts`);
    for (let c = from; c <= to; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The CPUs a process may run on (Cpus_allowed_list in /proc/<pid>/status). */
export function allowedCpus(pid: number): number[] {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
  if (!line) throw new CpuSplitError(`/proc/${pid}/status has no Cpus_allowed_list`);
  return parseCpuList(line[1]!);
}

/** Every thread of `pid` on `cpus` (taskset -a); its children forked later inherit them. */
export function setCpus(pid: number, cpus: number[]): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus.join(','), String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'taskset is not installed (util-linux)' : stderr || (error as Error).message;
    throw new CpuSplitError(`cannot set the CPUs of process ${pid}: ${why}`);
  }
}

/** A process and its live children (the postmaster's are the backends and background processes). */
function withChildren(pid: number): number[] {
  return [pid, ...childProcesses(pid).map((c) => c.pid)];
}

export interface CpuSplit {
  serverCpus: number[];
  benchCpus: number[];
  /** For the report: which side runs where. */
  describe: string;
  /** Gives the server's processes (those alive now) and this process back the CPUs they had. */
  restore(): void;
}

/**
 * Puts the server (its postmaster and every live child; backends started later are forked by the
 * postmaster and inherit its CPUs) on `serverCpus`, and this process on the remaining CPUs it may use.
 */
export function splitCpus(postmaster: number | undefined, serverCpus: number[]): CpuSplit {
  if (process.platform !== 'linux') throw new CpuSplitError('--server-cpus needs Linux (taskset and /proc)');
  if (postmaster === undefined) throw new CpuSplitError('--server-cpus needs the PostgreSQL server on this machine (its postmaster is not in /proc here)');
  const mine = allowedCpus(process.pid);
  const outside = serverCpus.filter((c) => !mine.includes(c));
  if (outside.length > 0) throw new CpuSplitError(`--server-cpus names CPU ${outside.join(', ')}, which this process may not use (it may use ${mine.join(',')})`);
  const benchCpus = mine.filter((c) => !serverCpus.includes(c));
  if (benchCpus.length === 0) throw new CpuSplitError(`--server-cpus ${serverCpus.join(',')} leaves no CPU for the bench and its workers (it may use ${mine.join(',')})`);
  const before = allowedCpus(postmaster);
  const pinned: number[] = [];
  const restore = () => {
    setCpus(process.pid, mine);
    for (const pid of new Set([...pinned, ...withChildren(postmaster)])) {
      try {
        setCpus(pid, before);
      } catch {
        // exited meanwhile
      }
    }
  };
  try {
    for (const pid of withChildren(postmaster)) {
      try {
        setCpus(pid, serverCpus);
        pinned.push(pid);
      } catch (error) {
        if (pid === postmaster || existsSync(`/proc/${pid}`)) throw error;
        // a backend that exited meanwhile
      }
    }
    setCpus(process.pid, benchCpus);
  } catch (error) {
    restore();
    throw error;
  }
  return {
    serverCpus,
    benchCpus,
    describe: `server on CPU ${serverCpus.join(',')}, bench and workers on CPU ${benchCpus.join(',')}`,
    restore,
  };
}
