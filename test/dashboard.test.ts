/** The dashboard over HTTP: auth, read-only, bad input, the list's keyset pages and filters, actions, live events. */
import assert from 'node:assert/strict';
import http from 'node:http';
import { ConfigError, defineTask, defineWorkflow, type Client } from '../src/index.ts';
import { startDashboard, type Dashboard } from '../src/dashboard/server.ts';
import { BROWSE_SQL, browseInstances } from '../src/store/browse.ts';
import { FAILURES_SQL, statusCounts, THROUGHPUT_SQL } from '../src/store/overview.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient, until } from './support/fixtures.ts';

const job = defineTask('dash-job', async (n: number) => n);
const other = defineTask('dash-other', async (n: number) => n);
const waits = defineWorkflow('dash-waits').then(job).waitForEvent('go').build();
const TOKEN = 'a-dashboard-token-for-tests-0123';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

/** One request on its own connection, closed after the answer (the leak check counts open sockets). */
function request(url: URL | string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: o.method ?? 'GET', headers: { connection: 'close', ...o.headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: <T>() => JSON.parse(body) as T }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** No stack trace and no source path in anything a browser is shown. */
function assertNoInternals(text: string): void {
  assert.doesNotMatch(text, /\bat .*\.(ts|js):\d+|node_modules|\/src\//, text);
}

describe('dashboard over HTTP', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let client: Client;
  let open: Dashboard;
  const ids: string[] = [];

  before(async () => {
    client = await fixtureClient(db.url);
    // 25 jobs, 5 of another name, no worker: all stay running (ready, unclaimed); one cancelled.
    for (let i = 0; i < 25; i++) ids.push((await client.enqueue(job, i, { id: `job-${String(i).padStart(2, '0')}` })).id);
    for (let i = 0; i < 5; i++) await client.enqueue(other, i, { id: `other-${i}` });
    await client.cancel('job-03');
    open = await startDashboard({ client, port: 0, liveIntervalMs: 100 });
  });
  after(async () => {
    await open?.close();
    await client?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => request(new URL(path, open.url), { headers });
  const post = (path: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json', 'x-baton-dashboard': '1' }) =>
    request(new URL(path, open.url), { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('serves the page and its assets from the package, and answers only requests addressed to loopback', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module" src="\/assets\/app.js">/);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    for (const asset of ['app.js', 'graph.js', 'list.js', 'instance.js', 'dom.js', 'style.css']) assert.equal((await get(`/assets/${asset}`)).status, 200, asset);
    assert.equal((await get('/instances/job-01')).status, 200);
    assert.equal((await get('/nowhere')).status, 404);
    // DNS rebinding: a name that resolves to 127.0.0.1 but is not loopback's own.
    const rebound = await get('/api/overview', { host: 'evil.example' });
    assert.equal(rebound.status, 421);
    assertNoInternals(rebound.body);
  });

  it('refuses to listen beyond loopback without a token, and a short token', async () => {
    await assert.rejects(startDashboard({ client, host: '0.0.0.0', port: 0 }), (e: unknown) => e instanceof ConfigError && /needs?|token/.test(e.message) && /0\.0\.0\.0/.test(e.message));
    await assert.rejects(startDashboard({ client, port: 0, token: 'short' }), (e: unknown) => e instanceof ConfigError && /16 characters/.test(e.message));
    await assert.rejects(startDashboard({ client, port: 70000 }), ConfigError);
  });

  it('with a token, every API call, the event stream and the page need it; ?token= sets a cookie once', async () => {
    const guarded = await startDashboard({ client, port: 0, token: TOKEN, host: '0.0.0.0' });
    try {
      const at = (p: string) => new URL(p, `http://127.0.0.1:${guarded.port}`);
      for (const p of ['/api/overview', '/api/live', '/', '/assets/app.js', '/api/instances']) {
        const r = await request(at(p));
        assert.equal(r.status, 401, p);
        assertNoInternals(r.body);
      }
      assert.equal((await request(at('/api/overview'), { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401);
      assert.equal((await request(at('/api/overview'), { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
      assert.equal((await request(at('/instances?token=not-it-not-it-not-it'))).status, 401);
      const login = await request(at(`/instances?status=failed&token=${TOKEN}`));
      assert.equal(login.status, 303);
      assert.equal(login.headers.location, '/instances?status=failed', 'the token leaves the address bar');
      const cookie = login.headers['set-cookie']![0]!;
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const withCookie = await request(at('/api/overview'), { headers: { cookie: cookie.split(';')[0]! } });
      assert.equal(withCookie.status, 200);
    } finally {
      await guarded.close();
    }
  });

  it('read-only: the config says so and every action is refused with 403, nothing written', async () => {
    const ro = await startDashboard({ client, port: 0, readOnly: true });
    try {
      const config = (await request(new URL('/api/config', ro.url))).json<{ readOnly: boolean }>();
      assert.equal(config.readOnly, true);
      const r = await request(new URL('/api/instances/job-01/cancel', ro.url), { method: 'POST', headers: { 'content-type': 'application/json', 'x-baton-dashboard': '1' }, body: '{}' });
      assert.equal(r.status, 403);
      assert.match(r.json<{ error: { message: string } }>().error.message, /read-only/);
      assert.equal((await client.get('job-01'))!.status, 'running');
    } finally {
      await ro.close();
    }
  });

  it('bad input in the URL or a form gets a 400 that says what was expected, never a stack trace', async () => {
    const cases: [string, RegExp][] = [
      ['/api/instances?status=bogus', /status must be one of pending, running/],
      ['/api/instances?limit=0', /limit must be a whole number from 1 to 200/],
      ['/api/instances?limit=abc', /limit must be a whole number/],
      ['/api/instances?from=yesterday', /"from" must be a date and time/],
      ['/api/instances?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', /"from" must be before "to"/],
      ['/api/instances?cursor=garbage', /cursor is not one this list returned/],
      ['/api/instances?colour=red', /unknown parameter "colour"/],
      ['/api/instances?status=failed&status=running', /given 2 times/],
      ['/api/instances?name=%20bad%20name!', /name must be/],
      ['/api/instances/%E0%A4%A', /malformed %-escape/],
    ];
    for (const [path, message] of cases) {
      const r = await get(path);
      const text = r.body;
      assert.equal(r.status, 400, `${path}: ${text}`);
      assert.match((JSON.parse(text) as { error: { message: string } }).error.message, message, path);
      assertNoInternals(text);
    }
    const missing = await get('/api/instances/no-such-instance');
    assert.equal(missing.status, 404);
    assert.equal(missing.json<{ error: { message: string } }>().error.message, 'no workflow instance "no-such-instance"');
    // Forms: a body that is not JSON, an event without a name, a pause of a cancelled instance.
    const notJson = await post('/api/instances/job-01/event', '{nope');
    assert.equal(notJson.status, 400);
    assert.match(notJson.body, /not valid JSON/);
    const noName = await post('/api/instances/job-01/event', { payload: 1 });
    assert.equal(noName.status, 400);
    assert.match(noName.body, /event name/);
    const again = await post('/api/instances/job-03/pause', {});
    assert.equal(again.status, 409);
    assert.match(again.body, /already cancelled/);
    assertNoInternals((await post('/api/instances/no-such/pause', {})).body);
  });

  it('actions need a JSON body and the dashboard header (no cross-site form can send them), and GET cannot act', async () => {
    const form = await post('/api/instances/job-01/cancel', 'x=1', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 403);
    const noType = await post('/api/instances/job-01/cancel', {}, { 'x-baton-dashboard': '1', 'content-type': 'text/plain' });
    assert.equal(noType.status, 415);
    assert.equal((await get('/api/instances/job-01/cancel')).status, 405);
    assert.equal((await client.get('job-01'))!.status, 'running');
  });

  it('the list pages by keyset, newest first, without repeats, and filters by status, name, id prefix and time', async () => {
    type PageBody = { items: { id: string; status: string; name: string }[]; next: string | null };
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await get(`/api/instances?name=dash-job&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200);
      const page = r.json<PageBody>();
      seen.push(...page.items.map((i) => i.id));
      cursor = page.next;
    } while (cursor);
    assert.deepEqual(seen, [...ids].reverse());
    const failedOrCancelled = (await get('/api/instances?status=cancelled,failed')).json<PageBody>();
    assert.deepEqual(failedOrCancelled.items.map((i) => i.id), ['job-03']);
    const byPrefix = (await get('/api/instances?id=other-')).json<PageBody>();
    assert.equal(byPrefix.items.length, 5);
    assert.ok(byPrefix.items.every((i) => i.name === 'dash-other'));
    const future = (await get(`/api/instances?from=${new Date(Date.now() + 3_600_000).toISOString()}`)).json<PageBody>();
    assert.deepEqual(future.items, []);
    const past = (await get(`/api/instances?to=${new Date(Date.now() + 3_600_000).toISOString()}&limit=200`)).json<PageBody>();
    assert.equal(past.items.length, 30);
  });

  it('a filtered page reads a bounded stretch of the index and says where it stopped', async () => {
    // Budget 4 rows per page: the one cancelled job among 30 takes several pages to reach, each partial.
    let cursor: string | null = null;
    let pages = 0;
    const found: string[] = [];
    for (;;) {
      const page = await browseInstances(client.pool, { statuses: ['cancelled'], limit: 10, scanLimit: 4, cursor });
      pages += 1;
      found.push(...page.items.map((i) => i.id));
      if (page.next === null) break;
      assert.equal(page.partial, true);
      assert.ok(page.scannedTo);
      cursor = page.next;
    }
    assert.deepEqual(found, ['job-03']);
    assert.ok(pages >= 7, `30 rows at 4 a page: ${pages} pages`);
  });

  it('the list and the overview walk workflows_created_idx in its own order: no sort, no scan of the table', async () => {
    // On a table this small the planner would rather read it all and sort it, which says nothing: with those
    // off, a Sort left in the plan means the index cannot give the order (as plain `desc`, nulls first, could not).
    const conn = await client.pool.connect();
    try {
      await conn.query('begin');
      await conn.query('set local enable_seqscan = off; set local enable_bitmapscan = off; set local enable_sort = off');
      const plan = async (sql: string, params: unknown[]) => JSON.stringify((await conn.query(`explain (format json) ${sql}`, params)).rows[0]);
      const browse = (name: string | null, cursor: [string, string] | null) => [null, name, null, null, null, cursor?.[0] ?? null, cursor?.[1] ?? null, 50_000, 51];
      for (const [what, p] of [
        ['first page', await plan(BROWSE_SQL, browse(null, null))],
        ['by name', await plan(BROWSE_SQL, browse('dash-job', null))],
        ['next page', await plan(BROWSE_SQL, browse(null, [new Date().toISOString(), 'job-10']))],
        ['recent failures', await plan(FAILURES_SQL, [50_000, 10])],
      ] as const) {
        assert.match(p, /workflows_(name_)?created_idx/, `${what}: ${p}`);
        assert.doesNotMatch(p, /"Node Type":"(Sort|Incremental Sort)"/, `${what} sorts: ${p}`);
        assert.doesNotMatch(p, /"Node Type":"Seq Scan"/, `${what}: ${p}`);
      }
      const t = await plan(THROUGHPUT_SQL, [50_000]);
      assert.match(t, /workflows_created_idx/);
      assert.doesNotMatch(t, /"Node Type":"Seq Scan","Parent Relationship":"[^"]*","Parallel Aware":false,"Async Capable":false,"Relation Name":"workflows"/);
    } finally {
      await conn.query('rollback');
      conn.release();
    }
  });

  it('overview: exact counts on a small table, the planner\'s estimate above the bound', async () => {
    const r = await get('/api/overview');
    const o = r.json() as { counts: { counts: Record<string, number>; total: number; estimated: boolean }; throughput: { minutes: { started: number }[] }; failures: unknown[] };
    assert.deepEqual(o.counts, { counts: { running: 29, cancelled: 1 }, total: 30, estimated: false });
    assert.equal(o.throughput.minutes.length, 60);
    assert.equal(o.throughput.minutes.reduce((a, m) => a + m.started, 0), 30);
    await client.pool.query('analyze baton.workflows');
    const estimate = await statusCounts(client.pool, { exactBelow: 10, timeoutMs: 5_000 });
    assert.equal(estimate.estimated, true);
    assert.equal(estimate.total, 30);
    assert.equal(estimate.counts.running, 29);
  });

  it('cancels from the API, and the event stream tells open pages (LISTEN/NOTIFY, coalesced)', async () => {
    let text = '';
    const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(new URL('/api/live', open.url), { agent: false }, resolve).on('error', reject);
    });
    assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (text += c));
    try {
      await until(async () => text.includes('event: hello'), { what: 'the hello event' });
      assert.match(text, /"listening":true/);
      // Cancelled elsewhere (not through this dashboard): cancel_tree notifies baton_done with the id.
      await client.cancel('job-05');
      await until(async () => /event: change\ndata: .*job-05/.test(text), { what: 'a change event naming job-05' });
      // A pause elsewhere: pause_workflow notifies baton_paused with the id.
      await client.pause('job-07');
      await until(async () => /event: change\ndata: .*job-07/.test(text), { what: 'a change event naming job-07' });
      // A start elsewhere: baton_ready, no id: '*'.
      await client.start(waits, 1, { id: 'waits-1' });
      await until(async () => text.includes('"ids":"*"'), { what: 'a change event for a start' });
      const r = await post('/api/instances/job-06/cancel', { reason: 'from the dashboard test' });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json(), { previous: 'running' });
      assert.equal((await client.get('job-06'))!.status, 'cancelled');
    } finally {
      const closed = new Promise((r) => stream.on('close', r));
      stream.destroy();
      await closed;
    }
  });

  it('the instance page: tasks, history and the definition graph', async () => {
    const r = await get('/api/instances/waits-1');
    const body = r.json() as { instance: { id: string; tasks: { taskKey: string }[] }; graph: { t: string; steps: { t: string }[] }; history: { kind: string }[] };
    assert.equal(body.instance.id, 'waits-1');
    assert.deepEqual(body.graph.steps.map((s) => s.t), ['task', 'event']);
    assert.equal(body.history[0]!.kind, 'started');
    assert.ok(body.instance.tasks.some((t) => t.taskKey === '0'));
  });
});
