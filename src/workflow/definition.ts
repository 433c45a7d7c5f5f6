/** A built workflow as the `definitions` table keeps it: its shape for people, its start plan for SQL callers. */
import type { DefinitionKind } from '../types.ts';
import type { Workflow } from './builder.ts';
import { startPlan } from './machine.ts';

export interface DefinitionRecord {
  name: string;
  hash: string;
  kind: DefinitionKind;
  version: number;
  graph: unknown;
  plan: unknown;
}

export function definitionRecord(workflow: Workflow): DefinitionRecord {
  return {
    name: workflow.name,
    hash: workflow.hash,
    kind: workflow.kind,
    version: workflow.version,
    graph: { root: workflow.shape, estimatedSteps: workflow.estimatedSteps },
    plan: startPlan(workflow),
  };
}
