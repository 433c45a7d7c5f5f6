/**
 * Baton: durable background tasks and workflows on PostgreSQL.
 *
 *   import { defineTask, defineWorkflow, createClient, startWorker } from 'baton';
 */
export { defineTask, type Task, type TaskContext, type TaskOptions, type TaskHandler } from './workflow/task.ts';
export { defineWorkflow, taskWorkflow, Flow, type Workflow, type LoopOptions, type EventOptions } from './workflow/builder.ts';
export type { RetryPolicy } from './workflow/retry.ts';
export { createClient, Client, stateAt, type ClientOptions, type StartOptions, type Started, type InstanceView, type OnConflict, type TransactionLike } from './client/index.ts';
export { Worker, type WorkerOptions, type WorkerStats } from './worker/worker.ts';
export { startWorker } from './start-worker.ts';
export type { WorkerEvents } from './worker/emitter.ts';
export { jsonCodec, type Codec, type Json } from './codec.ts';
export { batonSettings, createPool } from './db/pool.ts';
export {
  BatonError,
  CancelledError,
  ConfigError,
  ConflictError,
  DatabaseUnavailableError,
  InvalidStateError,
  LeaseLostError,
  NonRetryableError,
  NotFoundError,
  SchemaVersionError,
  TimeoutError,
  ValidationError,
  WorkflowFailedError,
  coerceError,
  type ErrorCode,
  type SerializedError,
} from './errors.ts';
export type { Logger, WorkflowStatus, TaskStatus, StepKind } from './types.ts';
export { loadConfig, type BatonConfig } from './config.ts';
