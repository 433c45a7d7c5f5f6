/** stateAt(): an instance's state rebuilt from its history, as the machine had it, with branch outputs as values. */
import assert from 'node:assert/strict';
import { stateAt } from '../src/client/history.ts';
import type { HistoryEntry } from '../src/store/history.ts';

const at = new Date('2026-01-01T00:00:00Z');

describe('stateAt', () => {
  it('gives the finished branches\' outputs as values, not as JSON text', () => {
    // The machine keeps a parallel step's finished outputs as JSON text (state holds no nulls of its own).
    const history: HistoryEntry[] = [
      { version: 1, kind: 'started', at, detail: { status: 'running', state: { par: { '0': { left: 2, out: {} } }, done: 0 } } },
      { version: 2, kind: 'completed', at, detail: { key: '0/p0', status: 'running', patch: { par: { '0': { left: 1, out: { '0': '{"receipt":"r-1","n":null}' } } }, done: 1 } } },
      { version: 3, kind: 'completed', at, detail: { key: '0/p1', status: 'running', patch: { par: { '0': { left: 0, out: { '1': 'null' } } }, done: 2 } } },
    ];
    assert.deepEqual(stateAt(history, 2).state, { par: { '0': { left: 1, out: { '0': { receipt: 'r-1', n: null } } } }, done: 1 });
    assert.deepEqual(stateAt(history).state, { par: { '0': { left: 0, out: { '0': { receipt: 'r-1', n: null }, '1': null } } }, done: 2 });
    assert.deepEqual(stateAt(history, 1).state, { par: { '0': { left: 2, out: {} } }, done: 0 });
  });
});
