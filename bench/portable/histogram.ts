/**
 * Bounded-memory latency percentiles over a rolling window.
 *
 * Values are recorded in microseconds into log-linear buckets: exact below
 * 2,048 µs, then 1,024 buckets per power of two (relative error under 0.1%,
 * i.e. 3 significant figures, as HDR histograms do). Memory is bounded by
 * the number of distinct buckets (a few thousand at most), not by the number
 * of samples. The rolling window is a ring of one-second slots; a percentile
 * merges the slots that are still inside the window.
 */

const SUB = 1024;
const EXACT = 2 * SUB;

export function bucketOf(us: number): number {
  const v = Math.max(0, Math.round(us));
  if (v < EXACT) return v;
  const shift = Math.floor(Math.log2(v)) - 10;
  return EXACT + (shift - 1) * SUB + (Math.floor(v / 2 ** shift) - SUB);
}

/** The lowest value that falls in a bucket (what percentiles report). */
export function valueOf(bucket: number): number {
  if (bucket < EXACT) return bucket;
  const shift = Math.floor((bucket - EXACT) / SUB) + 1;
  const sub = (bucket - EXACT) % SUB;
  return (SUB + sub) * 2 ** shift;
}

export class RollingHistogram {
  private readonly slots: { second: number; counts: Map<number, number> }[];

  constructor(private readonly windowS: number) {
    this.slots = Array.from({ length: windowS }, () => ({ second: -1, counts: new Map() }));
  }

  /** Record one latency in milliseconds, observed at `nowMs`. */
  record(ms: number, nowMs = Date.now()): void {
    const second = Math.floor(nowMs / 1000);
    const slot = this.slots[second % this.windowS]!;
    if (slot.second !== second) {
      slot.second = second;
      slot.counts.clear();
    }
    const b = bucketOf(ms * 1000);
    slot.counts.set(b, (slot.counts.get(b) ?? 0) + 1);
  }

  /** Percentiles (0-100) in milliseconds over the last `windowS` seconds; null when there are no samples. */
  percentiles(ps: number[], nowMs = Date.now()): (number | null)[] {
    const now = Math.floor(nowMs / 1000);
    const merged = new Map<number, number>();
    let total = 0;
    for (const slot of this.slots) {
      if (slot.second < 0 || slot.second <= now - this.windowS || slot.second > now) continue;
      for (const [b, n] of slot.counts) {
        merged.set(b, (merged.get(b) ?? 0) + n);
        total += n;
      }
    }
    if (total === 0) return ps.map(() => null);
    const sorted = [...merged.entries()].sort((a, b) => a[0] - b[0]);
    return ps.map((p) => {
      const rank = Math.max(1, Math.ceil((p / 100) * total));
      let seen = 0;
      for (const [b, n] of sorted) {
        seen += n;
        if (seen >= rank) return valueOf(b) / 1000;
      }
      return valueOf(sorted.at(-1)![0]) / 1000;
    });
  }
}
