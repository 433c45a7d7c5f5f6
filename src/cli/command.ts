import type { Output } from './output.ts';

/** A command-line option: its parseArgs type, the placeholder of its value, and one line of help. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  /** What the value looks like in the usage line (`N`, `a,b`); string options only. */
  readonly value?: string;
  readonly help: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface Command {
  /** The positional arguments, for the usage line: `<id> <event> [json]`. */
  args: string;
  /** Every option the command accepts: its parse() takes these, and --help lists them. */
  options: OptionSpecs;
  summary: string;
  run(args: string[], output: Output): Promise<number | void>;
}

/** The same --json for every command. */
export const jsonOption = { type: 'boolean', help: 'print the result as JSON on stdout; an error is one JSON line on stderr with its code and message' } as const;

function flag(name: string, spec: OptionSpec): string {
  return spec.type === 'string' ? `--${name} ${spec.value ?? 'VALUE'}` : `--${name}`;
}

export function usageLine(name: string, command: Command): string {
  const options = Object.entries(command.options).map(([n, spec]) => `[${flag(n, spec)}]`);
  return ['baton', name, command.args, ...options].filter(Boolean).join(' ');
}

export function helpText(name: string, command: Command): string {
  const rows = Object.entries(command.options).map(([n, spec]) => [flag(n, spec), spec.help] as const);
  const width = Math.max(0, ...rows.map(([f]) => f.length));
  const options = rows.length ? `\n\noptions:\n${rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`).join('\n')}` : '';
  return `usage: ${usageLine(name, command)}\n\n${command.summary}${options}`;
}
