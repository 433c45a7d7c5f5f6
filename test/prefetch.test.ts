import assert from 'node:assert/strict';
import { AHEAD_MS, MAX_AHEAD, Prefetch } from '../src/worker/prefetch.ts';

describe('prefetch (tasks held ahead of free slots)', () => {
  function clock() {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  }

  it('a configured prefetch is kept whatever the rate', () => {
    const c = clock();
    const p = new Prefetch(7, 24, c.now);
    p.taskFinished(10_000);
    c.advance(1_000);
    assert.equal(p.value, 7);
  });

  it('unset: four per slot until a rate is known, then about AHEAD_MS of work, within bounds', () => {
    const c = clock();
    const p = new Prefetch(undefined, 24, c.now);
    assert.equal(p.value, 96);
    // Short tasks: 5,000 a second -> 2,500 in AHEAD_MS, capped.
    p.taskFinished(1_250);
    c.advance(250);
    assert.equal(p.value, MAX_AHEAD);
    // Long tasks: 24 slots finishing once a second -> never below one per slot.
    const slow = new Prefetch(undefined, 24, c.now);
    slow.taskFinished(6);
    c.advance(250);
    assert.equal(slow.value, 24);
    // In between: 200 a second -> 100 ahead.
    const mid = new Prefetch(undefined, 24, c.now);
    mid.taskFinished(50);
    c.advance(250);
    assert.equal(mid.value, Math.round((200 * AHEAD_MS) / 1000));
  });

  it('follows the rate down when tasks get slower, and back up', () => {
    const c = clock();
    const p = new Prefetch(undefined, 10, c.now);
    p.taskFinished(1_000);
    c.advance(250);
    assert.equal(p.value, MAX_AHEAD);
    for (let i = 0; i < 12; i++) {
      c.advance(250);
      void p.value;
    }
    assert.equal(p.value, 10, 'an idle worker holds one per slot');
    p.taskFinished(500);
    c.advance(250);
    assert.ok(p.value > 400, `back up after one busy window (got ${p.value})`);
  });
});
