import { loadConfig, parseTags } from '../../config.ts';
import { createLogger } from '../../log.ts';
import { intOption, parse } from '../args.ts';
import type { Command } from '../command.ts';

const options = {
  concurrency: { type: 'string', value: 'N', help: 'task slots in this process, 1 to 1000 (default: BATON_CONCURRENCY, 10)' },
  prefetch: { type: 'string', value: 'N', help: 'tasks claimed ahead of free slots, 0 to 10000 (default: BATON_PREFETCH, adaptive; 0: none)' },
  tags: { type: 'string', value: 'a,b', help: 'tags this worker offers: it runs tasks whose tags it has all of (default: BATON_TAGS)' },
  dir: { type: 'string', value: 'DIR', help: 'the directory of worker modules to load (default: BATON_WORKERS_DIR, workers)' },
  json: { type: 'boolean', help: 'log as JSON lines on stderr, also on a terminal' },
} as const;

export const workerCommand: Command = {
  args: '',
  options,
  summary: 'run a worker: loads every module under workers/ (embedded PostgreSQL when DATABASE_URL is unset)',
  async run(args) {
    const { values } = parse(
      args,
      options,
      { names: [], min: 0 },
    );
    // Every flag is checked before anything is loaded: a mistake is reported at once, not after importing the workers.
    const concurrency = intOption(values.concurrency, 'concurrency', 1, 1000);
    const prefetch = intOption(values.prefetch, 'prefetch', 0, 10000);
    const tags = values.tags === undefined ? undefined : parseTags(values.tags, '--tags');
    const config = loadConfig();
    // --json: the log as JSON lines on stderr even on a terminal (as it is in a pipe).
    const log = createLogger({ level: config.logLevel, ...(values.json ? { pretty: false } : {}) });
    const dir = values.dir ?? config.workersDir;
    // Loaded here, not at start-up: `baton --help` must not pay for the workflow builder.
    const { loadWorkersDir } = await import('../../worker/loader.ts');
    const { workflows, tasks, schedules, files } = await loadWorkersDir(dir);
    const names = { workflows: workflows.map((w) => w.name), tasks: tasks.map((t) => t.name), schedules: schedules.map((s) => s.name) };
    log.info({ files: files.length, ...names }, `loaded ${dir}`);
    // Loaded here, not at the top: the worker stack (graphile-worker among it) is the
    // heaviest part of Baton, and every other command starts faster without it.
    const { startWorker } = await import('../../start-worker.ts');
    const worker = await startWorker({
      workflows,
      tasks,
      schedules,
      logger: log,
      handleSignals: true,
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(prefetch !== undefined ? { prefetch } : {}),
      ...(tags !== undefined ? { tags } : {}),
    });
    await worker.closed;
    return 0;
  },
};
