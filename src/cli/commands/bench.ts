import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const benchCommand: Command = {
  usage: 'bench [--quick] [--scenarios S1,S3] [--systems baton,graphile-batched]',
  summary: 'run the benchmarks against graphile-worker, pg-boss and the raw-SQL ceiling (same as npm run bench)',
  run(args) {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'run.ts'), ...args], { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code ?? 1));
    });
  },
};
