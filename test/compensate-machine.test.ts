import assert from 'node:assert/strict';
import { ValidationError } from '../src/errors.ts';
import { defineTask, defineWorkflow, type MachineEvent } from '../src/workflow/index.ts';
import { drive, keys } from './support/machine.ts';

const t = (name: string, options = {}) => defineTask(name, async (x: unknown) => x, options);
const book = t('book');
const pay = t('pay');
const ship = t('ship');
const unbook = t('unbook', { retry: { maxAttempts: 7 }, priority: 4, tags: ['undo'] });
const refund = t('refund');
const fail = (key: string, message = 'boom'): MachineEvent => ({ type: 'failed', key, error: { name: 'Error', message } });


describe('saga compensation in the state machine (pure)', () => {
  const trip = defineWorkflow('trip').then(book, { compensate: unbook }).then(pay, { compensate: refund }).then(ship).build();

  it('compensates the completed steps in reverse order, one at a time, then ends compensated', () => {
    const { snap, transitions } = drive(trip, [
      { type: 'start', input: 'in' },
      { type: 'completed', key: '0', output: 'booked' },
      { type: 'completed', key: '1', output: 'paid' },
      fail('2', 'no truck'),
      { type: 'completed', key: '!1', output: null },
      { type: 'completed', key: '!0', output: null },
    ]);
    const failed = transitions[3]!;
    assert.equal(failed.status, 'running', 'it compensates instead of failing');
    assert.equal(failed.halt, true, 'the forward work is to be closed');
    assert.deepEqual(keys(failed), ['!1']);
    assert.equal(failed.schedule[0]!.compensates, '1');
    assert.equal(failed.schedule[0]!.name, 'refund');
    assert.deepEqual(keys(transitions[4]!), ['!0']);
    const undo = transitions[4]!.schedule[0]!;
    assert.deepEqual([undo.name, undo.maxAttempts, undo.priority, undo.tags], ['unbook', 7, 4, ['undo']], 'its own policy');
    assert.equal(snap.status, 'compensated');
    assert.equal(transitions[5]!.error!.code, 'COMPENSATED');
    assert.equal((transitions[5]!.error!.cause as { message: string }).message, 'no truck');
    assert.equal(transitions[5]!.error!.step, '2');
    assert.equal(snap.state.sag, undefined);
  });

  it('fails with both errors when a compensation fails for good, and stops there', () => {
    const { snap, transitions } = drive(trip, [
      { type: 'start', input: 'in' },
      { type: 'completed', key: '0', output: 'booked' },
      { type: 'completed', key: '1', output: 'paid' },
      fail('2', 'no truck'),
      fail('!1', 'bank down'),
    ]);
    assert.equal(snap.status, 'failed');
    const e = transitions[4]!.error!;
    assert.equal(e.code, 'COMPENSATION_FAILED');
    assert.equal(e.step, '!1', 'a retry runs the compensation again');
    assert.match(e.message, /bank down/);
    assert.match(e.message, /no truck/);
    assert.deepEqual(transitions[4]!.schedule, []);
    // After a retry (the database resets !1 and the status), it goes on with !0.
    const resumed = drive(trip, [{ type: 'completed', key: '!1', output: null }, { type: 'completed', key: '!0', output: null }], {
      status: 'running',
      state: snap.state,
    });
    assert.deepEqual(keys(resumed.transitions[0]!), ['!0']);
    assert.equal(resumed.snap.status, 'compensated');
  });

  it('fails as before when no completed step has a compensation', () => {
    const { snap, transitions } = drive(trip, [{ type: 'start', input: 'in' }, fail('0')]);
    assert.equal(snap.status, 'failed');
    assert.equal(transitions[1]!.halt, undefined);
    assert.equal(snap.state.comp, undefined, 'no compensation state for steps that never completed');
  });

  it('compensates only the parallel branches that completed, latest first', () => {
    const wf = defineWorkflow('fan')
      .then(book, { compensate: unbook })
      .parallel([(f) => f.then(pay, { compensate: refund }), (f) => f.then(ship), (f) => f.then(t('hold'), { compensate: t('release') })])
      .build();
    const { snap, transitions } = drive(wf, [
      { type: 'start', input: 1 },
      { type: 'completed', key: '0', output: 2 },
      { type: 'completed', key: '1/b0', output: 3 },
      fail('1/b1'),
      { type: 'completed', key: '!1/b0', output: null },
      { type: 'completed', key: '!0', output: null },
    ]);
    assert.deepEqual(keys(transitions[3]!), ['!1/b0'], 'branch 2 never completed: not compensated');
    assert.deepEqual(keys(transitions[4]!), ['!0']);
    assert.equal(snap.status, 'compensated');
  });

  it('a forward completion folded in while compensating is compensated next; other forward events change nothing', () => {
    const wf = defineWorkflow('race').parallel([(f) => f.then(pay, { compensate: refund }), (f) => f.then(book, { compensate: unbook }), ship]).build();
    const { snap, transitions } = drive(wf, [
      { type: 'start', input: 1 },
      { type: 'completed', key: '0/b0', output: 'p' },
      fail('0/b2'),
      { type: 'completed', key: '0/b1', output: 'b' },
      fail('0/b1'),
      { type: 'completed', key: '!0/b0', output: null },
      { type: 'completed', key: '!0/b1', output: null },
    ]);
    assert.deepEqual(keys(transitions[2]!), ['!0/b0']);
    assert.deepEqual(keys(transitions[3]!), [], 'the join does not run');
    assert.equal(transitions[4]!.ignored, 'the instance is compensating');
    assert.deepEqual(keys(transitions[5]!), ['!0/b1']);
    assert.equal(snap.status, 'compensated');
  });

  it('a duplicate compensation completion changes nothing', () => {
    const { transitions } = drive(trip, [
      { type: 'start', input: 'in' },
      { type: 'completed', key: '0', output: 'booked' },
      fail('1'),
      { type: 'completed', key: '!0', output: null },
      { type: 'completed', key: '!0', output: null },
    ]);
    assert.equal(transitions[3]!.status, 'compensated');
    assert.match(transitions[4]!.ignored!, /already compensated/);
  });

  it("a cancel's request compensates, or cancels when there is nothing to undo", () => {
    const cancel = { name: 'CancelledError', code: 'CANCELLED', message: 'cancelled: changed plans' };
    const { snap, transitions } = drive(trip, [
      { type: 'start', input: 'in' },
      { type: 'completed', key: '0', output: 'booked' },
      { type: 'completed', key: '!@3', output: cancel },
      { type: 'completed', key: '!@4', output: cancel },
      { type: 'completed', key: '!0', output: null },
    ]);
    assert.deepEqual(keys(transitions[2]!), ['!0']);
    assert.equal(transitions[3]!.ignored, 'the instance is already compensating');
    assert.equal(snap.status, 'compensated');
    assert.equal((transitions[4]!.error!.cause as { code: string }).code, 'CANCELLED');

    const nothing = drive(trip, [{ type: 'start', input: 'in' }, { type: 'completed', key: '!@2', output: cancel }]);
    assert.equal(nothing.snap.status, 'cancelled');
    const lost = drive(trip, [{ type: 'start', input: 'in' }, { type: 'completed', key: '!@2', output: { name: 'LeaseLostError', message: 'x' } }]);
    assert.equal(lost.snap.status, 'failed');
  });

  it('compensates each loop iteration that completed', () => {
    const wf = defineWorkflow('loop').loop((f) => f.then(book, { compensate: unbook }), { max: 3 }).then(ship).build();
    const { transitions } = drive(wf, [
      { type: 'start', input: 0 },
      { type: 'completed', key: '0/i0', output: 1 },
      { type: 'completed', key: '0/i1', output: 2 },
      fail('0/i2'),
      { type: 'completed', key: '!0/i1', output: null },
    ]);
    assert.deepEqual(keys(transitions[3]!), ['!0/i1']);
    assert.deepEqual(keys(transitions[4]!), ['!0/i0']);
  });

  it('a failure decided by the machine itself (a branch that cannot choose) compensates too', () => {
    const wf = defineWorkflow('branchy').then(book, { compensate: unbook }).branch(() => 'nope', { yes: ship }).build();
    const { transitions } = drive(wf, [{ type: 'start', input: 0 }, { type: 'completed', key: '0', output: 1 }]);
    assert.equal(transitions[1]!.status, 'running');
    assert.deepEqual(keys(transitions[1]!), ['!0']);
  });

  it('changes the definition hash, and refuses what cannot compensate', () => {
    const plain = defineWorkflow('trip').then(book).then(pay).then(ship).build();
    assert.notEqual(plain.hash, trip.hash);
    assert.equal(trip.tasks.get('unbook'), unbook, 'a worker registers the compensation tasks');
    assert.deepEqual((trip.shape as { steps: { compensate?: string }[] }).steps[0]!.compensate, 'unbook');
    const child = defineWorkflow('child').then(ship).build();
    assert.throws(() => defineWorkflow('x').then(child as never, { compensate: unbook }), ValidationError);
    assert.throws(() => defineWorkflow('x').then(book, { compensate: 'unbook' as never }), ValidationError);
    const keyed = defineTask('keyed', async () => null, { concurrency: { limit: 1, key: () => 'k' } });
    assert.throws(() => defineWorkflow('x').then(book, { compensate: keyed as never }), /keyed/);
  });
});
