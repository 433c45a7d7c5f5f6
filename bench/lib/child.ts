/**
 * A worker child: starts one system's worker with the configuration in
 * BENCH_CHILD, reports to the parent over IPC (ready, first claim, latency
 * samples, completions reached), and stops gracefully when told to, or when
 * the parent goes away (so no worker outlives a crashed benchmark).
 */
import { loadSystem } from '../systems/index.ts';
import type { ChildConfig, ChildMessage, RunningWorker } from '../systems/types.ts';

const config = JSON.parse(process.env.BENCH_CHILD ?? '{}') as ChildConfig;
const send = (m: ChildMessage) => {
  if (process.connected) process.send!(m);
};

let firstSent = false;
let completed = 0;
let targetSent = false;
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
    completed += n;
    if (!targetSent && config.target !== undefined && completed >= config.target) {
      targetSent = true;
      send({ type: 'target', t: Date.now(), count: completed });
    }
  },
};

let worker: RunningWorker | undefined;
let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    try {
      await worker?.stop();
    } catch (error) {
      process.stderr.write(`[${config.system}] stop failed: ${(error as Error).message}\n`);
    }
    send({ type: 'stopped' });
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
