import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded } from '../src/db/embedded.ts';
import { runCli } from './support/cli.ts';
import { killChildren, killPostmasters, postmasters, query, startChild, waitFor } from './support/embedded-procs.ts';
import { freePort } from './support/server.ts';

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
    // Never leave a process or a server behind, whatever the test did.
    await killChildren();
    await killPostmasters(pgdata);
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

  it('outlives the process that started it while another process uses it; the last one out stops it', async () => {
    // `baton start --wait` starts the server, a worker attaches, the short command ends first.
    const starter = await startChild(dir, port);
    assert.equal(starter.info.owner, true);
    const worker = await startChild(dir, port);
    assert.equal(worker.info.owner, false);
    starter.proc.stdin!.end();
    assert.equal(await starter.exited, 0);
    assert.equal(postmasters(pgdata).length, 1, 'the server runs on for the process still using it');
    await query(worker.info.url, 'select 1');

    // A process that attaches now and leaves again does not stop it either.
    const passing = await startEmbedded({ dataDir: dir, port });
    await passing.stop();
    await query(worker.info.url, 'select 1');

    worker.proc.stdin!.end();
    assert.equal(await worker.exited, 0);
    assert.deepEqual(postmasters(pgdata), [], 'the last one out stopped it');
    assert.equal(existsSync(path.join(dir, 'owner.json')), false);
  });

  it('a process whose server went away (its starter and the server killed) starts it again on the same address', async () => {
    const starter = await startChild(dir, port);
    const user = await startEmbedded({ dataDir: dir, port });
    starter.proc.kill('SIGKILL');
    await starter.exited;
    const [pid] = postmasters(pgdata);
    process.kill(pid!, 'SIGKILL');
    await waitFor(() => !postmasters(pgdata).includes(pid!));
    await waitFor(
      () =>
        query(user.url, 'select 1').then(
          () => true,
          () => false,
        ),
      30_000,
    );
    assert.equal(postmasters(pgdata).length, 1);
    await user.stop();
    assert.deepEqual(postmasters(pgdata), []);
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

  it('a stale owner.json (its pid dead, or reused by another process) is taken over', async () => {
    const first = await startChild(dir, port);
    first.proc.kill('SIGKILL');
    await first.exited;
    // The pid now belongs to a live process that is not the one that wrote it (pid reuse).
    writeFileSync(path.join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, start: '1' }));
    const next = await startEmbedded({ dataDir: dir, port });
    assert.equal(next.owner, true, 'adopted');
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8')).pid, process.pid);
    await next.stop();
    assert.deepEqual(postmasters(pgdata), []);
    assert.equal(existsSync(path.join(dir, 'owner.json')), false);
  });

  it('recovers from a server killed with SIGKILL (stale postmaster.pid) and from a stale start lock', async () => {
    // The process that started it dies too (a process still using it would start it again itself).
    const first = await startChild(dir, port);
    first.proc.kill('SIGKILL');
    await first.exited;
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
    assert.equal(again.url, first.info.url);
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
