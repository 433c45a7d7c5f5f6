/** Real processes around the embedded server, for its tests: postmasters of a data directory, children that start or attach. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { ROOT } from './server.ts';

/** Postmaster processes serving a data directory. */
export function postmasters(pgdata: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    // The postmaster itself: its program is .../bin/postgres. (pg_ctl, still waiting for a start
    // it launched, also has "-D <pgdata>" and "postgres" in its path, and must not count.)
    .filter((line) => line.includes(`-D ${pgdata}`) && /^\s*\d+\s+\S*\bpostgres\s/.test(line))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** Stop (SIGQUIT) every postmaster of a data directory and wait until they are gone. */
export async function killPostmasters(pgdata: string): Promise<void> {
  for (const pid of postmasters(pgdata)) {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // gone already
    }
  }
  await waitFor(() => postmasters(pgdata).length === 0);
}

export async function waitFor(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

export interface Child {
  proc: ChildProcess;
  info: { url: string; owner: boolean; pid: number };
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();

/** Kill (SIGKILL) every child startChild made that still runs: a failed test must not leave one behind. */
export async function killChildren(): Promise<void> {
  await Promise.all(
    [...children].map(
      (proc) =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          proc.on('exit', () => resolve());
          proc.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
}

/** A process that starts (or attaches to) the embedded server, reports it, and stops its handle when its stdin closes. */
export function startChild(dataDir: string, port: number, options: { portIsDefault?: boolean } = {}): Promise<Child> {
  return new Promise((resolve, reject) => {
    const args = [path.join(ROOT, 'test/support/embedded-child.ts'), dataDir, String(port), ...(options.portIsDefault ? ['default'] : [])];
    const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(proc);
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    let buf = '';
    let err = '';
    proc.stderr!.on('data', (c) => (err += c));
    proc.stdout!.on('data', (c) => {
      buf += c;
      if (buf.includes('\n')) resolve({ proc, info: JSON.parse(buf.split('\n')[0]!), exited });
    });
    proc.on('exit', (code) => {
      if (!buf.includes('\n')) reject(new Error(`embedded child exited ${code}: ${err}`));
    });
  });
}
