/**
 * The client's checks for retries and for ids in bulk starts: bad input is a
 * ValidationError before anything is written. The work itself is one call
 * into the database each (store/retry.ts, store/instances.ts).
 */
import { ValidationError } from '../errors.ts';
import type { RetryManyFilter, RetryResult } from '../store/retry.ts';
import { validateId, validateName } from '../workflow/names.ts';

export interface RetryManyOptions {
  /** Which ended instances: failed, cancelled, or both. */
  status: RetryResult['was'] | RetryResult['was'][];
  /** Only instances of this workflow (or task). */
  name?: string;
  /** Only instances that ended at or after this time. */
  since?: Date;
  /** At most this many, oldest end first (1 to 10000, default 1000). */
  limit?: number;
}

const RETRYABLE: readonly string[] = ['failed', 'cancelled'];

export function retryFilter(options: RetryManyOptions): RetryManyFilter {
  if (options === null || typeof options !== 'object') throw new ValidationError('options must be an object');
  const statuses = Array.isArray(options.status) ? options.status : [options.status];
  if (statuses.length === 0 || statuses.some((s) => !RETRYABLE.includes(s))) {
    throw new ValidationError(`status must be failed and/or cancelled (got ${JSON.stringify(options.status)})`);
  }
  if (options.since !== undefined && (!(options.since instanceof Date) || Number.isNaN(options.since.getTime()))) {
    throw new ValidationError('since must be a valid Date');
  }
  const limit = options.limit ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new ValidationError(`limit must be a whole number from 1 to 10000 (got ${JSON.stringify(limit)})`);
  return {
    statuses: [...new Set(statuses)],
    name: options.name === undefined ? null : validateName('workflow or task', options.name),
    since: options.since ?? null,
    limit,
  };
}

/** One id (or null: generated) per input, none twice. */
export function checkIds(ids: unknown, count: number): (string | null)[] {
  if (!Array.isArray(ids)) throw new ValidationError('ids must be an array: one id (or null) per input');
  if (ids.length !== count) throw new ValidationError(`ids has ${ids.length} entries for ${count} inputs: give one id (or null) per input`);
  const seen = new Map<string, number>();
  return ids.map((id: unknown, i) => {
    if (id === null || id === undefined) return null;
    validateId(id, `ids[${i}]`);
    const first = seen.get(id as string);
    if (first !== undefined) throw new ValidationError(`ids[${i}] repeats ids[${first}] (${JSON.stringify(id)}): each instance needs its own id`);
    seen.set(id as string, i);
    return id as string;
  });
}
