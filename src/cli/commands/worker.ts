import { loadConfig, parseTags } from '../../config.ts';
import { createLogger } from '../../log.ts';
import { loadWorkersDir } from '../../worker/loader.ts';
import { intOption, parse } from '../args.ts';
import type { Command } from '../command.ts';

export const workerCommand: Command = {
  usage: 'worker [--concurrency N] [--tags a,b] [--dir workers]',
  summary: 'run a worker: loads every module under workers/ (embedded PostgreSQL when DATABASE_URL is unset)',
  async run(args) {
    const { values } = parse(
      args,
      { concurrency: { type: 'string' }, tags: { type: 'string' }, dir: { type: 'string' }, prefetch: { type: 'string' } },
      { min: 0, max: 0 },
    );
    const config = loadConfig();
    const log = createLogger({ level: config.logLevel });
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
      ...(values.concurrency !== undefined ? { concurrency: intOption(values.concurrency, 'concurrency', 1, 1000) } : {}),
      ...(values.prefetch !== undefined ? { prefetch: intOption(values.prefetch, 'prefetch', 0, 10000) } : {}),
      ...(values.tags !== undefined ? { tags: parseTags(values.tags, '--tags') } : {}),
    });
    await worker.closed;
    return 0;
  },
};
