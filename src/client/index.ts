export { Client, createClient, type ClientOptions, type InstanceView, type Retried, type StartManyOptions, type StartOptions, type Started, type StartedMany } from './client.ts';
export type { RetryManyOptions } from './retry.ts';
export { stateAt, type RebuiltState } from './history.ts';
export type { DrizzleTransactionLike, TransactionLike } from './tx.ts';
export type { TaskResult } from './results.ts';
export type { ReadStreamOptions, TailOptions } from './streams.ts';
export type { CompletedWaitpoint } from './waitpoints.ts';
