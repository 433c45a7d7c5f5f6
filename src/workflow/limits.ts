/**
 * Fleet-wide concurrency and rate limits of a task (defineTask's `concurrency` and `rateLimit`).
 *
 * How they are kept (the SQL is in drizzle/functions/limit_enter.sql, limit_admit.sql, admit.sql):
 * a limited task's row carries `limit_key` (the key its limits count under, '' for the task as a
 * whole). Such a row never becomes `ready` directly: triggers make it `queued`, and admission, at
 * the commit of the transaction that queued it or freed a place, under one advisory lock per task
 * name, promotes the oldest queued rows while the limits allow. The claim reads only `ready` rows,
 * so it is unchanged, and a queued task never blocks the tasks behind it. Rows without limits
 * pass each trigger's WHEN clause at its first test.
 *
 *   concurrency: at most `limit` admitted (ready or running) at once, per key when `key` is given.
 *   rateLimit:   at most `limit` admissions in any `periodMs` window, per key when `key` is given.
 *
 * A task has at most one key function: `concurrency.key` and `rateLimit.key`, when both are given,
 * must be the same function (each limit may also leave it out, and then counts the task as a whole).
 */
import { ValidationError } from '../errors.ts';
import { MAX_ID_LENGTH } from './names.ts';

export interface ConcurrencyLimit<I = unknown> {
  /** At most this many attempts run at once, across all workers (per key, with `key`). */
  limit: number;
  /** The group an input counts in (e.g. a customer id): a string of 1-255 characters. */
  key?: (input: I) => string;
}

export interface RateLimit<I = unknown> {
  /** At most this many attempts are admitted to run in any window of `periodMs` (per key, with `key`). */
  limit: number;
  periodMs: number;
  key?: (input: I) => string;
}

/** A task's limits, checked; null on a task without any. */
export interface ResolvedLimits {
  concurrency: number | null;
  concurrencyKeyed: boolean;
  rate: { limit: number; periodMs: number } | null;
  rateKeyed: boolean;
  /** The one key function of the task (see the top of this file), or null. */
  key: ((input: unknown) => unknown) | null;
}

const MAX_LIMIT = 1_000_000;
const MAX_PERIOD_MS = 2_147_483_647;

function wholeNumber(value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ValidationError(`${what} must be a whole number from 1 to ${max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

function keyFunction(value: unknown, what: string): ((input: unknown) => unknown) | null {
  if (value === undefined) return null;
  if (typeof value !== 'function') throw new ValidationError(`${what} must be a function of the input that returns a string`);
  return value as (input: unknown) => unknown;
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ValidationError(`${what} must be an object`);
  return value as Record<string, unknown>;
}

/** defineTask's `concurrency` and `rateLimit`, checked: a ValidationError naming the task for anything wrong. */
export function resolveLimits(concurrency: unknown, rateLimit: unknown, owner: string): ResolvedLimits | null {
  if (concurrency === undefined && rateLimit === undefined) return null;
  let limit: number | null = null;
  let cKey: ((input: unknown) => unknown) | null = null;
  if (concurrency !== undefined) {
    const c = object(concurrency, `${owner} concurrency`);
    limit = wholeNumber(c.limit, `${owner} concurrency.limit`, MAX_LIMIT);
    cKey = keyFunction(c.key, `${owner} concurrency.key`);
  }
  let rate: ResolvedLimits['rate'] = null;
  let rKey: ((input: unknown) => unknown) | null = null;
  if (rateLimit !== undefined) {
    const r = object(rateLimit, `${owner} rateLimit`);
    rate = {
      limit: wholeNumber(r.limit, `${owner} rateLimit.limit`, MAX_LIMIT),
      periodMs: wholeNumber(r.periodMs, `${owner} rateLimit.periodMs`, MAX_PERIOD_MS),
    };
    rKey = keyFunction(r.key, `${owner} rateLimit.key`);
  }
  if (cKey && rKey && cKey !== rKey) {
    throw new ValidationError(`${owner}: concurrency.key and rateLimit.key must be the same function (a task has one limit key)`);
  }
  return { concurrency: limit, concurrencyKeyed: cKey !== null, rate, rateKeyed: rKey !== null, key: cKey ?? rKey };
}

/**
 * The key a task's limits count this input under: null without limits, '' when they count the task
 * as a whole, else its key function's result. A key function that throws, or returns anything but a
 * string of 1-255 characters without control characters, is a ValidationError naming `what`.
 */
export function limitKeyOf(limits: ResolvedLimits | null, input: unknown, what: string): string | null {
  if (!limits) return null;
  if (!limits.key) return '';
  let key: unknown;
  try {
    key = limits.key(input);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ValidationError(`${what}: its limit key function threw: ${message}`);
  }
  // eslint-disable-next-line no-control-regex
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_ID_LENGTH || /[\u0000-\u001f\u007f]/.test(key)) {
    throw new ValidationError(
      `${what}: its limit key function must return a string of 1-${MAX_ID_LENGTH} characters without control characters (got ${typeof key === 'string' ? JSON.stringify(key.slice(0, 40)) : typeof key})`,
    );
  }
  return key;
}

/** What baton.task_limits keeps of a task (registered with the definitions that use it). */
export interface TaskLimitsRecord {
  name: string;
  concurrency: number | null;
  concurrencyKeyed: boolean;
  rate: number | null;
  ratePeriodMs: number | null;
  rateKeyed: boolean;
}

export function limitsRecord(name: string, limits: ResolvedLimits | null): TaskLimitsRecord {
  return {
    name,
    concurrency: limits?.concurrency ?? null,
    concurrencyKeyed: limits?.concurrencyKeyed ?? false,
    rate: limits?.rate?.limit ?? null,
    ratePeriodMs: limits?.rate?.periodMs ?? null,
    rateKeyed: limits?.rateKeyed ?? false,
  };
}
