/**
 * startWorker(): a worker with the reconciler and the scheduler running beside
 * it on its pool. Composition lives here, above them, so that none imports another.
 */
import { startReconciler } from './reconciler/index.ts';
import { serveMetrics } from './worker/metrics-server.ts';
import { Scheduler } from './worker/scheduler.ts';
import { Worker, type WorkerOptions } from './worker/worker.ts';
import type { MaintenanceContext } from './worker/options.ts';

type Service = { stop(): Promise<void> };

/**
 * The metrics server (when a port is configured: first, so that a taken port fails the start before
 * anything else runs), the reconciler (unless turned off) and, when the worker has schedules, the
 * scheduler; stopped in reverse order.
 */
async function startServices(ctx: MaintenanceContext, reconciler: boolean): Promise<Service> {
  const started: Service[] = [];
  const stop = async () => {
    for (const s of started.reverse()) await s.stop();
  };
  try {
    if (ctx.metrics && ctx.config.metricsPort !== undefined) {
      started.push(await serveMetrics(ctx.metrics, { port: ctx.config.metricsPort, host: ctx.config.metricsHost }, ctx.log));
    }
    if (reconciler) {
      const { config } = ctx;
      started.push(
        await startReconciler({
          pool: ctx.pool,
          workerId: ctx.workerId,
          intervalMs: config.reconcileIntervalMs,
          maxLeaseLosses: config.maxLeaseLosses,
          retentionMs: config.retentionMs,
          log: ctx.log,
        }),
      );
    }
    if (ctx.schedules.length > 0) {
      const scheduler = new Scheduler({ pool: ctx.pool, schedules: ctx.schedules, codec: ctx.codec, maxPayloadBytes: ctx.config.maxPayloadBytes, log: ctx.log });
      await scheduler.start();
      started.push(scheduler);
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { stop };
}

/** Start a worker: migrate, register definitions and schedules, start claiming (and reconciling, and firing schedules). Resolves once it runs. */
export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const worker = new Worker({ ...options, maintenance: (ctx) => startServices(ctx, options.reconciler !== false) });
  await worker.start();
  return worker;
}
