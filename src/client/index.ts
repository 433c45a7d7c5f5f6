export { Client, createClient, type ClientOptions, type InstanceView, type StartOptions, type Started } from './client.ts';
export { stateAt, type RebuiltState } from './history.ts';
export type { DrizzleTransactionLike, TransactionLike } from './tx.ts';
