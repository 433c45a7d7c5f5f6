/**
 * S6 fan-out: workflows of FAN_BRANCHES parallel branches and a join. Baton
 * runs defineWorkflow('fan').parallel([...20]).then(join); the peers emulate
 * the join with a counter row per workflow, decremented by each branch, the
 * last one enqueueing the join job.
 */
import { fmt } from '../lib/stats.ts';
import { FAN_BRANCHES } from '../systems/types.ts';
import { drain, perSystem, type Scenario } from './common.ts';

export const s6: Scenario = {
  id: 'S6',
  title: (o) => `fan-out: ${fmt(o.sizes.s6Workflows)} workflows of ${FAN_BRANCHES} parallel branches + a join, 1 worker process`,
  notes: () => ['tasks/s counts branches and joins; peers emulate the join with a counter table'],
  defaultSystems: ['baton', 'graphile', 'graphile-batched', 'pgboss', 'raw'],
  async run(ctx, systems) {
    const units = ctx.options.sizes.s6Workflows;
    const tasks = units * (FAN_BRANCHES + 1);
    await perSystem(ctx, systems, { scenario: 'S6', metric: 'tasks/s', better: 'higher' }, async (system) => {
      const r = await drain(ctx, system, { scenario: 'S6', workload: 'fanout', units, unitName: 'workflows', statsUnit: { name: 'task', count: tasks } });
      ctx.add({
        scenario: 'S6',
        system: system.name,
        metric: 'tasks/s',
        value: tasks / r.seconds,
        better: 'higher',
        rssMb: r.rssMb,
        cpuUsPerUnit: r.cpuUsPerUnit,
        serverCpuUsPerUnit: r.serverCpuUsPerUnit,
        detail: { workflows: units, tasks, seconds: r.seconds, workflowsPerSecond: units / r.seconds, tailMs: r.tailMs },
      });
    });
  },
};
