/** Schedules without a database: cron ticks in time zones, definition-time errors, catch-up plans. */
import assert from 'node:assert/strict';
import { ValidationError } from '../src/errors.ts';
import { cronTiming } from '../src/workflow/cron.ts';
import { validateId } from '../src/workflow/names.ts';
import { CATCH_UP_LIMIT, defineSchedule, planTicks, tickId } from '../src/workflow/schedule.ts';
import { defineTask, defineWorkflow } from '../src/workflow/index.ts';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
const ny = (cron: string) => cronTiming(cron, 'America/New_York', 'test');
/** The first n ticks after `from`. */
function ticks(timing: ReturnType<typeof cronTiming>, from: string, n: number): (string | null)[] {
  const out: (string | null)[] = [];
  let t: number | null = ms(from);
  for (let i = 0; i < n && t !== null; i++) out.push(iso((t = timing.next(t))));
  return out;
}

const job = defineTask('scheduled-job', async (input: { n: number }) => input.n);

describe('cron ticks in a time zone', () => {
  it('a daily tick keeps its wall time across DST: 09:00 New York is 14:00Z in winter, 13:00Z in summer', () => {
    assert.deepEqual(ticks(ny('0 9 * * *'), '2026-03-07T12:00:00Z', 3), ['2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z', '2026-03-09T13:00:00.000Z']);
    assert.deepEqual(ticks(ny('0 9 * * *'), '2026-10-31T12:00:00Z', 2), ['2026-10-31T13:00:00.000Z', '2026-11-01T14:00:00.000Z']);
  });

  it('a wall time skipped when clocks go forward fires at the jump (03:00 EDT), once', () => {
    // 2026-03-08: New York goes from 02:00 EST to 03:00 EDT (07:00Z); 02:30 does not exist that day.
    assert.deepEqual(ticks(ny('30 2 * * *'), '2026-03-07T00:00:00Z', 3), ['2026-03-07T07:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']);
    // 02:00 and 03:00 both name 07:00Z that day: one tick, not two.
    assert.deepEqual(ticks(ny('0 2,3 * * *'), '2026-03-08T00:00:00Z', 2), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:00:00.000Z']);
  });

  it('a wall time that occurs twice when clocks go back fires once, at its first occurrence', () => {
    // 2026-11-01: 01:00-01:59 happens in EDT (05:00Z-05:59Z), then again in EST (06:00Z-06:59Z).
    assert.deepEqual(ticks(ny('30 1 * * *'), '2026-10-31T12:00:00Z', 2), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
    assert.deepEqual(ticks(ny('0 * * * *'), '2026-11-01T03:30:00Z', 4), [
      '2026-11-01T04:00:00.000Z',
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T07:00:00.000Z',
      '2026-11-01T08:00:00.000Z',
    ]);
    // Asked from inside the second 01:xx, the next tick is 02:00 EST, not a first-pass instant in the past.
    assert.equal(iso(ny('* * * * *').next(ms('2026-11-01T06:10:00Z'))), '2026-11-01T07:00:00.000Z');
  });

  it('lists due ticks newest first, bounded, also across the clocks going back', () => {
    const everyMinute = ny('* * * * *');
    const { ticks: due, more } = everyMinute.between(ms('2026-11-01T05:55:00Z'), ms('2026-11-01T06:30:00Z'), 10);
    assert.deepEqual(due.map(iso), ['2026-11-01T05:59:00.000Z', '2026-11-01T05:58:00.000Z', '2026-11-01T05:57:00.000Z', '2026-11-01T05:56:00.000Z']);
    assert.equal(more, false);
    const bounded = cronTiming('* * * * *', 'UTC', 'test').between(ms('2026-01-01T00:00:00Z'), ms('2026-01-02T00:00:00Z'), 5);
    assert.deepEqual(bounded.ticks.map(iso), ['2026-01-02T00:00:00.000Z', '2026-01-01T23:59:00.000Z', '2026-01-01T23:58:00.000Z', '2026-01-01T23:57:00.000Z', '2026-01-01T23:56:00.000Z']);
    assert.equal(bounded.more, true);
  });

  it('day-of-month and day-of-week are ORed when both are restricted (cron semantics), in the zone', () => {
    // 1st of the month or a Monday, at 00:00 Tokyo (15:00Z the day before).
    assert.deepEqual(ticks(cronTiming('0 0 1 * 1', 'Asia/Tokyo', 'test'), '2026-05-31T00:00:00Z', 3), [
      '2026-05-31T15:00:00.000Z', // Mon 1 June (both)
      '2026-06-07T15:00:00.000Z', // Mon 8 June
      '2026-06-14T15:00:00.000Z',
    ]);
  });

  it('a rare tick is found quickly: 29 February', () => {
    const started = performance.now();
    assert.equal(iso(cronTiming('0 12 29 2 *', 'UTC', 'test').next(ms('2026-12-02T00:00:00Z'))), '2028-02-29T12:00:00.000Z');
    assert.ok(performance.now() - started < 1_000);
  });
});

describe('defineSchedule', () => {
  const refused = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof ValidationError && e.code === 'VALIDATION' && pattern.test(e.message));

  it('reads a schedule: defaults to UTC and catchUp latest, keeps the input, runs a task as a one-task job', () => {
    const s = defineSchedule('nightly', { cron: '0  3 * * *', run: job, input: { n: 1 } });
    assert.equal(s.cron, '0 3 * * *');
    assert.equal(s.timezone, 'UTC');
    assert.equal(s.catchUp, 'latest');
    assert.equal(s.workflow.kind, 'task');
    assert.equal(s.workflow.name, 'scheduled-job');
    assert.deepEqual(s.input, { n: 1 });
    const wf = defineWorkflow('scheduled-flow').then(job).build();
    assert.equal(defineSchedule('flow', { cron: '*/5 * * * *', run: wf, input: { n: 2 }, timezone: 'Europe/Paris', catchUp: 'all' }).workflow, wf);
  });

  it('a bad cron expression is a ValidationError naming the schedule and the problem', () => {
    refused(() => defineSchedule('bad', { cron: '61 * * * *', run: job }), /schedule "bad": bad cron expression "61 \* \* \* \*".*range 0-59/);
    refused(() => defineSchedule('bad', { cron: '* * * *', run: job }), /schedule "bad": bad cron expression.*five fields/);
    refused(() => defineSchedule('bad', { cron: '@daily', run: job }), /bad cron expression "@daily"/);
    refused(() => defineSchedule('bad', { cron: '0 3 * * MON', run: job }), /bad cron expression/);
    refused(() => defineSchedule('bad', { cron: '', run: job }), /cron must be a string of five fields/);
    refused(() => defineSchedule('bad', { cron: 3 as unknown as string, run: job }), /cron must be a string/);
    refused(() => defineSchedule('bad', { cron: '0 0 30 2 *', run: job }), /never fires/);
  });

  it('refuses a bad time zone, policy, name, target or input', () => {
    refused(() => defineSchedule('tz', { cron: '0 3 * * *', run: job, timezone: 'Mars/Olympus' }), /schedule "tz": unknown timezone "Mars\/Olympus"/);
    refused(() => defineSchedule('tz', { cron: '0 3 * * *', run: job, timezone: '' }), /timezone must be an IANA zone name/);
    refused(() => defineSchedule('cu', { cron: '0 3 * * *', run: job, catchUp: 'some' as 'all' }), /catchUp must be one of none, latest, all/);
    refused(() => defineSchedule('a/b', { cron: '0 3 * * *', run: job }), /schedule name must be/);
    refused(() => defineSchedule('', { cron: '0 3 * * *', run: job }), /schedule name must be/);
    refused(() => defineSchedule('x', { cron: '0 3 * * *', run: (() => 1) as never }), /run must be a task from defineTask\(\) or a built workflow/);
    const checked = defineTask('checked', async (n: number) => n, {
      input: (v: unknown) => {
        if (typeof v !== 'number') throw new Error('a number, please');
        return v;
      },
    });
    refused(() => defineSchedule('x', { cron: '0 3 * * *', run: checked, input: 'three' as unknown as number }), /schedule "x" input/);
  });

  it("a tick's instance id is the same everywhere, has no '/', and start accepts it", () => {
    const id = tickId('nightly-report', ms('2026-12-03T03:00:00Z'));
    assert.equal(id, 'schedule:nightly-report:2026-12-03T03:00:00Z');
    assert.equal(validateId(id), id);
    assert.ok(!id.includes('/'));
  });
});

describe('catch-up after downtime (planTicks)', () => {
  const hourly = cronTiming('0 * * * *', 'UTC', 'test');
  const last = ms('2030-01-01T00:00:00Z');
  const hours = (...h: number[]) => h.map((x) => ms(`2030-01-01T0${x}:00:00Z`));

  it('missed ticks (older than a minute): none skips them, latest starts the newest, all starts each', () => {
    const now = ms('2030-01-01T05:30:00Z');
    assert.deepEqual(planTicks(hourly, 'none', last, now), { start: [], newest: hours(5)[0], skipped: 5, olderSkipped: false });
    assert.deepEqual(planTicks(hourly, 'latest', last, now), { start: hours(5), newest: hours(5)[0], skipped: 4, olderSkipped: false });
    assert.deepEqual(planTicks(hourly, 'all', last, now), { start: hours(1, 2, 3, 4, 5), newest: hours(5)[0], skipped: 0, olderSkipped: false });
  });

  it('an on-time tick starts under every policy; latest does not add an older missed one', () => {
    const now = ms('2030-01-01T05:00:20Z');
    assert.deepEqual(planTicks(hourly, 'none', last, now).start, hours(5));
    assert.deepEqual(planTicks(hourly, 'latest', last, now).start, hours(5));
    assert.deepEqual(planTicks(hourly, 'all', last, now).start, hours(1, 2, 3, 4, 5));
    assert.deepEqual(planTicks(hourly, 'all', ms('2030-01-01T05:00:00Z'), now), { start: [], newest: null, skipped: 0, olderSkipped: false });
  });

  it(`all is bounded: the newest ${CATCH_UP_LIMIT} missed ticks, older ones skipped`, () => {
    const everyMinute = cronTiming('* * * * *', 'UTC', 'test');
    const plan = planTicks(everyMinute, 'all', last, ms('2030-01-02T00:00:30Z'));
    assert.equal(plan.start.length, CATCH_UP_LIMIT);
    assert.equal(iso(plan.start.at(-1)!), '2030-01-02T00:00:00.000Z');
    assert.equal(iso(plan.start[0]!), '2030-01-01T22:21:00.000Z');
    assert.equal(plan.olderSkipped, true);
  });
});
