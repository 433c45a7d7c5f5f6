/**
 * The scheduler: fires this worker's schedules, one instance per tick fleet-wide.
 *
 * Every worker that registers a schedule runs a timer for it (one timer per
 * process, set to the soonest next tick of its schedules, at most a minute
 * away). At a tick each of them runs one short transaction:
 *
 *   lock the schedule's row ─> read its last tick ─> plan the due ticks
 *   (planTicks: catch-up policy) ─> start each with the id tickId(name, tick),
 *   onConflict 'useExisting' ─> move last_tick forward ─> commit
 *
 * The first worker to take the row lock starts the tick; the others wait for
 * the lock, then find last_tick already there and do nothing. The
 * deterministic id is a second guard: even a last_tick set back by hand
 * cannot start a tick's instance twice (while that instance is kept).
 *
 * Why not graphile-worker's cron (which the reconciler's runner could carry)?
 * It is minute-grained, UTC-only and reads its items at start-up, and the
 * reconciler already stopped using it (a runner stopped while its cron was
 * registering left a retry timer behind). Why not a reconciler tick that
 * fires every schedule in the table? It would start what the database says,
 * not what the code says: a schedule removed from the code would need a
 * registration protocol to stop. Here a worker fires only the schedules its
 * code defines, so removing one from the code stops it once the workers that
 * still have it are gone, with no extra state.
 */
import type pg from 'pg';
import { encodePayload, type Codec } from '../codec.ts';
import { retryTransient } from '../db/transient.ts';
import { inTransaction } from '../store/executor.ts';
import { startInstance } from '../store/instances.ts';
import { advanceSchedule, lockSchedule, registerSchedules } from '../store/schedules.ts';
import type { Logger } from '../types.ts';
import { planTicks, tickId, type Schedule, type TickPlan } from '../workflow/schedule.ts';

/** The timer wakes at least this often, so a clock that jumped (suspend, NTP) is noticed. */
const MAX_SLEEP_MS = 60_000;
/**
 * After a failed start (the database away), try again this soon: well within ON_TIME_MS, so a
 * brief outage at the tick does not turn it into a missed tick that catchUp 'none' would skip.
 */
const RETRY_MS = 5_000;

export interface SchedulerOptions {
  pool: pg.Pool;
  schedules: readonly Schedule[];
  codec: Codec;
  maxPayloadBytes: number;
  log: Logger;
  /** The clock, in ms since the epoch (Date.now); tests pass their own and call check(). */
  now?: () => number;
  /** Run the timer (default true); tests that drive check() themselves turn it off. */
  timer?: boolean;
}

