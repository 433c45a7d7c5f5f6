/**
 * The fault suite, short: every scenario of `npm run chaos` on a fresh fleet
 * (three worker processes, a dedicated PostgreSQL), 150 workflows each.
 */
import assert from 'node:assert/strict';
import { runScenario, SHORT, type ScenarioResult } from './chaos/scenarios.ts';

function healthy(r: ScenarioResult): void {
  assert.deepEqual(r.unfinished, [], 'every workflow reached a final state');
  assert.deepEqual(r.wrong, [], 'every workflow ended as it should, with the right output');
  assert.deepEqual(r.violations, [], 'the checker finds no violation (nothing committed twice)');
}

describe('fault suite (short)', function () {
  this.timeout(180_000);

  it('SIGKILL of a worker every 3 s: work moves on within TTL plus a tick', async () => {
    const r = await runScenario('kill', SHORT);
    healthy(r);
    assert.equal(r.crashes, 0, `worker exits nobody caused: ${JSON.stringify(r.notes.crashed, null, 1)}`);
    if (r.recovery && r.recovery.samples > 0) assert.ok(r.recovery.maxMs <= r.ttlMs + 1_500, `recovery max ${r.recovery.maxMs} ms`);
  });

  it('SIGSTOP past the TTL, then SIGCONT: the frozen worker\'s late results are refused and counted', async () => {
    const r = await runScenario('stop', SHORT);
    healthy(r);
    const notes = r.notes as { refusedInDatabase: number; refusedByThatWorker: number };
    assert.ok(notes.refusedInDatabase >= 1, 'at least one late result was refused');
    assert.equal(notes.refusedInDatabase, notes.refusedByThatWorker, 'the refusals the database counted are the frozen worker\'s');
  });

  it('PostgreSQL restarts mid-run: workers reconnect and finish, none exits', async () => {
    const r = await runScenario('restart-postgres', SHORT);
    healthy(r);
    assert.equal(r.crashes, 0, `worker exits nobody caused: ${JSON.stringify(r.notes.crashed, null, 1)}`);
  });

  it('pg_terminate_backend on the workers\' connections several times a second: no worker exits', async () => {
    const r = await runScenario('terminate-backends', SHORT);
    healthy(r);
    assert.equal(r.crashes, 0, `worker exits nobody caused: ${JSON.stringify(r.notes.crashed, null, 1)}`);
    assert.ok((r.notes as { terminated: number }).terminated > 10);
  });

  it('a long idle-in-transaction session: throughput holds and recovers after it ends', async () => {
    const r = await runScenario('idle-in-transaction', SHORT);
    healthy(r);
    const t = (r.notes as { tasksPerSecond: { baseline: number; during: number; after: number } }).tasksPerSecond;
    assert.ok(t.after >= 0.5 * t.baseline, JSON.stringify(t));
  });

  it('300 idle connections held by another client: workers degrade and recover, no crash', async () => {
    const r = await runScenario('idle-connections', SHORT);
    healthy(r);
    assert.equal(r.crashes, 0, `worker exits nobody caused: ${JSON.stringify(r.notes.crashed, null, 1)}`);
    assert.ok((r.notes as { held: number }).held >= 250);
  });

  it('a poison task that kills its process every attempt fails after the lease-loss limit; the fleet carries on', async () => {
    const r = await runScenario('poison', SHORT);
    healthy(r);
    assert.ok(r.crashes >= 3, 'the poison task killed its workers');
    assert.match(String((r.notes.failedWith as Record<string, string>)['chaos-poison']), /lease lost.*\(attempt \d+, lease lost 3 time\(s\)\)/);
  });

  it('a handler that never settles and ignores its signal: the attempt times out, slots stay right', async () => {
    const r = await runScenario('hang', SHORT);
    healthy(r);
    assert.ok((r.notes as { timeoutsReported: number }).timeoutsReported >= 6, 'each of 3 hanging tasks timed out twice');
    assert.match(String((r.notes.failedWith as Record<string, string>)['chaos-hang']), /timed out after 500 ms \(attempt 2\)/);
  });
});
