import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killPostmasters, postmasters } from './support/embedded-procs.ts';
import { ROOT, freePort } from './support/server.ts';

describe('a worker whose log pipe breaks (`baton worker 2>&1 | tee log`, then Ctrl-C)', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'baton-pipe-'));
  });
  afterEach(async () => {
    await killPostmasters(path.join(dir, 'pg'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('still stops gracefully on SIGINT, exit code 0, and stops the embedded server it started', async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, BATON_DATA_DIR: dir, BATON_EMBEDDED_PORT: String(port), BATON_LOG_LEVEL: 'info' };
    delete env.DATABASE_URL;
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'baton.js'), 'worker'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      let err = '';
      await new Promise<void>((resolve, reject) => {
        proc.stderr!.on('data', (chunk) => {
          err += chunk;
          if (err.includes('worker started')) resolve();
        });
        proc.on('exit', (code) => reject(new Error(`the worker exited ${code} before it started: ${err}`)));
      });
      assert.equal(postmasters(path.join(dir, 'pg')).length, 1, 'it started the embedded server');

      // The reader of its output goes away (tee dies on the same Ctrl-C), then the signal arrives.
      proc.stdout!.destroy();
      proc.stderr!.destroy();
      proc.kill('SIGINT');
      assert.equal(await exited, 0, 'a graceful stop, not a crash on EPIPE');
      assert.deepEqual(postmasters(path.join(dir, 'pg')), [], 'no postgres left behind');
      assert.equal(existsSync(path.join(dir, 'owner.json')), false, 'owner.json no longer names the process');
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    }
  });
});
