/**
 * startWorker(): a worker with the reconciler running beside it on its pool.
 * Composition lives here, above both, so that neither imports the other.
 */
import { startReconciler } from './reconciler/index.ts';
import { Worker, type WorkerOptions } from './worker/worker.ts';

/** Start a worker: migrate, register definitions, start claiming (and reconciling). Resolves once it runs. */
export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const worker = new Worker({
    ...options,
    ...(options.reconciler === false
      ? {}
      : {
          maintenance: ({ pool, workerId, config, log }) =>
            startReconciler({
              pool,
              workerId,
              intervalMs: config.reconcileIntervalMs,
              maxLeaseLosses: config.maxLeaseLosses,
              retentionMs: config.retentionMs,
              log,
            }),
        }),
  });
  await worker.start();
  return worker;
}
