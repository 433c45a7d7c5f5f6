/**
 * Mocha root hooks and global fixtures.
 *
 * Global setup: find the server (see server.ts), migrate a template database
 * once, and hand its name to the test files through the environment. Each test
 * file then clones the template (`create database ... template ...`, as
 * graphile-worker's suite does), so files are independent.
 *
 * Leak check: after every test, and after the whole run, the process must hold
 * no more sockets, timers, child processes or servers than before. A pool, a
 * client or a timer left open fails the test that leaked it.
 */
import { createHook } from 'node:async_hooks';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { fixtureHoldings } from './leaks.ts';
import { TEST_DATA_DIR, TEST_PORT, databaseUrl } from './server.ts';

let embedded: EmbeddedServer | undefined;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function mochaGlobalSetup(): Promise<void> {
  let adminUrl: string;
  if (process.env.DATABASE_URL) {
    adminUrl = databaseUrl(process.env.DATABASE_URL, 'postgres');
  } else {
    // Unless BATON_TEST_PORT chose it, the port is a default: a suite already running in another
    // checkout holds it, and this one's server starts on a free port instead.
    embedded = await startEmbedded({ dataDir: TEST_DATA_DIR, port: TEST_PORT, portIsDefault: !process.env.BATON_TEST_PORT, database: 'postgres' });
    adminUrl = embedded.url;
  }
  const template = `baton_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // Databases left by earlier runs that were killed.
    const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname ~ '^baton_(tpl|t)_[0-9]+'`);
    for (const { datname } of rows) {
      const pid = Number(/^baton_(?:tpl|t)_(\d+)/.exec(datname)![1]);
      if (!alive(pid)) await admin.query(`drop database if exists ${admin.escapeIdentifier(datname)} with (force)`);
    }
    await admin.query(`drop database if exists ${admin.escapeIdentifier(template)} with (force)`);
    await admin.query(`create database ${admin.escapeIdentifier(template)}`);
  } finally {
    await admin.end();
  }
  await migrate(databaseUrl(adminUrl, template));
  process.env.BATON_TEST_ADMIN_URL = adminUrl;
  process.env.BATON_TEST_TEMPLATE = template;
}

export async function mochaGlobalTeardown(): Promise<void> {
  const adminUrl = process.env.BATON_TEST_ADMIN_URL;
  if (adminUrl) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname ~ $1`, [
        `^baton_(tpl|t)_${process.pid}(_|$)`,
      ]);
      for (const { datname } of rows) await admin.query(`drop database if exists ${admin.escapeIdentifier(datname)} with (force)`);
    } finally {
      await admin.end();
    }
  }
  await embedded?.stop();
}

// BATON_LEAK_DEBUG=1 records where every timer and socket was created, to name a leak's origin.
const origins = new Map<number, { type: string; stack: string }>();
if (process.env.BATON_LEAK_DEBUG) {
  createHook({
    init(id, type) {
      if (type === 'Timeout' || type === 'TCPWRAP' || type === 'PROCESSWRAP') origins.set(id, { type, stack: new Error().stack!.split('\n').slice(4, 12).join('\n') });
    },
    destroy(id) {
      origins.delete(id);
    },
  }).enable();
}

let originsAtStart = new Set<number>();

const WATCHED = new Set(['Timeout', 'TCPSocketWrap', 'TCPServerWrap', 'PipeWrap', 'ProcessWrap', 'PipeServerWrap', 'UDPWrap']);

function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) {
    if (WATCHED.has(kind)) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return counts;
}

interface Baseline {
  resources: Map<string, number>;
  fixtures: { sockets: number; timers: number };
}

function snapshot(): Baseline {
  return { resources: resources(), fixtures: fixtureHoldings() };
}

function excess(baseline: Baseline): string[] {
  const fixtures = fixtureHoldings();
  // Connections opened (or gone idle) in a file's own pool during the test are expected.
  const allowed: Record<string, number> = {
    TCPSocketWrap: Math.max(0, fixtures.sockets - baseline.fixtures.sockets),
    Timeout: Math.max(0, fixtures.timers - baseline.fixtures.timers),
  };
  const out: string[] = [];
  for (const [kind, n] of resources()) {
    const before = (baseline.resources.get(kind) ?? 0) + (allowed[kind] ?? 0);
    if (n > before) out.push(`${n - before} ${kind}`);
  }
  return out;
}

/** Closing sockets and child processes settles a little after the promise resolves. */
async function settledExcess(baseline: Baseline): Promise<string[]> {
  let leaked = excess(baseline);
  for (let i = 0; i < 40 && leaked.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    leaked = excess(baseline);
  }
  return leaked;
}

let runBaseline: Baseline = { resources: new Map(), fixtures: { sockets: 0, timers: 0 } };
let testBaseline: Baseline = runBaseline;

export const mochaHooks = {
  // Measure after an await in every hook: mocha arms its own hook timer once an async hook has
  // returned its promise, so all four measurements then include exactly that one timer.
  async beforeAll() {
    await Promise.resolve();
    runBaseline = snapshot();
  },
  async beforeEach() {
    await Promise.resolve();
    testBaseline = snapshot();
    originsAtStart = new Set(origins.keys());
  },
  async afterEach(this: Mocha.Context) {
    await Promise.resolve();
    const leaked = await settledExcess(testBaseline);
    if (leaked.length > 0) {
      if (process.env.BATON_LEAK_DEBUG) {
        for (const [id, o] of origins) if (!originsAtStart.has(id)) console.error(`--- ${o.type}\n${o.stack}`);
        console.error('baseline', testBaseline, 'now', resources(), fixtureHoldings());
      }
      throw new Error(`test "${this.currentTest?.fullTitle()}" leaked ${leaked.join(', ')} (close every pool, client, timer and process it opens)`);
    }
  },
  async afterAll() {
    await Promise.resolve();
    const leaked = await settledExcess(runBaseline);
    if (leaked.length > 0) throw new Error(`the test run leaked ${leaked.join(', ')} (a before() without a matching after()?)`);
  },
};
