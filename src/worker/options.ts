/** What startWorker() takes, and what worker.stats() reports. */
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { loadConfig, type BatonConfig } from '../config.ts';
import { ValidationError } from '../errors.ts';
import type { Codec } from '../codec.ts';
import type { Logger } from '../types.ts';
import type { Workflow } from '../workflow/builder.ts';
import type { Schedule } from '../workflow/schedule.ts';
import type { Task } from '../workflow/task.ts';

export interface WorkerOptions {
  /** Workflows this process runs (their child workflows are included). */
  workflows?: Workflow[];
  /** Standalone tasks this process runs as one-task jobs (`client.enqueue`). */
  tasks?: Task[];
  /** Schedules this process fires (and runs: their workflows and tasks need not be listed again). */
  schedules?: Schedule[];
  concurrency?: number;
  /** Tasks claimed ahead of free slots. */
  prefetch?: number;
  tags?: string[];
  /** Instead of DATABASE_URL (or the embedded server). */
  connectionString?: string;
  /** Share a pool (created with batonSettings()); the worker does not close it. */
  pool?: pg.Pool;
  /** Overrides of the configuration read from the environment. */
  config?: Partial<BatonConfig>;
  logger?: Logger;
  codec?: Codec;
  /**
   * Prometheus metrics. Counted in memory by default (worker.metrics() is the registry); `port`
   * also serves GET /metrics, on 127.0.0.1 unless `host` says otherwise (as BATON_METRICS_PORT and
   * BATON_METRICS_HOST do); false counts nothing and serves nothing.
   */
  metrics?: { port?: number; host?: string } | false;
  /** Install SIGINT/SIGTERM handlers: first signal stops gracefully, the second forces. */
  handleSignals?: boolean;
  /** Run the reconciler (graphile-worker) in this process (default true; used by startWorker()). */
  reconciler?: boolean;
  /**
   * @internal Background services started with the worker on its pool and stopped with it
   * (startWorker() passes the reconciler here, which keeps the worker free of it).
   */
  maintenance?: (ctx: MaintenanceContext) => Promise<{ stop(): Promise<void> }>;
  workerId?: string;
}

/** @internal What a background service started with the worker gets. */
export interface MaintenanceContext {
  pool: pg.Pool;
  workerId: string;
  config: BatonConfig;
  log: Logger;
  codec: Codec;
  /** The worker's schedules, checked (names unique). */
  schedules: readonly Schedule[];
  /** The worker's metrics registry (undefined with `metrics: false`); served when config.metricsPort is set. */
  metrics: Registry | undefined;
}

export interface WorkerStats {
  running: number;
  buffered: number;
  committing: number;
  completed: number;
  failed: number;
  retried: number;
  refused: number;
  lost: number;
  /** Handlers that timed out and have not settled since (they ignored their AbortSignal). */
  runaway: number;
  /** Round trips and their sizes and durations: claims, and commits (see the committer). */
  claims: { calls: number; tasks: number; ms: number; along: number };
  commits: { calls: number; items: number; ms: number; conflicts: number };
}

/** worker.stats(), from the worker's parts: slots, what it holds, its counters and its round trips. */
export function workerStats(
  slots: { running: number; waitingCount: number },
  held: Iterable<{ phase: string }>,
  counters: Omit<WorkerStats, 'running' | 'buffered' | 'committing' | 'claims' | 'commits'>,
  claims: WorkerStats['claims'],
  committer: { stats(): WorkerStats['commits'] },
): WorkerStats {
  let committing = 0;
  for (const h of held) if (h.phase === 'committing') committing++;
  return { running: slots.running, buffered: slots.waitingCount, committing, ...counters, claims: { ...claims }, commits: committer.stats() };
}


/** The worker's configuration: the environment, overridden by options; checked. */
/** The configuration, checked; prefetch undefined means adaptive (see prefetch.ts). */
export function resolveWorkerConfig(options: WorkerOptions): { config: BatonConfig; prefetch: number | undefined } {
  const m = options.metrics;
  const config = loadConfig(process.env, {
    ...options.config,
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.prefetch !== undefined ? { prefetch: options.prefetch } : {}),
    ...(m === false ? { metricsPort: undefined } : {}),
    ...(m && m.port !== undefined ? { metricsPort: m.port } : {}),
    ...(m && m.host !== undefined ? { metricsHost: m.host } : {}),
  });
  if (!Number.isInteger(config.concurrency) || config.concurrency < 1) {
    throw new ValidationError(`concurrency must be a whole number >= 1 (got ${config.concurrency})`);
  }
  const prefetch = config.prefetch;
  if (prefetch !== undefined && (!Number.isInteger(prefetch) || prefetch < 0)) {
    throw new ValidationError(`prefetch must be a whole number >= 0 (got ${prefetch})`);
  }
  const port = config.metricsPort;
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new ValidationError(`metrics.port must be a TCP port from 1 to 65535 (got ${port})`);
  }
  if (typeof config.metricsHost !== 'string' || config.metricsHost.trim() === '') {
    throw new ValidationError(`metrics.host must be a host name or IP address (got ${JSON.stringify(config.metricsHost)})`);
  }
  return { config, prefetch };
}
