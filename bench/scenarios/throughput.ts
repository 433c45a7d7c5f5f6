/**
 * S1 throughput: no-op jobs enqueued up front, one worker process, jobs/s from
 * the first claim to the last completion.
 * S5 processes: the same load drained by 1, 2 and 4 worker processes.
 */
import { fmt } from '../lib/stats.ts';
import { drain, perSystem, type Scenario } from './common.ts';

export const s1: Scenario = {
  id: 'S1',
  title: (o) => `throughput: ${fmt(o.sizes.s1Jobs)} no-op jobs enqueued up front, 1 worker process, concurrency ${o.concurrency}`,
  defaultSystems: ['baton', 'graphile', 'graphile-batched', 'pgboss', 'raw'],
  async run(ctx, systems) {
    const units = ctx.options.sizes.s1Jobs;
    await perSystem(ctx, systems, { scenario: 'S1', metric: 'jobs/s', better: 'higher' }, async (system) => {
      const r = await drain(ctx, system, { scenario: 'S1', workload: 'noop', units, unitName: 'jobs', statsUnit: { name: 'job', count: units } });
      ctx.add({
        scenario: 'S1',
        system: system.name,
        metric: 'jobs/s',
        value: units / r.seconds,
        better: 'higher',
        rssMb: r.rssMb,
        cpuUsPerUnit: r.cpuUsPerUnit,
        serverCpuUsPerUnit: r.serverCpuUsPerUnit,
        detail: { jobs: units, seconds: r.seconds, enqueueSeconds: r.enqueueSeconds, tailMs: r.tailMs },
      });
    });
  },
};

export const PROCESS_COUNTS = [1, 2, 4];

export const s5: Scenario = {
  id: 'S5',
  title: (o) => `processes: ${fmt(o.sizes.s5Jobs)} no-op jobs drained by ${PROCESS_COUNTS.join(', ')} worker processes (concurrency ${o.concurrency} each)`,
  notes: () => ['jobs/s@N: N worker processes on the same 2-core machine as PostgreSQL; peak RSS is the largest process'],
  defaultSystems: ['baton', 'graphile-batched'],
  async run(ctx, systems) {
    const units = ctx.options.sizes.s5Jobs;
    for (const n of PROCESS_COUNTS) {
      if (ctx.cancelled()) return;
      const metric = `jobs/s@${n}`;
      await perSystem(ctx, systems, { scenario: 'S5', metric, better: 'higher' }, async (system) => {
        const r = await drain(ctx, system, { scenario: 'S5', workload: 'noop', units, processes: n, unitName: 'jobs', statsUnit: { name: 'job', count: units } });
        ctx.add({
          scenario: 'S5',
          system: system.name,
          metric,
          value: units / r.seconds,
          better: 'higher',
          rssMb: r.rssMb,
        cpuUsPerUnit: r.cpuUsPerUnit,
        serverCpuUsPerUnit: r.serverCpuUsPerUnit,
          detail: { jobs: units, processes: n, seconds: r.seconds, rssEachMb: r.rssEachMb, tailMs: r.tailMs },
        });
      });
    }
  },
};
