/** Schedules against PostgreSQL: ticks fire once fleet-wide, catch-up, removal, `baton schedules`. */
import assert from 'node:assert/strict';
import { jsonCodec } from '../src/codec.ts';
import { defineSchedule, type Client, type Schedule, type Worker } from '../src/index.ts';
import { Scheduler } from '../src/worker/scheduler.ts';
import { defineTask, taskWorkflow } from '../src/workflow/index.ts';
import { tickId } from '../src/workflow/schedule.ts';
import { runCli } from './support/cli.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient, register, until } from './support/fixtures.ts';
import { inProcessWorker, testLogger } from './support/workers.ts';

const MINUTE = 60_000;
const counted = defineTask('counted', async (input: { tag: string }) => input.tag);

describe('schedules', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let client: Client;
  const workers: Worker[] = [];
  const schedulers: Scheduler[] = [];

  before(async () => {
    client = await fixtureClient(db.url);
    await register(db.pool, taskWorkflow(counted));
  });
  afterEach(async () => {
    await Promise.all(schedulers.splice(0).map((s) => s.stop()));
    await Promise.all(workers.splice(0).map((w) => w.stop({ graceMs: 200 })));
  });
  after(() => client.close());

  /** A scheduler as a worker runs it, on a clock the test moves. */
  function scheduler(schedule: Schedule, clock: { now: number }, options: { timer?: boolean } = {}) {
    const log = testLogger();
    const s = new Scheduler({ pool: db.pool, schedules: [schedule], codec: jsonCodec, maxPayloadBytes: 1 << 20, log, now: () => clock.now, timer: options.timer ?? false });
    schedulers.push(s);
    return Object.assign(s, { logLines: log.lines });
  }
  const idsOf = async (name: string) =>
    (await db.pool.query<{ id: string }>(`select id from baton.workflows where id like $1 order by id`, [`schedule:${name}:%`])).rows.map((r) => r.id);
  const row = async (name: string) =>
    (await db.pool.query<{ last_tick: Date | null; last_run_id: string | null; next_tick: Date | null }>(`select * from baton.schedules where name = $1`, [name])).rows[0]!;
  const setLastTick = (name: string, at: number) => db.pool.query(`update baton.schedules set last_tick = $2 where name = $1`, [name, new Date(at)]);
  /** The next whole minute after `t`. */
  const nextMinute = (t: number) => Math.floor(t / MINUTE) * MINUTE + MINUTE;

  it('each tick starts one instance with the id of its tick, and the row records it', async () => {
    const s = defineSchedule('every-minute', { cron: '* * * * *', run: counted, input: { tag: 'm' } });
    const clock = { now: Date.now() };
    const sch = scheduler(s, clock);
    await sch.start();
    assert.deepEqual(await idsOf('every-minute'), [], 'nothing is due at registration');
    const first = nextMinute(clock.now);
    clock.now = first + 1_000;
    await sch.check();
    clock.now = first + MINUTE + 2_000;
    await sch.check();
    await sch.check(); // nothing new is due
    assert.deepEqual(await idsOf('every-minute'), [tickId('every-minute', first), tickId('every-minute', first + MINUTE)]);
    const r = await row('every-minute');
    assert.equal(r.last_tick?.getTime(), first + MINUTE);
    assert.equal(r.last_run_id, tickId('every-minute', first + MINUTE));
    assert.equal(r.next_tick?.getTime(), first + 2 * MINUTE);
    const view = await client.get(tickId('every-minute', first));
    assert.equal(view?.name, 'counted');
    assert.deepEqual(view?.input, { tag: 'm' });
  });

  it("the timer fires a tick when it comes (the scheduler's own clock, 300 ms before a minute)", async () => {
    const s = defineSchedule('timer-tick', { cron: '* * * * *', run: counted, input: { tag: 't' } });
    // The row is first seen by the database's (real) clock: within a second or two before a real minute,
    // that minute's tick would fall between the first sight and the scheduler's clock, and be due too.
    // Start clear of it.
    const toMinute = nextMinute(Date.now()) - Date.now();
    if (toMinute < 2_000) await new Promise((r) => setTimeout(r, toMinute + 100));
    // The scheduler's clock runs ahead of the real one (never behind): the schedule's row records when
    // it was first seen by the database's clock, and a tick before that is not this schedule's to fire.
    const offset = nextMinute(Date.now() + 1_000) - 300 - Date.now();
    const clock = {
      get now() {
        return Date.now() + offset;
      },
    };
    const tick = nextMinute(clock.now);
    const sch = scheduler(s, clock as { now: number }, { timer: true });
    await sch.start();
    await until(async () => (await idsOf('timer-tick')).length > 0, { timeoutMs: 5_000, what: 'the tick' });
    assert.deepEqual(await idsOf('timer-tick'), [tickId('timer-tick', tick)]);
  });

  it('a tick that comes due while the start is still checking fires at once, not a minute later', async () => {
    const s = defineSchedule('due-during-start', { cron: '* * * * *', run: counted, input: { tag: 'd' } });
    // As above: the row is first seen by the real clock, so no minute may fall between that and the
    // scheduler's (a fixed time 300 ms before a minute).
    const toMinute = nextMinute(Date.now()) - Date.now();
    if (toMinute < 2_000) await new Promise((r) => setTimeout(r, toMinute + 100));
    const clock = { now: nextMinute(Date.now() + 1_000) - 300 };
    const tick = nextMinute(clock.now);
    const sch = scheduler(s, clock, { timer: true });
    // The start's own check sees nothing due; its clock passes the tick before the timer is armed.
    const check = sch.check.bind(sch);
    let first = true;
    sch.check = async () => {
      const ok = await check();
      if (first) clock.now = tick + 50;
      first = false;
      return ok;
    };
    await sch.start();
    await until(async () => (await idsOf('due-during-start')).length > 0, { timeoutMs: 3_000, what: 'the tick that came due during the start' });
    assert.deepEqual(await idsOf('due-during-start'), [tickId('due-during-start', tick)]);
  });

  it('a tick whose start failed is tried again and, soon enough, still starts under catchUp none', async () => {
    const flaky = defineTask('flaky-target', async () => 'ran');
    const s = defineSchedule('retried', { cron: '* * * * *', run: flaky, catchUp: 'none' });
    const clock = { now: Date.now() };
    const sch = scheduler(s, clock);
    await sch.start(); // registers the schedule, not the definition: starting its instance fails
    const tick = nextMinute(clock.now);
    clock.now = tick + 1_000;
    assert.equal(await sch.check(), false);
    assert.deepEqual(await idsOf('retried'), []);
    assert.equal((await row('retried')).last_tick, null, 'a failed start leaves the tick due');
    assert.ok(sch.logLines.some((l) => l.includes('could not start a scheduled tick')));
    await register(db.pool, taskWorkflow(flaky));
    clock.now = tick + 6_000; // the retry, 5 s later
    assert.equal(await sch.check(), true);
    assert.deepEqual(await idsOf('retried'), [tickId('retried', tick)]);
  });

  it('workers racing for the same ticks start each once', async () => {
    const s = defineSchedule('raced', { cron: '* * * * *', run: counted, input: { tag: 'r' } });
    const clock = { now: Date.now() };
    const fleet = [scheduler(s, clock), scheduler(s, clock), scheduler(s, clock), scheduler(s, clock)];
    await Promise.all(fleet.map((f) => f.start()));
    const first = nextMinute(clock.now);
    for (let i = 0; i < 10; i++) {
      clock.now = first + i * MINUTE + 500;
      await Promise.all(fleet.map((f) => f.check()));
    }
    const expected = Array.from({ length: 10 }, (_, i) => tickId('raced', first + i * MINUTE));
    assert.deepEqual(await idsOf('raced'), expected);
    // Each start created its instance: no scheduler started a tick another one had started.
    for (const f of fleet) assert.deepEqual(f.logLines.filter((l) => l.includes('existed already')), []);
    const started = await db.pool.query<{ n: number }>(`select count(*)::int as n from baton.workflows w, baton.instance_history(w.id) h where w.id like 'schedule:raced:%' and h.kind = 'started'`);
    assert.equal(started.rows[0]!.n, 10);
  });

  it('two workers racing for missed ticks at start-up start each once (catchUp all)', async () => {
    const s = defineSchedule('raced-workers', { cron: '* * * * *', run: counted, input: { tag: 'w' }, catchUp: 'all' });
    // Registered by a worker that has since gone; its last tick was 5 minutes ago.
    const sch = scheduler(s, { now: Date.now() });
    await sch.start();
    await sch.stop();
    const last = Math.floor(Date.now() / MINUTE) * MINUTE - 5 * MINUTE;
    await setLastTick('raced-workers', last);
    const [a, b] = await Promise.all([inProcessWorker(db.url, { schedules: [s] }), inProcessWorker(db.url, { schedules: [s] })]);
    workers.push(a!, b!);
    const newest = (await row('raced-workers')).last_tick!.getTime();
    const expected = [];
    for (let t = last + MINUTE; t <= newest; t += MINUTE) expected.push(tickId('raced-workers', t));
    assert.ok(expected.length >= 5);
    assert.deepEqual(await idsOf('raced-workers'), expected);
    for (const w of [a!, b!]) assert.deepEqual(w.logLines.filter((l) => l.includes('existed already')), []);
    // And the workers run them.
    for (const id of expected) assert.equal(await client.result(id, { timeoutMs: 10_000 }), 'w');
  });

  for (const [policy, expected] of [
    ['none', []],
    ['latest', [5]],
    ['all', [1, 2, 3, 4, 5]],
  ] as const) {
    it(`catchUp ${policy} after downtime: ${policy === 'none' ? 'skips the missed ticks' : policy === 'latest' ? 'starts the newest missed tick' : 'starts every missed tick'}, then runs on time`, async () => {
      const name = `hourly-${policy}`;
      const s = defineSchedule(name, { cron: '0 * * * *', run: counted, input: { tag: policy }, catchUp: policy });
      const clock = { now: Date.now() };
      const sch = scheduler(s, clock);
      await sch.start();
      const base = Date.parse('2030-01-01T00:00:00Z');
      await setLastTick(name, base); // fired at midnight, then nothing ran until 05:30
      clock.now = base + 5.5 * 60 * MINUTE;
      await sch.check();
      assert.deepEqual(await idsOf(name), expected.map((h) => tickId(name, base + h * 60 * MINUTE)));
      assert.equal((await row(name)).last_tick?.getTime(), base + 5 * 60 * MINUTE, 'missed ticks are handled, started or not');
      clock.now = base + 6 * 60 * MINUTE + 5_000;
      await sch.check();
      assert.deepEqual(await idsOf(name), [...expected, 6].map((h) => tickId(name, base + h * 60 * MINUTE)));
    });
  }

  it('a worker that starts after downtime catches up at once (catchUp latest), and runs the instance', async () => {
    const s = defineSchedule('hourly-worker', { cron: '0 * * * *', run: counted, input: { tag: 'caught-up' } });
    const sch = scheduler(s, { now: Date.now() });
    await sch.start();
    await sch.stop();
    await setLastTick('hourly-worker', Math.floor(Date.now() / (60 * MINUTE)) * 60 * MINUTE - 3 * 60 * MINUTE);
    const w = await inProcessWorker(db.url, { schedules: [s] });
    workers.push(w);
    const newest = Math.floor(Date.now() / (60 * MINUTE)) * 60 * MINUTE;
    assert.deepEqual(await idsOf('hourly-worker'), [tickId('hourly-worker', newest)]);
    assert.equal(await client.result(tickId('hourly-worker', newest), { timeoutMs: 10_000 }), 'caught-up');
  });

  it('a schedule removed from the code stops: no live worker fires it, and `baton schedules` says so', async () => {
    const kept = defineSchedule('kept', { cron: '0 4 * * *', run: counted, input: { tag: 'k' }, timezone: 'Europe/Paris', catchUp: 'all' });
    const removed = defineSchedule('removed', { cron: '* * * * *', run: counted, input: { tag: 'x' }, catchUp: 'all' });
    const old = await inProcessWorker(db.url, { schedules: [kept, removed] });
    await old.stop({ graceMs: 200 });
    // The new code has no 'removed'; its ticks are due (10 missed), and so is one of 'kept'.
    await setLastTick('removed', Date.now() - 10 * MINUTE);
    await setLastTick('kept', Date.now() - 2 * 86_400_000);
    const before = await row('removed');
    const w = await inProcessWorker(db.url, { schedules: [kept] });
    workers.push(w);
    assert.ok((await idsOf('kept')).length >= 1, "the new worker's scheduler ran");
    assert.deepEqual(await idsOf('removed'), []);
    assert.equal((await row('removed')).last_tick?.getTime(), before.last_tick?.getTime());

    const views = await client.schedules();
    assert.deepEqual(
      views.filter((v) => v.name === 'kept' || v.name === 'removed').map((v) => [v.name, v.workers]),
      [
        ['kept', 1],
        ['removed', 0],
      ],
    );
    const env = { DATABASE_URL: db.url, BATON_LOG_LEVEL: 'warn' };
    const out = await runCli(['schedules'], { env });
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.split('\n');
    assert.match(lines[0]!, /^NAME\s+CRON\s+TIMEZONE\s+RUNS\s+CATCH-UP\s+LAST TICK\s+LAST RUN\s+NEXT TICK\s+STATE$/);
    const keptLine = lines.find((l) => l.startsWith('kept '))!;
    assert.match(keptLine, /^kept\s+0 4 \* \* \*\s+Europe\/Paris\s+task counted\s+all\s+\d{4}-\d\d-\d\dT0[23]:00:00Z\s+schedule:kept:\S+\s+\d{4}-\d\d-\d\dT0[23]:00:00Z\s+fired by 1 worker$/);
    assert.match(lines.find((l) => l.startsWith('removed '))!, /^removed\s+\* \* \* \* \*\s+UTC\s+task counted\s+all\s+\S+\s+\S+\s+-\s+not registered \(removed from the code, or no worker runs\)$/);
    const json = JSON.parse((await runCli(['schedules', '--json'], { env })).stdout) as { name: string; registered: boolean; nextTick: string | null }[];
    const byName = new Map(json.map((j) => [j.name, j]));
    assert.equal(byName.get('kept')?.registered, true);
    assert.ok(Date.parse(byName.get('kept')!.nextTick!) > Date.now());
    assert.equal(byName.get('removed')?.registered, false);
  });

  it('startWorker refuses two different schedules with one name, and an input the codec cannot encode', async () => {
    const a = defineSchedule('twin', { cron: '0 3 * * *', run: counted, input: { tag: 'a' } });
    const b = defineSchedule('twin', { cron: '0 4 * * *', run: counted, input: { tag: 'b' } });
    await assert.rejects(inProcessWorker(db.url, { schedules: [a, b] }), /two different schedules are named "twin"/);
    const big = defineSchedule('big-input', { cron: '0 3 * * *', run: counted, input: { tag: 'x'.repeat(2_000) } });
    await assert.rejects(inProcessWorker(db.url, { schedules: [big], config: { maxPayloadBytes: 1_000 } }), /schedule "big-input" input/);
  });
});
