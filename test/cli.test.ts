import assert from 'node:assert/strict';
import type { Client, Worker } from '../src/index.ts';
import { taskWorkflow } from '../src/workflow/index.ts';
import { runCli, runCliInTerminal, type CliResult } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient, register, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';
import { chain10, closeMarkPools, ensureMarks, inc, patientWaiter } from './support/workflows.ts';

/** One line on stderr, no stack trace. */
function oneLine(r: CliResult): string {
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  return lines[0]!;
}

describe('baton CLI', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker | undefined;
  const cli = (...args: string[]) => runCli(args, { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });

  before(async () => {
    process.env.BATON_TEST_DB_URL = db.url;
    await ensureMarks(db.pool);
    client = await fixtureClient(db.url);
    await register(db.pool, chain10, patientWaiter, taskWorkflow(inc));
  });
  afterEach(async () => {
    await worker?.stop({ graceMs: 200 });
    worker = undefined;
  });
  after(async () => {
    await client.close();
    await closeMarkPools();
  });

  it('start prints the id; status, list and history show it; --json gives JSON', async () => {
    const started = await cli('start', 'chain10', '5', '--id', 'cli-1', '--priority', '2');
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stdout.trim(), 'cli-1');

    const status = await cli('status', 'cli-1');
    assert.equal(status.code, 0);
    assert.match(status.stdout, /status:\s+running/);
    assert.match(status.stdout, /steps:\s+0 of ~10 done/);
    assert.match(status.stdout, /STEP\s+KIND\s+NAME\s+STATUS/);

    const asJson = JSON.parse((await cli('status', 'cli-1', '--json')).stdout);
    assert.equal(asJson.id, 'cli-1');
    assert.equal(asJson.priority, 2);

    const list = await cli('list', '--name', 'chain10');
    assert.match(list.stdout, /^ID\s+WORKFLOW\s+STATUS\s+STEPS\s+CURRENT\s+AGE\n/);
    assert.match(list.stdout, /cli-1\s+chain10\s+running\s+0\s+inc/);
    const listJson = JSON.parse((await cli('list', '--json', '--limit', '5')).stdout);
    assert.ok(Array.isArray(listJson.items));

    const history = await cli('history', 'cli-1');
    assert.match(history.stdout, /^VERSION\s+AT\s+KIND/);
    assert.match(history.stdout, /1\s+\S+\s+started/);
  });

  it('start --wait follows the instance and prints its output; no progress when stderr is not a terminal', async () => {
    worker = await inProcessWorker(db.url);
    const r = await cli('start', 'chain10', '0', '--wait', '--timeout', '20000');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '10');
    assert.ok(!r.stderr.includes('\x1b['), 'no terminal control codes in a pipe');
    assert.doesNotMatch(r.stderr, /steps/, 'no progress lines in a pipe');
    const enq = await cli('enqueue', 'inc', '41', '--wait', '--json');
    assert.equal(JSON.parse(enq.stdout).output, 42);
  });

  it('--wait on a terminal redraws one progress line in place', async () => {
    // No worker: the instance stays running, and the progress line is redrawn about six times in 1.5 s.
    const r = await runCliInTerminal(['start', 'chain10', '0', '--id', 'cli-tty', '--wait', '--timeout', '1500'], {
      env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' },
    });
    assert.equal(r.code, 1, r.stdout);
    const redraws = r.stdout.split('\r\x1b[2K').length - 1;
    assert.ok(redraws >= 3, `the line is redrawn (${redraws} times):\n${JSON.stringify(r.stdout)}`);
    const lines = r.stdout.split('\n').filter((l) => l.includes('cli-tty  running'));
    assert.equal(lines.length, 1, `one progress line, not one per redraw:\n${JSON.stringify(r.stdout)}`);
    assert.match(r.stdout.trim().split('\n').at(-1)!, /^baton: workflow cli-tty is still running after 1500 ms/);
  });

  it('control: send, pause, resume, cancel', async () => {
    // The CLI starts in 1-2 s under load: a 1.5 s event time-out failed this test in CI.
    await client.start(patientWaiter, 1, { id: 'cli-ctl' });
    assert.match((await cli('pause', 'cli-ctl')).stdout, /paused cli-ctl/);
    // Repeats succeed and say so (exit 0); a contradiction is a user error (exit 1).
    const pausedAgain = await cli('pause', 'cli-ctl');
    assert.deepEqual([pausedAgain.code, pausedAgain.stdout.trim()], [0, 'cli-ctl was already paused']);
    assert.match((await cli('resume', 'cli-ctl')).stdout, /resumed cli-ctl/);
    const resumedAgain = await cli('resume', 'cli-ctl');
    assert.deepEqual([resumedAgain.code, resumedAgain.stdout.trim()], [0, 'cli-ctl was not paused (running)']);
    worker = await inProcessWorker(db.url);
    await until(async () => (await client.get('cli-ctl'))!.tasks.some((t) => t.kind === 'event'), { what: 'the wait' });
    const sent = await cli('send', 'cli-ctl', 'go', '{"v": 3}', '--require-instance');
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /sent "go" to cli-ctl/);
    assert.deepEqual(await client.result('cli-ctl', { timeoutMs: 10_000 }), { v: 3 });

    // An event may arrive before its instance: held, and said so; --require-instance makes a typo fail.
    const early = await cli('send', 'cli-later', 'go', '{"v": 4}');
    assert.equal(early.code, 0, early.stderr);
    assert.match(early.stdout, /no instance cli-later yet; the event is held for it/);
    assert.equal(JSON.parse((await cli('send', 'cli-later', 'go', '--json')).stdout).instanceExists, false);
    const strict = await cli('send', 'cli-typo', 'go', '--require-instance');
    assert.equal(strict.code, 1);
    assert.match(oneLine(strict), /no workflow instance "cli-typo"/);
    assert.equal((await db.pool.query(`select count(*)::int as n from baton.events where workflow_id = 'cli-typo'`)).rows[0].n, 0);

    await client.start(patientWaiter, 0, { id: 'cli-cancel' }); // waits for an event: still running when cancelled
    const cancelled = await cli('cancel', 'cli-cancel', '--reason', 'test', '--json');
    assert.deepEqual(JSON.parse(cancelled.stdout).status, 'cancelled');
    assert.equal((await client.get('cli-cancel'))!.error!.reason, 'test');
    const cancelledAgain = await cli('cancel', 'cli-cancel');
    assert.deepEqual([cancelledAgain.code, cancelledAgain.stdout.trim()], [0, 'cli-cancel was already cancelled']);
    const done = await cli('pause', 'cli-ctl');
    assert.equal(done.code, 1, 'pausing a completed instance contradicts it');
    assert.match(oneLine(done), /workflow instance "cli-ctl" is already completed/);
    const resumeDone = await cli('resume', 'cli-cancel');
    assert.equal(resumeDone.code, 1);
    assert.match(oneLine(resumeDone), /workflow instance "cli-cancel" is already cancelled/);
  });

  it('user mistakes: one line, exit 1, nothing written; usage mistakes: exit 2', async () => {
    const before = (await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n;
    const mistakes: [string[], RegExp][] = [
      [['start', 'chain10', '{not json'], /the input is not valid JSON/],
      [['start', 'no-such-workflow', '{}'], /unknown workflow "no-such-workflow"/],
      [['enqueue', 'no-such-task', 'null'], /unknown task "no-such-task"/],
      [['start', 'chain10', '1', '--id', ''], /id must not be empty/],
      [['start', 'chain10', '1', '--priority=-1'], /--priority must be a whole number from 0/],
      [['start', 'chain10', '1', '--priority', '1.5'], /--priority must be a whole number from 0/],
      [['start', 'chain10', '1', '--on-conflict', 'maybe'], /onConflict must be one of/],
      [['status', 'nobody'], /no workflow instance "nobody"/],
      [['cancel', 'nobody'], /no workflow instance "nobody"/],
      [['send', 'x', 'go', '{bad'], /the event payload is not valid JSON/],
      [['list', '--status', 'sleepy'], /--status must be one of/],
      [['start', 'chain10', '1', '--timeout', '5'], /--timeout goes with --wait/],
    ];
    for (const [args, message] of mistakes) {
      const r = await cli(...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(oneLine(r), message);
    }
    assert.equal((await db.pool.query('select count(*)::int as n from baton.workflows')).rows[0].n, before, 'nothing was written');
    for (const args of [['frobnicate'], ['start'], ['status', 'a', 'b'], ['list', '--bogus']]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    const wait = await cli('start', 'chain10', '0', '--wait', '--timeout', '300', '--id', 'cli-existing');
    assert.equal(wait.code, 1, 'no worker: --wait gives up after its timeout');
    assert.match(wait.stderr.trim().split('\n')[0]!, /^started cli-existing$/);
    assert.match(wait.stderr.trim().split('\n').at(-1)!, /^baton: workflow cli-existing is still running after 300 ms$/);
    const again = await cli('start', 'chain10', '0', '--wait', '--timeout', '300', '--id', 'cli-existing', '--on-conflict', 'useExisting');
    assert.match(again.stderr.trim().split('\n')[0]!, /^cli-existing already exists; following it$/, 'nothing was started: it does not say so');
  });

  it('argument mistakes are said in Baton\'s words, flags checked before anything is loaded', async () => {
    const limit = await cli('list', '--limit', '-5');
    assert.equal(limit.code, 1, limit.stderr);
    assert.match(oneLine(limit), /^baton: --limit must be a whole number from 1 to 1000 \(got "-5"\)$/);
    const cases: [string[], RegExp][] = [
      [['list', '--bogus'], /^baton list: unknown option --bogus \(its options: --status, --name, --limit, --cursor, --json\)$/],
      [['send', 'o-1'], /^baton send: missing <event>$/],
      [['start'], /^baton start: missing <workflow>$/],
      [['start', 'chain10'], /^baton start: missing <json>: the workflow input, as JSON \(null for none\)$/],
      [['enqueue', 'inc'], /^baton enqueue: missing <json>: the task input, as JSON \(null for none\)$/],
      [['list', '--limit'], /^baton list: --limit needs a value$/],
      [['list', '--cursor', '-x'], /^baton list: --cursor needs a value \(for a value that starts with "-", write --cursor=VALUE\)$/],
      [['list', '--json=yes'], /^baton list: --json takes no value$/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const first = r.stderr.split('\n')[0]!;
      assert.match(first, message);
      assert.equal(first.split("'").length % 2, 1, `balanced quotes: ${first}`);
      assert.match(r.stderr.split('\n')[1]!, /^usage: baton /);
    }
    // The flag is refused before the workers are loaded (this directory does not exist).
    const worker = await cli('worker', '--concurrency', '0', '--dir', '/nonexistent/baton-workers');
    assert.equal(worker.code, 1, worker.stderr);
    assert.match(oneLine(worker), /^baton: --concurrency must be a whole number from 1 to 1000 \(got "0"\)$/);
  });

  it('every command takes --json; with it, errors are one JSON line on stderr with code and message', async () => {
    const migrated = await cli('migrate', '--json');
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.equal(JSON.parse(migrated.stdout).applied, 0);
    assert.ok(Number.isInteger(JSON.parse(migrated.stdout).version));
    const url = await cli('db', 'url', '--json');
    assert.equal(url.code, 0, url.stderr);
    assert.deepEqual(JSON.parse(url.stdout), { url: db.url });

    const errors: [string[], number, string, RegExp][] = [
      [['status', 'nobody', '--json'], 1, 'NOT_FOUND', /^no workflow instance "nobody"$/],
      [['list', '--json', '--limit', '0'], 1, 'VALIDATION', /^--limit must be a whole number/],
      [['worker', '--json', '--concurrency', '0'], 1, 'VALIDATION', /^--concurrency must be a whole number/],
      [['bench', '--json', '--bogus'], 2, 'USAGE', /^unknown option --bogus/],
      [['list', '--json', '--bogus'], 2, 'USAGE', /^unknown option --bogus/],
      [['frobnicate', '--json'], 2, 'USAGE', /^unknown command "frobnicate"$/],
    ];
    for (const [args, exit, code, message] of errors) {
      const r = await cli(...args);
      assert.equal(r.code, exit, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line: ${r.stderr}`);
      const error = JSON.parse(lines[0]!) as { code: string; message: string };
      assert.equal(error.code, code, r.stderr);
      assert.match(error.message, message);
    }
  });

  it('refuses a database it cannot reach, with one line', async () => {
    const r = await runCli(['list'], { env: { DATABASE_URL: 'postgres://nobody:secret@127.0.0.1:1/none' } });
    assert.equal(r.code, 1);
    const line = oneLine(r);
    assert.match(line, /cannot connect to postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none/);
    assert.doesNotMatch(line, /secret/, 'the password is not printed');
  });
});
