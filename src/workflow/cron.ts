/**
 * Cron ticks in a time zone. Pure: time is passed in, nothing is read from the clock.
 *
 * Parsing and matching are graphile-worker's (`parseCronItem`: five fields,
 * minute hour day-of-month month day-of-week, numbers, ranges, lists and
 * steps; day-of-month and day-of-week are ORed when both are restricted, as in
 * Vixie cron). It matches a wall-clock minute and knows no time zone and no
 * "next", so this file adds those, with Intl for the zone:
 *
 *   - the expression is matched against the zone's wall clock, minute by minute,
 *     skipping whole days that cannot match (remembered per day-of-month,
 *     month and weekday, at most 2,604 keys);
 *   - a wall time maps to the instant it names in the zone. A wall time that
 *     occurs twice (clocks go back) names its first occurrence, so it fires
 *     once; one that does not occur (clocks go forward) names the moment of
 *     the jump, so `30 2 * * *` still fires on that day, at 03:00 new time.
 *     That map is monotonic, which lets the search walk wall time in either
 *     direction and dedupe equal instants.
 */
import { createRequire } from 'node:module';
import { ValidationError } from '../errors.ts';

type Digest = { min: number; hour: number; date: number; month: number; dow: number };
type Matcher = (digest: Digest) => boolean;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** How far a search looks: a 29 February tick can be 8 years away (2096 to 2104). */
const HORIZON_MS = 8 * 366 * DAY;
/** Wall clocks jump by at most this much at a transition (1 hour in practice; 30 minutes on Lord Howe). */
const MAX_JUMP_MS = 3 * HOUR;

/** graphile-worker is loaded when the first expression is parsed, not when 'baton' is imported (it costs ~200 ms). */
function parseCronExpression(expression: string, source: string): Matcher {
  const require = createRequire(import.meta.url);
  const { parseCronItem } = require('graphile-worker') as typeof import('graphile-worker');
  return parseCronItem({ task: 'baton_schedule', match: expression }, source).match;
}

export interface CronTiming {
  readonly expression: string;
  readonly timezone: string;
  /** The first tick strictly after `after` (ms since the epoch), or null if none within 8 years. */
  next(after: number): number | null;
  /**
   * Ticks t with after < t <= upTo, newest first, at most `limit` of them;
   * `more` is true when older ones in that range were left out.
   */
  between(after: number, upTo: number, limit: number): { ticks: number[]; more: boolean };
}

/** Parse a cron expression for a time zone (an IANA name, e.g. "Europe/Paris"); a bad one is a ValidationError. */
export function cronTiming(expression: unknown, timezone: unknown, what: string): CronTiming {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw new ValidationError(`${what}: cron must be a string of five fields, minute hour day-of-month month day-of-week (got ${JSON.stringify(expression)})`);
  }
  const text = expression.trim().split(/\s+/).join(' ');
  let match: Matcher;
  try {
    match = parseCronExpression(text, what);
  } catch (error) {
    throw new ValidationError(
      `${what}: bad cron expression "${expression}": ${(error as Error).message} ` +
        '(five fields: minute hour day-of-month month day-of-week; numbers, ranges a-b, lists a,b and steps */n; no names or @aliases)',
    );
  }
  if (typeof timezone !== 'string' || timezone === '') throw new ValidationError(`${what}: timezone must be an IANA zone name such as "UTC" or "Europe/Paris" (got ${JSON.stringify(timezone)})`);
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new ValidationError(`${what}: unknown timezone "${timezone}" (use an IANA zone name such as "UTC" or "America/New_York")`);
  }
  return new Timing(text, format.resolvedOptions().timeZone, match, format);
}

class Timing implements CronTiming {
  /** Whether any minute of a day matches, by month, day of month and weekday. */
  private readonly days = new Map<number, boolean>();

