/**
 * Typed errors with a stable `code`. A leaf module: it imports nothing of ours.
 *
 * User mistakes (bad input, unknown names, wrong state) are `BatonError`s with
 * `userError = true`: the CLI prints their message on one line and exits 1,
 * never a stack trace. Everything else is a bug or an outage.
 */

export type ErrorCode =
  | 'VALIDATION'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_STATE'
  | 'CONFIG'
  | 'SCHEMA_VERSION'
  | 'DATABASE_UNAVAILABLE'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'LEASE_LOST'
  | 'NON_RETRYABLE'
  | 'TASK_FAILED'
  | 'WORKFLOW_FAILED'
  | 'WORKFLOW_COMPENSATED'
  | 'COMPENSATION_FAILED'
  | 'USAGE'
  | 'PORT_IN_USE'
  | 'WAITPOINT_TOKEN';

export class BatonError extends Error {
  readonly code: ErrorCode;
  /** True when the error is the caller's mistake, not a fault of Baton or the database. */
  readonly userError: boolean;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { userError?: boolean; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.userError = options.userError ?? true;
    if (options.details) this.details = options.details;
  }
}

/** Input that Baton refuses before writing anything: bad ids, unserialisable payloads, bad options. */
export class ValidationError extends BatonError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('VALIDATION', message, { details });
  }
}

/** A frame for ctx.stream.write over the size limit (BATON_MAX_STREAM_FRAME_BYTES); nothing of it is written. */
export class StreamFrameTooLargeError extends ValidationError {
  constructor(readonly bytes: number, readonly limit: number) {
    super(`a stream frame is ${bytes} bytes, over the limit of ${limit} (BATON_MAX_STREAM_FRAME_BYTES)`, { bytes, limit });
  }
}

/** Why a waitpoint token was refused (nothing was written): see WaitpointTokenError. */
export type WaitpointRefusal = 'malformed' | 'forged' | 'expired' | 'reused' | 'closed';

/**
 * A waitpoint token that client.completeWaitpoint (or baton.complete_waitpoint) refused; nothing
 * was written. `reason`: malformed (not a token), forged (signed with no secret this process knows),
 * expired, reused (completed before), closed (its instance ended, or the wait it was for completed).
 */
export class WaitpointTokenError extends BatonError {
  constructor(readonly reason: WaitpointRefusal, message: string) {
    super('WAITPOINT_TOKEN', message, { details: { reason } });
  }
}

/** A workflow, task, definition or instance that does not exist. */
export class NotFoundError extends BatonError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('NOT_FOUND', message, { details });
  }
}

/** An instance id that is already taken (start with `onConflict: 'fail'`). */
export class ConflictError extends BatonError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFLICT', message, { details });
  }
}

/** An operation the instance's current status does not allow (cancel a completed instance, ...). */
export class InvalidStateError extends BatonError {
  readonly state: string;
  constructor(message: string, state: string, details?: Record<string, unknown>) {
    super('INVALID_STATE', message, { details: { ...details, state } });
    this.state = state;
  }
}

/** A configuration value that cannot be used; the message names the variable and what it expects. */
export class ConfigError extends BatonError {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super('CONFIG', message, { details: { variable } });
    this.variable = variable;
  }
}

/** A port Baton was asked to listen on (the metrics server's) is taken by another process. */
export class PortInUseError extends BatonError {
  readonly port: number;
  readonly host: string;
  constructor(what: string, host: string, port: number) {
    super('PORT_IN_USE', `${what} cannot listen on ${host}:${port}: the port is in use by another process (choose another port)`, {
      details: { host, port },
    });
    this.port = port;
    this.host = host;
  }
}

/** The database's schema is newer than this build of Baton understands. */
export class SchemaVersionError extends BatonError {
  constructor(readonly databaseVersion: number, readonly codeVersion: number) {
    super(
      'SCHEMA_VERSION',
      `database schema is at version ${databaseVersion}, newer than this Baton understands (up to version ${codeVersion}); upgrade Baton before running it against this database`,
      { details: { databaseVersion, codeVersion } },
    );
  }
}

