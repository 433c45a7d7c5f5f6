/**
 * The dashboard in a real browser (Debian's chromium through playwright-core):
 * load the overview, find an instance with the list's filter, open its page
 * and graph, cancel it from the page (confirming the dialog), and see changes
 * made elsewhere (a pause, a cancel) arrive live, without a reload; send an
 * event from the page. Screenshots of the main pages
 * go to test-output/dashboard/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { defineTask, defineWorkflow, NonRetryableError, type Client } from '../src/index.ts';
import { startDashboard, type Dashboard } from '../src/dashboard/server.ts';
import { CHROMIUM, haveChromium, launchBrowser } from './support/browser.ts';
import { useTestDatabase } from './support/db.ts';
import { fixtureClient, until } from './support/fixtures.ts';
import { ROOT } from './support/server.ts';
import { inProcessWorker } from './support/workers.ts';

const OUT = path.join(ROOT, 'test-output/dashboard');

const reserve = defineTask('reserve', async (order: { id: string; fail?: boolean }) => {
  if (order.fail) throw new NonRetryableError(`order ${order.id} cannot be reserved`);
  return order;
});
const ship = defineTask('ship', async (order: { id: string }) => ({ shipped: order.id }));
const notify = defineTask('notify', async (order: { id: string }) => ({ notified: order.id }));
const browserOrder = defineWorkflow<{ id: string; fail?: boolean }>('browser-order')
  .then(reserve)
  .parallel([ship, notify], { join: { quorum: 2 }, rest: 'finish' })   // (every branch: the graph labels the rule)
  .waitForEvent('delivered', { timeoutMs: '7d' })
  .build();

describe('dashboard in a real browser', function () {
  this.timeout(120_000);
  // Registered before useTestDatabase's, so that it runs first: the worker stops before its database is dropped.
  after(async () => {
    await dashboard?.close();
    await client?.close();
  });
  const db = useTestDatabase();
  let client: Client;
  let dashboard: Dashboard;
  let browser: { context: BrowserContext; close(): Promise<void> } | undefined;
  let page: Page;
  let pageErrors: string[] = [];

  before(async () => {
    if (!haveChromium()) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium (.ci/run does), or set BATON_TEST_CHROMIUM`);
    mkdirSync(OUT, { recursive: true });
    client = await fixtureClient(db.url);
    // A worker runs the orders to their wait, then stops: one running beside the tests would hold a
    // varying number of timers (polling, or not) at the leak check. Tests that need one start their own.
    const worker = await inProcessWorker(db.url, { workflows: [browserOrder], tasks: [] });
    try {
      for (let i = 1; i <= 6; i++) await client.start(browserOrder, { id: `o-${i}` }, { id: `order-${i}` });
      await client.start(browserOrder, { id: 'o-bad', fail: true }, { id: 'order-bad' });
      // Every order waits for its delivery event (or failed): the graph has something to show.
      await until(async () => {
        const page = await client.list({ limit: 50 });
        return page.items.every((i) => i.status === 'failed' || i.currentStep?.startsWith('waitForEvent')) && page.items.length === 7;
      }, { what: 'orders waiting for delivery', timeoutMs: 60_000 });
    } finally {
      await worker.stop();
    }
    dashboard = await startDashboard({ client, port: 0, liveIntervalMs: 200 });
  });
  // A browser per test: closing it closes its connections to the dashboard, which the leak check counts
  // (the server sees them go a moment after the browser process ends), and the dashboard's coalescing
  // timer of the test's last notifications runs out: wait for both.
  const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
  const holdings = () => ({
    sockets: count('TCPSocketWrap') - client.pool.totalCount,
    timers: count('Timeout') - client.pool.idleCount,
  });
  let baseline = { sockets: 0, timers: 0 };
  beforeEach(async () => {
    baseline = holdings();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  afterEach(async () => {
    await browser?.close();
    browser = undefined;
    const deadline = Date.now() + 10_000;
    for (let now = holdings(); (now.sockets > baseline.sockets || now.timers > baseline.timers) && Date.now() < deadline; now = holdings()) {
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  it('loads the overview: counts by status, throughput, workers and the failure', async () => {
    const worker = await inProcessWorker(db.url, { workflows: [browserOrder], tasks: [] });
    try {
      await overview(worker.id);
    } finally {
      await worker.stop();
    }
  });

  async function overview(workerId: string): Promise<void> {
    await page.goto(dashboard.url);
    await page.locator('[data-count="running"] .n').filter({ hasText: '6' }).waitFor();
    assert.equal(await page.locator('[data-count="failed"] .n').textContent(), '1');
    await page.locator('svg.plot').waitFor();
    await page.locator('table.workers td', { hasText: workerId }).waitFor();
    await page.locator('section', { hasText: 'Recent failures' }).locator('a', { hasText: 'order-bad' }).waitFor();
    assert.equal(await page.locator('#live').textContent(), '● live');
    await page.screenshot({ path: path.join(OUT, 'overview.png'), fullPage: true });
  }

  it('finds an instance with the list filter, opens its page and graph, cancels it, and sees the change live', async () => {
    await page.goto(dashboard.url);
    await page.click('nav a[data-nav="instances"]');
    await page.locator('table.instances tbody tr').first().waitFor();
    await page.fill('form.filters input[name="id"]', 'order-3');
    await page.click('form.filters button[type="submit"]');
    await until(async () => (await page.locator('table.instances tbody tr').count()) === 1, { what: 'one row for order-3' });
    assert.match(page.url(), /\/instances\?id=order-3$/);
    await page.screenshot({ path: path.join(OUT, 'list.png'), fullPage: true });

    // From here on the page must not reload: a mark on window would be lost if it did.
    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
    await page.click('table.instances a:text("order-3")');
    await page.locator('svg.graph').waitFor();
    const node = (key: string) => page.locator(`svg.graph g.node[data-key="${key}"]`);
    assert.equal(await node('0').getAttribute('data-status'), 'completed');
    assert.equal(await node('1/b0').getAttribute('data-status'), 'completed');
    assert.equal(await node('2').getAttribute('data-status'), 'waiting');
    assert.equal(await page.locator('svg.graph text.join-rule').textContent(), 'quorum 2 of 2, rest finish');
    assert.equal(await page.locator('.title [data-status]').textContent(), 'running');
    await page.screenshot({ path: path.join(OUT, 'instance.png'), fullPage: true });
    // A step of the graph leads to its task row.
    await node('1/b1').click();
    await page.locator('tr[data-task="1/b1"].flash').waitFor();

    const dialogs: string[] = [];
    page.once('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.click('button[data-action="cancel"]');
    await page.locator('.title [data-status="cancelled"]').waitFor();
    assert.match(dialogs[0] ?? '', /Cancel instance order-3\?/);
    assert.equal(await node('2').getAttribute('data-status'), 'cancelled');
    assert.equal((await client.get('order-3'))!.status, 'cancelled');
    await page.screenshot({ path: path.join(OUT, 'instance-cancelled.png'), fullPage: true });

    // A change made elsewhere (not by this page) arrives through LISTEN/NOTIFY and the event stream.
    await page.click('nav a[data-nav="instances"]');
    await page.fill('form.filters input[name="id"]', 'order-4');
    await page.click('form.filters button[type="submit"]');
    await page.click('table.instances a:text("order-4")');
    await page.locator('.title [data-status="running"]').waitFor();
    await client.pause('order-4', { requestedBy: 'another process' });
    await page.locator('.title [data-status="paused"]').waitFor({ timeout: 30_000 });
    await page.locator('button[data-action="resume"]').waitFor();
    await client.cancel('order-4');
    await page.locator('.title [data-status="cancelled"]').waitFor({ timeout: 30_000 });
    assert.equal(await node('2').getAttribute('data-status'), 'cancelled');
    assert.equal(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded), true, 'the page was not reloaded');
    assert.deepEqual(pageErrors, []);
  });

  it('sends an event from the instance page (after a confirmation), and a payload that is not JSON is refused there', async () => {
    const worker = await inProcessWorker(db.url, { workflows: [browserOrder], tasks: [] });
    try {
      await sendEvent();
    } finally {
      await worker.stop();
    }
  });

  async function sendEvent(): Promise<void> {
    await page.goto(new URL('/instances/order-5', dashboard.url).toString());
    await page.locator('.title [data-status="running"]').waitFor();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.fill('form.send-event input[name="event"]', 'delivered');
    await page.fill('form.send-event input[name="payload"]', '{signedBy: Ada}');
    await page.click('form.send-event button[type="submit"]');
    await page.locator('#notice').filter({ hasText: 'not valid JSON' }).waitFor();
    assert.deepEqual(dialogs, [], 'nothing to confirm: the payload was refused first');
    await page.fill('form.send-event input[name="payload"]', '{"signedBy": "Ada"}');
    await page.click('form.send-event button[type="submit"]');
    await page.locator('.title [data-status="completed"]').waitFor({ timeout: 30_000 });
    assert.match(dialogs[0] ?? '', /Send event "delivered" to instance order-5\?/);
    assert.deepEqual(await client.result('order-5', { timeoutMs: 5_000 }), { signedBy: 'Ada' });
    assert.deepEqual(pageErrors, []);
  }

  it('a mistake in the address gets a clear message, not a stack trace', async () => {
    await page.goto(new URL('/instances?status=bogus', dashboard.url).toString());
    await page.locator('#notice').filter({ hasText: 'status must be one of' }).waitFor();
    await page.goto(new URL('/instances/no-such-order', dashboard.url).toString());
    await page.locator('#notice').filter({ hasText: 'no workflow instance "no-such-order"' }).waitFor();
    await page.screenshot({ path: path.join(OUT, 'not-found.png') });
    assert.deepEqual(pageErrors, []);
  });
});
