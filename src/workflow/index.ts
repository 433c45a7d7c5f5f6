export { defineTask } from './task.ts';
export { defineWorkflow, taskWorkflow, type Workflow } from './builder.ts';
export { step, startPlan, initialState, type MachineEvent, type Snapshot, type Transition } from './machine.ts';
export { decideRetry, backoffDelay } from './retry.ts';
export { definitionRecord } from './definition.ts';
