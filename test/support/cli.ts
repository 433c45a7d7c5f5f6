/** Run the real `baton` command in a child process. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './server.ts';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return runNode([path.join(ROOT, 'bin', 'baton.js'), ...args], options);
}

/**
 * Run the real `baton` command in a pseudo-terminal (util-linux `script`), as a
 * person at a terminal would: stdout and stderr are both the terminal, merged
 * into `stdout` here (with the terminal's `\r\n` line ends).
 */
export function runCliInTerminal(args: string[], options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<CliResult> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, path.join(ROOT, 'bin', 'baton.js'), ...args].map(quote).join(' ');
  return runProcess('script', ['-q', '-e', '-c', command, '/dev/null'], options);
}

export function runNode(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return runProcess(process.execPath, args, options);
}

function runProcess(file: string, args: string[], options: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number; input?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, ...options.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawn(file, args, { cwd: options.cwd ?? ROOT, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
