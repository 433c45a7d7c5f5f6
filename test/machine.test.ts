import assert from 'node:assert/strict';
import { NonRetryableError, TimeoutError, ValidationError } from '../src/errors.ts';
import { buildRegistry } from '../src/worker/registry.ts';
import {
  backoffDelay,
  decideRetry,
  defineTask,
  defineWorkflow,
  definitionRecord,
  initialState,
  startPlan,
  step,
  taskWorkflow,
  type MachineEvent,
  type Snapshot,
} from '../src/workflow/index.ts';
import { DEFAULT_RETRY } from '../src/workflow/retry.ts';
import { drive, keys } from './support/machine.ts';

const t = (name: string, options = {}) => defineTask(name, async (x: unknown) => x, options);
const a = t('a');
const b = t('b');
const c = t('c');
const d = t('d');


describe('workflow state machine (pure)', () => {
  it('runs a chain: each step gets the previous output, the last output is the result', () => {
    const wf = defineWorkflow('chain').then(a).then(b).then(c).build();
    const { snap, transitions } = drive(wf, [
      { type: 'start', input: 1 },
      { type: 'completed', key: '0', output: 2 },
      { type: 'completed', key: '1', output: 3 },
      { type: 'completed', key: '2', output: 4 },
    ]);
    assert.deepEqual(transitions.map(keys), [['0'], ['1'], ['2'], []]);
    assert.deepEqual(transitions.map((tr) => tr.schedule.map((s) => s.input)), [[1], [2], [3], []]);
    assert.deepEqual(transitions.map((tr) => tr.schedule.map((s) => s.name)), [['a'], ['b'], ['c'], []]);
    assert.equal(snap.status, 'completed');
    assert.equal(transitions[3]!.output, 4);
    assert.equal(snap.state.done, 3);
  });

  it('does not touch the snapshot it is given', () => {
    const wf = defineWorkflow('pure').parallel([a, b]).build();
    const snap: Snapshot = { status: 'running', state: initialState() };
    const started = step(wf, snap, { type: 'start', input: 0 });
    const frozen = structuredClone(started.state);
    step(wf, { status: 'running', state: started.state }, { type: 'completed', key: '0/b0', output: 1 });
    assert.deepEqual(started.state, frozen);
    assert.deepEqual(snap.state, initialState());
  });

  it('forks a parallel step and joins once, with outputs in branch order', () => {
    const wf = defineWorkflow('fork').then(a).parallel([b, (f) => f.then(c), (f) => f.then(d).then(a)]).then(b).build();
    const { transitions, snap } = drive(wf, [
      { type: 'start', input: 'in' },
      { type: 'completed', key: '0', output: 'x' },
      { type: 'completed', key: '1/b2/0', output: 'd-out' },
      { type: 'completed', key: '1/b1', output: 'c-out' },
      { type: 'completed', key: '1/b2/1', output: 'a-out' },
      { type: 'completed', key: '1/b0', output: 'b-out' },
    ]);
    assert.deepEqual(keys(transitions[1]!), ['1/b0', '1/b1', '1/b2/0']);
    assert.ok(transitions[1]!.schedule.every((s) => s.input === 'x'), 'every branch gets the same input');
    assert.deepEqual(keys(transitions[2]!), ['1/b2/1']);
    assert.deepEqual(keys(transitions[3]!), []);
    assert.deepEqual(keys(transitions[4]!), []);
    assert.deepEqual(keys(transitions[5]!), ['2']);
    assert.deepEqual(transitions[5]!.schedule[0]!.input, ['b-out', 'c-out', 'a-out']);
    assert.deepEqual(snap.state.par, {}, 'the parallel frame is gone after the join');
  });

  it('schedules the join exactly once whatever the order of 20 racing branches (200 orders)', () => {
    const wf = defineWorkflow('fan').parallel(Array.from({ length: 20 }, () => a) as [typeof a]).then(b).build();
    for (let round = 0; round < 200; round++) {
      const order = Array.from({ length: 20 }, (_, i) => i).sort(() => Math.random() - 0.5);
      const events: MachineEvent[] = [{ type: 'start', input: null }, ...order.map((i) => ({ type: 'completed' as const, key: `0/b${i}`, output: i }))];
      // A redelivered completion of an already-finished branch must change nothing.
      events.splice(5, 0, { type: 'completed', key: `0/b${order[2]}`, output: 'dup' });
      const { transitions } = drive(wf, events);
      const joins = transitions.flatMap((tr) => tr.schedule).filter((s) => s.key === '1');
      assert.equal(joins.length, 1);
      assert.deepEqual(joins[0]!.input, Array.from({ length: 20 }, (_, i) => i));
    }
  });

  it('routes a branch by the selected case, falls back to otherwise, and fails on an unknown case', () => {
    const wf = defineWorkflow('route')
      .then(a)
      .branch((x: unknown) => String(x), { big: (f) => f.then(b).then(c), small: d }, a)
      .then(b)
      .build();
    const big = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'completed', key: '0', output: 'big' },
      { type: 'completed', key: '1/c:big/0', output: 'b1' },
      { type: 'completed', key: '1/c:big/1', output: 'c1' },
    ]);
    assert.deepEqual(big.transitions.map(keys), [['0'], ['1/c:big/0'], ['1/c:big/1'], ['2']]);
    assert.equal(big.transitions[3]!.schedule[0]!.input, 'c1');

    const other = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'completed', key: '0', output: 'huge' },
    ]);
    assert.deepEqual(keys(other.transitions[1]!), ['1/c:*']);

    const strict = defineWorkflow('strict').branch(() => 'nope', { yes: a }).build();
    const failed = drive(strict, [{ type: 'start', input: 0 }]);
    assert.equal(failed.snap.status, 'failed');
    assert.match(failed.transitions[0]!.error!.message, /chose "nope", which is not one of its cases \(yes\)/);

    const throwing = defineWorkflow('throwing')
      .branch(() => {
        throw new Error('boom');
      }, { yes: a })
      .build();
    const t2 = drive(throwing, [{ type: 'start', input: 0 }]);
    assert.equal(t2.snap.status, 'failed');
    assert.match(t2.transitions[0]!.error!.message, /could not choose a case: boom/);
  });

  it('defers a branch met at start in plan mode, and a worker decides it later', () => {
    const wf = defineWorkflow<{ kind: string }>('deferred').branch((x: { kind: string }) => x.kind, { one: a, two: b }).build();
    const planned = step(wf, { status: 'running', state: initialState() }, { type: 'start', input: { kind: 'two' } }, { deferBranches: true });
    assert.deepEqual(planned.schedule.map((s) => [s.key, s.kind]), [['0', 'branch']]);
    const decided = step(wf, { status: 'running', state: planned.state }, { type: 'branch', key: '0', input: { kind: 'two' } });
    assert.deepEqual(decided.schedule.map((s) => [s.key, s.name]), [['0/c:two', 'b']]);
    assert.equal(decided.state.done, 1);
  });

  it('loops until the condition holds, feeding each output to the next iteration', () => {
    const wf = defineWorkflow('poll')
      .loop((f) => f.then(a).then(b), { until: (out: unknown, n) => out === 'ready' || n > 10, max: 5 })
      .then(c)
      .build();
    const { transitions, snap } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'completed', key: '0/i0/0', output: 1 },
      { type: 'completed', key: '0/i0/1', output: 'wait' },
      { type: 'completed', key: '0/i1/0', output: 2 },
      { type: 'completed', key: '0/i1/1', output: 'ready' },
    ]);
    assert.deepEqual(transitions.map(keys), [['0/i0/0'], ['0/i0/1'], ['0/i1/0'], ['0/i1/1'], ['1']]);
    assert.equal(transitions[2]!.schedule[0]!.input, 'wait');
    assert.equal(transitions[4]!.schedule[0]!.input, 'ready');
    assert.equal(snap.status, 'running');
  });

  it('applies the loop limit policy: fail by default, exit when asked, a fixed repeat without a condition', () => {
    const events = (n: number): MachineEvent[] => [
      { type: 'start', input: 0 },
      ...Array.from({ length: n }, (_, i) => ({ type: 'completed' as const, key: `0/i${i}`, output: i })),
    ];
    const failing = defineWorkflow('limit').loop((f) => f.then(a), { until: () => false, max: 3 }).build();
    const r1 = drive(failing, events(3));
    assert.equal(r1.snap.status, 'failed');
    assert.match(r1.transitions[3]!.error!.message, /reached its limit of 3 iterations/);
    assert.equal(r1.transitions[3]!.error!.name, 'LoopLimitError');

    const exiting = defineWorkflow('limit2').loop((f) => f.then(a), { until: () => false, max: 3, onMax: 'exit' }).build();
    const r2 = drive(exiting, events(3));
    assert.equal(r2.snap.status, 'completed');
    assert.equal(r2.transitions[3]!.output, 2);

    const repeat = defineWorkflow('repeat').loop((f) => f.then(a), { max: 4 }).build();
    const r3 = drive(repeat, events(4));
    assert.deepEqual(r3.transitions.map(keys), [['0/i0'], ['0/i1'], ['0/i2'], ['0/i3'], []]);
    assert.equal(r3.snap.status, 'completed');
  });

  it('schedules durable sleeps, waits for events and child workflows as steps of their own', () => {
    const child = defineWorkflow('child').then(a).build();
    const wf = defineWorkflow('steps').sleep('1h').waitForEvent('delivered', { timeoutMs: '2d' }).child(child).build();
    const { transitions, snap } = drive(wf, [
      { type: 'start', input: 'in' },
      { type: 'completed', key: '0', output: 'in' },
      { type: 'completed', key: '1', output: { at: 'noon' } },
      { type: 'completed', key: '2', output: 'child-out' },
    ]);
    const [sleep] = transitions[0]!.schedule;
    assert.equal(sleep!.kind, 'sleep');
    assert.equal(sleep!.delayMs, 3_600_000);
    const [wait] = transitions[1]!.schedule;
    assert.deepEqual([wait!.kind, wait!.name, wait!.timeoutMs], ['event', 'delivered', 172_800_000]);
    const [sub] = transitions[2]!.schedule;
    assert.deepEqual([sub!.kind, sub!.child], ['child', { name: 'child', hash: child.hash }]);
    assert.deepEqual(sub!.input, { at: 'noon' }, 'the event payload is the next input');
    assert.equal(snap.status, 'completed');
    assert.equal(transitions[3]!.output, 'child-out');
  });

  it('on an event time-out fails, or continues with null when asked', () => {
    const failing = defineWorkflow('ev1').waitForEvent('go', { timeoutMs: 1000 }).then(a).build();
    const r1 = drive(failing, [{ type: 'start', input: 0 }, { type: 'timedOut', key: '0' }]);
    assert.equal(r1.snap.status, 'failed');
    assert.equal(r1.transitions[1]!.error!.name, 'EventTimeoutError');
    const going = defineWorkflow('ev2').waitForEvent('go', { timeoutMs: 1000, onTimeout: 'continue' }).then(a).build();
    const r2 = drive(going, [{ type: 'start', input: 0 }, { type: 'timedOut', key: '0' }]);
    assert.equal(r2.snap.status, 'running');
    assert.equal(r2.transitions[1]!.schedule[0]!.input, null);
  });

  it('fails the instance on a failed step and ignores what arrives after', () => {
    const wf = defineWorkflow('fails').parallel([a, b]).then(c).build();
    const { transitions, snap } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'failed', key: '0/b1', error: { name: 'Error', message: 'card declined' } },
      { type: 'completed', key: '0/b0', output: 1 },
    ]);
    assert.equal(snap.status, 'failed');
    assert.equal(transitions[1]!.error!.message, 'card declined');
    assert.equal(transitions[1]!.error!.step, '0/b1');
    assert.equal(transitions[2]!.ignored, 'the instance is already failed');
    assert.deepEqual(transitions[2]!.schedule, []);
  });

  it('holds what it schedules while the snapshot is paused, and schedules nothing once it is cancelled', () => {
    // Cancel, pause and resume are applied in the database (baton.cancel_workflow, ...): the machine
    // only sees the status they leave on the snapshot (client.test.ts covers them end to end).
    const wf = defineWorkflow('ctl').then(a).then(b).then(c).build();
    const started = step(wf, { status: 'running', state: initialState() }, { type: 'start', input: 0 });
    const whilePaused = step(wf, { status: 'paused', state: started.state }, { type: 'completed', key: '0', output: 1 });
    assert.equal(whilePaused.status, 'paused');
    assert.deepEqual(whilePaused.schedule.map((s) => [s.key, s.held]), [['1', true]]);
    const resumed = step(wf, { status: 'running', state: whilePaused.state }, { type: 'completed', key: '1', output: 2 });
    assert.equal(resumed.status, 'running');
    assert.deepEqual(resumed.schedule.map((s) => [s.key, s.held]), [['2', false]]);
    const cancelled = step(wf, { status: 'cancelled', state: started.state }, { type: 'completed', key: '0', output: 1 });
    assert.equal(cancelled.status, 'cancelled');
    assert.deepEqual(cancelled.schedule, []);
    assert.equal(cancelled.ignored, 'the instance is already cancelled');
  });

  it('refuses a step key the definition does not have', () => {
    const wf = defineWorkflow('keys').then(a).build();
    assert.throws(() => step(wf, { status: 'running', state: initialState() }, { type: 'completed', key: '7', output: 1 }), /step "7" does not exist/);
  });

  it('plans the first steps for the SQL API, without inputs', () => {
    const order = defineWorkflow('order').then(t('charge', { priority: 3, retry: { maxAttempts: 5 }, tags: ['pay'] })).parallel([b, c]).build();
    const plan = startPlan(order);
    assert.deepEqual(plan.steps, [
      { key: '0', kind: 'task', name: 'charge', priority: 3, tags: ['pay'], maxAttempts: 5, delayMs: null, timeoutMs: null, child: null },
    ]);
    const forked = startPlan(defineWorkflow('forked').parallel([a, (f) => f.sleep('5s').then(b)]).build());
    assert.deepEqual(forked.steps.map((s) => [s.key, s.kind, s.delayMs]), [['0/b0', 'task', null], ['0/b1/0', 'sleep', 5000]]);
    assert.deepEqual(forked.state.par, { '0': { left: 2, out: {} } });
    assert.equal(forked.steps[1]!.maxAttempts, 1_000, 'a sleep is bounded by lost leases, not attempts');
    assert.deepEqual(startPlan(taskWorkflow(a)).steps.map((s) => s.key), ['0']);
  });
});

