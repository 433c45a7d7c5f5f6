import assert from 'node:assert/strict';
import { ValidationError } from '../src/errors.ts';
import { defineTask, defineWorkflow, type MachineEvent, type Workflow } from '../src/workflow/index.ts';
import { drive, keys } from './support/machine.ts';

const t = (name: string) => defineTask(name, async (x: unknown) => x);
const a = t('a');
const b = t('b');
const c = t('c');
const d = t('d');

const boom = (message = 'boom') => ({ name: 'Error', message });
const shuffle = <T>(xs: T[]) => xs.map((x) => [Math.random(), x] as const).sort((p, q) => p[0] - q[0]).map(([, x]) => x);

describe('any-of and quorum joins (pure state machine)', () => {
  it('any: the first branch to complete fires the join once with { branch, output }; the others are cancelled, their late results ignored', () => {
    const wf = defineWorkflow('any').parallel([a, b, c], { join: 'any' }).then(d).build();
    const { snap, transitions } = drive(wf, [
      { type: 'start', input: 1 },
      { type: 'completed', key: '0/b1', output: 'B' },
      { type: 'completed', key: '0/b0', output: 'A' },
      { type: 'failed', key: '0/b2', error: boom() },
    ]);
    assert.deepEqual(transitions.map(keys), [['0/b0', '0/b1', '0/b2'], ['1'], [], []]);
    assert.deepEqual(transitions[1]!.schedule[0]!.input, { branch: 1, output: 'B' });
    assert.deepEqual(transitions[1]!.joined, ['0']);
    assert.deepEqual(transitions[1]!.cancel, ['0/b0', '0/b2']);
    assert.match(transitions[2]!.ignored!, /already joined/);
    assert.equal(transitions[3]!.status, 'running', 'a cancelled branch failing late does not fail the instance');
    assert.equal(transitions[3]!.joined, undefined);
    assert.deepEqual(snap.state.par, {});
  });

  it('quorum k: fires at the k-th completion with the winners in completion order; failures below the limit are counted, not fatal', () => {
    const wf = defineWorkflow('quorum').parallel([a, b, c, d], { join: { quorum: 2 } }).then(d).build();
    const { transitions } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'failed', key: '0/b0', error: boom() },
      { type: 'completed', key: '0/b3', output: 3 },
      { type: 'failed', key: '0/b1', error: boom() },
      { type: 'completed', key: '0/b2', output: 2 },
    ]);
    assert.deepEqual(transitions.map((tr) => tr.status), ['running', 'running', 'running', 'running', 'running']);
    assert.deepEqual(transitions.map(keys).slice(1), [[], [], [], ['1']]);
    assert.deepEqual(transitions[4]!.schedule[0]!.input, [{ branch: 3, output: 3 }, { branch: 2, output: 2 }]);
    assert.equal(transitions[4]!.cancel, undefined, 'no branch was left out');
  });

  it('fires exactly once, with the first completions as winners, whatever the order of 8 racing branches with failures (200 orders)', () => {
    const wf = defineWorkflow('race').parallel([a, a, a, a, a, a, a, a], { join: { quorum: 3 }, rest: 'finish' }).then(b).build();
    for (let round = 0; round < 200; round++) {
      const failing = new Set(shuffle([0, 1, 2, 3, 4, 5, 6, 7]).slice(0, round % 4));
      const order = shuffle([0, 1, 2, 3, 4, 5, 6, 7]);
      const events: MachineEvent[] = [{ type: 'start', input: null }];
      for (const i of order) {
        events.push(failing.has(i) ? { type: 'failed', key: `0/b${i}`, error: boom() } : { type: 'completed', key: `0/b${i}`, output: i });
      }
      // A redelivered completion changes nothing.
      events.splice(4, 0, events[2]!);
      const { transitions, snap } = drive(wf, events);
      const joins = transitions.flatMap((tr) => tr.schedule).filter((s) => s.key === '1');
      assert.equal(joins.length, 1, `round ${round}`);
      assert.equal(transitions.filter((tr) => tr.joined).length, 1);
      const winners = order.filter((i) => !failing.has(i)).slice(0, 3);
      assert.deepEqual(joins[0]!.input, winners.map((i) => ({ branch: i, output: i })));
      assert.equal(snap.status, 'running');
      assert.deepEqual(snap.state.par, {}, 'the frame is gone once every straggler is in');
    }
  });

  it('fails the step at once when the quorum can no longer be met, naming the failed step (so a retry runs it again)', () => {
    const wf = defineWorkflow('unreachable').parallel([a, b, c], { join: { quorum: 2 } }).then(d).build();
    const { transitions, snap } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'failed', key: '0/b1', error: boom('first') },
      { type: 'failed', key: '0/b2', error: boom('second') },
    ]);
    assert.equal(transitions[1]!.status, 'running');
    assert.equal(transitions[2]!.status, 'failed');
    assert.equal(transitions[2]!.error!.name, 'JoinError');
    assert.equal(transitions[2]!.error!.step, '0/b2');
    assert.match(transitions[2]!.error!.message, /parallel step "0" needs 2 of 3 branches to complete, and 2 failed \(last: second\)/);
    // A retry runs the failed branches again; their completions count.
    const retried = drive(wf, [
      { type: 'completed', key: '0/b2', output: 'two' },
      { type: 'completed', key: '0/b0', output: 'zero' },
    ], { status: 'running', state: snap.state });
    assert.deepEqual(retried.transitions.map(keys), [[], ['1']]);
    assert.deepEqual(retried.transitions[1]!.schedule[0]!.input, [{ branch: 2, output: 'two' }, { branch: 0, output: 'zero' }]);
  });

  it('any: fails only when every branch failed', () => {
    const wf = defineWorkflow('all-fail').parallel([a, b], { join: 'any' }).build();
    const { transitions } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'failed', key: '0/b0', error: boom() },
      { type: 'failed', key: '0/b1', error: boom() },
    ]);
    assert.deepEqual(transitions.map((tr) => tr.status), ['running', 'running', 'failed']);
    assert.match(transitions[2]!.error!.message, /needs one branch to complete, and 2 failed/);
  });

  it("rest 'finish': stragglers run on without firing the join again; the instance completes after the last of them", () => {
    const wf = defineWorkflow('finish').parallel([a, b, (f) => f.then(c).then(d)], { join: 'any', rest: 'finish' }).then(d).build();
    const { transitions, snap } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'completed', key: '0/b0', output: 'A' },
      { type: 'completed', key: '1', output: 'end' },
      { type: 'failed', key: '0/b1', error: boom() },
      { type: 'completed', key: '0/b2/0', output: 'C' },
      { type: 'completed', key: '0/b2/1', output: 'D' },
    ]);
    assert.deepEqual(transitions.map(keys), [['0/b0', '0/b1', '0/b2/0'], ['1'], [], [], ['0/b2/1'], []]);
    assert.equal(transitions[1]!.cancel, undefined);
    assert.deepEqual(transitions.map((tr) => tr.status), ['running', 'running', 'running', 'running', 'running', 'completed']);
    assert.equal(transitions[5]!.output, 'end', "the instance's output is its last step's");
    assert.deepEqual(snap.state.par, {});
    assert.equal(snap.state.end, undefined);
  });

  it('a failure deep in a branch fails that branch (through an all-join and a sub-flow) and cancels the rest of it', () => {
    const wf = defineWorkflow('deep')
      .parallel([(f) => f.then(a).parallel([b, c]), d], { join: 'any' })
      .then(a)
      .build();
    const { transitions } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'completed', key: '0/b0/0', output: 1 },
      { type: 'failed', key: '0/b0/1/b0', error: boom() },
      { type: 'completed', key: '0/b1', output: 'won' },
    ]);
    assert.deepEqual(transitions.map(keys), [['0/b0/0', '0/b1'], ['0/b0/1/b0', '0/b0/1/b1'], [], ['1']]);
    assert.equal(transitions[2]!.status, 'running');
    assert.deepEqual(transitions[2]!.cancel, ['0/b0'], 'the failed branch stops: its other sub-branch is cancelled');
    assert.deepEqual(transitions[3]!.schedule[0]!.input, { branch: 1, output: 'won' });
    assert.deepEqual(transitions[3]!.state.par, {});
  });

  it('a quorum that cannot be met inside an any-join fails only that branch', () => {
    const wf = defineWorkflow('nested').parallel([(f) => f.parallel([a, b], { join: { quorum: 2 } }), c], { join: 'any' }).build();
    const { transitions } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'failed', key: '0/b0/b0', error: boom() },
      { type: 'completed', key: '0/b1', output: 'c' },
    ]);
    assert.deepEqual(transitions.map((tr) => tr.status), ['running', 'running', 'completed']);
    assert.deepEqual(transitions[1]!.cancel, ['0/b0/b0', '0/b0'], 'the inner step failed: its other branch is cancelled');
    assert.deepEqual(transitions[2]!.output, { branch: 1, output: 'c' });
  });

  it('a timed-out wait in a branch is a failed branch; the step error is reported for its task row', () => {
    const wf = defineWorkflow('wait').parallel([(f) => f.waitForEvent('go', { timeoutMs: 10 }), a], { join: 'any' }).build();
    const { transitions } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'timedOut', key: '0/b0' },
    ]);
    assert.equal(transitions[1]!.status, 'running');
    assert.equal(transitions[1]!.stepError!.name, 'EventTimeoutError');
  });

  it('checks the options and keeps the hash of a plain parallel step', () => {
    assert.throws(() => defineWorkflow('x').parallel([a, b], { join: { quorum: 3 } }), ValidationError);
    assert.throws(() => defineWorkflow('x').parallel([a, b], { join: { quorum: 0 } }), ValidationError);
    assert.throws(() => defineWorkflow('x').parallel([a, b], { join: { quorum: 1.5 } }), ValidationError);
    assert.throws(() => defineWorkflow('x').parallel([a, b], { join: 'some' as 'any' }), /join must be "all", "any" or \{ quorum: k \}/);
    assert.throws(() => defineWorkflow('x').parallel([a, b], { join: 'all', rest: 'cancel' }), /rest applies to join "any" or a quorum/);
    assert.throws(() => defineWorkflow('x').parallel([a, b], { join: 'any', rest: 'later' as 'cancel' }), ValidationError);
    const plain = defineWorkflow('h').parallel([a, b]).build();
    assert.equal(defineWorkflow('h').parallel([a, b], { join: 'all' }).build().hash, plain.hash);
    const any = defineWorkflow('h').parallel([a, b], { join: 'any' }).build();
    const finish = defineWorkflow('h').parallel([a, b], { join: 'any', rest: 'finish' }).build();
    const quorum = defineWorkflow('h').parallel([a, b], { join: { quorum: 1 } }).build();
    assert.equal(new Set([plain.hash, any.hash, finish.hash, quorum.hash]).size, 4);
    const first = (w: Workflow) => (w.shape as { steps: Record<string, unknown>[] }).steps[0]!;
    assert.deepEqual([first(any).join, first(any).rest, first(quorum).join], ['any', 'cancel', { quorum: 1 }]);
    assert.equal('join' in first(plain), false, 'a plain parallel step is described as before');
  });
});
