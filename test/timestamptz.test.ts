/**
 * db/timestamptz.ts against pg's own parser (postgres-date) and against the server: every form
 * PostgreSQL prints in DateStyle ISO reads as the same instant, and what the fast path does not
 * read goes to the fallback.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { createClient } from '../src/db/pool.ts';
import { parseTimestamptz } from '../src/db/timestamptz.ts';
import { useTestDatabase } from './support/db.ts';

const pgParse = pg.types.getTypeParser(1184, 'text') as (s: string) => Date | number | null;
const noFallback = (s: string) => {
  throw new Error(`fell back on ${s}`);
};

describe('timestamptz parsing', () => {
  it('reads the ISO forms as pg does, to the millisecond', () => {
    const cases = [
      '2026-12-05 19:35:06.988123+00',
      '2026-12-05 19:35:06+00',
      '2026-12-05 19:35:06.5+00',
      '2026-12-05 19:35:06.05+00',
      '2026-12-05 19:35:06.999999-03',
      '2026-01-01 00:00:00.000001+05:30',
      '1999-12-31 23:59:59.123+14',
      '1883-11-18 12:03:58-04:56:02',
      '2026-03-29 02:30:00+01:00',
    ];
    for (const s of cases) {
      const fast = parseTimestamptz(s, noFallback) as Date;
      assert.ok(fast instanceof Date, s);
      assert.equal(fast.getTime(), (pgParse(s) as Date).getTime(), s);
    }
  });

  it('reads fractions from their digits (pg parser computes .57 s as 569 ms)', () => {
    assert.equal((parseTimestamptz('2026-12-05 19:35:06.57+00', noFallback) as Date).getUTCMilliseconds(), 570);
    assert.equal((parseTimestamptz('2026-12-05 19:35:06.0570+00', noFallback) as Date).getUTCMilliseconds(), 57);
  });

  it('leaves every other form to the fallback', () => {
    for (const s of ['infinity', '-infinity', '0099-01-01 00:00:00+00', '2026-12-05 19:35:06+00 BC', '12026-12-05 19:35:06+00', '2026-12-05T19:35:06Z', '2026-12-05 19:35:06.+00', '2026-12-05 19:35:06+0', '2026-12-05 19:35:06+00:3x']) {
      let fell = false;
      parseTimestamptz(s, () => {
        fell = true;
        return null;
      });
      assert.ok(fell, s);
    }
  });

  describe('against the server', () => {
    const db = useTestDatabase();
    it('reads what the server prints in several time zones as the instant it stored', async () => {
      const c = createClient(db.url);
      await c.connect();
      try {
        for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham', 'Africa/Monrovia']) {
          await c.query(`select set_config('TimeZone', $1, false)`, [zone]);
          const { rows } = await c.query<{ t: Date; ms: string }>(
            `select t, floor(extract(epoch from t) * 1000)::bigint::text as ms
             from (values (timestamptz '2026-12-05 19:35:06.57+00'), (timestamptz '1970-01-01 00:00:00+00'), (timestamptz '1900-06-30 12:00:00.123456+00'),
                          (now())) v(t)`,
          );
          for (const r of rows) {
            assert.ok(r.t instanceof Date, zone);
            assert.equal(r.t.getTime(), Number(r.ms), `${zone}: ${r.ms}`);
          }
        }
      } finally {
        await c.end();
      }
    });
  });
});
