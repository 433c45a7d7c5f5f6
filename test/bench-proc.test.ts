import assert from 'node:assert/strict';
import { cpuMs, postmasterOf, serverCpuMs } from '../bench/lib/proc.ts';
import { useTestDatabase } from './support/db.ts';

/**
 * The benchmark's CPU figures (bench/lib/proc.ts): the test server runs on this machine (embedded,
 * or the service machine's PostgreSQL 15), so its postmaster is visible in /proc.
 */
describe('bench: CPU time of the server and of a process, from /proc', function () {
  this.timeout(60_000);
  const db = useTestDatabase();

  it("finds the postmaster from a backend's pid, and counts the CPU of a backend that has exited", async function () {
    if (process.platform !== 'linux') this.skip();
    const c = await db.pool.connect();
    let backend: number;
    try {
      backend = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    } finally {
      c.release();
    }
    const postmaster = postmasterOf(backend);
    assert.ok(postmaster !== undefined, 'the postmaster of a local server is found');
    assert.notEqual(postmaster, backend);
    const before = serverCpuMs(postmaster)!;
    assert.ok(before > 0);

    // A connection of its own burns CPU, then closes: its backend exits, and its time must still count
    // (through the postmaster's cutime once reaped, or as a live child until then).
    const own = new (await import('pg')).default.Client({ connectionString: db.url });
    await own.connect();
    const burnt = cpuMs((await own.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
    await own.query('select count(*) from generate_series(1, 4000000)');
    const self = cpuMs((await own.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid)!;
    await own.end();
    assert.ok(self - (burnt ?? 0) >= 100, `the backend used ${self - (burnt ?? 0)} ms for 4M rows`);
    // The exit is asynchronous: wait until the server's total no longer depends on it being alive.
    let after = serverCpuMs(postmaster)!;
    for (let i = 0; i < 50 && after - before < self - (burnt ?? 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = serverCpuMs(postmaster)!;
    }
    assert.ok(after - before >= self - (burnt ?? 0), `server CPU grew by ${after - before} ms, the closed backend alone used ${self - (burnt ?? 0)}`);
  });

  it('is undefined for a process that is not a postgres backend', () => {
    assert.equal(postmasterOf(process.pid), undefined);
    assert.equal(serverCpuMs(undefined), undefined);
  });
});
