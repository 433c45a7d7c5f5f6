/**
 * How many tasks a worker holds claimed ahead of its free slots.
 *
 * Configured (BATON_PREFETCH / startWorker({ prefetch })): that many, always.
 * Unset: enough for about AHEAD_MS of work at the rate this worker has been
 * finishing tasks, between one slot's worth per slot and MAX_AHEAD. Short
 * tasks then travel in large claims and commits (one round trip for hundreds
 * of jobs), while a worker running long tasks holds only a few extra leases
 * and leaves the rest to other workers. Until the first rate is known it
 * holds four per slot.
 *
 * Measured (S1, 30,000 no-op jobs, one worker of 24 slots, PostgreSQL 15,
 * 2 cores): a fixed prefetch of 96 ran 7.5-8.6k jobs/s, 300 ran 9.0-10.0k.
 */

/** Work held ahead, in time at the current rate. */
export const AHEAD_MS = 500;
/** No more than this many tasks ahead (a claim returns at most 500). */
export const MAX_AHEAD = 500;
/** The rate is measured over windows of this length. */
const WINDOW_MS = 250;

export class Prefetch {
  private finished = 0;
  private windowStart: number;
  /** Tasks finished per second, smoothed; undefined until a window has passed with work in it. */
  private rate: number | undefined;

  constructor(
    /** The configured prefetch; undefined: adaptive. */
    readonly fixed: number | undefined,
    private readonly concurrency: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.windowStart = now();
  }

  /** Count tasks that finished (their attempt ended, whatever the outcome). */
  taskFinished(n = 1): void {
    this.finished += n;
  }

  /** Tasks to hold ahead of free slots now. */
  get value(): number {
    if (this.fixed !== undefined) return this.fixed;
    this.measure();
    if (this.rate === undefined) return 4 * this.concurrency;
    return Math.min(MAX_AHEAD, Math.max(this.concurrency, Math.round((this.rate * AHEAD_MS) / 1000)));
  }

  private measure(): void {
    const t = this.now();
    const elapsed = t - this.windowStart;
    if (elapsed < WINDOW_MS) return;
    if (this.finished > 0 || this.rate !== undefined) {
      const sample = (this.finished * 1000) / elapsed;
      this.rate = this.rate === undefined ? sample : (this.rate + sample) / 2;
    }
    this.finished = 0;
    this.windowStart = t;
  }
}
