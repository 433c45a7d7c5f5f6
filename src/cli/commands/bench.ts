import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../errors.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** bench/run.ts's own flags (bench/lib/args.ts checks their values); named here so a mistake is a usage error. */
const benchFlags = {
  quick: { type: 'boolean', help: 'small sizes (about a minute)' },
  scenarios: { type: 'string', value: 'S1,S3', help: 'which scenarios, S0 to S7 (default: all)' },
  systems: { type: 'string', value: 'baton,raw', help: "which systems (default: each scenario's own list)" },
  size: { type: 'string', value: 'name=N,...', help: 'override sizes (s1Jobs=50000; the names are in bench/lib/args.ts)' },
  sizes: { type: 'string', value: 'name=N,...', help: 'the same as --size' },
  concurrency: { type: 'string', value: 'N', help: 'slots per worker process (default 24)' },
  profile: { type: 'boolean', help: "write CPU profiles of Baton's worker processes to bench/results/profiles/" },
  'pg-stats': { type: 'boolean', help: 'server time per unit by statement, from pg_stat_statements' },
  repeat: { type: 'string', value: 'N', help: "run each scenario N times: medians, and the median of each run's ratio" },
  locale: { type: 'string', value: 'NAME', help: 'create each database in this collation locale (en_US.UTF-8: as most production servers)' },
  'no-save': { type: 'boolean', help: 'do not write bench/results/*.json' },
  json: { type: 'boolean', help: 'print the results (bench/results/latest.json) on stdout; the tables go to stderr' },
} as const;

export const benchCommand: Command = {
  args: '',
  options: benchFlags,
  summary: 'run the benchmarks against graphile-worker, pg-boss and the raw-SQL ceiling (same as npm run bench)',
  async run(args, output) {
    const { values } = parse(args, benchFlags, { names: [], min: 0 });
    if (values.json && values['no-save']) throw new UsageError('--json prints the saved results (bench/results/latest.json): it does not go with --no-save');
    const passed = args.filter((a) => a !== '--json');
    // With --json the tables go to stderr, and stdout is the results file alone.
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'run.ts'), ...passed], {
        stdio: ['inherit', values.json ? process.stderr : 'inherit', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (c) => resolve(c ?? 1));
    });
    if (code === 0 && values.json) output.out(await readFile(path.join(ROOT, 'bench', 'results', 'latest.json'), 'utf8'));
    return code;
  },
};
