/**
 * `baton worker` loads every module under the workers directory and runs what
 * they export: built workflows, tasks (which become enqueue-able jobs), and
 * schedules (which it fires).
 */
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../errors.ts';
import { isWorkflow, type Workflow } from '../workflow/builder.ts';
import { isSchedule, type Schedule } from '../workflow/schedule.ts';
import { isTask, type Task } from '../workflow/task.ts';

const MODULE = /\.(ts|mts|js|mjs)$/;

async function files(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ValidationError(`workers directory ${dir} does not exist (set BATON_WORKERS_DIR)`);
    throw error;
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.')) out.push(...(await files(full)));
    else if (e.isFile() && MODULE.test(e.name) && !/\.(d|test|spec)\.[mc]?[jt]s$/.test(e.name)) out.push(full);
  }
  return out;
}

const TYPESCRIPT = /\.[mc]?ts$/;

/**
 * Lets `import()` load TypeScript: registers the app's own tsx (resolved from the
 * working directory, not from Baton's install). Without tsx, one line says
 * what to do.
 */
async function enableTypeScript(file: string): Promise<void> {
  let api: string;
  try {
    // The ESM entry of tsx/esm/api, as `import` would resolve it from the app
    // (require.resolve would give the CommonJS one).
    const manifest = createRequire(path.join(process.cwd(), 'package.json')).resolve('tsx/package.json');
    const entry = (JSON.parse(await readFile(manifest, 'utf8')) as { exports: Record<string, { import: string | { default: string } }> })
      .exports['./esm/api']!.import;
    api = path.join(path.dirname(manifest), typeof entry === 'string' ? entry : entry.default);
  } catch {
    throw new ValidationError(
      `${path.relative(process.cwd(), file)} is TypeScript: install tsx in your app (npm install --save-dev tsx) or compile your workers to .js`,
    );
  }
  const { register } = (await import(pathToFileURL(api).href)) as { register: () => unknown };
  register();
}

/**
 * True when `import()` can load TypeScript here (under tsx, or a Node that strips
 * types). Probed with an empty module of our own, because Node remembers a failed
 * import of a file: the user's module must be imported once, after the loader is set.
 */
async function canImportTypeScript(): Promise<boolean> {
  const probe = path.join(tmpdir(), `baton-ts-probe-${process.pid}-${Date.now()}.mts`);
  await writeFile(probe, 'export const probe: number = 1;\n');
  try {
    await import(pathToFileURL(probe).href);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_UNKNOWN_FILE_EXTENSION') return false;
    throw error;
  } finally {
    await rm(probe, { force: true });
  }
}

export async function loadWorkersDir(dir: string): Promise<{ workflows: Workflow[]; tasks: Task[]; schedules: Schedule[]; files: string[] }> {
  const list = await files(path.resolve(dir));
  const typescript = list.find((file) => TYPESCRIPT.test(file));
  if (typescript && !(await canImportTypeScript())) await enableTypeScript(typescript);
  const workflows = new Set<Workflow>();
  const tasks = new Set<Task>();
  const schedules = new Set<Schedule>();
  for (const file of list) {
    let mod: Record<string, unknown>;
    try {
      mod = await import(pathToFileURL(file).href);
    } catch (error) {
      if (error instanceof ValidationError) throw error;
      throw new ValidationError(`could not load ${path.relative(process.cwd(), file)}: ${(error as Error).message}`);
    }
    for (const value of Object.values(mod)) {
      if (isWorkflow(value)) workflows.add(value);
      else if (isTask(value)) tasks.add(value);
      else if (isSchedule(value)) schedules.add(value);
    }
  }
  if (workflows.size === 0 && tasks.size === 0 && schedules.size === 0) {
    throw new ValidationError(`no workflows, tasks or schedules are exported from the modules in ${dir}`);
  }
  return { workflows: [...workflows], tasks: [...tasks], schedules: [...schedules], files: list };
}
