/** Small statistics and formatting helpers. */

/** The p-th percentile (0-100) of the values, nearest-rank on a sorted copy. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** The median: of an even count, the mean of the two middle values (not the lower one, as percentile(50) gives). NaN for none. */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const half = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[half]! : (s[half - 1]! + s[half]!) / 2;
}

export function fmt(value: number | null | undefined, digits?: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  const d = digits ?? (Number.isInteger(value) || Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Progress lines go to stderr, so that stdout holds the result table only. */
export function progress(message: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
}

/**
 * Wall-clock time in ms with sub-millisecond resolution, comparable between
 * processes on one machine (Date.now() has 1 ms steps, too coarse for S2).
 */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}
