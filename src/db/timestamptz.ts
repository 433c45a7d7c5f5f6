/**
 * A timestamptz as PostgreSQL prints it (DateStyle ISO), parsed without a regular expression.
 *
 * Every claimed task carries two (its lease's end and its deadline), and pg's own parser
 * (postgres-date) runs three regular expressions per value: in a worker draining a backlog that was
 * about 650 of the 7,900 bytes it allocated per job. The common form, `YYYY-MM-DD HH:MM:SS[.f…]±HH[:MM[:SS]]`
 * with a four-digit year, is read here by character codes; anything else (BC, infinity, other years,
 * another DateStyle) goes to the fallback, pg's parser. Fractions are cut to whole milliseconds, as
 * pg's parser does (from the digits, so `.57` is 570 ms: pg's float arithmetic says 569).
 */

const ZERO = 48;

/** The value of `n` digits of `s` from `at`, or -1 if one is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

export function parseTimestamptz(s: string, fallback: (s: string) => unknown): unknown {
  const n = s.length;
  // 'YYYY-MM-DD HH:MM:SS' is 19 characters; a zone adds at least 3 ('+00').
  if (n < 22 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 32 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) {
    return fallback(s);
  }
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  if (year < 1000 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return fallback(s);
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46) {
    // Fraction: its first three digits are the milliseconds; the rest only need to be digits.
    i++;
    const start = i;
    while (i < n) {
      const d = s.charCodeAt(i) - ZERO;
      if (d < 0 || d > 9) break;
      if (i - start < 3) ms = ms * 10 + d;
      i++;
    }
    if (i === start) return fallback(s);
    for (let k = i - start; k < 3; k++) ms *= 10;
  }
  const sign = s.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return fallback(s);
  // The zone: ±HH, ±HH:MM or ±HH:MM:SS, and nothing after it.
  const rest = n - i - 1;
  if (rest !== 2 && rest !== 5 && rest !== 8) return fallback(s);
  const zh = digits(s, i + 1, 2);
  const zm = rest >= 5 && s.charCodeAt(i + 3) === 58 ? digits(s, i + 4, 2) : rest >= 5 ? -1 : 0;
  const zs = rest === 8 && s.charCodeAt(i + 6) === 58 ? digits(s, i + 7, 2) : rest === 8 ? -1 : 0;
  if (zh < 0 || zm < 0 || zs < 0) return fallback(s);
  const offsetMs = (sign === 45 ? -1 : 1) * ((zh * 60 + zm) * 60 + zs) * 1000;
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMs);
}
