/** The definitions a worker can run, by hash: its workflows, their child workflows, and one-task workflows for standalone tasks. */
import { ValidationError } from '../errors.ts';
import { isWorkflow, taskWorkflow, withDescendants, type Workflow } from '../workflow/builder.ts';
import { isTask, type Task } from '../workflow/task.ts';

export function buildRegistry(workflows: readonly Workflow[] = [], tasks: readonly Task[] = []): Map<string, Workflow> {
  for (const w of workflows) if (!isWorkflow(w)) throw new ValidationError('workflows: every entry must be a built workflow (call .build())');
  for (const t of tasks) if (!isTask(t)) throw new ValidationError('tasks: every entry must be a task from defineTask()');
  const all = withDescendants([...workflows, ...tasks.map((t) => taskWorkflow(t))]);
  const byHash = new Map<string, Workflow>();
  const byName = new Map<string, Workflow>();
  for (const w of all) {
    const key = `${w.kind}:${w.name}`;
    const other = byName.get(key);
    if (other && other.hash !== w.hash) {
      throw new ValidationError(`two different ${w.kind === 'task' ? 'tasks' : 'workflows'} are named "${w.name}"`);
    }
    byName.set(key, w);
    byHash.set(w.hash, w);
  }
  if (byHash.size === 0) throw new ValidationError('a worker needs at least one workflow or task to run');
  return byHash;
}
