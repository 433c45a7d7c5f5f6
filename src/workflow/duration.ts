import { ValidationError } from '../errors.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `250`, `'250ms'`, `'30s'`, `'5m'`, `'1h'`, `'7d'`, `'1h30m'` -> milliseconds. */
export function parseDuration(value: number | string, what = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0 || !Number.isInteger(value)) {
      throw new ValidationError(`${what} must be a whole, non-negative number of milliseconds (got ${value})`);
    }
    return value;
  }
  const text = String(value).trim();
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/g)];
  if (text === '' || parts.length === 0 || parts.map((p) => p[0]).join('').replace(/\s/g, '') !== text.replace(/\s/g, '')) {
    throw new ValidationError(`${what} must be milliseconds or a duration like "30s", "5m", "1h", "7d" (got "${text}")`);
  }
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0);
  return Math.round(ms);
}
