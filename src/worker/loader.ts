/**
 * `baton worker` loads every module under the workers directory and runs what
 * they export: built workflows, and tasks (which become enqueue-able jobs).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../errors.ts';
import { isWorkflow, type Workflow } from '../workflow/builder.ts';
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

export async function loadWorkersDir(dir: string): Promise<{ workflows: Workflow[]; tasks: Task[]; files: string[] }> {
  const list = await files(path.resolve(dir));
  const workflows = new Set<Workflow>();
  const tasks = new Set<Task>();
  for (const file of list) {
    let mod: Record<string, unknown>;
    try {
      mod = await import(pathToFileURL(file).href);
    } catch (error) {
      throw new ValidationError(`could not load ${path.relative(process.cwd(), file)}: ${(error as Error).message}`);
    }
    for (const value of Object.values(mod)) {
      if (isWorkflow(value)) workflows.add(value);
      else if (isTask(value)) tasks.add(value);
    }
  }
  if (workflows.size === 0 && tasks.size === 0) {
    throw new ValidationError(`no workflows or tasks are exported from the modules in ${dir}`);
  }
  return { workflows: [...workflows], tasks: [...tasks], files: list };
}
