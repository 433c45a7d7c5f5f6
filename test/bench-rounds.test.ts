import assert from 'node:assert/strict';
import { renderTable, type Figure } from '../bench/lib/report.ts';
import { combineRounds, roundOrder } from '../bench/lib/rounds.ts';
import { median } from '../bench/lib/stats.ts';

const fig = (system: string, value: number | null, extra: Partial<Figure> = {}): Figure => ({
  scenario: 'S1',
  system,
  metric: 'jobs/s',
  value,
  better: 'higher',
  ...extra,
});

describe('bench --repeat: runs combined into medians (bench/lib/rounds.ts)', () => {
  it('runs the systems in the given order, then reversed, in turn', () => {
    assert.deepEqual(roundOrder(['baton', 'graphile', 'raw'], 1), ['baton', 'graphile', 'raw']);
    assert.deepEqual(roundOrder(['baton', 'graphile', 'raw'], 2), ['raw', 'graphile', 'baton']);
    assert.deepEqual(roundOrder(['baton', 'graphile', 'raw'], 3), ['baton', 'graphile', 'raw']);
  });

  it('takes the median of an odd and of an even count', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it("gives each figure's median, and Baton's advantage as the median of each run's own ratio", () => {
    // Run 2 ran the systems the other way round: Baton last.
    const combined = combineRounds([
      [fig('baton', 100, { rssMb: 130, cpuUsPerUnit: 30 }), fig('graphile', 200, { rssMb: 120 })],
      [fig('graphile', 150, { rssMb: 125 }), fig('baton', 120, { rssMb: 140, cpuUsPerUnit: 20 })],
      [fig('baton', 80, { rssMb: 135, cpuUsPerUnit: 25 }), fig('graphile', 100, { rssMb: 110 })],
    ]);
    assert.deepEqual(combined.map((f) => f.system), ['baton', 'graphile'], 'Baton first, as in a single run');
    const [baton, graphile] = combined as [Figure, Figure];
    assert.equal(baton.value, 100);
    assert.equal(graphile.value, 150);
    assert.equal(baton.rssMb, 140, 'the peak of the runs');
    assert.equal(baton.cpuUsPerUnit, 25);
    assert.deepEqual(baton.rounds, { values: [100, 120, 80], advantages: undefined, rssMb: [130, 140, 135] });
    assert.deepEqual(graphile.rounds?.advantages, [0.5, 0.8, 0.8]);
    // The ratio of the medians would be 0.67x; each run's own ratio is what the table shows.
    const table = renderTable({ id: 'S1', title: 'drain', notes: [] }, combined);
    assert.match(table, /graphile\s+150\s+125\s+0\.80x/);
    assert.match(table, /baton \/ graphile = 0\.80x \(jobs\/s, higher is better; median of 3 runs: 0\.50x, 0\.80x, 0\.80x\)/);
  });

  it('orients the advantage of a lower-is-better metric the other way', () => {
    const lower = (system: string, value: number) => fig(system, value, { metric: 'p50 ms', better: 'lower' });
    const [, peer] = combineRounds([
      [lower('baton', 2), lower('graphile', 3)],
      [lower('baton', 4), lower('graphile', 4)],
    ]) as [Figure, Figure];
    assert.deepEqual(peer.rounds?.advantages, [1.5, 1]);
    assert.match(renderTable({ id: 'S2', title: 'latency', notes: [] }, [lower('baton', 3), peer]), /graphile \/ baton = 1\.25x/);
  });

  it('marks a figure that failed or is missing in any run as an error, not a median of the rest', () => {
    const combined = combineRounds([
      [fig('baton', 100), fig('graphile', 200)],
      [fig('baton', null, { error: 'worker crashed' }), fig('graphile', 150)],
      [fig('graphile', 180)],
    ]);
    const baton = combined.find((f) => f.system === 'baton')!;
    assert.equal(baton.error, 'run 2: worker crashed');
    assert.equal(baton.value, null);
    const graphile = combined.find((f) => f.system === 'graphile')!;
    assert.equal(graphile.error, undefined);
    assert.deepEqual(graphile.rounds?.advantages, [0.5, null, null]);
    assert.doesNotMatch(renderTable({ id: 'S1', title: 'drain', notes: [] }, combined), /baton \/ graphile =/);
  });

  it('leaves a single run as it is', () => {
    const one = [fig('baton', 1), fig('graphile', 2)];
    assert.equal(combineRounds([one]), one);
  });
});
