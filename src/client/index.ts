export { Client, createClient, type ClientOptions, type InstanceView, type OnConflict, type StartOptions, type Started } from './client.ts';
export { stateAt, type RebuiltState } from './history.ts';
export type { TransactionLike } from './tx.ts';
