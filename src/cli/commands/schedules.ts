import { silentLogger } from '../../log.ts';
import type { ScheduleView } from '../../store/schedules.ts';
import { parse } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { safe, table } from '../format.ts';

const options = { json: jsonOption } as const;

const at = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

/** The table `baton schedules` prints: a schedule no live worker fires shows no next tick. */
function schedulesTable(rows: ScheduleView[]): string {
  return table(
    ['NAME', 'CRON', 'TIMEZONE', 'RUNS', 'CATCH-UP', 'LAST TICK', 'LAST RUN', 'NEXT TICK', 'STATE'],
    rows.map((s) => [
      safe(s.name),
      safe(s.cron),
      safe(s.timezone),
      `${s.kind} ${safe(s.workflowName)}`,
      s.catchUp,
      at(s.lastTick),
      safe(s.lastRunId ?? '-'),
      s.workers > 0 ? at(s.nextTick) : '-',
      s.workers > 0 ? `fired by ${s.workers} worker${s.workers === 1 ? '' : 's'}` : 'not registered (removed from the code, or no worker runs)',
    ]),
  );
}

export const schedulesCommand: Command = {
  args: '',
  options,
  summary: 'schedules with their last and next ticks, and whether a live worker fires them',
  async run(args, output) {
    const { values } = parse(args, options, { names: [], min: 0 });
    // Loaded here, not at start-up: `baton --help` must not pay for the driver and the store.
    const { createClient } = await import('../../client/client.ts');
    const client = await createClient({ logger: silentLogger });
    try {
      const rows = await client.schedules();
      if (values.json) output.out(JSON.stringify(rows.map((s) => ({ ...s, registered: s.workers > 0 })), null, 2));
      else output.out(rows.length ? schedulesTable(rows) : 'no schedules (export one from a module in workers/, or pass schedules to startWorker)');
      return 0;
    } finally {
      await client.close();
    }
  },
};
