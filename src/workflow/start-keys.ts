/**
 * The limit key of a start: what `p_limit_key` of baton.start_workflow carries. A start gives one
 * key to all its first steps whose limits count per key (and to the first steps of the child
 * workflows it starts at once), computed from the instance's input by each such task's key function.
 * Steps scheduled later get theirs from the worker that schedules them (src/worker/plan.ts).
 */
import { ValidationError } from '../errors.ts';
import type { Workflow } from './builder.ts';
import type { Node } from './graph.ts';
import { limitKeyOf } from './limits.ts';
import type { Task } from './task.ts';

/** firstKeyedTasks per definition: a definition does not change, and starts (enqueueMany: each input) ask again and again. */
const keyedByWorkflow = new WeakMap<Workflow, readonly Task[]>();

function keyedFirstTasks(workflow: Workflow): readonly Task[] {
  let tasks = keyedByWorkflow.get(workflow);
  if (!tasks) keyedByWorkflow.set(workflow, (tasks = firstKeyedTasks(workflow, [])));
  return tasks;
}

/** The tasks a start schedules at once whose limits count per key (as the state machine's start walks the graph). */
function firstKeyedTasks(workflow: Workflow, into: Task[]): Task[] {
  const visit = (node: Node): void => {
    switch (node.kind) {
      case 'task':
        if (node.task.options.limits?.key) into.push(node.task);
        return;
      case 'seq':
        if (node.steps[0]) visit(node.steps[0]);
        return;
      case 'parallel':
        return node.branches.forEach(visit);
      case 'loop':
        return visit(node.body);
      case 'child': {
        const child = workflow.children.find((c) => c.hash === node.workflow.hash);
        if (child) firstKeyedTasks(child, into);
        return;
      }
      default:
        // A branch at start is decided by a worker (a `branch` step), which keys what it schedules.
        return;
    }
  };
  visit(workflow.root);
  return into;
}

/** Whether a start of `workflow` needs a limit key at all (most do not: nothing to compute per input). */
export function hasKeyedFirstSteps(workflow: Workflow): boolean {
  return keyedFirstTasks(workflow).length > 0;
}

/**
 * The key for a start of `workflow` with `input`, or null when none of its first steps counts per
 * key. Several such steps must agree on the key (a ValidationError otherwise, as for a key function
 * that throws or returns no string).
 */
export function startLimitKey(workflow: Workflow, input: unknown, what: string): string | null {
  let key: string | null = null;
  for (const task of keyedFirstTasks(workflow)) {
    const k = limitKeyOf(task.options.limits, input, `${what}, task "${task.name}"`);
    if (key !== null && k !== key) {
      throw new ValidationError(`${what}: its first steps' limit keys differ ("${key}", "${k}"); a start carries one limit key`);
    }
    key = k;
  }
  return key;
}
