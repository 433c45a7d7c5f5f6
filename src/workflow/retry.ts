/**
 * Retry policy: pure. Attempts are counted from 1 (the first run).
 *
 * delay(attempt) = fixed ? delayMs : delayMs * 2^(attempt-1), capped at maxDelayMs,
 * then spread by +/- jitter (a fraction) using the random number passed in.
 */
import { NonRetryableError, ValidationError } from '../errors.ts';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  maxAttempts: number;
  backoff: 'fixed' | 'exponential';
  delayMs: number;
  maxDelayMs: number;
  /** 0..1: each delay is moved by up to this fraction, up or down. */
  jitter: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 3,
  backoff: 'exponential',
  delayMs: 1_000,
  maxDelayMs: 60_000,
  jitter: 0.2,
};

export function resolveRetry(input: Partial<RetryPolicy> | undefined, what: string): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...input };
  const int = (v: number, name: string, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new ValidationError(`${what}: retry.${name} must be a whole number >= ${min} (got ${v})`);
  };
  int(policy.maxAttempts, 'maxAttempts', 1);
  int(policy.delayMs, 'delayMs', 0);
  int(policy.maxDelayMs, 'maxDelayMs', 0);
  if (policy.backoff !== 'fixed' && policy.backoff !== 'exponential') {
    throw new ValidationError(`${what}: retry.backoff must be "fixed" or "exponential" (got ${JSON.stringify(policy.backoff)})`);
  }
  if (typeof policy.jitter !== 'number' || policy.jitter < 0 || policy.jitter > 1) {
    throw new ValidationError(`${what}: retry.jitter must be a number from 0 to 1 (got ${policy.jitter})`);
  }
  return policy;
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: 'exhausted' | 'non-retryable' };

export function isRetryable(error: unknown): boolean {
  if (error instanceof NonRetryableError) return false;
  return !(error && typeof error === 'object' && (error as { retryable?: unknown }).retryable === false);
}

/** What to do after attempt number `attempt` failed with `error`. `random` is in [0, 1). */
export function decideRetry(policy: RetryPolicy, attempt: number, error: unknown, random: number): RetryDecision {
  if (!isRetryable(error)) return { retry: false, reason: 'non-retryable' };
  if (attempt >= policy.maxAttempts) return { retry: false, reason: 'exhausted' };
  return { retry: true, delayMs: backoffDelay(policy, attempt, random) };
}

export function backoffDelay(policy: RetryPolicy, attempt: number, random: number): number {
  const base = policy.backoff === 'fixed' ? policy.delayMs : policy.delayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(base, policy.maxDelayMs);
  const spread = capped * (1 + policy.jitter * (2 * random - 1));
  return Math.max(0, Math.round(Math.min(spread, policy.maxDelayMs)));
}
