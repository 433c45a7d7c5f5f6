/**
 * Baton's configuration: typed defaults, overridden by environment variables.
 *
 * Every variable is parsed strictly. A value that cannot be used stops start-up
 * with a ConfigError whose message names the variable and what it expects,
 * e.g. `BATON_CONCURRENCY must be a whole number from 1 to 1000 (got "abc")`.
 */
import { ConfigError } from './errors.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface BatonConfig {
  /** Connection string; undefined means "use the embedded PostgreSQL". */
  databaseUrl: string | undefined;
  /**
   * Embedded PostgreSQL: data directory and the fixed local port it listens on (127.0.0.1 only).
   * portIsDefault: the port was not chosen (BATON_EMBEDDED_PORT unset), so when another
   * project's server holds it, ours moves to a free port recorded under the data directory.
   */
  embedded: { dataDir: string; port: number; portIsDefault?: boolean };
  /** Task slots per worker process. */
  concurrency: number;
  /**
   * Tasks claimed ahead of free slots (leases held, renewed, released on shutdown).
   * Unset: adaptive, about 500 ms of work at the rate this worker finishes
   * tasks, between the concurrency and 500 (src/worker/prefetch.ts): short
   * tasks travel in claims and commits of hundreds, long ones hold few extra
   * leases. 0 keeps every task in the shared queue until a slot is free
   * (strictest fairness).
   */
  prefetch: number | undefined;
  /** Tags this worker offers; a task runs only where all its required tags are offered. */
  tags: string[];
  /** Lease length. Renewed every ttl/3, so a blocked event loop may stall up to 2/3 of it safely. */
  claimTtlMs: number;
  /** Fallback poll when no NOTIFY arrives. */
  pollIntervalMs: number;
  /** Reconciler tick: reclaims expired claims, fires timers. At most 2 s. */
  reconcileIntervalMs: number;
  /** One priority step equals this much waiting (exact aging). Must be the same on every process. */
  agingIntervalMs: number;
  /** A task whose lease was lost this many times fails (it probably kills its worker). */
  maxLeaseLosses: number;
  /** Graceful shutdown: how long running tasks may finish before they are aborted and released. */
  shutdownGraceMs: number;
  /** Completions are committed together within this window. */
  completionBatchMs: number;
  /** Largest encoded input, output or event payload accepted. */
  maxPayloadBytes: number;
  /** Largest encoded frame a task may write to its output stream (ctx.stream.write). */
  maxStreamFrameBytes: number;
  /** Signs waitpoint tokens (HMAC-SHA256); undefined: no tokens can be made or completed. Never logged. */
  waitpointSecret: string | undefined;
  /** Secrets tokens were signed with before a rotation: still accepted, never used to sign. */
  waitpointPreviousSecrets: string[];
  /** How long a waitpoint token is valid unless its maker says otherwise. */
  waitpointTtlMs: number;
  /** Finished instances (and orphan events) are deleted this long after they end. */
  retentionMs: number;
  /** A published (keyed) event waits this long for a waiter unless its publish says otherwise. */
  eventRetentionMs: number;
  /** Where `baton worker` loads task and workflow modules from. */
  workersDir: string;
  /** Connections per process. */
  poolSize: number;
  logLevel: LogLevel;
  /** Serve Prometheus metrics on this port (GET /metrics); undefined: not served. */
  metricsPort: number | undefined;
  /** Where the metrics server listens: loopback unless asked otherwise. */
  metricsHost: string;
}

export const defaults: BatonConfig = {
  databaseUrl: undefined,
  embedded: { dataDir: '.baton', port: 54329, portIsDefault: true },
  concurrency: 10,
  prefetch: undefined,
  tags: [],
  claimTtlMs: 30_000,
  pollIntervalMs: 1_000,
  reconcileIntervalMs: 1_000,
  agingIntervalMs: 60_000,
  maxLeaseLosses: 3,
  shutdownGraceMs: 25_000,
  completionBatchMs: 5,
  maxPayloadBytes: 1024 * 1024,
  maxStreamFrameBytes: 64 * 1024,
  waitpointSecret: undefined,
  waitpointPreviousSecrets: [],
  waitpointTtlMs: 7 * 24 * 3_600_000,
  retentionMs: 7 * 24 * 3_600_000,
  eventRetentionMs: 7 * 24 * 3_600_000,
  workersDir: 'workers',
  poolSize: 8,
  logLevel: 'info',
  metricsPort: undefined,
  metricsHost: '127.0.0.1',
};

/** Environment variables, as process.env holds them. */
export type Env = Record<string, string | undefined>;

function intVar(env: Env, name: string, fallback: number, min: number, max: number, what = 'a whole number'): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const text = raw.trim();
  if (!/^-?\d+$/.test(text)) {
    throw new ConfigError(name, `${name} must be ${what} from ${min} to ${max} (got "${raw}")`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `${name} must be ${what} from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

function durationVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  return intVar(env, name, fallback, min, max, 'a duration in milliseconds');
}

// eslint-disable-next-line no-control-regex
const TAG = /^[^\u0000-\u001f\u007f,]{1,128}$/;

export function parseTags(raw: string, variable = 'BATON_TAGS'): string[] {
  const tags = raw
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  for (const tag of tags) {
    if (!TAG.test(tag)) {
      throw new ConfigError(
        variable,
        `${variable} must be a comma-separated list of tags of 1-128 characters without control characters (got ${JSON.stringify(raw)})`,
      );
    }
  }
  return [...new Set(tags)].sort();
}

export function validateDatabaseUrl(raw: string, variable = 'DATABASE_URL'): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(variable, `${variable} must be a postgres:// or postgresql:// URL (got a malformed value)`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(variable, `${variable} must be a postgres:// or postgresql:// URL (got scheme "${url.protocol.replace(/:$/, '')}")`);
  }
  if (!url.hostname && !url.searchParams.get('host')) {
    throw new ConfigError(variable, `${variable} must name a host, e.g. postgres://user@127.0.0.1:5432/db`);
  }
  return raw;
}

