import type { Command } from './command.ts';
import { benchCommand } from './commands/bench.ts';
import { checkCommand } from './commands/check.ts';
import { dashboardCommand } from './commands/dashboard.ts';
import { dbCommand, migrateCommand } from './commands/db.ts';
import { definitionsCommand } from './commands/definitions.ts';
import { publishCommand } from './commands/events.ts';
import {
  cancelCommand,
  enqueueCommand,
  historyCommand,
  listCommand,
  pauseCommand,
  resumeCommand,
  sendCommand,
  startCommandDef,
  statusCommand,
} from './commands/instances.ts';
import { retryCommand } from './commands/retry.ts';
import { schedulesCommand } from './commands/schedules.ts';
import { tailCommand } from './commands/streams.ts';
import { completeWaitpointCommand } from './commands/waitpoints.ts';
import { workerCommand } from './commands/worker.ts';

export const commands: Record<string, Command> = {
  worker: workerCommand,
  migrate: migrateCommand,
  start: startCommandDef,
  enqueue: enqueueCommand,
  status: statusCommand,
  list: listCommand,
  cancel: cancelCommand,
  pause: pauseCommand,
  resume: resumeCommand,
  retry: retryCommand,
  send: sendCommand,
  publish: publishCommand,
  history: historyCommand,
  tail: tailCommand,
  'complete-waitpoint': completeWaitpointCommand,
  definitions: definitionsCommand,
  schedules: schedulesCommand,
  dashboard: dashboardCommand,
  check: checkCommand,
  db: dbCommand,
  bench: benchCommand,
};

export function usage(): string {
  const heads = Object.entries(commands).map(([name, c]) => [c.args ? `${name} ${c.args}` : name, c.summary] as const);
  const width = Math.max(...heads.map(([h]) => h.length));
  const lines = heads.map(([h, summary]) => `  baton ${h.padEnd(width)}  ${summary}`);
  return `usage: baton <command> [options]   (baton <command> --help for its options; baton --version)\n\n${lines.join('\n')}`;
}
