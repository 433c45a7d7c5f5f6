/**
 * The definitions a worker can run, by hash: its workflows, their child workflows, and one-task
 * workflows for standalone tasks. Several versions of one workflow may be given (a rolling
 * deploy keeps the old one until its instances finish); two different shapes under one name
 * and version may not, since a start by name could not tell them apart.
 */
import { ValidationError } from '../errors.ts';
import { isWorkflow, taskWorkflow, withDescendants, type Workflow } from '../workflow/builder.ts';
import { isSchedule, type Schedule } from '../workflow/schedule.ts';
import { isTask, type Task } from '../workflow/task.ts';

export function buildRegistry(workflows: readonly Workflow[] = [], tasks: readonly Task[] = []): Map<string, Workflow> {
  for (const w of workflows) if (!isWorkflow(w)) throw new ValidationError('workflows: every entry must be a built workflow (call .build())');
  for (const t of tasks) if (!isTask(t)) throw new ValidationError('tasks: every entry must be a task from defineTask()');
  const all = withDescendants([...workflows, ...tasks.map((t) => taskWorkflow(t))]);
  const byHash = new Map<string, Workflow>();
  const byName = new Map<string, Workflow>();
  for (const w of all) {
    const key = `${w.kind}:${w.name}:${w.version}`;
    const other = byName.get(key);
    if (other && other.hash !== w.hash) {
      if (w.kind === 'task') throw new ValidationError(`two different tasks are named "${w.name}"`);
      throw new ValidationError(
        `two different workflows are named "${w.name}" with version ${w.version}: give the newer shape a higher version ` +
          `(defineWorkflow('${w.name}', { version: ${w.version + 1} })) and keep the old one until its instances finish`,
      );
    }
    byName.set(key, w);
    byHash.set(w.hash, w);
  }
  if (byHash.size === 0) throw new ValidationError('a worker needs at least one workflow or task to run');
  return byHash;
}

/** The schedules a worker fires: each a defineSchedule() result, names unique (the same one twice counts once). */
export function checkSchedules(schedules: readonly Schedule[] = []): Schedule[] {
  if (!Array.isArray(schedules)) throw new ValidationError('schedules must be an array of defineSchedule() results');
  const byName = new Map<string, Schedule>();
  for (const s of schedules) {
    if (!isSchedule(s)) throw new ValidationError('schedules: every entry must be a schedule from defineSchedule()');
    const other = byName.get(s.name);
    if (other && other !== s) throw new ValidationError(`two different schedules are named "${s.name}"`);
    byName.set(s.name, s);
  }
  return [...byName.values()];
}
