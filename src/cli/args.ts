/** Thin wrapper over node:util parseArgs that turns its errors into UsageError (exit 2), in Baton's words. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, ValidationError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The positional arguments: their names for messages (`<id>`), and how many are required. */
export interface Positionals {
  names: string[];
  min: number;
}

/**
 * `--limit -5` is a negative number given to --limit, not an option called -5:
 * written `--limit=-5` for parseArgs, so the option's own check can say what it accepts.
 */
function joinNegativeNumbers(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return [...out, ...args.slice(i)];
    const option = arg.startsWith('--') && !arg.includes('=') ? options[arg.slice(2)] : undefined;
    const next = args[i + 1];
    if (option?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

function flagList(options: Options): string {
  const names = Object.keys(options).map((n) => `--${n}`);
  return names.length ? `its options: ${names.join(', ')}` : 'it takes no options';
}

/** parseArgs' message ("Option '--limit <value>' argument missing", ...) said for a person. */
function usageMessage(error: Error & { code?: string }, options: Options): string {
  const flag = /'(-[^' ]+)/.exec(error.message)?.[1] ?? '';
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${flag} (${flagList(options)})`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(error.message)) return `${flag} takes no value`;
      if (/ambiguous/.test(error.message)) return `${flag} needs a value (for a value that starts with "-", write ${flag}=VALUE)`;
      return `${flag} needs a value`;
    default:
      return error.message.split('\n')[0]!.replace(/'/g, '');
  }
}

export function parse<T extends Options>(
  args: string[],
  options: T,
  positionals: Positionals,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>> {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(args, options), options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(usageMessage(error as Error, options));
  }
  const given = parsed.positionals.length;
  if (given < positionals.min) throw new UsageError(`missing ${positionals.names.slice(given, positionals.min).map((n) => `<${n}>`).join(' ')}`);
  if (given > positionals.names.length) throw new UsageError(`unexpected argument "${parsed.positionals[positionals.names.length]}"`);
  return parsed;
}

/** JSON given on the command line; a mistake is the user's, reported on one line. */
export function parseJsonArg(text: string | undefined, what: string): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

export function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ValidationError(`--${name} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return Number(value);
}
