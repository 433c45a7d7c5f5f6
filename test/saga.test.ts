/**
 * Saga compensation end to end: real workers, the client, the SQL API and the
 * CLI, including the failures (a compensation that retries, one that fails for
 * good, a lease lost during one, a cancel while a step runs, parallel branches).
 */
import assert from 'node:assert/strict';
import {
  CompensationFailedError,
  defineTask,
  defineWorkflow,
  NonRetryableError,
  WorkflowCompensatedError,
  WorkflowFailedError,
  type Client,
  type Worker,
} from '../src/index.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { assertInvariants, fixtureClient, register, until } from './support/fixtures.ts';
import { inProcessWorker } from './support/workers.ts';

interface Seen {
  task: string;
  wf: string;
  key: string;
  attempt: number;
  input: unknown;
}
const seen: Seen[] = [];
const ran = (wf: string) => seen.filter((s) => s.wf === wf).map((s) => `${s.task}@${s.key}`);
/** What the next run of a named behaviour does. */
const plan = { refundFailures: 0, refundFinal: false, shipFails: true, holdLease: false, unbookGate: undefined as Promise<void> | undefined };
let release: (() => void) | undefined;
const released = () => new Promise<void>((resolve) => (release = resolve));

const record = (task: string) => (input: unknown, ctx: { workflowId: string; taskKey: string; attempt: number }) => {
  seen.push({ task, wf: ctx.workflowId, key: ctx.taskKey, attempt: ctx.attempt, input });
};

const fast = { backoff: 'fixed' as const, delayMs: 10, jitter: 0 };
const book = defineTask('saga-book', async (order: { id: string }, ctx) => {
  record('book')(order, ctx);
  return { booking: `b-${order.id}` };
});
const unbook = defineTask('saga-unbook', async (x: { input: { id: string }; output: { booking: string } }, ctx) => {
  record('unbook')(x, ctx);
  if (plan.unbookGate) await plan.unbookGate; // a test that must see the instance while it compensates
  return null;
});
const pay = defineTask('saga-pay', async (b: { booking: string }, ctx) => {
  record('pay')(b, ctx);
  return { receipt: `r-${b.booking}`, at: new Date(0) };
});
const refund = defineTask(
  'saga-refund',
  async (x: { input: { booking: string }; output: { receipt: string } }, ctx) => {
    record('refund')(x, ctx);
    if (plan.refundFinal) throw new NonRetryableError('the bank refused the refund');
    if (ctx.attempt <= plan.refundFailures) throw new Error(`bank busy (attempt ${ctx.attempt})`);
    if (plan.holdLease && ctx.attempt === 1) await released(); // ignores its signal: a stuck worker
    return { refunded: x.output.receipt };
  },
  { retry: { maxAttempts: 3, ...fast } },
);
const ship = defineTask(
  'saga-ship',
  async (x: unknown, ctx) => {
    record('ship')(x, ctx);
    if (plan.shipFails) throw new NonRetryableError('no truck');
    return 'shipped';
  },
  { retry: { maxAttempts: 1 } },
);
/** When each saga-wait attempt was aborted, by instance. */
const abortedAt = new Map<string, number>();
/** Runs until its attempt is aborted (a cancel, a lost lease). */
const wait = defineTask('saga-wait', async (x: unknown, ctx) => {
  record('wait')(x, ctx);
  await new Promise((_, reject) =>
    ctx.signal.addEventListener(
      'abort',
      () => {
        abortedAt.set(ctx.workflowId, Date.now());
        reject(ctx.signal.reason as Error);
      },
      { once: true },
    ),
  );
  return x;
});
const hold = defineTask('saga-hold', async (x: unknown, ctx) => {
  record('hold')(x, ctx);
  return 'held';
});
const unhold = defineTask('saga-unhold', async (x: unknown, ctx) => {
  record('unhold')(x, ctx);
  return null;
});

const trip = defineWorkflow<{ id: string }>('saga-trip')
  .then(book, { compensate: unbook })
  .then(pay, { compensate: refund })
  .then(ship)
  .build();
const slow = defineWorkflow<{ id: string }>('saga-slow').then(book, { compensate: unbook }).then(wait).build();
const fan = defineWorkflow<{ id: string }>('saga-fan')
  .then(book, { compensate: unbook })
  .parallel([(f) => f.then(hold, { compensate: unhold }), (f) => f.then(ship), (f) => f.then(wait)])
  .build();
const workflows = [trip, slow, fan];