export class Scheduler {
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly inputs = new Map<string, unknown>();
  /** Per schedule, the newest tick known to be handled (a hint: the row decides). */
  private readonly handled = new Map<string, number>();
  private timeout: NodeJS.Timeout | undefined;
  private checking: Promise<boolean> | undefined;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.log.child({ component: 'scheduler' });
    // Encoded once, now: an input the codec refuses stops the worker's start, not a tick at 3 a.m.
    for (const s of o.schedules) this.inputs.set(s.name, encodePayload(o.codec, s.input, `schedule "${s.name}" input`, o.maxPayloadBytes));
  }

  /** Register the schedules, fire what is due (catch-up), then run the timer. */
  async start(): Promise<void> {
    const again = (error: unknown) => this.log.warn({ err: error }, 'database connection lost while registering schedules; retrying');
    await retryTransient(() => this.register(this.o.schedules), 8, again);
    const ok = await this.check();
    if (this.o.timer !== false) this.arm(!ok);
  }

  private async register(schedules: readonly Schedule[]): Promise<void> {
    const now = this.now();
    const rows = await registerSchedules(
      this.o.pool,
      schedules.map((s) => ({
        name: s.name,
        cron: s.cron,
        timezone: s.timezone,
        catchUp: s.catchUp,
        kind: s.workflow.kind,
        workflowName: s.workflow.name,
        definitionHash: s.workflow.hash,
        input: this.inputs.get(s.name),
        nextTick: nullableDate(s.timing.next(now)),
      })),
    );
    for (const [name, row] of rows) this.handled.set(name, (row.lastTick ?? row.firstSeen).getTime());
  }

  /**
   * @internal Fire every schedule with a tick due now (the timer calls it; so do tests, with
   * their clock). Never rejects; resolves false when a schedule could not be fired.
   */
  check(): Promise<boolean> {
    this.checking ??= this.checkAll().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkAll(): Promise<boolean> {
    let ok = true;
    for (const s of this.o.schedules) {
      if (this.stopped) break;
      if (!this.due(s, this.now())) continue;
      try {
        await this.fire(s);
      } catch (error) {
        ok = false;
        this.log.warn({ err: error, schedule: s.name }, `could not start a scheduled tick; trying again in ${RETRY_MS / 1000} s`);
      }
    }
    return ok;
  }

  /** Whether a tick of `s` came since the newest one known to be handled (a hint: fire() asks the row). */
  private due(s: Schedule, now: number): boolean {
    return s.timing.between(this.handled.get(s.name) ?? 0, now, 1).ticks.length > 0;
  }

  private async fire(s: Schedule): Promise<void> {
    const result = await inTransaction(this.o.pool, async (tx): Promise<(TickPlan & { ids: string[]; since: number }) | null> => {
      const row = await lockSchedule(tx, s.name);
      if (!row) return null;
      const now = this.now();
      const since = (row.lastTick ?? row.firstSeen).getTime();
      const plan = planTicks(s.timing, s.catchUp, since, now);
      if (plan.newest === null) return { ...plan, ids: [], since };
      const ids: string[] = [];
      for (const tick of plan.start) {
        const { id, created } = await startInstance(tx, {
          name: s.workflow.name,
          kind: s.workflow.kind,
          input: this.inputs.get(s.name),
          id: tickId(s.name, tick),
          onConflict: 'useExisting',
          hash: s.workflow.hash,
          limitKey: s.limitKey,
        });
        ids.push(id);
        // Never under the row lock, unless last_tick was set back by hand: the instance is not started again.
        if (!created) this.log.warn({ schedule: s.name, id }, `schedule ${s.name}: the instance of tick ${id} existed already; not started again`);
      }
      await advanceSchedule(tx, s.name, { lastTick: new Date(plan.newest), runId: ids.at(-1) ?? null, nextTick: nullableDate(s.timing.next(now)) });
      return { ...plan, ids, since };
    });
    if (result === null) {
      // Deleted by hand while this worker runs: register it again, which restarts its count from now.
      this.log.warn({ schedule: s.name }, 'the schedule row is gone; registering it again');
      await this.register([s]);
      return;
    }
    // The row decides: another worker may have handled the tick (then nothing was due here).
    this.handled.set(s.name, result.newest ?? result.since);
    if (result.ids.length > 0) this.log.info({ schedule: s.name, started: result.ids }, `schedule ${s.name}: started ${result.ids.length}`);
    if (result.skipped > 0 || result.olderSkipped) {
      const { skipped, olderSkipped } = result;
      this.log.info({ schedule: s.name, skipped, olderSkipped, catchUp: s.catchUp }, `schedule ${s.name}: skipped ${skipped}${olderSkipped ? ' (and older)' : ''} missed ticks`);
    }
  }

  private arm(retry = false): void {
    if (this.stopped) return;
    const now = this.now();
    let soonest = now + (retry ? RETRY_MS : MAX_SLEEP_MS);
    for (const s of this.o.schedules) {
      // A tick that came due while the last check ran (a slow start, a slow database) is due now, not
      // at the tick after it: sleeping until then would start it a minute late, or skip it under
      // catchUp 'latest' and 'none'. After a failed check the retry delay stands.
      soonest = Math.min(soonest, !retry && this.due(s, now) ? now : (s.timing.next(now) ?? soonest));
    }
    this.timeout = setTimeout(() => {
      this.timeout = undefined;
      void this.check().then((ok) => this.arm(!ok));
    }, Math.max(0, soonest - now));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timeout) clearTimeout(this.timeout);
    this.timeout = undefined;
    await this.checking;
  }
}

function nullableDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}
