/** The client's smaller features, each in its own module: client.ts calls them through this one import. */
export { readTaskResult, type TaskResult } from './results.ts';
export { readFrames, tailFrames, type ReadStreamOptions, type TailOptions } from './streams.ts';
export { clientWaitpoint, completeWithToken, type CompletedWaitpoint } from './waitpoints.ts';
export type { StreamFrame } from '../store/streams.ts';
export type { WaitpointOptions } from '../workflow/waitpoint.ts';
