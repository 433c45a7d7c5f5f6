/**
 * --pg-stats: server time per unit of work, by statement, from
 * pg_stat_statements.
 *
 * Around each measured run (one system, one scenario) the entries of the
 * database under test are reset (pg_stat_statements_reset(dbid => oid): other
 * databases on the server, and whoever measures them, are left alone) and
 * read back at the end, filtered to that database (dbid), so the bench's
 * admin statements (create/drop database, in the maintenance database) are
 * not counted. The bench's own statements in the database (progress checks,
 * S2's isDone polls) carry BENCH_MARK and are reported apart.
 *
 * With pg_stat_statements.track = all, statements run inside functions
 * (plpgsql) are recorded too, with toplevel = false; a top-level statement's
 * time already includes its nested statements' time, so the server time per
 * unit is the sum over top-level statements only, and the nested ones are
 * listed apart (where the time goes inside the functions).
 *
 * Worker start-up (Baton's reconciler migrates graphile-worker's schema,
 * pg-boss checks its own, ...) is a fixed cost, not a cost per unit: a run
 * that starts workers takes a snapshot when they are ready, and the report
 * counts what ran after it, the start-up total apart (startupMs).
 */
import pg from 'pg';
import { BENCH_MARK } from '../systems/types.ts';
import type { FreshDatabase, Server } from './db.ts';
import { fmt } from './stats.ts';

export class PgStatsUnavailable extends Error {}

export interface StatementCost {
  calls: number;
  /** Execution (+ planning, when tracked) time, ms. */
  totalMs: number;
  usPerUnit: number;
  usPerCall: number;
  rows: number;
  query: string;
}

export interface PgStatsReport {
  scenario: string;
  /** The system, or a variant ("baton single", "baton x2"). */
  system: string;
  /** What a unit is (job, step, task), and how many the run finished. */
  unit: string;
  units: number;
  /** Server time per unit, ms: the sum over top-level statements (nested time is inside it). */
  serverMsPerUnit: number;
  topLevelMs: number;
  topLevelCalls: number;
  /** The most expensive top-level statements, then the nested ones (inside functions), by total time. */
  top: StatementCost[];
  nested: StatementCost[];
  /** The bench's own statements in the database (not counted above). */
  bench: { calls: number; totalMs: number };
  /** Top-level server time before the snapshot (worker start-up), ms; not in the figures above. */
  startupMs?: number;
  /** pg_stat_statements.track during the run ('all' lists nested statements). */
  track: string;
}

interface Row {
  key: string;
  toplevel: boolean;
  calls: number;
  ms: number;
  rows: number;
  query: string;
}

/** The database's statements at one moment, to subtract from a later reading. */
export type PgStatsSnapshot = Map<string, Row>;

/** Statements kept per list in the JSON results; the table prints PRINTED of them. */
const KEPT = 20;
const PRINTED = 8;

