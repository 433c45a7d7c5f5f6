import { loadConfig, parseTags } from '../../config.ts';
import { createLogger } from '../../log.ts';
import { loadWorkersDir } from '../../worker/loader.ts';
import { intOption, parse } from '../args.ts';
import type { Command } from '../command.ts';

export const workerCommand: Command = {
  usage: 'worker [--concurrency N] [--prefetch N] [--tags a,b] [--dir workers] [--json]',
  summary: 'run a worker: loads every module under workers/ (embedded PostgreSQL when DATABASE_URL is unset)',
  async run(args) {
    const { values } = parse(
      args,
      { concurrency: { type: 'string' }, tags: { type: 'string' }, dir: { type: 'string' }, prefetch: { type: 'string' }, json: { type: 'boolean' } },
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
    const { workflows, tasks, files } = await loadWorkersDir(dir);
    log.info({ files: files.length, workflows: workflows.map((w) => w.name), tasks: tasks.map((t) => t.name) }, `loaded ${dir}`);
    // Loaded here, not at the top: the worker stack (graphile-worker among it) is the
    // heaviest part of Baton, and every other command starts faster without it.
    const { startWorker } = await import('../../start-worker.ts');
    const worker = await startWorker({
      workflows,
      tasks,
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
