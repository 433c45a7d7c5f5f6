/**
 * Baton: durable background tasks and workflows on PostgreSQL.
 *
 *   import { defineTask, defineWorkflow, createClient, startWorker } from 'baton';
 */
export { defineTask, type InputParser, type Task, type TaskContext, type TaskStream, type TaskOptions, type TaskHandler, type ResolvedTaskOptions } from './workflow/task.ts';
export {
  defineWorkflow,
  taskWorkflow,
  Flow,
  type Workflow,
  type LoopOptions,
  type WorkflowOptions,
  type EventOptions,
  type ThenOptions,
  type CompensationInput,
  type SubFlow,
  type BranchArg,
  type OutOf,
  type JoinOption,
  type ParallelOptions,
  type JoinOutput,
  type Winner,
} from './workflow/builder.ts';
export type { Shape } from './workflow/graph.ts';
export { defineSchedule, type Schedule, type ScheduleOptions } from './workflow/schedule.ts';
export type { RetryPolicy } from './workflow/retry.ts';
export {
  createClient,
  Client,
  stateAt,
  type ClientOptions,
  type StartOptions,
  type Started,
  type StartManyOptions,
  type StartedMany,
  type Retried,
  type RetryManyOptions,
  type InstanceView,
  type RebuiltState,
  type TransactionLike,
  type DrizzleTransactionLike,
  type TaskResult,
  type ReadStreamOptions,
  type TailOptions,
  type CompletedWaitpoint,
} from './client/index.ts';
export type { WaitpointOptions } from './workflow/waitpoint.ts';
export type { StreamFrame } from './store/streams.ts';
export type { InstanceRow, InstanceSummary, ListFilter, Page } from './store/instances.ts';
export type { TaskRow } from './store/tasks.ts';
export type { HistoryEntry } from './store/history.ts';
export type { AvailableTask } from './store/claims.ts';
export type { DefinitionSummary } from './store/definitions.ts';
export type { ScheduleView } from './store/schedules.ts';
export type { RetryManyResult, RetryResult } from './store/retry.ts';
export { Worker, type WorkerOptions, type WorkerStats } from './worker/worker.ts';
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard/server.ts';
export { startWorker } from './start-worker.ts';
export type { WorkerEvents, WorkerEmitter, TaskEventInfo, Listener as WorkerEventListener } from './worker/emitter.ts';
export { jsonCodec, type Codec, type Json } from './codec.ts';
export { batonSettings, createPool, type PoolOptions } from './db/pool.ts';
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
  PortInUseError,
  SchemaVersionError,
  StreamFrameTooLargeError,
  WaitpointTokenError,
  TimeoutError,
  ValidationError,
  WorkflowFailedError,
  WorkflowCompensatedError,
  CompensationFailedError,
  coerceError,
  type ErrorCode,
  type SerializedError,
  type WaitpointRefusal,
} from './errors.ts';
export {
  WORKFLOW_STATUSES,
  FINISHED_STATUSES,
  TASK_STATUSES,
  STEP_KINDS,
  DEFINITION_KINDS,
  HISTORY_KINDS,
  ON_CONFLICT,
  CATCH_UP,
  type CatchUp,
  type WorkflowStatus,
  type FinishedStatus,
  type TaskStatus,
  type StepKind,
  type DefinitionKind,
  type HistoryKind,
  type OnConflict,
  type Logger,
  type Executor,
} from './types.ts';
export { loadConfig, type BatonConfig, type LogLevel, type Env } from './config.ts';