  constructor(
    readonly expression: string,
    readonly timezone: string,
    private readonly match: Matcher,
    private readonly format: Intl.DateTimeFormat,
  ) {}

  /** The zone's wall clock at an instant, as ms since the epoch of that wall time read as UTC. */
  private wall(instant: number): number {
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    for (const p of this.format.formatToParts(instant)) {
      if (p.type === 'year') y = Number(p.value);
      else if (p.type === 'month') mo = Number(p.value);
      else if (p.type === 'day') d = Number(p.value);
      else if (p.type === 'hour') h = Number(p.value) % 24;
      else if (p.type === 'minute') mi = Number(p.value);
      else if (p.type === 'second') s = Number(p.value);
    }
    return Date.UTC(y, mo - 1, d, h, mi, s);
  }

  private offset(instant: number): number {
    const whole = instant - (((instant % 1000) + 1000) % 1000);
    return this.wall(whole) - whole;
  }

  /** The instant a wall time names: its first occurrence, or the end of the gap it falls in. */
  private instant(wall: number): number {
    const before = this.offset(wall - DAY);
    const after = this.offset(wall + DAY);
    const valid = [wall - before, wall - after].filter((c) => this.offset(c) === wall - c);
    if (valid.length > 0) return Math.min(...valid);
    if (before === after) return wall - before;
    // Clocks jumped over this wall time: find the jump, minute by minute (binary search).
    let lo = wall - after; // still on the old offset
    let hi = wall - before; // already on the new one
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
      if (this.offset(mid) === before) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  private dayMatches(wall: number): boolean {
    const d = new Date(wall);
    const month = d.getUTCMonth() + 1;
    const date = d.getUTCDate();
    const dow = d.getUTCDay();
    const key = month * 1000 + date * 10 + dow;
    let hit = this.days.get(key);
    if (hit === undefined) {
      hit = false;
      for (let hour = 0; hour < 24 && !hit; hour++) {
        for (let min = 0; min < 60 && !hit; min++) hit = this.match({ min, hour, date, month, dow });
      }
      this.days.set(key, hit);
    }
    return hit;
  }

  private matches(wall: number): boolean {
    const d = new Date(wall);
    return this.match({ min: d.getUTCMinutes(), hour: d.getUTCHours(), date: d.getUTCDate(), month: d.getUTCMonth() + 1, dow: d.getUTCDay() });
  }

  next(after: number): number | null {
    // Wall times before the wall clock at `after` name instants at or before it (the map is monotonic).
    let wall = Math.floor(this.wall(after) / MINUTE) * MINUTE + MINUTE;
    const end = wall + HORIZON_MS;
    while (wall < end) {
      if (!this.dayMatches(wall)) {
        wall = Math.floor(wall / DAY) * DAY + DAY;
        continue;
      }
      if (this.matches(wall)) {
        const at = this.instant(wall);
        if (at > after) return at;
      }
      wall += MINUTE;
    }
    return null;
  }

  between(after: number, upTo: number, limit: number): { ticks: number[]; more: boolean } {
    const ticks: number[] = [];
    if (upTo <= after) return { ticks, more: false };
    // After clocks go back, wall times later than the wall clock at `upTo` may name earlier instants.
    let wall = Math.floor(this.wall(upTo) / MINUTE) * MINUTE + MAX_JUMP_MS;
    const lowest = Math.max(this.wall(after) - MAX_JUMP_MS, wall - HORIZON_MS);
    while (wall >= lowest) {
      if (!this.dayMatches(wall)) {
        wall = Math.floor(wall / DAY) * DAY - MINUTE;
        continue;
      }
      if (this.matches(wall)) {
        const at = this.instant(wall);
        if (at <= after) break;
        if (at <= upTo && at !== ticks[ticks.length - 1]) {
          if (ticks.length === limit) return { ticks, more: true };
          ticks.push(at);
        }
      }
      wall -= MINUTE;
    }
    return { ticks, more: false };
  }
}
