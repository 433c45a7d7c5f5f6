import type { Command } from './command.ts';
import { benchCommand } from './commands/bench.ts';
import { checkCommand } from './commands/check.ts';
import { dbCommand, migrateCommand } from './commands/db.ts';
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
  send: sendCommand,
  history: historyCommand,
  check: checkCommand,
  db: dbCommand,
  bench: benchCommand,
};

export function usage(): string {
  const width = Math.max(...Object.values(commands).map((c) => c.usage.split(' [')[0]!.length));
  const lines = Object.values(commands).map((c) => `  baton ${c.usage.split(' [')[0]!.padEnd(width)}  ${c.summary}`);
  return `usage: baton <command> [options]   (baton <command> --help for its options)\n\n${lines.join('\n')}`;
}
