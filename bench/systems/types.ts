/**
 * What every benchmarked system provides. Parent side: install its schema in a
 * fresh database, enqueue work up front (not timed), say how much is left,
 * and (S0, S7) enqueue through its own client library. Child side
 * (bench/lib/child.ts): run a worker with the shared handlers.
 *
 * Workloads (the same handlers in every system):
 *   noop     one no-op job per unit (S1, S4, S5; S0 enqueues these, with no worker)
 *   latency  a job whose handler reports Date.now() at its start (S2)
 *   chain    CHAIN_STEPS sequential steps per unit (S3)
 *   fanout   FAN_BRANCHES parallel branches and a join per unit (S6)
 *   e2e      a no-op job carrying its enqueue time and phase (S7), E2eInput
 *   padded   a no-op job (the noop handler) whose payload is PAD_BYTES of JSON (S8, storage)
 *
 * Units: a worker child reports every finished UNIT through hooks.completed:
 * a job (noop, latency, e2e), a chain's last step, a fan-out's join.
 */
import type pg from 'pg';

export const CHAIN_STEPS = 10;
export const FAN_BRANCHES = 20;

export type Workload = 'noop' | 'latency' | 'chain' | 'fanout' | 'e2e' | 'padded';

/** The padded workload's payload, about 500 bytes of JSON: {"i": <n>, "pad": "xxx..."} (SQL: PAD_SQL). */
export const PAD_BYTES = 500;
export const PAD_SQL = `repeat('x', 480)`;
export const PAD = 'x'.repeat(480);

export type SystemName = 'baton' | 'graphile' | 'graphile-batched' | 'pgboss' | 'raw';
export const SYSTEM_NAMES: readonly SystemName[] = ['baton', 'graphile', 'graphile-batched', 'pgboss', 'raw'];

/** The payload of an S0 or S7 job: a small JSON object. */
export interface E2eInput {
  /** Sequence number. */
  i: number;
  /** Enqueue time, preciseNow() in the producer (S7; S0 sets it too). */
  t: number;
  /** Phase of S7 the job belongs to (0 in S0). */
  p: number;
}

/** Sent by a worker child to the parent. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'first'; t: number }
  | { type: 'sample'; seq: number; t: number }
  | { type: 'target'; t: number; count: number }
  /**
   * Cumulative finished units (and failed ones, where the system tells) and the
   * time (Date.now()) of the last one counted; batched, at most every
   * PROGRESS_MS. `e2e`: end-to-end latencies (ms) of e2e jobs since the last
   * message, by S7 phase.
   */
  | { type: 'progress'; completed: number; failed: number; t: number; e2e?: Record<string, number[]> }
  | { type: 'error'; message: string }
  | { type: 'stopped' };

/** How the parent configures a worker child (JSON in the BENCH_CHILD environment variable). */
export interface ChildConfig {
  system: SystemName;
  url: string;
  concurrency: number;
  workload: Workload;
  /** Send the count at once (and a 'target' message) when this many units finished. */
  target?: number;
  /** Worker tags (baton). */
  tags?: string[];
  /** Sample allocations (bench/lib/alloc.ts) and write the profile in this directory. */
  allocProfileDir?: string;
}

/** Called by the shared handlers inside a worker child. */
export interface Hooks {
  /** A handler started (the first call gives the time of the first claim). */
  started(): void;
  /** A latency job started at `t` (Date.now() in the handler). */
  sample(seq: number, t: number): void;
  /** `n` units finished (at commit or at handler end: System.countsAt). */
  completed(n: number): void;
  /** `n` units failed for good (systems that tell). */
  failed(n: number): void;
  /** An e2e job of S7 phase `phase`, enqueued at `enqueuedAt` (preciseNow()), finished its handler now. */
  endToEnd(phase: number, enqueuedAt: number): void;
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

/**
 * Enqueueing jobs of one task through the system's own API (S0, S7). A method
 * a system lacks is left out: S0 reports it as "not supported".
 */
export interface Enqueuer {
  /** One job per call (S0a). */
  single?(input: E2eInput): Promise<void>;
  /** One batch per call through the client library (S0b, S7 producers). */
  batch?(inputs: E2eInput[]): Promise<void>;
  /** One SQL statement per call, without the client library (S0c). */
  sql?(inputs: E2eInput[]): Promise<void>;
  close(): Promise<void>;
}

export interface System {
  name: SystemName;
  /** One line on how it is configured, printed with the results. */
  describe: string;
  workloads: readonly Workload[];
  /**
   * When the worker's hooks.completed fires: 'commit' (the unit's completion is
   * committed: baton, raw) or 'handler' (the handler returned; the library
   * commits right after, on its own: graphile, pgboss).
   */
  countsAt: 'commit' | 'handler';
  /** Parent: install the schema (and definitions/queues) in a fresh database. */
  prepare(url: string): Promise<void>;
  /** Parent: enqueue `units` units of a workload up front. */
  enqueueBulk(client: pg.Client, workload: Workload, units: number): Promise<void>;
  /** Parent: how many units are left. */
  remaining(client: pg.Client, workload: Workload): Promise<Remaining>;
  openProducer(url: string): Promise<Producer>;
  /** Parent: enqueue jobs of `task` ('noop' for S0, 'e2e' for S7) with the system's API; `pool`: connections it may use. */
  openEnqueuer(url: string, task: 'noop' | 'e2e', pool: number): Promise<Enqueuer>;
  /** What each Enqueuer method calls, for the notes ("client.enqueue()", ...). */
  enqueueApi: { single?: string; batch?: string; sql?: string };
  /** Child: start a worker. */
  startWorker(config: ChildConfig, hooks: Hooks): Promise<RunningWorker>;
}

/**
 * Begins the bench's own statements (progress checks, isDone polls) so that
 * --pg-stats leaves them out of the systems' server time: `${BENCH_SQL} count(*) ...`.
 * The mark is inside the statement: PostgreSQL 18 leaves a leading comment
 * out of pg_stat_statements' query text.
 */
export const BENCH_MARK = '/* bench */';
export const BENCH_SQL = `select ${BENCH_MARK}`;
