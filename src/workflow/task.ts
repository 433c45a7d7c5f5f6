/** defineTask: a named async function with its retry policy, timeout, priority and required tags. */
import { ValidationError } from '../errors.ts';
import type { Logger } from '../types.ts';
import { parseDuration } from './duration.ts';
import { resolveLimits, type ConcurrencyLimit, type RateLimit, type ResolvedLimits } from './limits.ts';
import { normalizeTags, validateName, validatePriority } from './names.ts';
import { resolveRetry, type RetryPolicy } from './retry.ts';
import type { WaitpointOptions } from './waitpoint.ts';

export interface TaskContext {
  workflowId: string;
  taskKey: string;
  /** 1 for the first run. */
  attempt: number;
  /** Fires when the attempt times out, the instance is cancelled, the claim is lost, or the worker shuts down. */
  signal: AbortSignal;
  /** Report progress (0-100) and an optional message; shown by `baton status`. */
  progress(percent: number, message?: string): void;
  log: Logger;
  /** This attempt's output stream (made on first use; see TaskStream). */
  stream: TaskStream;
  /**
   * A signed, expiring token that completes this instance's wait for `event` (default
   * 'waitpoint': a later `.waitForEvent(event)` step takes it) when an outside system passes it to
   * client.completeWaitpoint(token, payload). Usable once. Needs BATON_WAITPOINT_SECRET.
   */
  waitpointToken(event?: string, options?: WaitpointOptions): string;
}

/**
 * A task's output stream: frames (any JSON value: model tokens, log lines, partial results) that
 * readers follow live with client.tail(id) while the task runs. Writes are batched for a few ms and
 * stored under the attempt's fence; all of them are stored before the attempt's result is.
 */
export interface TaskStream {
  /**
   * Append a frame. Throws at once a StreamFrameTooLargeError (over BATON_MAX_STREAM_FRAME_BYTES) or a
   * ValidationError (not serialisable), and an InvalidStateError once the attempt has ended. The promise
   * resolves when the frame is stored (awaiting it is optional; a write that fails fails the attempt),
   * and rejects with a LeaseLostError when this attempt no longer holds its claim: nothing is written.
   */
  write(frame: unknown): Promise<void>;
  /** Wait until every frame written so far is stored. */
  flush(): Promise<void>;
}

/**
 * Checks an input and returns the input to use, or throws: a zod schema's `parse`
 * (`input: schema.parse`), a valibot parser, or a hand-written function. Must be pure
 * and synchronous.
 */
export type InputParser<I> = (value: unknown) => I;

export interface TaskOptions<I = unknown> {
  /**
   * The input's check. The client runs it before anything is written (`enqueue`,
   * `enqueueMany`: a bad input is a ValidationError); the worker runs it before each
   * attempt, so input from SQL or from the previous step is checked too (a bad one fails
   * the task at once, without retries). The handler gets what it returns.
   */
  input?: InputParser<I>;
  retry?: Partial<RetryPolicy>;
  /** Per attempt; on timeout the AbortSignal fires and the attempt fails. */
  timeoutMs?: number | string;
  /** Lower runs first; 0 by default. An instance's priority, when given, wins. */
  priority?: number;
  /** Workers must offer all of these tags to run the task. */
  tags?: string[];
  /** At most `limit` attempts run at once across the fleet (per `key(input)` when given). See src/workflow/limits.ts. */
  concurrency?: ConcurrencyLimit<I>;
  /** At most `limit` attempts are admitted per `periodMs` across the fleet (per `key(input)` when given). */
  rateLimit?: RateLimit<I>;
}

export interface ResolvedTaskOptions {
  retry: RetryPolicy;
  timeoutMs: number | null;
  priority: number;
  tags: string[];
  /** Concurrency and rate limits; null without. Not part of the definition's hash. */
  limits: ResolvedLimits | null;
}

export type TaskHandler<I, O> = (input: I, ctx: TaskContext) => Promise<O> | O;

export interface Task<I = any, O = any> {
  readonly type: 'task';
  readonly name: string;
  readonly handler: TaskHandler<I, O>;
  readonly options: ResolvedTaskOptions;
  /**
   * The input's check (TaskOptions.input), if any. Not part of the definition's hash. Typed
   * `unknown` out: a task must stay contravariant in its input (see __types).
   */
  readonly parseInput?: InputParser<unknown>;
  /** Type-only: makes Task contravariant in I and covariant in O. */
  readonly __types?: { in: (input: I) => void; out: O };
}

export function defineTask<I = unknown, O = unknown>(name: string, handler: TaskHandler<I, O>, options: TaskOptions<I> = {}): Task<I, O> {
  validateName('task', name);
  if (typeof handler !== 'function') throw new ValidationError(`task "${name}": the handler must be a function`);
  if (options.input !== undefined && typeof options.input !== 'function') {
    throw new ValidationError(`task "${name}": input must be a function that checks the input and returns it (for example a zod schema's parse)`);
  }
  const timeoutMs = options.timeoutMs === undefined ? null : parseDuration(options.timeoutMs, `task "${name}" timeoutMs`);
  if (timeoutMs === 0) throw new ValidationError(`task "${name}": timeoutMs must be above 0`);
  return Object.freeze({
    type: 'task' as const,
    name,
    handler,
    ...(options.input ? { parseInput: options.input } : {}),
    options: Object.freeze({
      retry: resolveRetry(options.retry, `task "${name}"`),
      timeoutMs,
      priority: options.priority === undefined ? 0 : validatePriority(options.priority, `task "${name}" priority`),
      tags: normalizeTags(options.tags, `task "${name}" tags`),
      limits: resolveLimits(options.concurrency, options.rateLimit, `task "${name}"`),
    }),
  });
}

/** Run a parser on an input; its failure becomes a ValidationError that names `what`. */
export function parseWith<I>(parse: InputParser<I>, value: unknown, what: string): I {
  try {
    return parse(value);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ValidationError(`${what}: the input is not valid: ${message.split('\n').slice(0, 8).join(' ')}`);
  }
}

export function isTask(value: unknown): value is Task {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'task';
}
