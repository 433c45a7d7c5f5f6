/** Starting workers for tests: in this process, or as real child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { BatonConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startWorker, type Worker, type WorkerOptions } from '../../src/index.ts';
import type { Logger } from '../../src/types.ts';
import { ROOT } from './server.ts';
import { all } from './workflows.ts';

/** Short leases and ticks so that recovery happens within a test's patience. */
export const FAST: Partial<BatonConfig> = {
  claimTtlMs: 1_500,
  reconcileIntervalMs: 200,
  pollIntervalMs: 250,
  shutdownGraceMs: 3_000,
  completionBatchMs: 2,
};

/** A logger that keeps warnings for assertions and prints only with BATON_TEST_LOG=1. */
export function testLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const base = createLogger({
    level: process.env.BATON_TEST_LOG ? 'debug' : 'warn',
    pretty: false,
    write: (line) => {
      lines.push(line);
      if (process.env.BATON_TEST_LOG) process.stderr.write(`${line}\n`);
    },
  });
  return Object.assign(base, { lines });
}

export async function inProcessWorker(url: string, options: Partial<WorkerOptions> = {}): Promise<Worker & { logLines: string[] }> {
  const logger = testLogger();
  const worker = await startWorker({
    ...all,
    connectionString: url,
    logger,
    ...options,
    config: { ...FAST, ...options.config },
  });
  return Object.assign(worker, { logLines: logger.lines });
}

export interface ChildWorker {
  proc: ChildProcess;
  id: string;
  output: string[];
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function childWorker(url: string, env: Record<string, string> = {}): Promise<ChildWorker> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/support/worker-process.ts')], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: url,
        BATON_CLAIM_TTL_MS: String(FAST.claimTtlMs),
        BATON_RECONCILE_INTERVAL_MS: String(FAST.reconcileIntervalMs),
        BATON_POLL_INTERVAL_MS: String(FAST.pollIntervalMs),
        BATON_SHUTDOWN_GRACE_MS: String(FAST.shutdownGraceMs),
        BATON_LOG_LEVEL: process.env.BATON_TEST_LOG ? 'debug' : 'error',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    let err = '';
    proc.stderr!.on('data', (c) => {
      err += c;
      if (process.env.BATON_TEST_LOG) process.stderr.write(c);
    });
    let buf = '';
    proc.stdout!.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        output.push(line);
        if (line.startsWith('ready ')) {
          resolve({
            proc,
            id: line.slice(6),
            output,
            exited,
            async stop(signal: NodeJS.Signals = 'SIGTERM') {
              if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
              return exited;
            },
          });
        }
      }
    });
    proc.on('exit', (code) => {
      if (!output.some((l) => l.startsWith('ready '))) reject(new Error(`worker process exited ${code} before it was ready: ${err}`));
    });
  });
}
