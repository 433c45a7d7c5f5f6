/**
 * Command line of `npm run bench`:
 *
 *   --quick                 small sizes (about a minute)
 *   --scenarios S1,S3       which scenarios (default all: S0, S1, SM, S2..S8)
 *   --systems baton,raw     which systems (default: each scenario's own list)
 *   --size s1Jobs=50000,... override sizes (names below)
 *   --concurrency 24        slots per worker process
 *   --profile               write CPU profiles of Baton's worker processes to bench/results/profiles/
 *   --alloc-profile         sample what the drain workers allocate (bytes per unit, and a .heapprofile there)
 *   --pg-stats              server time per unit by statement, from pg_stat_statements (bench/lib/pgstats.ts)
 *   --repeat 3              run each scenario 3 times; print medians and the median of the runs' ratios (bench/lib/rounds.ts)
 *   --locale en_US.UTF-8    create each database with this collation locale (the operating system must have it: locale -a)
 *   --server-cpus 0         the server on these CPUs, the bench and its workers on the others (bench/lib/cpus.ts)
 *   --no-save               do not write bench/results/*.json
 */
import { SYSTEM_NAMES, type SystemName } from '../systems/types.ts';
import { CpuSplitError, parseCpuList } from './cpus.ts';

export interface Sizes {
  /** S0: jobs enqueued one at a time (8 callers), in batches of 500 through the client, and through SQL in chunks of 5,000. */
  s0Single: number;
  s0Batched: number;
  s0Sql: number;
  /** S1: no-op jobs enqueued up front. */
  s1Jobs: number;
  /** S2: sequential samples per system, and a time budget per system in seconds. */
  s2Samples: number;
  s2BudgetS: number;
  /** S3: workflows of 10 steps. */
  s3Workflows: number;
  /** S4: the two backlog sizes, the completions timed per drain, drain rounds, and tasks claimed per claim micro-benchmark. */
  s4Small: number;
  s4Large: number;
  s4Drain: number;
  s4Rounds: number;
  s4Claims: number;
  /** S5: no-op jobs drained by 1, 2 and 4 processes. */
  s5Jobs: number;
  /** S6: workflows of 20 branches and a join. */
  s6Workflows: number;
  /** S7: seconds of the flat-out probe (after 1 s of warm-up), and of each window at 50% and 90% of its rate. */
  s7ProbeS: number;
  s7WindowS: number;
  /** S8: jobs with a ~500-byte payload, measured queued and after completion. */
  s8Jobs: number;
  /** SM: jobs the model enqueues and drains (rounded up to a multiple of 5,000, its enqueue statement). */
  smJobs: number;
}

export const FULL: Sizes = {
  s0Single: 8_000,
  // 150,000 (not 30,000): at 60-80k jobs/s a path of 30,000 took under half a second, and one
  // run's ratio moved from 0.66x to 1.16x; at 150,000 the three runs of a set stay within 0.1x.
  s0Batched: 150_000,
  s0Sql: 150_000,
  s1Jobs: 20_000,
  s2Samples: 1_000,
  s2BudgetS: 60,
  s3Workflows: 2_000,
  s4Small: 10_000,
  s4Large: 1_000_000,
  s4Drain: 5_000,
  s4Rounds: 3,
  s4Claims: 5_000,
  s5Jobs: 20_000,
  s6Workflows: 500,
  s7ProbeS: 5,
  s7WindowS: 10,
  s8Jobs: 10_000,
  smJobs: 30_000,
};

export const QUICK: Sizes = {
  s0Single: 2_000,
  s0Batched: 5_000,
  s0Sql: 5_000,
  s1Jobs: 5_000,
  s2Samples: 100,
  s2BudgetS: 6,
  s3Workflows: 100,
  s4Small: 2_000,
  s4Large: 50_000,
  s4Drain: 1_000,
  s4Rounds: 1,
  s4Claims: 1_000,
  s5Jobs: 5_000,
  s6Workflows: 30,
  s7ProbeS: 2,
  s7WindowS: 2,
  s8Jobs: 2_000,
  smJobs: 10_000,
};

export const SCENARIOS = ['S0', 'S1', 'SM', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7', 'S8'] as const;
export type ScenarioId = (typeof SCENARIOS)[number];

export interface Options {
  quick: boolean;
  scenarios: ScenarioId[];
  /** Undefined: each scenario's default systems. */
  systems: SystemName[] | undefined;
  sizes: Sizes;
  concurrency: number;
  profile: boolean;
  allocProfile: boolean;
  /** Server time by statement from pg_stat_statements. */
  pgStats: boolean;
  save: boolean;
  /** Runs of each scenario, combined into medians (lib/rounds.ts). */
  repeat: number;
  /** The collation locale of each fresh database; undefined: the server's default. */
  locale: string | undefined;
  /** The CPUs the server is put on (the bench on the others), or undefined: everything shares every CPU. */
  serverCpus: number[] | undefined;
}

export class UsageError extends Error {}

function list<T extends string>(raw: string | undefined, allowed: readonly T[], what: string): T[] {
  if (!raw) throw new UsageError(`${what} needs a value`);
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new UsageError(`unknown ${what.replace(/^--/, '').replace(/s$/, '')} "${item}" (one of ${allowed.join(', ')})`);
  }
  return items as T[];
}

export function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, scenarios: [...SCENARIOS], systems: undefined, sizes: { ...FULL }, concurrency: 24, profile: false, allocProfile: false, pgStats: false, save: true, repeat: 1, locale: undefined, serverCpus: undefined };
  const overrides: Partial<Sizes> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const [flag, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--scenarios':
        o.scenarios = list(value()?.toUpperCase(), SCENARIOS, '--scenarios');
        break;
      case '--systems':
        o.systems = list(value(), SYSTEM_NAMES, '--systems');
        break;
      case '--size':
      case '--sizes': {
        const raw = value();
        if (!raw) throw new UsageError('--size needs name=value pairs');
        for (const pair of raw.split(',')) {
          const [name, v] = pair.split('=');
          if (!name || !(name in FULL)) throw new UsageError(`unknown size "${name}" (one of ${Object.keys(FULL).join(', ')})`);
          const n = Number(v);
          if (!Number.isInteger(n) || n < 1) throw new UsageError(`size ${name} must be a whole number >= 1 (got "${v}")`);
          overrides[name as keyof Sizes] = n;
        }
        break;
      }
      case '--concurrency': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new UsageError('--concurrency must be a whole number >= 1');
        o.concurrency = n;
        break;
      }
      case '--repeat': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 9) throw new UsageError('--repeat must be a whole number from 1 to 9');
        o.repeat = n;
        break;
      }
      case '--profile':
        o.profile = true;
        break;
      case '--alloc-profile':
        o.allocProfile = true;
        break;
      case '--pg-stats':
        o.pgStats = true;
        break;
      case '--locale': {
        const raw = value()?.trim();
        if (!raw) throw new UsageError('--locale needs a locale name (for example en_US.UTF-8)');
        o.locale = raw;
        break;
      }
      case '--server-cpus': {
        const raw = value()?.trim();
        if (!raw) throw new UsageError('--server-cpus needs a CPU list (for example 0, or 0-1)');
        try {
          o.serverCpus = parseCpuList(raw);
        } catch (error) {
          if (error instanceof CpuSplitError) throw new UsageError(`--server-cpus: ${error.message}`);
          throw error;
        }
        break;
      }
      case '--no-save':
        o.save = false;
        break;
      default:
        throw new UsageError(`unknown option "${arg}"`);
    }
  }
  o.sizes = { ...(o.quick ? QUICK : FULL), ...overrides };
  return o;
}
