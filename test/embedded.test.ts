import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../src/db/embedded.ts';
import { runCli } from './support/cli.ts';
import { ROOT, freePort } from './support/server.ts';

/** Postmaster processes serving a data directory. */
function postmasters(pgdata: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes(`-D ${pgdata}`) && /postgres/.test(line))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

async function waitFor(check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

interface Child {
  proc: ChildProcess;
  info: { url: string; owner: boolean; pid: number };
  exited: Promise<number | null>;
}

function startChild(dataDir: string, port: number): Promise<Child> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/support/embedded-child.ts'), dataDir, String(port)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
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

describe('embedded PostgreSQL', function () {
  this.timeout(120_000);
  let dir: string;
  let pgdata: string;
  let port: number;

  beforeEach(async () => {
    port = await freePort();
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-emb-'));
    pgdata = path.join(dir, 'pg');
  });
  afterEach(async () => {
    // Never leave a server behind, whatever the test did.
    for (const pid of postmasters(pgdata)) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // gone already
      }
    }
    await waitFor(() => postmasters(pgdata).length === 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts on 127.0.0.1, lets a second process attach, and only the starter stops it', async () => {
    const first = await startChild(dir, port);
    assert.equal(first.info.owner, true);
    assert.match(first.info.url, new RegExp(`@127\\.0\\.0\\.1:${port}/baton$`));
    const [row] = (await query(first.info.url, `select current_setting('listen_addresses') as listen`)) as { listen: string }[];
    assert.equal(row!.listen, '127.0.0.1');

    const second = await startEmbedded({ dataDir: dir, port });
    assert.equal(second.owner, false);
    assert.equal(second.url, first.info.url);
    await second.stop(); // not the owner: the server keeps running
    assert.equal(postmasters(pgdata).length, 1);
    await query(first.info.url, 'select 1');

    first.proc.stdin!.end();
    assert.equal(await first.exited, 0);
    assert.deepEqual(postmasters(pgdata), [], 'no postgres process left behind');
    assert.equal(existsSync(path.join(pgdata, 'postmaster.pid')), false);
  });

  it('adopts a server whose starter was killed with SIGKILL, and stops it', async () => {
    const first = await startChild(dir, port);
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.equal(postmasters(pgdata).length, 1, 'the server outlives its killed starter');

    const next = await startEmbedded({ dataDir: dir, port });
    assert.equal(next.owner, true, 'the next process becomes the owner');
    await query(next.url, 'select 1');
    await next.stop();
    assert.deepEqual(postmasters(pgdata), []);
  });

  it('recovers from a server killed with SIGKILL (stale postmaster.pid) and from a stale start lock', async () => {
    const first = await startEmbedded({ dataDir: dir, port });
    const [pid] = postmasters(pgdata);
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => postmasters(pgdata).length === 0);
    // Let the server's children notice that their parent is gone.
    await waitFor(() => !execFileSync('ps', ['-eo', 'ppid='], { encoding: 'utf8' }).split('\n').some((p) => Number(p) === pid));
    assert.ok(existsSync(path.join(pgdata, 'postmaster.pid')), 'the crash left its lock file');
    // And a start lock left by a process that died while starting the server.
    mkdirSync(path.join(dir, 'start.lock'));
    writeFileSync(path.join(dir, 'start.lock', 'pid'), '999999');

    const again = await startEmbedded({ dataDir: dir, port });
    assert.equal(again.owner, true);
    assert.equal(again.url, first.url);
    await query(again.url, 'select 1');
    assert.notEqual(Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]), pid);
    await again.stop();
    assert.deepEqual(postmasters(pgdata), []);
  });

  it('`baton migrate` with no DATABASE_URL starts the server, migrates and leaves nothing running', async () => {
    const result = await runCli(['migrate'], {
      env: { DATABASE_URL: undefined, BATON_DATA_DIR: dir, BATON_EMBEDDED_PORT: String(port) },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /applied \d+ migration\(s\); schema version \d+/);
    assert.deepEqual(postmasters(pgdata), []);
    const url = await runCli(['db', 'url'], { env: { DATABASE_URL: undefined, BATON_DATA_DIR: dir, BATON_EMBEDDED_PORT: String(port) } });
    assert.equal(url.code, 0, url.stderr);
    assert.match(url.stdout.trim(), new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/baton$`));
    assert.deepEqual(postmasters(pgdata), []);
  });

  it('a taken port fails the start with a typed error that names the port and the setting, and leaves no server', async () => {
    const net = await import('node:net');
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      await assert.rejects(startEmbedded({ dataDir: dir, port }), (error: Error) => {
        assert.equal(error.name, 'DatabaseUnavailableError');
        assert.match(error.message, new RegExp(`port ${port} is taken; set BATON_EMBEDDED_PORT`));
        return true;
      });
      assert.deepEqual(postmasters(pgdata), []);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