async function withAdmin<T>(server: Server, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: server.adminUrl, application_name: 'bench:pg-stats' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function shortQuery(query: string, width = 100): string {
  const one = query.replace(/\s+/g, ' ').trim();
  return one.length <= width ? one : `${one.slice(0, width - 1)}…`;
}

export class PgStats {
  private constructor(
    private readonly server: Server,
    readonly track: string,
  ) {}

  /**
   * Check that pg_stat_statements is loaded (it needs shared_preload_libraries
   * and a server start) and create the extension in the maintenance database
   * (its view shows every database's statements). Throws PgStatsUnavailable
   * with one line saying what is missing.
   */
  static async open(server: Server): Promise<PgStats> {
    const where = server.embedded ? 'the embedded server' : 'the server at DATABASE_URL';
    const howTo = server.embedded
      ? "it is started with pg_stat_statements only when startEmbedded (src/db/embedded.ts) accepts postgresFlags and the bench started it (not attached to a running one); or set DATABASE_URL to a server that loads it (bench/README.md)"
      : 'add pg_stat_statements to shared_preload_libraries and restart PostgreSQL (bench/README.md)';
    return withAdmin(server, async (c) => {
      const { rows } = await c.query<{ v: number; libs: string; available: boolean }>(
        `select current_setting('server_version_num')::int as v, current_setting('shared_preload_libraries') as libs,
                exists (select 1 from pg_available_extensions where name = 'pg_stat_statements') as available`,
      );
      const { v, libs, available } = rows[0]!;
      if (v < 140000) throw new PgStatsUnavailable(`--pg-stats needs PostgreSQL 14 or later (pg_stat_statements.toplevel); ${where} runs ${server.version}`);
      if (!available) throw new PgStatsUnavailable(`--pg-stats: ${where} has no pg_stat_statements extension installed (the contrib package)`);
      if (!libs.split(',').map((s) => s.trim().replace(/^"|"$/g, '')).includes('pg_stat_statements')) {
        throw new PgStatsUnavailable(`--pg-stats: pg_stat_statements is not loaded on ${where} (shared_preload_libraries = '${libs}'): ${howTo}`);
      }
      try {
        await c.query('create extension if not exists pg_stat_statements');
      } catch (error) {
        throw new PgStatsUnavailable(`--pg-stats: cannot create the pg_stat_statements extension on ${where}: ${(error as Error).message}`);
      }
      const track = (await c.query<{ t: string }>(`select current_setting('pg_stat_statements.track') as t`)).rows[0]!.t;
      return new PgStats(server, track);
    });
  }

  /** Forget what the database has recorded so far (only its own entries). */
  async reset(db: FreshDatabase): Promise<void> {
    await withAdmin(this.server, (c) => c.query('select pg_stat_statements_reset(dbid => $1::oid)', [db.oid]));
  }

  private async rows(db: FreshDatabase): Promise<Row[]> {
    const { rows } = await withAdmin(this.server, (c) =>
      c.query<Row>(
        `select userid::text || ':' || queryid::text || ':' || toplevel::text as key, toplevel, calls::float8 as calls,
                (total_exec_time + total_plan_time)::float8 as ms, rows::float8 as rows, query
         from pg_stat_statements where dbid = $1::oid`,
        [db.oid],
      ),
    );
    return rows;
  }

  async snapshot(db: FreshDatabase): Promise<PgStatsSnapshot> {
    return new Map((await this.rows(db)).map((r) => [r.key, r]));
  }

  /** What the database's statements cost since the reset (or since `since`), per unit. */
  async read(db: FreshDatabase, o: { scenario: string; system: string; unit: string; units: number }, since?: PgStatsSnapshot): Promise<PgStatsReport> {
    const all = await this.rows(db);
    const rows = all
      .map((r) => {
        const b = since?.get(r.key);
        return b ? { ...r, calls: r.calls - b.calls, ms: r.ms - b.ms, rows: r.rows - b.rows } : r;
      })
      .filter((r) => r.calls > 0)
      .sort((a, b) => b.ms - a.ms);
    const units = Math.max(1, o.units);
    const cost = (r: Row): StatementCost => ({
      calls: r.calls,
      totalMs: r.ms,
      usPerUnit: (r.ms * 1000) / units,
      usPerCall: r.calls > 0 ? (r.ms * 1000) / r.calls : 0,
      rows: r.rows,
      query: shortQuery(r.query, 300),
    });
    const ours = (r: Row) => r.query.includes(BENCH_MARK);
    const top = rows.filter((r) => r.toplevel && !ours(r));
    const bench = rows.filter((r) => r.toplevel && ours(r));
    const topLevelMs = top.reduce((a, r) => a + r.ms, 0);
    return {
      ...o,
      serverMsPerUnit: topLevelMs / units,
      topLevelMs,
      topLevelCalls: top.reduce((a, r) => a + r.calls, 0),
      top: top.slice(0, KEPT).map(cost),
      nested: rows.filter((r) => !r.toplevel).slice(0, KEPT).map(cost),
      bench: { calls: bench.reduce((a, r) => a + r.calls, 0), totalMs: bench.reduce((a, r) => a + r.ms, 0) },
      ...(since ? { startupMs: [...since.values()].filter((r) => r.toplevel && !ours(r)).reduce((a, r) => a + r.ms, 0) } : {}),
      track: this.track,
    };
  }
}

/** The per-statement tables of one scenario, for the printed report. */
export function renderPgStats(reports: PgStatsReport[]): string {
  if (reports.length === 0) return '';
  const lines = ['  server time by statement (pg_stat_statements; total = top-level statements, which include their nested ones):'];
  const table = (list: StatementCost[], unit: string) => {
    const head = ['calls', 'total ms', `µs/${unit}`, 'query'];
    const body = list.slice(0, PRINTED).map((s) => [fmt(s.calls, 0), fmt(s.totalMs, 1), fmt(s.usPerUnit, 1), shortQuery(s.query)]);
    const widths = head.slice(0, 3).map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
    const row = (r: string[]) => `      ${r.slice(0, 3).map((c, i) => c.padStart(widths[i]!)).join('  ')}  ${r[3]}`;
    lines.push(row(head), ...body.map(row));
  };
  for (const r of reports) {
    lines.push(
      `    ${r.system}: ${fmt(r.serverMsPerUnit, 3)} server ms/${r.unit} (${fmt(r.topLevelMs, 0)} ms over ${fmt(r.units, 0)} ${r.unit}s, ${fmt(r.topLevelCalls, 0)} top-level calls)` +
        (r.startupMs !== undefined ? `; worker start-up, not counted: ${fmt(r.startupMs, 0)} ms` : '') +
        (r.bench.calls > 0 ? `; the bench's own checks, not counted: ${fmt(r.bench.calls, 0)} calls, ${fmt(r.bench.totalMs, 1)} ms` : ''),
    );
    table(r.top, r.unit);
    if (r.nested.length > 0) {
      lines.push('      nested (inside the statements above, already in their time):');
      table(r.nested, r.unit);
    } else if (r.track !== 'all') lines.push(`      (pg_stat_statements.track = ${r.track}: nested statements not recorded)`);
  }
  return lines.join('\n');
}