describe('retry policy (pure)', () => {
  const policy = { ...DEFAULT_RETRY, maxAttempts: 4, delayMs: 100, maxDelayMs: 1_000, jitter: 0 };

  it('retries with exponential back-off up to the cap, then gives up', () => {
    assert.deepEqual(decideRetry(policy, 1, new Error('x'), 0.5), { retry: true, delayMs: 100 });
    assert.deepEqual(decideRetry(policy, 2, new Error('x'), 0.5), { retry: true, delayMs: 200 });
    assert.deepEqual(decideRetry(policy, 3, new Error('x'), 0.5), { retry: true, delayMs: 400 });
    assert.deepEqual(decideRetry(policy, 4, new Error('x'), 0.5), { retry: false, reason: 'exhausted' });
    assert.equal(backoffDelay({ ...policy, maxAttempts: 99 }, 10, 0.5), 1_000, 'capped');
  });

  it('uses a fixed delay when asked, and spreads delays by the jitter fraction', () => {
    assert.equal(backoffDelay({ ...policy, backoff: 'fixed' }, 3, 0.5), 100);
    const jittered = { ...policy, jitter: 0.5 };
    assert.equal(backoffDelay(jittered, 1, 0), 50);
    assert.equal(backoffDelay(jittered, 1, 0.999999), 150);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(jittered, 2, Math.random());
      assert.ok(d >= 100 && d <= 300, `delay ${d} within 200 +/- 50%`);
    }
  });

  it('fails at once on a non-retryable error; a timeout is retried', () => {
    assert.deepEqual(decideRetry(policy, 1, new NonRetryableError('bad card'), 0.5), { retry: false, reason: 'non-retryable' });
    assert.deepEqual(decideRetry(policy, 1, Object.assign(new Error('x'), { retryable: false }), 0.5), { retry: false, reason: 'non-retryable' });
    assert.equal(decideRetry(policy, 1, new TimeoutError('slow'), 0.5).retry, true);
  });
});

