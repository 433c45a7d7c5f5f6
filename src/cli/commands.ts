import type { Command } from './command.ts';
import { dbCommand, migrateCommand } from './commands/db.ts';
import { workerCommand } from './commands/worker.ts';

export const commands: Record<string, Command> = {
  worker: workerCommand,
  migrate: migrateCommand,
  db: dbCommand,
};

export function usage(): string {
  const width = Math.max(...Object.values(commands).map((c) => c.usage.length));
  const lines = Object.values(commands).map((c) => `  baton ${c.usage.padEnd(width)}  ${c.summary}`);
  return `usage: baton <command>\n\n${lines.join('\n')}`;
}
