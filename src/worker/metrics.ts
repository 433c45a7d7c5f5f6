/**
 * A worker's Prometheus metrics, in a prom-client registry of its own (two
 * workers in one process must not share the global one).
 *
 *   hot path (per task):  claimed / started / ended / settled / lost  ──> Tally per task name (plain numbers)
 *   per round trip:       claim and commit durations                  ──> prom-client histograms
 *   scrape (collect):     tallies ──> counters and task histograms; memory ──> slot and lease gauges;
 *                         one bounded query ──> ready gauges (store/metrics.ts)
 *
 * Why tallies: a prom-client inc() or observe() with a label object hashes
 * and validates the labels on every call, about 200 ns (measured on these
 * machines, 15.1.3); S1 runs ~10k tasks/s on a core it shares with
 * PostgreSQL, and five such calls per task would spend ~1% of it. A tally
 * update is a Map lookup and a few additions (~10 ns); the registry reads the
 * tallies when it is scraped.
 *
 * Labels are bounded: task names come from the definitions in code, outcomes
 * and reasons from fixed lists. Never a worker or instance id.
 */
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { ClaimedTask } from '../store/claims.ts';
import { readyTaskStats, type ReadyTaskStat } from '../store/metrics.ts';
import type { Logger } from '../types.ts';
import type { Held } from './held.ts';

/** Handler run time and wait before the start, in seconds: from no-op tasks to hour-long ones. */
const TASK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Claim and commit round trips, in seconds. */
const ROUND_TRIP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** The ready gauges: at most this many task names, and this long for the query. */
const READY_NAMES = 200;
const READY_TIMEOUT_MS = 1_000;

export type AttemptOutcome = 'completed' | 'failed' | 'retried' | 'refused';
const OUTCOMES: readonly AttemptOutcome[] = ['completed', 'failed', 'retried', 'refused'];
export type LossReason = 'lease' | 'cancelled';

/** Observations in fixed buckets (not cumulative: the last one is +Inf), their sum and count. */
class Buckets {
  readonly counts = new Float64Array(TASK_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < TASK_BUCKETS.length && seconds > TASK_BUCKETS[i]!) i++;
    this.counts[i]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
}