describe('definitions', () => {
  it('hashes the shape: same graph, same hash; task options do not change it; structure does', () => {
    const one = defineWorkflow('h').then(a).parallel([b, c]).build();
    const two = defineWorkflow('h').then(t('a', { retry: { maxAttempts: 9 }, priority: 4 })).parallel([t('b'), t('c')]).build();
    assert.equal(one.hash, two.hash);
    assert.notEqual(defineWorkflow('h').then(a).parallel([c, b]).build().hash, one.hash);
    assert.notEqual(defineWorkflow('h2').then(a).parallel([b, c]).build().hash, one.hash);
    assert.notEqual(taskWorkflow(a).hash, defineWorkflow('a').then(a).build().hash, 'a task job differs from a workflow of the same name');
    assert.match(one.hash, /^[0-9a-f]{16}$/);
  });

  it('versions: 1 keeps the hash workflows had before versions existed; another version is another definition', () => {
    const plain = defineWorkflow('h').then(a).parallel([b, c]).build();
    // Computed by the code before versions existed: a deploy of this release strands nothing.
    assert.equal(plain.hash, 'cc1668c6f702e74b');
    assert.equal(plain.version, 1);
    assert.equal(defineWorkflow('h', { version: 1 }).then(a).parallel([b, c]).build().hash, plain.hash);
    const two = defineWorkflow('h', { version: 2 }).then(a).parallel([b, c]).build();
    assert.equal(two.version, 2);
    assert.notEqual(two.hash, plain.hash, 'the same shape under a new version: its instances run the new version\'s code');
    assert.equal(definitionRecord(two).version, 2);
    for (const bad of [0, -1, 1.5, '2', 1_000_001, Number.NaN]) {
      assert.throws(() => defineWorkflow('h', { version: bad as number }), (e: unknown) => e instanceof ValidationError && /version must be a whole number from 1 to 1000000/.test(e.message));
    }
  });

  it('a worker may run several versions of a workflow, but not two shapes under one version', () => {
    const v1 = defineWorkflow('v').then(a).build();
    const v2 = defineWorkflow('v', { version: 2 }).then(a).then(b).build();
    const registry = buildRegistry([v1, v2]);
    assert.deepEqual([...registry.keys()].sort(), [v1.hash, v2.hash].sort());
    assert.throws(
      () => buildRegistry([v1, defineWorkflow('v').then(b).build()]),
      /two different workflows are named "v" with version 1: give the newer shape a higher version \(defineWorkflow\('v', \{ version: 2 \}\)\)/,
    );
    assert.throws(() => buildRegistry([v2, defineWorkflow('v', { version: 2 }).then(b).build()]), /named "v" with version 2/);
  });

  it('refuses graphs that cannot run', () => {
    assert.throws(() => defineWorkflow('empty').build(), /has no steps/);
    assert.throws(() => defineWorkflow('p').parallel([]), /at least one branch/);
    assert.throws(() => defineWorkflow('p').parallel([(f) => f]).build(), /parallel branch 0 has no steps/);
    assert.throws(() => defineWorkflow('l').loop((f) => f, { max: 2 }).build(), /loop body has no steps/);
    assert.throws(() => defineWorkflow('l').loop((f) => f.then(a), { max: 0 }), /max: a whole number/);
    assert.throws(() => defineWorkflow('bad name!'), /workflow name must be/);
    assert.throws(() => defineWorkflow('dup').then(a).then(t('a')).build(), /two different tasks named "a"/);
    assert.throws(() => defineWorkflow('s').sleep('soon'), /duration like/);
    assert.throws(() => defineWorkflow('b').branch(() => 'x', { 'no/slash': a }), /branch case name/);
    assert.throws(() => defineTask('t', async () => 1, { retry: { maxAttempts: 0 } }), /retry.maxAttempts must be a whole number >= 1/);
    assert.throws(() => defineTask('t', async () => 1, { priority: -1 }), /priority must be a whole number from 0/);
    assert.throws(() => defineTask('t', async () => 1, { tags: ['tab\there'] }), /each tag must be/);
  });
});