/** The database cannot be reached (wrong URL, server down, refused). */
export class DatabaseUnavailableError extends BatonError {
  constructor(message: string, cause?: unknown) {
    super('DATABASE_UNAVAILABLE', message, { cause });
  }
}

/** A wait or an attempt that ran out of time. */
export class TimeoutError extends BatonError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('TIMEOUT', message, { userError: false, details });
  }
}

/** Raised in a handler's AbortSignal when its instance is cancelled. */
export class CancelledError extends BatonError {
  constructor(message = 'the workflow was cancelled') {
    super('CANCELLED', message, { userError: false });
  }
}

/** Raised in a handler's AbortSignal when this worker no longer holds the task's claim. */
export class LeaseLostError extends BatonError {
  constructor(message = 'the claim on this task was lost; its result will be refused') {
    super('LEASE_LOST', message, { userError: false });
  }
}

/** Throw from a handler to fail the task at once, without further retries. */
export class NonRetryableError extends BatonError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('NON_RETRYABLE', message, { userError: false, ...options });
  }
}

/** A workflow that ended `failed`, raised by `client.result()`. */
export class WorkflowFailedError extends BatonError {
  constructor(
    readonly workflowId: string,
    readonly error: SerializedError | null,
    status = 'failed',
    code: Extract<ErrorCode, 'WORKFLOW_FAILED' | 'WORKFLOW_COMPENSATED' | 'COMPENSATION_FAILED'> = 'WORKFLOW_FAILED',
  ) {
    super(code, `workflow ${workflowId} ${status}: ${error?.message ?? 'no error recorded'}`, {
      userError: false,
      details: { workflowId, status },
    });
  }
}

/** A workflow that ended `compensated`, raised by `client.result()`: `stepError` is why it compensated (a step's error, or the cancel's). */
export class WorkflowCompensatedError extends WorkflowFailedError {
  readonly stepError: SerializedError | null;
  constructor(workflowId: string, error: SerializedError | null) {
    super(workflowId, error, 'compensated', 'WORKFLOW_COMPENSATED');
    this.stepError = (error?.cause as SerializedError | undefined) ?? null;
  }
}

/**
 * A workflow that ended `failed` because a compensation failed for good, raised by `client.result()`:
 * `stepError` is why it compensated, `compensationError` how the compensation failed.
 */
export class CompensationFailedError extends WorkflowFailedError {
  readonly stepError: SerializedError | null;
  readonly compensationError: SerializedError | null;
  constructor(workflowId: string, error: SerializedError | null) {
    super(workflowId, error, 'failed', 'COMPENSATION_FAILED');
    this.stepError = (error?.cause as SerializedError | undefined) ?? null;
    this.compensationError = (error?.compensation as SerializedError | undefined) ?? null;
  }
}

/** The error client.result() raises for an instance that ended other than completed. */
export function workflowError(workflowId: string, error: SerializedError | null, status: string): WorkflowFailedError {
  if (status === 'compensated') return new WorkflowCompensatedError(workflowId, error);
  if (status === 'failed' && error?.code === 'COMPENSATION_FAILED') return new CompensationFailedError(workflowId, error);
  return new WorkflowFailedError(workflowId, error, status);
}

/** Wrong command-line usage (exit code 2). */
export class UsageError extends BatonError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** An error as stored in the database and shown to users. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  retryable?: boolean;
  [key: string]: unknown;
}

/** Turn anything user code may throw into an Error. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return new Error(`non-error thrown: ${text}`);
}

export function serializeError(value: unknown): SerializedError {
  const error = coerceError(value);
  const out: SerializedError = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  if (error.stack) out.stack = error.stack;
  if (error instanceof NonRetryableError || (error as { retryable?: unknown }).retryable === false) out.retryable = false;
  return out;
}

/** True for mistakes a person made (exit 1 in the CLI), false for faults. */
export function isUserError(value: unknown): value is BatonError {
  return value instanceof BatonError && value.userError;
}
