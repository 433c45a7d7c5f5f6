export { defineTask, isTask, type Task, type TaskContext, type TaskHandler, type TaskOptions } from './task.ts';
export { defineWorkflow, isWorkflow, taskWorkflow, withDescendants, Flow, type Workflow, type LoopOptions, type EventOptions } from './builder.ts';
export { step, startPlan, initialState, type MachineEvent, type MachineState, type ScheduledStep, type Snapshot, type Transition, type StartPlan } from './machine.ts';
export { decideRetry, backoffDelay, isRetryable, DEFAULT_RETRY, type RetryPolicy, type RetryDecision } from './retry.ts';
export { parseDuration } from './duration.ts';
export { nodeAt, joinKey, parentKey, type Node, type Shape } from './graph.ts';
export { normalizeTags, validateId, validateName, validatePriority, MAX_ID_LENGTH } from './names.ts';
export { definitionRecord } from './definition.ts';
export { diff, applyPatch } from './patch.ts';
