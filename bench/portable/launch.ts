/**
 * Plays the harness's side of the adapter protocol: start adapter.ts as a
 * child process with the harness's environment, collect its JSON lines,
 * write `ENQUEUE <n>` tokens to its stdin as the harness's pacer does (credit
 * on real elapsed time, at most PRODUCER_BATCH_MAX per token), and stop it
 * as the harness does (close stdin, SIGTERM). Used by sweep.ts and by
 * test/portable.test.ts.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: tsx finds tsconfig.json there, whose paths map `baton` to src/index.ts. */
const ROOT = path.resolve(HERE, '../..');

export interface AdapterLine {
  kind: string;
  instance_id?: number;
  t?: string;
  metric?: string;
  value?: unknown;
  window_s?: number;
  [key: string]: unknown;
}

export interface AdapterProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every stdout line, parsed (a line that is not JSON fails `check()`). */
  readonly lines: AdapterLine[];
  /** Lines of stdout that did not parse. */
  readonly garbage: string[];
  stderr(): string;
  /** Resolves with the first line that matches, or rejects after `timeoutMs` or when the process ends first. */
  waitFor(match: (line: AdapterLine) => boolean, timeoutMs: number): Promise<AdapterLine>;
  /** Write to stdin; resolves once the data has gone into the pipe (the reader took what did not fit). */
  write(text: string): Promise<void>;
  /** Close stdin and send SIGTERM; resolves with the exit code and how long the exit took. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** SIGKILL, as the harness's kill-worker phase does. */
  kill(): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function launchAdapter(env: Record<string, string>): AdapterProcess {
  const base = { ...process.env };
  // Only what the harness sets: no DATABASE_URL or pacing settings leak in from the caller's shell.
  for (const key of Object.keys(base)) if (/^(DATABASE_URL|PRODUCER_|BENCH_|TARGET_DEPTH|WORKER_COUNT|JOB_|SAMPLE_EVERY_S|SCENARIO)/.test(key)) delete base[key];
  const child = spawn(process.execPath, ['--max-semi-space-size=4', '--import', 'tsx', path.join(HERE, 'adapter.ts')], {
    cwd: ROOT,
    env: { ...base, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: AdapterLine[] = [];
  const garbage: string[] = [];
  let err = '';
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const raw of parts) {
      if (!raw.trim()) continue;
      try {
        lines.push(JSON.parse(raw) as AdapterLine);
      } catch {
        garbage.push(raw);
      }
    }
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  // Writes after the adapter exited fail with EPIPE: that is the caller's business (write() rejects), not a crash.
  child.stdin.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  const ended = () => child.exitCode !== null || child.signalCode !== null;

  return {
    child,
    lines,
    garbage,
    exited,
    stderr: () => err,
    waitFor(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (found) finish(() => resolve(found));
          else if (ended()) finish(() => reject(new Error(`the adapter exited (${child.exitCode ?? child.signalCode}) first:\n${err}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no matching line within ${timeoutMs} ms:\n${err}`))), timeoutMs);
        const finish = (then: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      });
    },
    write(text) {
      return new Promise((resolve, reject) => child.stdin.write(text, (e) => (e ? reject(e) : resolve())));
    },
    async stop() {
      const t0 = performance.now();
      child.stdin.end();
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      return { code, signal, ms: performance.now() - t0 };
    },
    async kill() {
      child.kill('SIGKILL');
      child.stdin.destroy();
      await exited;
    },
  };
}

/** The harness's pacer: `ENQUEUE <n>` every `periodMs`, crediting `rate` x real elapsed time. Counts what it sent. */
export function paceTokens(adapter: AdapterProcess, o: { rate: number; batchMax: number; periodMs: number }): { sent(): number; stop(): void } {
  let credit = 0;
  let sent = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    credit += (o.rate * (now - last)) / 1000;
    last = now;
    let out = '';
    while (credit >= 1) {
      const n = Math.min(Math.floor(credit), o.batchMax);
      out += `ENQUEUE ${n}\n`;
      credit -= n;
      sent += n;
    }
    if (out) adapter.write(out).catch(() => undefined);
  }, o.periodMs);
  return { sent: () => sent, stop: () => clearInterval(timer) };
}

/** The sample records of one tick, by metric. */
export function ticks(lines: AdapterLine[]): Map<string, Map<string, AdapterLine>> {
  const out = new Map<string, Map<string, AdapterLine>>();
  for (const line of lines) {
    if (line.kind !== 'adapter' || typeof line.t !== 'string') continue;
    const tick = out.get(line.t) ?? new Map<string, AdapterLine>();
    tick.set(String(line.metric), line);
    out.set(line.t, tick);
  }
  return out;
}

/** The totals the adapter prints on stderr when it stops gracefully. */
export function totals(stderr: string): { enqueued: number; completed: number } | undefined {
  const m = /stopped: enqueued (\d+), completed (\d+)/.exec(stderr);
  return m ? { enqueued: Number(m[1]), completed: Number(m[2]) } : undefined;
}
