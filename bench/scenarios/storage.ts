/**
 * S8 storage: what each system keeps per job. s8Jobs no-op jobs with a payload
 * of about PAD_BYTES of JSON (the padded workload) are enqueued and drained by
 * one worker process. The database is measured three times, each after
 * VACUUM FULL so that live rows are counted, not dead ones: with the empty
 * schema, with the jobs queued, and after they completed with the worker
 * stopped. The size is the heap, TOAST and indexes of every table outside the
 * system catalogs (pg_total_relation_size); a figure is the growth over the
 * empty schema divided by the jobs.
 */
import type pg from 'pg';
import { fmt, progress } from '../lib/stats.ts';
import { PAD_BYTES } from '../systems/types.ts';
import { drain, perSystem, type Scenario } from './common.ts';

async function databaseBytes(client: pg.Client): Promise<number> {
  await client.query('vacuum full');
  const { rows } = await client.query<{ bytes: string }>(
    `select coalesce(sum(pg_total_relation_size(c.oid)), 0) as bytes
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'`,
  );
  return Number(rows[0]!.bytes);
}

export const s8: Scenario = {
  id: 'S8',
  title: (o) => `storage: ${fmt(o.sizes.s8Jobs)} no-op jobs with a ${PAD_BYTES}-byte payload, bytes per job queued and after completion (VACUUM FULL, heap + TOAST + indexes)`,
  notes: () => [
    'retained: what stays after the jobs completed, before any retention or archive runs (Baton keeps finished instances until its retention; graphile-worker deletes a completed job; pg-boss keeps it in its job table until it archives it)',
  ],
  defaultSystems: ['baton', 'graphile-batched', 'pgboss', 'raw'],
  async run(ctx, systems) {
    const units = ctx.options.sizes.s8Jobs;
    await perSystem(ctx, systems, { scenario: 'S8', metric: 'bytes/job retained', better: 'lower' }, async (system) => {
      const bytes: Record<string, number> = {};
      const r = await drain(ctx, system, {
        scenario: 'S8',
        workload: 'padded',
        units,
        unitName: 'jobs',
        statsUnit: { name: 'job', count: units },
        inspect: async (client, when) => {
          bytes[when] = await databaseBytes(client);
        },
      });
      const queued = (bytes.enqueued! - bytes.empty!) / units;
      const retained = Math.max(0, bytes.drained! - bytes.empty!) / units;
      progress(`[S8 ${system.name}] ${fmt(queued)} bytes/job queued, ${fmt(retained)} bytes/job retained`);
      const detail = { jobs: units, emptyBytes: bytes.empty, queuedBytes: bytes.enqueued, drainedBytes: bytes.drained, seconds: r.seconds };
      ctx.add({ scenario: 'S8', system: system.name, metric: 'bytes/job queued', value: queued, better: 'lower', detail });
      ctx.add({ scenario: 'S8', system: system.name, metric: 'bytes/job retained', value: retained, better: 'lower', detail });
    });
  },
};
