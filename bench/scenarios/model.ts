/**
 * SM the model: Baton's job path as bare SQL, run in this run on this server,
 * so that Baton's S1 drain and its SQL bulk enqueue (S0) are read against what
 * the same model allows with no framework around it (issue 10's targets:
 * 0.8x of each). The model is the brief's: ../shared/model/run.sh beside this
 * repository (BATON_MODEL names another copy): a set-based enqueue of
 * one-task instances (instance, task and history rows), then pgbench clients
 * that claim batches with lease and epoch and complete them under the fence,
 * updating the instance and appending history. It needs psql and pgbench on
 * PATH. Each run is in a fresh database.
 *
 * The baton rows are the figures this run measured in S1 and S0 (copied, not
 * measured again): run SM after them (npm run bench -- --scenarios S0,S1,SM).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inFreshDatabase } from '../lib/db.ts';
import type { Figure } from '../lib/report.ts';
import { fmt, progress } from '../lib/stats.ts';
import type { Scenario } from './common.ts';

const BATCH = 100;
const CLIENTS = 2;
const ENQUEUE_CHUNK = 5_000;

const REPO = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where the model's script is: BATON_MODEL, or the brief's copy beside this repository. */
export function modelScript(env: NodeJS.ProcessEnv = process.env): string {
  return env.BATON_MODEL ? path.resolve(env.BATON_MODEL) : path.join(REPO, '..', 'shared', 'model', 'run.sh');
}

const DRAIN = `drain jobs/s (model: batches of ${BATCH}, ${CLIENTS} clients)`;
const ENQUEUE = `enqueue jobs/s (SQL, ${fmt(ENQUEUE_CHUNK)} per statement)`;

export interface ModelRun {
  enqueue: number;
  drain: number;
  left: number;
}

/** Read run.sh's two result lines. */
export function parseModelOutput(out: string): ModelRun {
  const enqueue = /enqueue \(set-based[^)]*\):\s*(\d+) jobs\/s/.exec(out);
  const drain = /claim \+ fenced complete[^:]*:\s*(\d+) tasks\/s \((\d+) not completed\)/.exec(out);
  if (!enqueue || !drain) throw new Error(`the model's output was not understood: ${out.trim().slice(0, 200)}`);
  return { enqueue: Number(enqueue[1]), drain: Number(drain[1]), left: Number(drain[2]) };
}

function run(script: string, url: string, jobs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script, String(jobs), String(BATCH), String(CLIENTS)], { env: { ...process.env, DATABASE_URL: url }, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => (error ? reject(new Error(`${path.basename(script)} failed: ${(stderr || error.message).trim().slice(0, 300)}`)) : resolve(stdout)));
  });
}

/** The jobs the model runs: the size rounded up to whole enqueue statements (run.sh enqueues 5,000 per statement). */
const modelJobs = (size: number) => Math.max(1, Math.ceil(size / ENQUEUE_CHUNK)) * ENQUEUE_CHUNK;

export const sm: Scenario = {
  id: 'SM',
  title: (o) => `the model: Baton's job path as bare SQL (the brief's model/run.sh), ${fmt(modelJobs(o.sizes.smJobs))} jobs, next to this run's Baton S1 and S0 SQL bulk`,
  notes: () => [
    'baton rows: this run\'s S1 (jobs/s) and S0 SQL bulk figures, not measured again; targets (issue 10): 0.8x of the model\'s drain and of its enqueue',
    `model: ${path.relative(REPO, modelScript()) || modelScript()} in a fresh database (set-based enqueue; pgbench claims with lease and epoch, fenced completion, instance update, history row)`,
  ],
  defaultSystems: ['baton'],
  async run(ctx) {
    const base = { scenario: 'SM', better: 'higher' as const };
    const jobs = modelJobs(ctx.options.sizes.smJobs);
    const script = modelScript();
    const copy = (from: Figure | undefined, metric: string) => {
      if (from && from.value !== null) ctx.add({ ...base, system: 'baton', metric, value: from.value, detail: { copiedFrom: `${from.scenario} ${from.metric}` } });
    };
    const sofar = ctx.figures();
    copy(sofar.find((f) => f.scenario === 'S1' && f.system === 'baton'), DRAIN);
    copy(sofar.find((f) => f.scenario === 'S0' && f.system === 'baton' && f.metric.startsWith('jobs/s SQL')), ENQUEUE);
    if (!existsSync(script)) {
      const unsupported = `no model at ${script} (set BATON_MODEL)`;
      for (const metric of [DRAIN, ENQUEUE]) ctx.add({ ...base, system: 'model', metric, value: null, unsupported });
      return;
    }
    try {
      const r = await inFreshDatabase(ctx.server, 'sm_model', async (db) => parseModelOutput(await run(script, db.url, jobs)));
      if (r.left > 0) throw new Error(`the model left ${r.left} of ${jobs} tasks not completed`);
      progress(`[SM model] enqueue ${fmt(r.enqueue)} jobs/s, drain ${fmt(r.drain)} jobs/s`);
      ctx.add({ ...base, system: 'model', metric: DRAIN, value: r.drain, detail: { jobs, batch: BATCH, clients: CLIENTS } });
      ctx.add({ ...base, system: 'model', metric: ENQUEUE, value: r.enqueue, detail: { jobs, perStatement: ENQUEUE_CHUNK } });
    } catch (error) {
      const message = (error as Error).message;
      progress(`[SM model] failed: ${message}`);
      for (const metric of [DRAIN, ENQUEUE]) ctx.add({ ...base, system: 'model', metric, value: null, error: message });
    }
  },
};
