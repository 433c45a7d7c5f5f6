/**
 * Shared types. A leaf module: it imports nothing of ours.
 *
 * Vocabulary: a *task* is a named async function, and also the row
 * of one scheduled run of it inside an *instance* of a *workflow*. A *claim* is
 * a lease on one task row (worker, expiry, fencing *epoch*). A *signal* is a
 * cancel or pause request; an *event* is an external message consumed by
 * waitForEvent; *history* is the append-only log of checkpoints.
 */

import type { QueryResultRow } from 'pg';

/*
 * The vocabulary, defined once: each list is what the database accepts (the
 * schema's check constraints are built from it), and its type is derived from
 * it. The store, the worker, the client and the CLI use these.
 */

/**
 * An instance's status. `compensated`: a step failed for good (or a cancel asked for it) and the
 * compensations of the steps that had completed all ran (see src/workflow/compensate.ts).
 */
export const WORKFLOW_STATUSES = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'compensated'] as const;
export type WorkflowStatus = (typeof WORKFLOW_STATUSES)[number];

/** The statuses an instance ends in. */
export const FINISHED_STATUSES = ['completed', 'failed', 'cancelled', 'compensated'] as const satisfies readonly WorkflowStatus[];
export type FinishedStatus = (typeof FINISHED_STATUSES)[number];

/**
 * A task row's status. `queued`: a task with a concurrency or rate limit that could run but waits for
 * its limit to admit it (then it is `ready`); see src/workflow/limits.ts.
 */
export const TASK_STATUSES = ['waiting', 'queued', 'ready', 'running', 'completed', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * A task row's kind: `task` runs user code; the others are carried out by the worker itself.
 * `compensate`: a cancel's request to compensate (baton.cancel_workflow with p_compensate).
 */
export const STEP_KINDS = ['task', 'sleep', 'event', 'child', 'branch', 'compensate'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/** What a definition is, and so an instance started from it: a workflow, or a one-task job. */
export const DEFINITION_KINDS = ['workflow', 'task'] as const;
export type DefinitionKind = (typeof DEFINITION_KINDS)[number];

/** The requests recorded in baton.signals. */
export const SIGNAL_KINDS = ['cancel', 'pause'] as const;

/**
 * What a history row records: `started`; a step's outcome (`completed`,
 * `branch`, `timed_out`, `retry`, `task_failed`); `lease_lost`; an instance
 * ended from outside a step (`failed`, `cancelled`); `paused`, `resumed`;
 * `retried` (a failed or cancelled instance made to run again, its reset
 * steps in `detail.steps`).
 */
export const HISTORY_KINDS = ['started', 'completed', 'branch', 'timed_out', 'retry', 'task_failed', 'lease_lost', 'failed', 'cancelled', 'paused', 'resumed', 'retried'] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

/** What a schedule does with ticks missed while no worker ran it (see src/workflow/schedule.ts). */
export const CATCH_UP = ['none', 'latest', 'all'] as const;
export type CatchUp = (typeof CATCH_UP)[number];

/** What a start does when the id is taken. */
export const ON_CONFLICT = ['fail', 'useExisting', 'terminateExisting'] as const;
export type OnConflict = (typeof ON_CONFLICT)[number];

/** True when `value` is one of `list` (narrowing a string from outside, such as a CLI flag). */
export function isOneOf<const T extends string>(list: readonly T[], value: unknown): value is T {
  return (list as readonly unknown[]).includes(value);
}

export function isFinished(status: WorkflowStatus): status is FinishedStatus {
  return isOneOf(FINISHED_STATUSES, status);
}

/** pino-compatible: `log.info({ workflowId }, 'message')` or `log.info('message')`. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Something that runs parameterised SQL: a pg Pool, PoolClient or Client. */
export interface Executor {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}
