/**
 * What every benchmarked system provides. Parent side: install its schema in a
 * fresh database, enqueue work up front (not timed), say how much is left.
 * Child side (bench/lib/child.ts): run a worker with the shared handlers.
 *
 * Workloads (the same handlers in every system):
 *   noop     one no-op job per unit (S1, S4, S5)
 *   latency  a job whose handler reports Date.now() at its start (S2)
 *   chain    CHAIN_STEPS sequential steps per unit (S3)
 *   fanout   FAN_BRANCHES parallel branches and a join per unit (S6)
 */
import type pg from 'pg';

export const CHAIN_STEPS = 10;
export const FAN_BRANCHES = 20;

export type Workload = 'noop' | 'latency' | 'chain' | 'fanout';

export type SystemName = 'baton' | 'graphile' | 'graphile-batched' | 'pgboss' | 'raw';
export const SYSTEM_NAMES: readonly SystemName[] = ['baton', 'graphile', 'graphile-batched', 'pgboss', 'raw'];

/** Sent by a worker child to the parent. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'first'; t: number }
  | { type: 'sample'; seq: number; t: number }
  | { type: 'target'; t: number; count: number }
  | { type: 'error'; message: string }
  | { type: 'stopped' };

/** How the parent configures a worker child (JSON in the BENCH_CHILD environment variable). */
export interface ChildConfig {
  system: SystemName;
  url: string;
  concurrency: number;
  workload: Workload;
  /** Report the time when this many completions were committed (systems that know it: baton, raw). */
  target?: number;
  /** Worker tags (baton). */
  tags?: string[];
}

/** Called by the shared handlers inside a worker child. */
export interface Hooks {
  /** A handler started (the first call gives the time of the first claim). */
  started(): void;
  /** A latency job started at `t` (Date.now() in the handler). */
  sample(seq: number, t: number): void;
  /** `n` completions were committed (when the system can tell). */
  completed(n: number): void;
}

export interface RunningWorker {
  stop(): Promise<void>;
}

export interface Remaining {
  /** Units (jobs or workflows) not finished yet. */
  remaining: number;
  /** Units that failed (a failure makes a run invalid). */
  failed: number;
}

/** Enqueues one latency job at a time and says when it finished (S2). */
export interface Producer {
  enqueue(seq: number): Promise<string>;
  isDone(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface System {
  name: SystemName;
  /** One line on how it is configured, printed with the results. */
  describe: string;
  workloads: readonly Workload[];
  /** Parent: install the schema (and definitions/queues) in a fresh database. */
  prepare(url: string): Promise<void>;
  /** Parent: enqueue `units` units of a workload up front. */
  enqueueBulk(client: pg.Client, workload: Workload, units: number): Promise<void>;
  /** Parent: how many units are left. */
  remaining(client: pg.Client, workload: Workload): Promise<Remaining>;
  openProducer(url: string): Promise<Producer>;
  /** Child: start a worker. */
  startWorker(config: ChildConfig, hooks: Hooks): Promise<RunningWorker>;
}
