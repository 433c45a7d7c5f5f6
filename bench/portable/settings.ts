/**
 * The adapter's settings, read once from the environment the harness sets
 * (CONTRIBUTING_ADAPTERS.md of postgresql-job-queue-benchmarking, "Env in").
 * A bad value is a one-line error naming the variable; nothing else is read
 * from the environment after start, except the rate control file.
 */

export interface Settings {
  url: string;
  scenario: string;
  mode: 'fixed' | 'depth-target';
  /** `harness`: the harness's `ENQUEUE <n>` lines on stdin pace the producer; `adapter`: its own clock does. */
  pacing: 'harness' | 'adapter';
  /** PRODUCER_RATE: the base rate, jobs/s (the rate the harness paces its tokens at). */
  rate: number;
  /** PRODUCER_RATE_CONTROL_FILE: the current target rate, re-read while running (the high-load phase writes 1.5x). */
  controlFile: string | undefined;
  /** Rows per bulk call, at most. */
  batchMax: number;
  /** Self-paced producer tick, ms. */
  batchMs: number;
  targetDepth: number;
  workers: number;
  payloadBytes: number;
  workMs: number;
  sampleEveryS: number;
  /** BENCH_INSTANCE_ID: this replica's index; only instance 0 reports the global observations. */
  instanceId: number;
  /** PRODUCER_ONLY_INSTANCE_ZERO=1: replicas other than 0 consume only. */
  produces: boolean;
}

export class SettingsError extends Error {}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, whole = false): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (whole && !Number.isInteger(n))) {
    throw new SettingsError(`${name} must be a ${whole ? 'whole ' : ''}number >= ${min} (got "${raw}")`);
  }
  return n;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name]?.trim() || fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new SettingsError(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`);
  return raw as T;
}

export function readSettings(env: NodeJS.ProcessEnv): Settings {
  const url = env.DATABASE_URL?.trim();
  if (!url) throw new SettingsError('DATABASE_URL is required');
  const scenario = env.SCENARIO?.trim() || 'long_horizon';
  if (scenario !== 'long_horizon') throw new SettingsError(`SCENARIO "${scenario}" is not supported (long_horizon only)`);
  const instanceId = number(env, 'BENCH_INSTANCE_ID', 0, 0, true);
  return {
    url,
    scenario,
    mode: oneOf(env, 'PRODUCER_MODE', 'fixed', ['fixed', 'depth-target']),
    // Unset means a run by hand, with nobody writing tokens: the adapter paces itself (as the peers do).
    pacing: oneOf(env, 'PRODUCER_PACING', 'adapter', ['harness', 'adapter']),
    rate: number(env, 'PRODUCER_RATE', 100, 0),
    controlFile: env.PRODUCER_RATE_CONTROL_FILE?.trim() || undefined,
    batchMax: number(env, 'PRODUCER_BATCH_MAX', 128, 1, true),
    batchMs: number(env, 'PRODUCER_BATCH_MS', 25, 1),
    targetDepth: number(env, 'TARGET_DEPTH', 1000, 0, true),
    workers: number(env, 'WORKER_COUNT', 24, 1, true),
    payloadBytes: number(env, 'JOB_PAYLOAD_BYTES', 256, 0, true),
    workMs: number(env, 'JOB_WORK_MS', 1, 0),
    sampleEveryS: number(env, 'SAMPLE_EVERY_S', 5, 0.1),
    instanceId,
    produces: instanceId === 0 || !['1', 'true'].includes(env.PRODUCER_ONLY_INSTANCE_ZERO?.trim() ?? ''),
  };
}
