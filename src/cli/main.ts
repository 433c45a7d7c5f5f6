/**
 * `baton <command>`: argument parsing, dispatch and exit codes only.
 *
 * Exit codes: 0 success, 1 a user error (one line on stderr, no stack trace),
 * 2 wrong usage. Anything unexpected is a bug: its stack goes to stderr, exit 1.
 */
import { isUserError, UsageError } from '../errors.ts';
import { commands, usage } from './commands.ts';
import { processOutput, type Output } from './output.ts';

export async function main(argv: string[], output: Output = processOutput): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    output.out(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    output.err(`baton: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    output.out(`usage: baton ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  try {
    return (await command.run(rest, output)) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      output.err(`baton ${name}: ${error.message}\nusage: baton ${command.usage}`);
      return 2;
    }
    if (isUserError(error)) {
      output.err(`baton: ${error.message.split('\n')[0]}`);
      return 1;
    }
    output.err(`baton: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  }
}
