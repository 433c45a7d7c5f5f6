/**
 * A worker child: starts one system's worker with the configuration in
 * BENCH_CHILD, reports to the parent over IPC (ready, first claim, latency
 * samples, finished units and S7 end-to-end latencies), and stops gracefully
 * when told to, or when the parent goes away (so no worker outlives a crashed
 * benchmark).
 *
 * Finished units are counted here, from the system's own signal (hooks.completed),
 * and streamed as a cumulative count: one message at most every PROGRESS_MS
 * (and at once when the configured target is reached), never one per job, so
 * that the parent needs no database polling to see the end of a run.
 */
import { loadSystem } from '../systems/index.ts';
import { sampleAllocations } from './alloc.ts';
import type { ChildConfig, ChildMessage, RunningWorker } from '../systems/types.ts';
import { preciseNow } from './stats.ts';

export const PROGRESS_MS = 50;

const config = JSON.parse(process.env.BENCH_CHILD ?? '{}') as ChildConfig;
const send = (m: ChildMessage) => {
  if (process.connected) process.send!(m);
};

let firstSent = false;
let completed = 0;
let failed = 0;
let lastT = 0;
let e2e: Record<string, number[]> = {};
let e2eCount = 0;
let targetSent = false;
let timer: NodeJS.Timeout | undefined;

function flush(): void {
  if (timer) clearTimeout(timer);
  timer = undefined;
  const m: ChildMessage = { type: 'progress', completed, failed, t: lastT };
  if (e2eCount > 0) {
    m.e2e = e2e;
    e2e = {};
    e2eCount = 0;
  }
  send(m);
}
const later = () => {
  timer ??= setTimeout(flush, PROGRESS_MS);
};

const hooks = {
  started() {
    if (!firstSent) {
      firstSent = true;
      send({ type: 'first', t: Date.now() });
    }
  },
  sample(seq: number, t: number) {
    send({ type: 'sample', seq, t });
  },
  completed(n: number) {
    if (n <= 0) return;
    completed += n;
    lastT = Date.now();
    if (!targetSent && config.target !== undefined && completed >= config.target) {
      targetSent = true;
      flush();
      send({ type: 'target', t: lastT, count: completed });
    } else later();
  },
  failed(n: number) {
    if (n <= 0) return;
    failed += n;
    flush();
  },
  endToEnd(phase: number, enqueuedAt: number) {
    (e2e[phase] ??= []).push(Math.round((preciseNow() - enqueuedAt) * 100) / 100);
    e2eCount += 1;
    // Bounded messages at high rates.
    if (e2eCount >= 5_000) flush();
    else later();
  },
};

let worker: RunningWorker | undefined;
let stopping: Promise<void> | undefined;
// From before the worker starts: its start-up counts too (a few hundred kB; a drain allocates hundreds of MB).
const stopSampling = config.allocProfileDir ? await sampleAllocations(config.allocProfileDir) : undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    try {
      await worker?.stop();
    } catch (error) {
      process.stderr.write(`[${config.system}] stop failed: ${(error as Error).message}\n`);
    }
    if (stopSampling) {
      const { bytes, file } = await stopSampling();
      const perUnit = completed > 0 ? `, ${Math.round(bytes / completed).toLocaleString('en-US')} bytes per unit counted here` : '';
      process.stderr.write(`[${config.system}] allocated ${(bytes / 1e6).toFixed(1)} MB (sampled)${perUnit}; profile: ${file}\n`);
    }
    flush();
    // Let the last messages out before exiting.
    if (process.connected) await new Promise<void>((resolve) => process.send!({ type: 'stopped' } satisfies ChildMessage, () => resolve()));
    process.exit(0);
  })();
  return stopping;
}

process.on('message', (m: { type?: string }) => {
  if (m?.type === 'stop') void stop();
});
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());

try {
  const system = await loadSystem(config.system);
  worker = await system.startWorker(config, hooks);
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'error', message: (error as Error).stack ?? String(error) });
  process.exit(1);
}