/** Everything counted for one task name since the worker started. */
class Tally {
  claimed = 0;
  readonly attempts: Record<AttemptOutcome, number> = { completed: 0, failed: 0, retried: 0, refused: 0 };
  readonly lost: Record<LossReason, number> = { lease: 0, cancelled: 0 };
  readonly duration = new Buckets();
  readonly wait = new Buckets();
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/**
 * A histogram by task name read from the tallies, in the shape a prom-client
 * registry renders (its get()). prom-client has no way to load a histogram
 * from counts kept elsewhere, hence an object of our own.
 */
class TaskHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly tallies: Map<string, Tally>,
    private readonly pick: (t: Tally) => Buckets,
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const [task, tally] of this.tallies) {
      const b = this.pick(tally);
      if (b.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i <= TASK_BUCKETS.length; i++) {
        cumulative += b.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { task, le: i < TASK_BUCKETS.length ? TASK_BUCKETS[i]! : '+Inf' }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { task }, value: b.sum });
      values.push({ metricName: `${this.name}_count`, labels: { task }, value: b.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** Registry.resetMetrics(): the counts belong to the worker, which keeps them. */
  reset(): void {}
}

export interface WorkerMetricsOptions {
  slots: number;
  log: Logger;
  /** The worker as it is now: its pool once started (the ready gauges read through it), busy slots, claims held. */
  now(): { pool: pg.Pool | undefined; slotsBusy: number; leasesHeld: number };
}

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly tallies = new Map<string, Tally>();
  private readonly claimDuration: Histogram;
  private readonly commitDuration: Histogram;
  private ready: Promise<ReadyTaskStat[] | undefined> | undefined;
  private readyFailures = 0;

  /** A worker's metrics, or none when its options say `metrics: false`. */
  static create(option: object | false | undefined, slots: number, log: Logger, now: WorkerMetricsOptions['now']): WorkerMetrics | undefined {
    return option === false ? undefined : new WorkerMetrics({ slots, log, now });
  }

  /** What worker.metrics() gives when nothing is counted. */
  static emptyRegistry(): Registry {
    return new Registry();
  }

  constructor(private readonly o: WorkerMetricsOptions) {
    const registers = [this.registry];
    const tallies = this.tallies;
    new Counter({
      name: 'baton_tasks_claimed_total',
      help: 'Tasks this worker claimed, by task name.',
      labelNames: ['task'],
      registers,
      collect() {
        this.reset();
        for (const [task, t] of tallies) this.inc({ task }, t.claimed);
      },
    });
    new Counter({
      name: 'baton_task_attempts_total',
      help: 'Attempts this worker committed, by task name and outcome: completed, failed (no retries left), retried (failed, will run again), refused (the claim was gone at commit: the result was not applied).',
      labelNames: ['task', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [task, t] of tallies) for (const outcome of OUTCOMES) if (t.attempts[outcome] > 0) this.inc({ task, outcome }, t.attempts[outcome]);
      },
    });
    new Counter({
      name: 'baton_task_leases_lost_total',
      help: 'Claims this worker lost while holding them, by task name and reason: lease (not renewed in time, or taken over) or cancelled (the instance was cancelled).',
      labelNames: ['task', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const [task, t] of tallies) {
          if (t.lost.lease > 0) this.inc({ task, reason: 'lease' }, t.lost.lease);
          if (t.lost.cancelled > 0) this.inc({ task, reason: 'cancelled' }, t.lost.cancelled);
        }
      },
    });
    const histogram = (name: string, help: string, pick: (t: Tally) => Buckets) =>
      // A registry renders any object with this shape; prom-client's Metric type names only its own classes.
      this.registry.registerMetric(new TaskHistogram(name, help, tallies, pick) as unknown as Metric);
    histogram('baton_task_duration_seconds', "Handler run time of this worker's attempts, by task name (resolution 1 ms).", (t) => t.duration);
    histogram(
      'baton_task_wait_seconds',
      'From when a task could run (enqueued, or its delay or retry back-off over) to its handler start on this worker, by task name (worker clock against database clock, 1 ms resolution).',
      (t) => t.wait,
    );
    this.claimDuration = new Histogram({ name: 'baton_claim_duration_seconds', help: "Round trip of this worker's claims.", buckets: ROUND_TRIP_BUCKETS, registers });
    this.commitDuration = new Histogram({
      name: 'baton_commit_duration_seconds',
      help: "Round trip of this worker's batched commits (a claim riding along included).",
      buckets: ROUND_TRIP_BUCKETS,
      registers,
    });
    new Gauge({ name: 'baton_worker_slots', help: 'Task slots of this worker (its concurrency).', registers }).set(o.slots);
    new Gauge({
      name: 'baton_worker_slots_busy',
      help: 'Task slots running a handler now.',
      registers,
      collect() {
        this.set(o.now().slotsBusy);
      },
    });
    new Gauge({
      name: 'baton_worker_leases_held',
      help: 'Claims this worker holds now: running, claimed ahead of a free slot, or being committed.',
      registers,
      collect() {
        this.set(o.now().leasesHeld);
      },
    });
    const readyStats = () => this.readyStats();
    new Gauge({
      name: 'baton_ready_tasks',
      help: 'Ready tasks in the database (all workers), by task name; the 200 largest queues. Absent when the query did not finish within 1 s.',
      labelNames: ['task'],
      registers,
      async collect() {
        this.reset();
        for (const s of (await readyStats()) ?? []) this.set({ task: s.name }, s.ready);
      },
    });
    new Gauge({
      name: 'baton_ready_oldest_age_seconds',
      help: 'How long the oldest ready task has been ready (all workers), by task name; as baton_ready_tasks.',
      labelNames: ['task'],
      registers,
      async collect() {
        this.reset();
        for (const s of (await readyStats()) ?? []) this.set({ task: s.name }, s.oldestAgeSeconds);
      },
    });
  }

  private tally(name: string): Tally {
    let t = this.tallies.get(name);
    if (t === undefined) this.tallies.set(name, (t = new Tally()));
    return t;
  }

  // ---- the hot path: plain arithmetic ---------------------------------------

  claimed(task: ClaimedTask): void {
    this.tally(task.name).claimed += 1;
  }

  /** A handler starts (held.startedAt was just set). */
  started(held: Held): void {
    const available = held.task.availableAt;
    if (available === null || held.startedAt === undefined) return;
    this.tally(held.task.name).wait.observe(Math.max(0, held.startedAt - available.getTime()) / 1000);
  }

  /** A handler's attempt ended (before its commit). */
  ended(held: Held): void {
    if (held.startedAt !== undefined) this.tally(held.task.name).duration.observe((Date.now() - held.startedAt) / 1000);
  }

  settled(held: Held, outcome: AttemptOutcome): void {
    this.tally(held.task.name).attempts[outcome] += 1;
  }

  lost(held: Held, reason: LossReason): void {
    this.tally(held.task.name).lost[reason] += 1;
  }

  claimRoundTrip(ms: number): void {
    this.claimDuration.observe(ms / 1000);
  }

  commitRoundTrip(ms: number): void {
    this.commitDuration.observe(ms / 1000);
  }

  // ---- scrape time ----------------------------------------------------------

  /** One query per scrape, shared by the two ready gauges (the registry collects them at once). */
  private readyStats(): Promise<ReadyTaskStat[] | undefined> {
    this.ready ??= this.queryReady().finally(() => (this.ready = undefined));
    return this.ready;
  }

  private async queryReady(): Promise<ReadyTaskStat[] | undefined> {
    const pool = this.o.now().pool;
    if (!pool || pool.ended) return undefined; // not started, or stopped: nothing to read, nothing to warn about
    try {
      return await readyTaskStats(pool, { names: READY_NAMES, timeoutMs: READY_TIMEOUT_MS });
    } catch (error) {
      // Said once at warn level, then at debug: a backlog too large to count in time stays so for a while.
      this.o.log[this.readyFailures++ === 0 ? 'warn' : 'debug']({ err: error }, 'metrics: could not read the ready tasks; baton_ready_* are left out of this scrape');
      return undefined;
    }
  }
}
