/**
 * A small structured logger (pino-compatible surface; pass a pino instance as
 * `logger` to use pino instead). JSON lines when stderr is not a terminal,
 * short readable lines when it is. Values under keys that look like secrets
 * are never written, at any depth (to 5 levels), nor the password of a URL
 * in any string.
 */
import type { Logger } from './types.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET = /pass(word)?|secret|token|authorization|database_?url|connectionstring/i;

/** The password of a URL's user info (`postgres://user:secret@host`). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]*@/gi;

/** A string with the passwords of the URLs in it replaced (a connection string inside an error message). */
function cleanText(text: string): string {
  return text.includes('://') ? text.replace(URL_PASSWORD, '$1[redacted]@') : text;
}

function clean(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return cleanText(value);
  if (value instanceof Error) {
    const stack = value.stack === undefined ? undefined : cleanText(value.stack);
    return { name: value.name, message: cleanText(value.message), code: (value as { code?: unknown }).code, stack };
  }
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => clean(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET.test(k) ? '[redacted]' : clean(v, depth + 1);
  return out;
}

export interface LoggerOptions {
  level?: LogLevel;
  pretty?: boolean;
  write?: (line: string) => void;
}

let guarded = false;

/**
 * A reader of stdout or stderr that went away (`baton worker 2>&1 | tee log`:
 * Ctrl-C ends tee too) makes writes fail with EPIPE (EIO for a terminal that
 * closed); unhandled, that error crashes the process before its graceful stop
 * (claims kept until they expire, the embedded server left to others). Once a
 * stream broke, what is written to it is dropped. For processes that own their
 * stdio: the CLI, a worker that handles signals.
 */
export function guardStdio(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'EIO' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
      stream.write = ((...args: unknown[]) => {
        const done = args.find((a) => typeof a === 'function') as (() => void) | undefined;
        if (done) process.nextTick(done);
        return true;
      }) as typeof stream.write;
    });
  }
}

function writeStderr(line: string): void {
  process.stderr.write(`${line}\n`);
}

type Level = Exclude<LogLevel, 'silent'>;
interface Sink {
  threshold: number;
  pretty: boolean;
  write: (line: string) => void;
}

/**
 * A logger's bound fields, cleaned once when the child is made: as JSON members (`,"k":v`, or '')
 * for JSON lines, as an object for readable ones. A line then serializes only its own fields, so a
 * child made per task costs one JSON.stringify of its few bindings (measured in the README's
 * Logging section against pino).
 */
interface Bound {
  json: string;
  fields: Record<string, unknown>;
}

function members(fields: Record<string, unknown>): string {
  const json = JSON.stringify(fields);
  return json.length > 2 ? `,${json.slice(1, -1)}` : '';
}

function emit(sink: Sink, bound: Bound, level: Level, obj: object | string, msg?: string): void {
  if (ORDER[level] < sink.threshold) return;
  const fields = typeof obj === 'string' ? null : (clean(obj) as Record<string, unknown>);
  const message = cleanText(typeof obj === 'string' ? obj : (msg ?? ''));
  if (sink.pretty) {
    const extras = Object.entries({ ...bound.fields, ...fields })
      .filter(([k]) => k !== 'err' && k !== 'error')
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    const err = (fields?.err ?? fields?.error) as { message?: string } | string | undefined;
    const errText = typeof err === 'string' ? err : err?.message;
    const time = new Date().toISOString().slice(11, 23);
    sink.write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${extras ? `  ${extras}` : ''}${errText ? `  error=${errText}` : ''}`);
  } else {
    // A field repeated from the bindings comes later in the line, so JSON.parse keeps the line's own value.
    sink.write(`{"time":"${new Date().toISOString()}","level":"${level}","msg":${JSON.stringify(message)}${bound.json}${fields ? members(fields) : ''}}`);
  }
}

/** A class, so that a child (one per task that logs) is one object: its methods live on the prototype. */
class JsonLogger implements Logger {
  constructor(
    private readonly sink: Sink,
    private readonly bound: Bound,
  ) {}

  debug(o: object | string, m?: string): void {
    emit(this.sink, this.bound, 'debug', o, m);
  }

  info(o: object | string, m?: string): void {
    emit(this.sink, this.bound, 'info', o, m);
  }

  warn(o: object | string, m?: string): void {
    emit(this.sink, this.bound, 'warn', o, m);
  }

  error(o: object | string, m?: string): void {
    emit(this.sink, this.bound, 'error', o, m);
  }

  child(more: Record<string, unknown>): Logger {
    const added = clean(more) as Record<string, unknown>;
    const { json, fields } = this.bound;
    return new JsonLogger(this.sink, { json: json + members(added), fields: this.sink.pretty ? { ...fields, ...added } : fields });
  }
}

export function createLogger(options: LoggerOptions = {}, bindings: Record<string, unknown> = {}): Logger {
  const sink: Sink = {
    threshold: ORDER[options.level ?? 'info'],
    pretty: options.pretty ?? Boolean(process.stderr.isTTY),
    write: options.write ?? writeStderr,
  };
  const fields = clean(bindings) as Record<string, unknown>;
  return new JsonLogger(sink, { json: members(fields), fields });
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
