import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Options } from '../bench/lib/args.ts';
import { QUICK } from '../bench/lib/args.ts';
import type { Server } from '../bench/lib/db.ts';
import type { Figure } from '../bench/lib/report.ts';
import type { Context } from '../bench/scenarios/common.ts';
import { modelScript, parseModelOutput, sm } from '../bench/scenarios/model.ts';
import { useTestDatabase } from './support/db.ts';

/** bench's SM scenario (bench/scenarios/model.ts): the brief's model run in the same run as Baton's S1 and S0. */
describe('bench SM: the model next to Baton in one run', function () {
  this.timeout(60_000);
  const db = useTestDatabase();

  const OUTPUT = 'enqueue (set-based, 5000 per statement): 23419 jobs/s\nclaim + fenced complete, batch 100, 2 clients: 24887 tasks/s (0 not completed)\n';

  it("reads the model's two result lines, and refuses output it does not understand", () => {
    assert.deepEqual(parseModelOutput(OUTPUT), { enqueue: 23419, drain: 24887, left: 0 });
    assert.deepEqual(parseModelOutput(OUTPUT.replace('(0 not', '(12 not')).left, 12);
    assert.throws(() => parseModelOutput('psql: error: connection refused'), /not understood/);
  });

  it('finds the model beside the repository, or where BATON_MODEL says', () => {
    assert.match(modelScript({}), /[/\\]shared[/\\]model[/\\]run\.sh$/);
    assert.equal(modelScript({ BATON_MODEL: '/opt/model/run.sh' }), '/opt/model/run.sh');
  });

  function context(figures: Figure[], got: Figure[]): Context {
    const server: Server = { adminUrl: db.url, version: '', embedded: false, locale: undefined, urlFor: (name) => Object.assign(new URL(db.url), { pathname: `/${name}` }).toString(), close: async () => undefined };
    const options = { quick: true, sizes: { ...QUICK, smJobs: 7_000 } } as Options;
    return { server, options, add: (f) => got.push(f), figures: () => figures, addPgStats: () => undefined, cancelled: () => false };
  }

  it("runs the model in a fresh database with the run's size rounded to its enqueue statements, next to Baton's S1 and S0 SQL figures", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-model-'));
    const saved = process.env.BATON_MODEL;
    try {
      const script = path.join(dir, 'run.sh');
      // A stand-in model: records how it was called, and prints what the real one prints.
      writeFileSync(script, `echo "$DATABASE_URL $*" > "${dir}/called"\nprintf '${OUTPUT.replace(/\n/g, '\\n')}'\n`);
      process.env.BATON_MODEL = script;
      const s1: Figure = { scenario: 'S1', system: 'baton', metric: 'jobs/s', value: 19_000, better: 'higher' };
      const s0: Figure = { scenario: 'S0', system: 'baton', metric: 'jobs/s SQL, 5,000 per statement', value: 30_000, better: 'higher' };
      const other: Figure = { scenario: 'S1', system: 'graphile-batched', metric: 'jobs/s', value: 40_000, better: 'higher' };
      const got: Figure[] = [];
      await sm.run(context([s0, other, s1], got), []);

      const [url, ...args] = readFileSync(path.join(dir, 'called'), 'utf8').trim().split(' ');
      assert.deepEqual(args, ['10000', '100', '2'], '7,000 jobs become two enqueue statements of 5,000');
      assert.match(new URL(url!).pathname, /^\/bench_sm_model_[0-9a-f]{6}$/, 'a fresh database of its own');
      const value = (system: string, metric: RegExp) => got.find((f) => f.system === system && metric.test(f.metric))?.value;
      assert.equal(value('baton', /^drain/), 19_000);
      assert.equal(value('baton', /^enqueue/), 30_000);
      assert.equal(value('model', /^drain/), 24_887);
      assert.equal(value('model', /^enqueue/), 23_419);
      assert.equal(got.length, 4);
    } finally {
      if (saved === undefined) delete process.env.BATON_MODEL;
      else process.env.BATON_MODEL = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says the model is missing, or failed, instead of a figure', async () => {
    const saved = process.env.BATON_MODEL;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-model-'));
    try {
      process.env.BATON_MODEL = path.join(dir, 'absent.sh');
      const missing: Figure[] = [];
      await sm.run(context([], missing), []);
      assert.deepEqual(missing.map((f) => [f.system, f.value, /no model at/.test(f.unsupported ?? '')]), [['model', null, true], ['model', null, true]]);

      const script = path.join(dir, 'run.sh');
      writeFileSync(script, `printf '${OUTPUT.replace('(0 not', '(3 not').replace(/\n/g, '\\n')}'\n`);
      process.env.BATON_MODEL = script;
      const failed: Figure[] = [];
      await sm.run(context([], failed), []);
      assert.deepEqual(failed.map((f) => [f.system, f.value]), [['model', null], ['model', null]]);
      assert.match(failed[0]!.error ?? '', /left 3 of 10000 tasks not completed/);
    } finally {
      if (saved === undefined) delete process.env.BATON_MODEL;
      else process.env.BATON_MODEL = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
