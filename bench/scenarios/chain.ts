/**
 * S3 chain: workflows of CHAIN_STEPS sequential steps. Baton runs
 * defineWorkflow('chain').then(step) x 10; the peers enqueue the next step
 * from the handler (the raw ceiling: from the statement that deletes the step).
 */
import { fmt } from '../lib/stats.ts';
import { CHAIN_STEPS } from '../systems/types.ts';
import { drain, perSystem, type Scenario } from './common.ts';

export const s3: Scenario = {
  id: 'S3',
  title: (o) => `chain: ${fmt(o.sizes.s3Workflows)} workflows of ${CHAIN_STEPS} sequential steps, 1 worker process`,
  defaultSystems: ['baton', 'graphile', 'graphile-batched', 'pgboss', 'raw'],
  async run(ctx, systems) {
    const units = ctx.options.sizes.s3Workflows;
    await perSystem(ctx, systems, { scenario: 'S3', metric: 'steps/s', better: 'higher' }, async (system) => {
      const r = await drain(ctx, system, { scenario: 'S3', workload: 'chain', units, unitName: 'workflows', statsUnit: { name: 'step', count: units * CHAIN_STEPS } });
      ctx.add({
        scenario: 'S3',
        system: system.name,
        metric: 'steps/s',
        value: (units * CHAIN_STEPS) / r.seconds,
        better: 'higher',
        rssMb: r.rssMb,
        cpuUsPerUnit: r.cpuUsPerUnit,
        serverCpuUsPerUnit: r.serverCpuUsPerUnit,
        detail: { workflows: units, steps: units * CHAIN_STEPS, seconds: r.seconds, workflowsPerSecond: units / r.seconds, tailMs: r.tailMs },
      });
    });
  },
};
