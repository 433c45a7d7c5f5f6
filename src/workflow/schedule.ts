/**
 * Schedules: a workflow (or a task) started on a cron expression, one
 * instance per tick. This file defines them and decides, given the last tick
 * that fired and the time now, which ticks to start (pure; the worker's
 * scheduler does the I/O, see src/worker/scheduler.ts).
 */
import { ValidationError } from '../errors.ts';
import { CATCH_UP, type CatchUp } from '../types.ts';
import { isWorkflow, taskWorkflow, type Workflow } from './builder.ts';
import { cronTiming, type CronTiming } from './cron.ts';
import { startLimitKey } from './start-keys.ts';
import { isTask, parseWith, type Task } from './task.ts';

/** catchUp 'all' starts at most this many missed ticks (the newest); older ones are skipped. */
export const CATCH_UP_LIMIT = 100;
/** A tick found this long after its time was missed (downtime), not merely late. */
export const ON_TIME_MS = 60_000;

export interface ScheduleOptions<I> {
  /** Five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'. */
  cron: string;
  /** What each tick starts: a task (as a one-task job) or a built workflow. */
  run: Task<I, unknown> | Workflow<I, unknown>;
  /** The input of every instance (checked by the target's `input` check when it has one). */
  input?: I;
  /** IANA zone the expression is read in (default 'UTC'). */
  timezone?: string;
  /** Missed ticks after downtime: 'none' skips them, 'latest' (default) starts the newest, 'all' starts each (at most 100). */
  catchUp?: CatchUp;
}

export interface Schedule {
  readonly type: 'schedule';
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  readonly catchUp: CatchUp;
  /** The workflow each tick starts (a one-task workflow for a task). */
  readonly workflow: Workflow;
  readonly input: unknown;
  /** The limit key of every tick's start (see start-keys.ts), computed once from the input. */
  readonly limitKey: string | null;
  /** @internal */
  readonly timing: CronTiming;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;

export function isSchedule(value: unknown): value is Schedule {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'schedule';
}

/**
 * Define a schedule. Everything is checked here: the name, the cron expression (it must fire
 * at least once in 8 years), the time zone, the policy and the input; a mistake is a ValidationError.
 */
export function defineSchedule<I>(name: string, options: ScheduleOptions<I>): Schedule {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ValidationError(
      `schedule name must be 1-128 characters of letters, digits, "_", ".", ":" or "-", starting with a letter, digit or "_" (got ${JSON.stringify(name)})`,
    );
  }
  const what = `schedule "${name}"`;
  if (options === null || typeof options !== 'object') throw new ValidationError(`${what}: options must be an object with cron and run`);
  const run: unknown = options.run;
  if (!isTask(run) && !isWorkflow(run)) throw new ValidationError(`${what}: run must be a task from defineTask() or a built workflow`);
  const workflow = isTask(run) ? taskWorkflow(run) : run;
  const catchUp = options.catchUp ?? 'latest';
  if (!CATCH_UP.includes(catchUp)) throw new ValidationError(`${what}: catchUp must be one of ${CATCH_UP.join(', ')} (got ${JSON.stringify(catchUp)})`);
  const timing = cronTiming(options.cron, options.timezone ?? 'UTC', what);
  if (timing.next(Date.now()) === null) throw new ValidationError(`${what}: cron "${timing.expression}" never fires (no tick in the next 8 years)`);
  let input: unknown = options.input ?? null;
  if (workflow.parseInput) input = parseWith(workflow.parseInput, input, `${what} input`);
  const limitKey = startLimitKey(workflow, input, what);
  return Object.freeze({ type: 'schedule', name, cron: timing.expression, timezone: timing.timezone, catchUp, workflow, input, limitKey, timing });
}

/**
 * The id of the instance a tick starts: `schedule:<name>:<tick in UTC, ISO 8601, seconds>`,
 * e.g. `schedule:nightly-report:2026-12-03T03:00:00Z`. The same on every worker, so a start
 * with onConflict 'useExisting' cannot double a tick. No '/' (the child id separator).
 */
export function tickId(name: string, tick: number): string {
  return `schedule:${name}:${new Date(tick).toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
}

export interface TickPlan {
  /** Ticks to start, oldest first. */
  start: number[];
  /** The newest due tick (started or skipped): what the schedule's last tick becomes. Null when none is due. */
  newest: number | null;
  /** Due ticks not started (missed ones the policy skips). */
  skipped: number;
  /** More due ticks, older than those counted, were skipped (past CATCH_UP_LIMIT). */
  olderSkipped: boolean;
}

/**
 * Which ticks to start at `now`, after `last` (the last tick that fired, or when the schedule
 * was first registered). A tick at most ON_TIME_MS old is on time and always starts. Older
 * ones were missed: 'none' skips them; 'latest' starts the newest when none is on time;
 * 'all' starts every one, at most CATCH_UP_LIMIT (the newest).
 */
export function planTicks(timing: CronTiming, catchUp: CatchUp, last: number, now: number): TickPlan {
  const { ticks, more } = timing.between(last, now, CATCH_UP_LIMIT);
  if (ticks.length === 0) return { start: [], newest: null, skipped: 0, olderSkipped: false };
  const onTime = ticks.filter((t) => now - t <= ON_TIME_MS);
  let start: number[];
  if (catchUp === 'all') start = ticks;
  else if (onTime.length > 0) start = onTime;
  else start = catchUp === 'latest' ? [ticks[0]!] : [];
  return { start: [...start].reverse(), newest: ticks[0]!, skipped: ticks.length - start.length, olderSkipped: more };
}
