/**
 * `baton <command>`: argument parsing, dispatch and exit codes only.
 *
 * Exit codes: 0 success, 1 a user error (one line on stderr, no stack trace),
 * 2 wrong usage. Anything unexpected is a bug: its stack goes to stderr, exit 1.
 * With --json, an error is one JSON line on stderr: `{"code": ..., "message": ...}`
 * (the BatonError's stable code; USAGE for wrong usage, INTERNAL for a bug).
 */
import { BatonError, isUserError, UsageError } from '../errors.ts';
import { guardStdio } from '../log.ts';
import { readFileSync } from 'node:fs';
import { helpText, usageLine } from './command.ts';
import { commands, usage } from './commands.ts';
import { processOutput, type Output } from './output.ts';

export async function main(argv: string[], output: Output = processOutput): Promise<number> {
  // A broken pipe on our own stdout/stderr (`baton ... | head`, a `tee` ended by Ctrl-C) drops output, never the work.
  if (output === processOutput) guardStdio();
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    output.out(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    output.out(version());
    return 0;
  }
  const asJson = rest.includes('--json');
  const fail = (code: string, message: string, text: string, extra: Record<string, unknown> = {}) => {
    output.err(asJson ? JSON.stringify({ code, message, ...extra }) : text);
  };
  const command = commands[name];
  if (!command) {
    fail('USAGE', `unknown command "${name}"`, `baton: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    output.out(helpText(name, command));
    return 0;
  }
  try {
    return (await command.run(rest, output)) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      fail(error.code, error.message, `baton ${name}: ${error.message}\nusage: ${usageLine(name, command)}`, { usage: usageLine(name, command) });
      return 2;
    }
    if (isUserError(error)) {
      const message = error.message.split('\n')[0]!;
      fail(error.code, message, `baton: ${message}`);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    fail(error instanceof BatonError ? error.code : 'INTERNAL', message, `baton: internal error: ${stack}`, { stack });
    return 1;
  }
}

/** Baton's version, from its package.json: two levels up from this module both in src/cli/ and, installed, in dist/cli/. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