// A host name or an IP address (v6 without brackets), nothing that could carry a path or credentials.
const HOST = /^[A-Za-z0-9.:-]{1,253}$/;

function metricsHost(env: Env): string {
  const raw = env.BATON_METRICS_HOST?.trim();
  if (!raw) return defaults.metricsHost;
  if (!HOST.test(raw)) throw new ConfigError('BATON_METRICS_HOST', `BATON_METRICS_HOST must be a host name or IP address, e.g. 0.0.0.0 (got ${JSON.stringify(raw)})`);
  return raw;
}

/** A signing secret: at least 32 characters (the message never shows the value). */
function secretVar(env: Env, name: string, raw = env[name]): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  if (raw.trim().length < 32) throw new ConfigError(name, `${name} must be at least 32 characters (got ${raw.trim().length}); e.g. openssl rand -base64 32`);
  return raw.trim();
}

function previousSecrets(env: Env): string[] {
  const name = 'BATON_WAITPOINT_PREVIOUS_SECRETS';
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').filter((s) => s.trim() !== '').map((s) => secretVar(env, name, s)!);
}

const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** Build the configuration from defaults and the environment. Throws ConfigError on a bad value. */
export function loadConfig(env: Env = process.env, overrides: Partial<BatonConfig> = {}): BatonConfig {
  const url = env.DATABASE_URL?.trim() ? validateDatabaseUrl(env.DATABASE_URL.trim()) : defaults.databaseUrl;
  const logLevel = (env.BATON_LOG_LEVEL?.trim() || defaults.logLevel) as LogLevel;
  if (!LEVELS.includes(logLevel)) {
    throw new ConfigError('BATON_LOG_LEVEL', `BATON_LOG_LEVEL must be one of ${LEVELS.join(', ')} (got "${env.BATON_LOG_LEVEL}")`);
  }
  const dataDir = env.BATON_DATA_DIR?.trim() || defaults.embedded.dataDir;
  const config: BatonConfig = {
    databaseUrl: url,
    embedded: {
      dataDir,
      port: intVar(env, 'BATON_EMBEDDED_PORT', defaults.embedded.port, 1024, 65535, 'a TCP port'),
      portIsDefault: !env.BATON_EMBEDDED_PORT?.trim(),
    },
    concurrency: intVar(env, 'BATON_CONCURRENCY', defaults.concurrency, 1, 1000),
    prefetch: env.BATON_PREFETCH?.trim() ? intVar(env, 'BATON_PREFETCH', 0, 0, 10000) : defaults.prefetch,
    tags: env.BATON_TAGS !== undefined ? parseTags(env.BATON_TAGS) : defaults.tags,
    claimTtlMs: durationVar(env, 'BATON_CLAIM_TTL_MS', defaults.claimTtlMs, 300, 86_400_000),
    pollIntervalMs: durationVar(env, 'BATON_POLL_INTERVAL_MS', defaults.pollIntervalMs, 10, 600_000),
    reconcileIntervalMs: durationVar(env, 'BATON_RECONCILE_INTERVAL_MS', defaults.reconcileIntervalMs, 50, 2_000),
    agingIntervalMs: durationVar(env, 'BATON_AGING_INTERVAL_MS', defaults.agingIntervalMs, 1, 365 * 86_400_000),
    maxLeaseLosses: intVar(env, 'BATON_MAX_LEASE_LOSSES', defaults.maxLeaseLosses, 1, 1000),
    shutdownGraceMs: durationVar(env, 'BATON_SHUTDOWN_GRACE_MS', defaults.shutdownGraceMs, 0, 3_600_000),
    completionBatchMs: durationVar(env, 'BATON_COMPLETION_BATCH_MS', defaults.completionBatchMs, 0, 1_000),
    maxPayloadBytes: intVar(env, 'BATON_MAX_PAYLOAD_BYTES', defaults.maxPayloadBytes, 1, 256 * 1024 * 1024, 'a size in bytes'),
    waitpointSecret: secretVar(env, 'BATON_WAITPOINT_SECRET'),
    waitpointPreviousSecrets: previousSecrets(env),
    waitpointTtlMs: durationVar(env, 'BATON_WAITPOINT_TTL_MS', defaults.waitpointTtlMs, 1_000, 3650 * 86_400_000),
    maxStreamFrameBytes: intVar(env, 'BATON_MAX_STREAM_FRAME_BYTES', defaults.maxStreamFrameBytes, 1, 16 * 1024 * 1024, 'a size in bytes'),
    retentionMs: durationVar(env, 'BATON_RETENTION_MS', defaults.retentionMs, 1_000, 3650 * 86_400_000),
    eventRetentionMs: durationVar(env, 'BATON_EVENT_RETENTION_MS', defaults.eventRetentionMs, 1_000, 365 * 86_400_000),
    workersDir: env.BATON_WORKERS_DIR?.trim() || defaults.workersDir,
    poolSize: intVar(env, 'BATON_POOL_SIZE', defaults.poolSize, 2, 1000),
    logLevel,
    metricsPort: env.BATON_METRICS_PORT?.trim() ? intVar(env, 'BATON_METRICS_PORT', 0, 1, 65535, 'a TCP port') : defaults.metricsPort,
    metricsHost: metricsHost(env),
    ...overrides,
  };
  return config;
}
