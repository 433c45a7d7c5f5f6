/** What the client's methods take and give back (client.ts holds the methods). */
import type pg from 'pg';
import type { BatonConfig } from '../config.ts';
import type { Codec } from '../codec.ts';
import type { InstanceRow } from '../store/instances.ts';
import type { RetryResult } from '../store/retry.ts';
import type { TaskRow } from '../store/tasks.ts';
import type { Logger, OnConflict } from '../types.ts';
import type { TransactionLike } from './tx.ts';

export interface ClientOptions {
  connectionString?: string;
  /** Share a pool (created with batonSettings()); the client does not close it. */
  pool?: pg.Pool;
  config?: Partial<BatonConfig>;
  logger?: Logger;
  codec?: Codec;
}

export interface StartOptions {
  /** Caller-chosen instance id (1-255 characters, no control characters); generated when omitted. */
  id?: string;
  /** Lower runs first; overrides each task's default. */
  priority?: number;
  /** Tags every task of this instance requires, on top of its own. */
  tags?: string[];
  /** When the id is taken: fail (ConflictError, default), useExisting, or terminateExisting (cancel it, start anew). */
  onConflict?: OnConflict;
  /** Do not start before this time. */
  runAt?: Date;
  /** Start inside the caller's transaction: a pg client, or a Drizzle transaction. */
  tx?: TransactionLike;
  /**
   * The key for first steps whose concurrency or rate limit counts per key. Computed from the input by
   * the task's key function when you pass the workflow or task itself; needed when you start one by name.
   */
  limitKey?: string;
}

export interface Started<O> {
  id: string;
  /** False when onConflict 'useExisting' returned an instance that already existed. */
  created: boolean;
  /** Wait for this instance's end (see Client.result). */
  result(options?: { timeoutMs?: number }): Promise<O>;
}

export interface StartManyOptions extends Pick<StartOptions, 'priority' | 'tags' | 'tx'> {
  /** One id per input (null or undefined: generated). Given ids make the result say, per item, whether it was created. */
  ids?: readonly (string | null | undefined)[];
  /** When an id is taken, as in start: fail (ConflictError, nothing written; default), useExisting, or terminateExisting. */
  onConflict?: OnConflict;
  /** One limit key per input (see StartOptions.limitKey): computed when you pass the workflow or task itself. */
  limitKeys?: readonly string[];
}

export interface StartedMany {
  id: string;
  /** False when onConflict 'useExisting' found an instance with this id. */
  created: boolean;
}

export interface Retried<O = unknown> extends RetryResult {
  /** Wait for the retried instance's end (see Client.result). */
  result(options?: { timeoutMs?: number }): Promise<O>;
}

export interface InstanceView extends InstanceRow {
  tasks: TaskRow[];
  /** The version of the definition this instance runs (defineWorkflow's `version`); null if it is not registered. */
  definitionVersion: number | null;
  /** Set when no live worker has the definition this instance was started with. */
  waitingForDefinition: string | null;
  /**
   * Why the instance is not moving: one line when live workers run but none has the instance's
   * definition (its steps, ready or not yet, wait for a worker that exports that version); else one
   * line per ready task that no live worker at all, or none with the definition that offers the
   * task's tags, would take. Empty when some live worker may take each ready task (or the instance
   * is finished or paused).
   */
  stalled: string[];
  /** Steps a run goes through (loops counted once), from the definition; null if it is not registered. */
  estimatedSteps: number | null;
}