describe('saga compensation', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let worker: Worker | undefined;
  const run = async () => (worker ??= await inProcessWorker(db.url, { workflows, tasks: [] }));
  const row = async (id: string) => (await db.pool.query(`select status, error, state from baton.workflows where id = $1`, [id])).rows[0];
  const tasks = async (id: string) =>
    Object.fromEntries(
      (await db.pool.query(`select task_key, status, attempts from baton.tasks where workflow_id = $1`, [id])).rows.map((r) => [
        r.task_key,
        `${r.status}/${r.attempts}`,
      ]),
    );
  const history = async (id: string) =>
    (await db.pool.query(`select kind, detail from baton.history where workflow_id = $1 order by version`, [id])).rows as {
      kind: string;
      detail: Record<string, unknown>;
    }[];

  before(async () => {
    client = await fixtureClient(db.url);
    await register(db.pool, ...workflows);
  });
  beforeEach(() => {
    Object.assign(plan, { refundFailures: 0, refundFinal: false, shipFails: true, holdLease: false });
  });
  afterEach(async () => {
    release?.();
    await worker?.stop({ graceMs: 500 });
    worker = undefined;
    await assertInvariants(db.pool);
  });
  after(async () => {
    await client.close();
  });

  it('undoes the completed steps in reverse order with their inputs and outputs, and ends compensated', async () => {
    await run();
    await client.start(trip, { id: 'o1' }, { id: 'saga-1' });
    const err = await client.result('saga-1', { timeoutMs: 20_000 }).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowCompensatedError, String(err));
    assert.ok(err instanceof WorkflowFailedError, 'still a WorkflowFailedError for callers that catch that');
    assert.equal(err.code, 'WORKFLOW_COMPENSATED');
    assert.equal(err.stepError?.message, 'no truck');
    assert.deepEqual(ran('saga-1'), ['book@0', 'pay@1', 'ship@2', 'refund@!1', 'unbook@!0']);
    const refunded = seen.find((s) => s.wf === 'saga-1' && s.task === 'refund')!;
    assert.deepEqual(refunded.input, { input: { booking: 'b-o1' }, output: { receipt: 'r-b-o1', at: new Date(0).toISOString() } });
    const unbooked = seen.find((s) => s.wf === 'saga-1' && s.task === 'unbook')!;
    assert.deepEqual(unbooked.input, { input: { id: 'o1' }, output: { booking: 'b-o1' } }, 'a first step gets the instance input');
    const r = await row('saga-1');
    assert.equal(r.status, 'compensated');
    assert.equal(r.error.cause.message, 'no truck');
    const h = await history('saga-1');
    const compensations = h.filter((e) => typeof e.detail.key === 'string' && e.detail.key.startsWith('!')).map((e) => `${e.kind} ${e.detail.key} ${e.detail.status}`);
    assert.deepEqual(compensations, ['completed !1 running', 'completed !0 compensated'], 'history records each compensation');
    assert.ok(h.some((e) => e.kind === 'task_failed' && e.detail.key === '2' && (e.detail.compensating as { message: string }).message === 'no truck'));
    const view = await client.get('saga-1');
    assert.equal(view!.status, 'compensated');
    const listed = await client.list({ status: 'compensated' });
    assert.ok(listed.items.some((i) => i.id === 'saga-1'), 'list filters on the new status');
  });

  it('retries a compensation that fails under its own policy', async () => {
    plan.refundFailures = 2;
    await run();
    await client.start(trip, { id: 'o2' }, { id: 'saga-2' });
    await assert.rejects(client.result('saga-2', { timeoutMs: 20_000 }), WorkflowCompensatedError);
    assert.equal((await tasks('saga-2'))['!1'], 'completed/3', 'three attempts of the refund');
    assert.deepEqual(ran('saga-2').slice(-4), ['refund@!1', 'refund@!1', 'refund@!1', 'unbook@!0']);
  });

  it('fails with both errors when a compensation fails for good; a retry runs it again and goes on', async () => {
    plan.refundFinal = true;
    await run();
    await client.start(trip, { id: 'o3' }, { id: 'saga-3' });
    const err = await client.result('saga-3', { timeoutMs: 20_000 }).catch((e: unknown) => e);
    assert.ok(err instanceof CompensationFailedError, String(err));
    assert.equal(err.code, 'COMPENSATION_FAILED');
    assert.equal(err.stepError?.message, 'no truck');
    assert.equal(err.compensationError?.message, 'the bank refused the refund');
    assert.match(err.message, /refused the refund.*no truck/);
    assert.equal((await row('saga-3')).status, 'failed');
    assert.ok(!ran('saga-3').includes('unbook@!0'), 'the compensations after a failed one do not run');

    plan.refundFinal = false;
    await client.retry('saga-3');
    await assert.rejects(client.result('saga-3', { timeoutMs: 20_000 }), WorkflowCompensatedError);
    assert.deepEqual(ran('saga-3').filter((s) => s === 'ship@2'), ['ship@2'], 'the failed forward step is not run again');
    assert.deepEqual(ran('saga-3').slice(-2), ['refund@!1', 'unbook@!0']);
  });

  it('a compensation whose lease is lost runs again and completes once; the stale attempt is refused', async () => {
    plan.holdLease = true;
    const w = await run();
    await client.start(trip, { id: 'o4' }, { id: 'saga-4' });
    await until(async () => ran('saga-4').includes('refund@!1'), { what: 'the refund to start' });
    // The worker holding it "dies": its claim names another worker and has expired; the reconciler takes it back.
    await db.pool.query(`update baton.tasks set claimed_by = 'dead-worker', lease_expires_at = now() - interval '1 second'
      where workflow_id = 'saga-4' and task_key = '!1'`);
    await until(async () => ran('saga-4').filter((s) => s === 'refund@!1').length === 2, { what: 'a second attempt' });
    await assert.rejects(client.result('saga-4', { timeoutMs: 20_000 }), WorkflowCompensatedError);
    release?.(); // the stale first attempt returns now: nothing of it is applied
    await new Promise((r) => setTimeout(r, 200));
    const h = await history('saga-4');
    assert.ok(h.some((e) => e.kind === 'lease_lost' && e.detail.key === '!1'));
    assert.equal(h.filter((e) => e.kind === 'completed' && e.detail.key === '!1').length, 1, 'completed once');
    assert.equal((await tasks('saga-4'))['!1'], 'completed/2');
    assert.ok(w);
  });

  it('a compensation failed by lost leases fails the instance with both errors', async () => {
    plan.holdLease = true;
    await run();
    await client.start(trip, { id: 'o11' }, { id: 'saga-11' });
    await until(async () => ran('saga-11').includes('refund@!1'), { what: 'the refund to start' });
    await db.pool.query(`update baton.tasks set claimed_by = 'dead-worker', lease_expires_at = now() - interval '1 second', lease_losses = 1000
      where workflow_id = 'saga-11' and task_key = '!1'`);
    const err = await client.result('saga-11', { timeoutMs: 20_000 }).catch((e: unknown) => e);
    assert.ok(err instanceof CompensationFailedError, String(err));
    assert.equal(err.stepError?.message, 'no truck');
    assert.equal(err.compensationError?.code, 'LEASE_LOST');
    assert.equal(err.error?.step, '!1');
    assert.ok(!ran('saga-11').includes('unbook@!0'));
  });

  it('a forward step failed by lost leases (outside the state machine) compensates too', async () => {
    await run();
    await client.start(slow, { id: 'o9' }, { id: 'saga-9' });
    await until(async () => ran('saga-9').includes('wait@1'), { what: 'the slow step to run' });
    // Its worker "died" one lease loss short of the limit: the reconciler fails the step.
    await db.pool.query(`update baton.tasks set claimed_by = 'dead-worker', lease_expires_at = now() - interval '1 second', lease_losses = 1000
      where workflow_id = 'saga-9' and task_key = '1'`);
    const err = await client.result('saga-9', { timeoutMs: 20_000 }).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowCompensatedError, String(err));
    assert.equal(err.stepError?.code, 'LEASE_LOST');
    assert.deepEqual(ran('saga-9'), ['book@0', 'wait@1', 'unbook@!0']);
  });

  it('cancel with compensate while a step runs: the step is stopped at once, not compensated; the completed ones are', async () => {
    // A long lease: the running step cannot learn of the cancel from a failed renewal within this test.
    worker = await inProcessWorker(db.url, { workflows, tasks: [], config: { claimTtlMs: 60_000 } });
    await client.start(slow, { id: 'o5' }, { id: 'saga-5' });
    await until(async () => ran('saga-5').includes('wait@1'), { what: 'the slow step to run' });
    // The compensation waits for the gate: the second cancel must find the instance still compensating.
    let open!: () => void;
    plan.unbookGate = new Promise<void>((resolve) => (open = resolve));
    try {
      const cancelledAt = Date.now();
      assert.equal(await client.cancel('saga-5', { reason: 'changed plans', compensate: true }), 'running');
      await until(async () => abortedAt.has('saga-5'), { what: 'the running step to be stopped', timeoutMs: 5_000 });
      assert.ok(abortedAt.get('saga-5')! - cancelledAt < 5_000);
      assert.equal(await client.cancel('saga-5', { compensate: true }), 'running', 'asking again changes nothing');
    } finally {
      open();
      plan.unbookGate = undefined;
    }
    const err = await client.result('saga-5', { timeoutMs: 20_000 }).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowCompensatedError, String(err));
    assert.equal(err.stepError?.code, 'CANCELLED');
    assert.match(err.stepError?.message ?? '', /changed plans/);
    assert.deepEqual(ran('saga-5'), ['book@0', 'wait@1', 'unbook@!0']);
    const t = await tasks('saga-5');
    assert.equal(t['1'], 'cancelled/1');
    assert.equal(t['!0'], 'completed/1');
    await assert.rejects(client.cancel('saga-5'), /already compensated/);
  });

  it('cancel with compensate before anything completed ends cancelled (through the SQL API)', async () => {
    await client.start(trip, { id: 'o6' }, { id: 'saga-6' });
    const r = await db.pool.query(`select baton.cancel_workflow('saga-6', 'sql', 'psql', true) as was`);
    assert.equal(r.rows[0].was, 'running');
    assert.equal((await row('saga-6')).status, 'running', 'the compensate step runs on a worker');
    await run();
    await until(async () => (await row('saga-6')).status === 'cancelled', { what: 'cancelled' });
    assert.deepEqual(ran('saga-6'), []);
  });

  it('cancel with compensate of a paused instance compensates after resume', async () => {
    await run();
    await client.start(slow, { id: 'o10' }, { id: 'saga-10' });
    await until(async () => ran('saga-10').includes('wait@1'), { what: 'the slow step to run' });
    await client.pause('saga-10');
    assert.equal(await client.cancel('saga-10', { compensate: true }), 'paused');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await row('saga-10')).status, 'paused', 'nothing runs while paused');
    assert.ok(!ran('saga-10').includes('unbook@!0'));
    const held = Object.entries(await tasks('saga-10')).filter(([k]) => k.startsWith('!@'));
    assert.deepEqual(held.map(([, v]) => v), ['waiting/0'], "the cancel's compensate step is held");
    await client.resume('saga-10');
    await assert.rejects(client.result('saga-10', { timeoutMs: 20_000 }), WorkflowCompensatedError);
    assert.deepEqual(ran('saga-10'), ['book@0', 'wait@1', 'unbook@!0']);
  });

  it('parallel branches: the completed ones are compensated, the running one is stopped', async () => {
    await run();
    await client.start(fan, { id: 'o7' }, { id: 'saga-7' });
    await assert.rejects(client.result('saga-7', { timeoutMs: 20_000 }), WorkflowCompensatedError);
    const names = ran('saga-7');
    assert.deepEqual(names.slice(-2), ['unhold@!1/b0', 'unbook@!0']);
    assert.ok(!names.some((n) => n.startsWith('unhold') && n !== 'unhold@!1/b0'));
    const t = await tasks('saga-7');
    assert.equal(t['1/b2'], 'cancelled/1', 'the running branch is closed when compensation begins');
    assert.equal(t['!1/b2'], undefined);
  });

  it('baton cancel --compensate', async () => {
    await run();
    await client.start(slow, { id: 'o8' }, { id: 'saga-8' });
    await until(async () => ran('saga-8').includes('wait@1'), { what: 'the slow step to run' });
    const r = await runCli(['cancel', 'saga-8', '--compensate', '--reason', 'typo'], { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cancelling saga-8 \(was running\): its completed steps, if any, are being compensated/);
    await assert.rejects(client.result('saga-8', { timeoutMs: 20_000 }), WorkflowCompensatedError);
    const status = await runCli(['status', 'saga-8'], { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } });
    assert.match(status.stdout, /status:\s+compensated/);
  });

  it('baton cancel --compensate --json reports the status the instance has, and a worker ends it cancelled when nothing completed', async () => {
    await client.start(trip, { id: 'o-json' }, { id: 'saga-cli-json' });
    const env = { env: { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' } };
    const j = await runCli(['cancel', 'saga-cli-json', '--compensate', '--json'], env);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), { id: 'saga-cli-json', status: 'running', was: 'running', compensate: true });
    await run();
    await until(async () => (await row('saga-cli-json')).status === 'cancelled', { what: 'cancelled' });
    assert.deepEqual(ran('saga-cli-json'), []);
    const again = await runCli(['cancel', 'saga-cli-json', '--compensate', '--json'], env);
    assert.deepEqual(JSON.parse(again.stdout), { id: 'saga-cli-json', status: 'cancelled', was: 'cancelled', compensate: true });
  });
});
