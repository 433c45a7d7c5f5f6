/** A built workflow as the `definitions` table keeps it: its shape for people, its start plan for SQL callers. */
import type { DefinitionKind } from '../types.ts';
import type { Workflow } from './builder.ts';
import { limitsRecord, type TaskLimitsRecord } from './limits.ts';
import { startPlan } from './machine.ts';

export interface DefinitionRecord {
  name: string;
  hash: string;
  kind: DefinitionKind;
  version: number;
  graph: unknown;
  plan: unknown;
  /** The limits of each task it runs (none: nulls), for baton.task_limits. */
  limits: TaskLimitsRecord[];
}

export function definitionRecord(workflow: Workflow): DefinitionRecord {
  return {
    name: workflow.name,
    hash: workflow.hash,
    kind: workflow.kind,
    version: workflow.version,
    graph: { root: workflow.shape, estimatedSteps: workflow.estimatedSteps },
    plan: startPlan(workflow),
    limits: [...workflow.tasks.values()].map((t) => limitsRecord(t.name, t.options.limits)),
  };
}
