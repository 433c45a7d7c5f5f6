/**
 * The dashboard with a million instances: page and API times, and the plans of
 * its statements (no sequential scan of workflows or tasks may appear).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node --import tsx bench/dashboard-load.ts [rows] [--reuse]
 *
 * Creates the database baton_dash_load (dropped first), inserts `rows`
 * instances (default 1,000,000) set-based in the shape start_many writes, one
 * task row each: 90% completed, 5% failed, 3% cancelled, 2% running with a
 * ready task; started 0.6 s apart (the newest in the last minute), five task
 * names. Then ANALYZE (the machine's PostgreSQL 15 runs without autovacuum),
 * and times each API call (median of 5; the overview's cache is let expire
 * before each) and a full page load of the overview and of an instance in
 * Chromium. Prints a table and writes bench/results/dashboard-load.json.
 * --reuse: measure the database a previous run left (no drop, no insert).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createClient } from '../src/client/client.ts';
import { startDashboard } from '../src/dashboard/server.ts';
import { migrate } from '../src/db/migrate.ts';
import { silentLogger } from '../src/log.ts';
import { BROWSE_SQL } from '../src/store/browse.ts';
import { READY_TASKS_SQL } from '../src/store/metrics.ts';
import { FAILURES_SQL, THROUGHPUT_SQL } from '../src/store/overview.ts';
import { launchBrowser } from '../test/support/browser.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rows = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = 'baton_dash_load';

const admin = new pg.Client({ connectionString: base });
await admin.connect();
if (!process.argv.includes('--reuse')) {
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}`);
}
await admin.end();
const url = new URL(base);
url.pathname = `/${name}`;
await migrate(url.toString());

const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
const reuse = process.argv.includes('--reuse');
const t0 = performance.now();
if (!reuse) {
await pool.query(
  `insert into baton.definitions (name, hash, kind, version, graph, plan)
   select 'job-' || k, 'h' || k, 'task', 1,
     jsonb_build_object('root', jsonb_build_object('t', 'seq', 'steps', jsonb_build_array(jsonb_build_object('t', 'task', 'name', 'job-' || k, 'priority', 0, 'tags', '[]'::jsonb, 'maxAttempts', 3, 'timeoutMs', null))), 'estimatedSteps', 1),
     '{}'::jsonb
   from generate_series(0, 4) k`,
);
await pool.query(
  `insert into baton.workflows (id, name, definition_hash, status, input, output, error, state, current_step, completed_task_count,
     version, created_at, updated_at, finished_at)
   select 'job-' || g, 'job-' || (g % 5), 'h' || (g % 5), s.status, jsonb_build_object('n', g),
     case when s.status = 'completed' then jsonb_build_object('ok', g) end,
     case when s.status = 'failed' then jsonb_build_object('name', 'Error', 'message', 'boom ' || g) end,
     '{}'::jsonb, case when s.status = 'running' then 'job-' || (g % 5) end,
     case when s.status = 'completed' then 1 else 0 end, 2, c.at, c.at + interval '2 seconds',
     case when s.status <> 'running' then c.at + interval '2 seconds' end
   from generate_series(1, $1) g
   cross join lateral (select case when g % 100 < 90 then 'completed' when g % 100 < 95 then 'failed'
                                    when g % 100 < 98 then 'cancelled' else 'running' end as status) s
   cross join lateral (select now() - ($1 - g) * interval '600 milliseconds' as at) c`,
  [rows],
);
await pool.query(
  `insert into baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, ready_key, available_at, attempts, max_attempts,
     input, output, created_at, started_at, finished_at, updated_at)
   select w.id, '0', 'task', w.name, w.definition_hash,
     case w.status when 'running' then 'ready' else w.status end,
     case when w.status = 'running' then w.created_at end, w.created_at,
     case when w.status = 'running' then 0 else 1 end, 3, w.input, w.output, w.created_at,
     case when w.status <> 'running' then w.created_at end, w.finished_at, w.updated_at
   from baton.workflows w`,
);
await pool.query('analyze');
}
const loadSeconds = (performance.now() - t0) / 1000;
console.log(`inserted ${rows.toLocaleString('en-US')} instances and tasks in ${loadSeconds.toFixed(1)} s`);

// The plans: EXPLAIN of each statement the overview and the list run.
const plans: Record<string, string> = {};
const explain = async (label: string, sql: string, params: unknown[] = []) => {
  const r = await pool.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off, timing off) ${sql}`, params);
  plans[label] = r.rows.map((x) => x['QUERY PLAN']).join('\n');
};
await explain('ready backlog (metrics)', READY_TASKS_SQL, [20]);
const browse = (o: { statuses?: string[]; name?: string; id?: string; cursor?: [string, string] }) => [
  o.statuses ?? null, o.name ?? null, o.id ?? null, null, null, o.cursor?.[0] ?? null, o.cursor?.[1] ?? null, 50_000, 51,
];
await explain('list, first page', BROWSE_SQL, browse({}));
await explain('list, by name', BROWSE_SQL, browse({ name: 'job-3' }));
await explain('list, status failed', BROWSE_SQL, browse({ statuses: ['failed'] }));
await explain('list, status paused (none: one bounded walk)', BROWSE_SQL, browse({ statuses: ['paused'] }));
await explain('list, deep page', BROWSE_SQL, browse({ cursor: [new Date(Date.now() - 3 * 86_400_000).toISOString(), 'job-5'] }));
await explain('overview: throughput', THROUGHPUT_SQL, [50_000]);
await explain('overview: recent failures', FAILURES_SQL, [50_000, 10]);
await explain('leases', `select claimed_by, count(*) from baton.tasks where status = 'running' and lease_expires_at is not null group by claimed_by`);
await explain('instance tasks', `select * from baton.tasks where workflow_id = 'job-123456'`);
const seqScans = Object.entries(plans).filter(([, p]) => /Seq Scan on (workflows|tasks)/.test(p)).map(([k]) => k);

const client = await createClient({ connectionString: url.toString(), logger: silentLogger });
const dashboard = await startDashboard({ client, port: 0, logger: silentLogger });
const times: { what: string; medianMs: number; minMs: number; maxMs: number; note?: string }[] = [];
async function measure(what: string, fn: () => Promise<string | void>, { expireCache = false } = {}) {
  const ms: number[] = [];
  let note: string | void = undefined;
  for (let i = 0; i < 5; i++) {
    if (expireCache) await new Promise((r) => setTimeout(r, 2_100));
    const start = performance.now();
    note = await fn();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  times.push({ what, medianMs: Math.round(ms[2]! * 10) / 10, minMs: Math.round(ms[0]! * 10) / 10, maxMs: Math.round(ms[4]! * 10) / 10, ...(note ? { note } : {}) });
}
const api = async (p: string) => {
  const res = await fetch(new URL(p, dashboard.url));
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
};
try {
  await measure('GET /api/overview (cache expired)', async () => {
    const o = (await api('/api/overview')) as { counts: { estimated: boolean; total: number } };
    return `counts ${o.counts.estimated ? 'estimated' : 'exact'}, total ${o.counts.total}`;
  }, { expireCache: true });
  await measure('GET /api/instances (first page, 50)', async () => void (await api('/api/instances')));
  await measure('GET /api/instances?name=job-3', async () => void (await api('/api/instances?name=job-3')));
  await measure('GET /api/instances?status=failed', async () => void (await api('/api/instances?status=failed')));
  await measure('GET /api/instances?status=paused (matches none)', async () => {
    const p = (await api('/api/instances?status=paused')) as { partial: boolean; scannedTo: string };
    return p.partial ? `partial: searched back to ${p.scannedTo}` : 'complete';
  });
  await measure('GET /api/instances?id=job-99999 (prefix)', async () => void (await api('/api/instances?id=job-99999')));
  let cursor = '';
  for (let i = 0; i < 100; i++) cursor = ((await api(`/api/instances?limit=200${cursor ? `&cursor=${cursor}` : ''}`)) as { next: string }).next;
  await measure('GET /api/instances, page 101 (after 20,000 rows)', async () => void (await api(`/api/instances?limit=50&cursor=${cursor}`)));
  await measure('GET /api/instances/job-123456', async () => void (await api('/api/instances/job-123456')));

  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    await measure('browser: overview page load (to counts shown)', async () => {
      await page.goto(dashboard.url);
      await page.locator('[data-count="completed"] .n').waitFor();
    }, { expireCache: true });
    await measure('browser: instance page load (to graph drawn)', async () => {
      await page.goto(new URL('/instances/job-123456', dashboard.url).toString());
      await page.locator('svg.graph').waitFor();
    });
    await page.goto(dashboard.url);
    await page.locator('[data-count="completed"] .n').waitFor();
    mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, 'test-output/dashboard-1m-overview.png'), fullPage: true });
  } finally {
    await browser.close();
  }
} finally {
  await dashboard.close();
  await client.close();
  await pool.end();
}

const width = Math.max(...times.map((t) => t.what.length));
console.log(`\n${'what'.padEnd(width)}  median ms    min    max  note`);
for (const t of times) console.log(`${t.what.padEnd(width)}  ${String(t.medianMs).padStart(9)}  ${String(t.minMs).padStart(5)}  ${String(t.maxMs).padStart(5)}  ${t.note ?? ''}`);
console.log(`\nsequential scans of workflows or tasks in the plans: ${seqScans.length ? seqScans.join(', ') : 'none'}`);
for (const [label, plan] of Object.entries(plans)) console.log(`\n-- ${label}\n${plan}`);
mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/results/dashboard-load.json'), JSON.stringify({ rows, loadSeconds, times, seqScans, plans, at: new Date() }, null, 2));
