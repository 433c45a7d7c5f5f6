/**
 * defineWorkflow: a typed, immutable builder. Each step's input type is the
 * previous step's output type; `build()` checks the graph and computes its hash.
 *
 *   const order = defineWorkflow('order')
 *     .then(charge)                       // input: charge's input type
 *     .parallel([ship, notify])           // output: [shipOut, notifyOut]
 *     .then(finalize)
 *     .sleep('1h')
 *     .waitForEvent<{ at: string }>('delivered', { timeoutMs: '7d' })
 *     .build();
 */
import { ValidationError } from '../errors.ts';
import type { DefinitionKind } from '../types.ts';
import { parseDuration } from './duration.ts';
import {
  collectTasks,
  definitionHash,
  estimateSteps,
  OTHERWISE,
  shapeOf,
  type JoinRule,
  type Node,
  type SeqNode,
  type Shape,
} from './graph.ts';
import { validateCaseName, validateEventName, validateName } from './names.ts';
import { isTask, type InputParser, type Task } from './task.ts';

export interface Workflow<I = any, O = any> {
  readonly type: 'workflow';
  /** `task` for the one-step workflow behind `client.enqueue(task)`. */
  readonly kind: DefinitionKind;
  readonly name: string;
  /**
   * defineWorkflow's `version` (1 unless given). Versions of one name may run side by side: a worker
   * that exports several runs instances of each, and a start by name uses the highest registered.
   */
  readonly version: number;
  readonly hash: string;
  /** @internal The graph the engine runs; `shape` describes it. */
  readonly root: SeqNode;
  readonly shape: Shape;
  readonly estimatedSteps: number;
  /** Every task the graph runs, by name. */
  readonly tasks: ReadonlyMap<string, Task>;
  /** Workflows started as child steps (directly). */
  readonly children: readonly Workflow[];
  /** The input's check (defineWorkflow's `input`, or the task's for a one-task workflow), if any (typed as Task's). */
  readonly parseInput?: InputParser<unknown>;
  /** Type-only. */
  readonly __types?: { in: (input: I) => void; out: O };
}

export function isWorkflow(value: unknown): value is Workflow {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'workflow';
}

/** Steps written inline: given a flow that starts with the input, returns it with steps added. */
export type SubFlow<I, O> = (flow: Flow<I, I>) => Flow<I, O>;
/** A parallel branch, a branch case or a loop body: a task, a workflow, or a sub-flow. */
export type BranchArg<I> = Task<I, any> | Workflow<I, any> | SubFlow<I, any>;
/** The output type of a BranchArg. */
export type OutOf<S> =
  S extends Task<any, infer O> ? O : S extends Workflow<any, infer O> ? O : S extends (flow: any) => Flow<any, infer O> ? O : never;

/** How a parallel step joins: every branch (the default), the first to complete, or the first k. */
export type JoinOption = 'all' | 'any' | { quorum: number };

export interface ParallelOptions<J extends JoinOption = JoinOption> {
  join?: J;
  /** With 'any' or a quorum: what becomes of the branches still out when the join fires (default 'cancel'). */
  rest?: 'cancel' | 'finish';
}

/** One winning branch of an any-of or quorum join: its index, and its output (typed by the index). */
export type Winner<B extends readonly unknown[]> = {
  [K in keyof B]: K extends `${infer N extends number}` ? { branch: N; output: OutOf<B[K]> } : never;
}[number];

/** What the step after a parallel step receives, by its join option. */
export type JoinOutput<B extends readonly unknown[], J> = J extends 'any'
  ? Winner<B>
  : J extends { quorum: number }
    ? Winner<B>[]
    : { -readonly [K in keyof B]: OutOf<B[K]> };

function joinRule(options: ParallelOptions | undefined, branches: number): JoinRule | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new ValidationError('parallel() options must be an object');
  const { join = 'all', rest } = options;
  if (rest !== undefined && rest !== 'cancel' && rest !== 'finish') {
    throw new ValidationError(`parallel() rest must be "cancel" or "finish" (got ${JSON.stringify(rest)})`);
  }
  if (join === 'all') {
    if (rest !== undefined) throw new ValidationError('parallel() rest applies to join "any" or a quorum: join "all" leaves no branch out');
    return undefined;
  }
  if (join === 'any') return { policy: 'any', need: 1, rest: rest ?? 'cancel' };
  const quorum = typeof join === 'object' && join !== null ? (join as { quorum?: unknown }).quorum : undefined;
  if (typeof quorum !== 'number' || !Number.isInteger(quorum) || quorum < 1 || quorum > branches) {
    throw new ValidationError(
      `parallel() join must be "all", "any" or { quorum: k } with k a whole number from 1 to the ${branches} branches (got ${JSON.stringify(join)})`,
    );
  }
  return { policy: 'quorum', need: quorum, rest: rest ?? 'cancel' };
}

export interface LoopOptions<O> {
  /** Checked after each iteration with its output and the number of iterations done; true ends the loop. */
  until?: (output: O, iteration: number) => boolean;
  /** Most iterations. Without `until`, the body runs exactly this many times. */
  max: number;
  /** When `max` is reached and `until` never said stop: fail the workflow (default) or go on with the last output. */
  onMax?: 'fail' | 'exit';
}

/** What a compensation gets: the step's input and output. */
export interface CompensationInput<I, O> {
  input: I;
  output: O;
}

export interface ThenOptions<I, O> {
  /** The task that undoes this step; it runs with `{ input, output }` of the step, under its own retry policy. */
  compensate?: Task<CompensationInput<I, O>, unknown>;
}

function checkCompensation(compensate: unknown, step: string): void {
  if (!isTask(compensate)) throw new ValidationError(`then(): compensate of task "${step}" must be a task (defineTask)`);
  const limits = compensate.options.limits;
  if (limits && (limits.key !== null)) {
    // Its step is scheduled before its input (the step's input and output) is read from the database.
    throw new ValidationError(`then(): compensation task "${compensate.name}" has a keyed concurrency or rate limit, which a compensation cannot have`);
  }
}

export interface EventOptions<I = any> {
  timeoutMs?: number | string;
  /** On timeout: fail the workflow (default), or continue with `null`. */
  onTimeout?: 'fail' | 'continue';
  /**
   * Wait for an event published by name and this key (client.publish(name, key, payload)), not one
   * sent to this instance: the key is computed from the instance's input when the wait begins, and
   * must be a string of 1-255 characters without control characters (src/workflow/keyed-events.ts).
   */
  key?: (input: I) => string;
}

export class Flow<I, O> {
  /** @internal */
  readonly nodes: readonly Node[];
  /** @internal */
  readonly childWorkflows: readonly Workflow[];
  /** @internal */
  readonly workflowName: string | undefined;
  /** @internal */
  readonly inputParser: InputParser<unknown> | undefined;
  /** @internal */
  readonly version: number;

  /** @internal */
  constructor(
    name: string | undefined,
    nodes: readonly Node[] = [],
    children: readonly Workflow[] = [],
    inputParser?: InputParser<unknown>,
    version = 1,
  ) {
    this.workflowName = name;
    this.nodes = nodes;
    this.childWorkflows = children;
    this.inputParser = inputParser;
    this.version = version;
  }

  private add<N>(node: Node, children: readonly Workflow[] = []): Flow<I, N> {
    return new Flow<I, N>(this.workflowName, [...this.nodes, node], [...this.childWorkflows, ...children], this.inputParser, this.version);
  }

  private toNode(step: BranchArg<any>, where: string): { node: Node; children: Workflow[] } {
    if (isTask(step)) return { node: { kind: 'task', task: step }, children: [] };
    if (isWorkflow(step)) return { node: { kind: 'child', workflow: { name: step.name, hash: step.hash } }, children: [step] };
    if (typeof step === 'function') {
      const sub = step(new Flow<any, any>(undefined));
      if (!(sub instanceof Flow)) throw new ValidationError(`${where}: a sub-flow callback must return the flow it was given, extended`);
      // A one-step sub-flow is that step (shorter keys, same behaviour).
      const node: Node = sub.nodes.length === 1 ? sub.nodes[0]! : { kind: 'seq', steps: [...sub.nodes] };
      return { node, children: [...sub.childWorkflows] };
    }
    throw new ValidationError(`${where}: expected a task, a workflow or a sub-flow callback`);
  }

  /**
   * Run a task (or a workflow, as a child) with the previous output as input. `compensate` (tasks
   * only) registers the task's undo: when a later step fails for good, or a cancel asks for it, it
   * runs with `{ input, output }` of this step (see src/workflow/compensate.ts).
   */
  then<TI, N>(this: Flow<unknown, unknown>, step: Task<TI, N>, options: ThenOptions<TI, N>): Flow<TI, N>;
  then<N>(step: Task<O, N>, options: ThenOptions<O, N>): Flow<I, N>;
  then<TI, N>(this: Flow<unknown, unknown>, step: Task<TI, N> | Workflow<TI, N>): Flow<TI, N>;
  then<N>(step: Task<O, N> | Workflow<O, N>): Flow<I, N>;
  then(step: Task | Workflow, options?: ThenOptions<any, any>): Flow<any, any> {
    if (!isTask(step) && !isWorkflow(step)) throw new ValidationError('then() takes a task or a workflow');
    const { node, children } = this.toNode(step, 'then()');
    if (options === undefined) return this.add(node, children);
    if (options === null || typeof options !== 'object') throw new ValidationError('then() options must be an object');
    const compensate = options.compensate;
    if (compensate === undefined) return this.add(node, children);
    if (node.kind !== 'task') throw new ValidationError('then(): compensate is for task steps; a child workflow compensates its own steps');
    checkCompensation(compensate, node.task.name);
    return this.add({ ...node, compensate }, children);
  }

  /**
   * Fork: every branch gets the same input and is claimed independently. The join waits for all
   * branches by default and hands the next step all outputs, in branch order. `join: 'any'` fires
   * at the first branch to complete and hands it `{ branch, output }`; `join: { quorum: k }` fires
   * at the k-th and hands a list of k of those, in the order the branches completed. `rest` says
   * what becomes of the branches still out then: 'cancel' (the default) aborts them, 'finish' lets
   * them run to the end (the instance completes after them). See join.ts.
   */
  parallel<const B extends readonly BranchArg<O>[], const J extends JoinOption = 'all'>(
    branches: B,
    options?: ParallelOptions<J>,
  ): Flow<I, JoinOutput<B, J>> {
    if (!Array.isArray(branches) || branches.length === 0) throw new ValidationError('parallel() needs at least one branch');
    const join = joinRule(options, branches.length);
    const converted = branches.map((b, i) => this.toNode(b as BranchArg<any>, `parallel() branch ${i}`));
    return this.add(
      { kind: 'parallel', branches: converted.map((c) => c.node), ...(join ? { join } : {}) },
      converted.flatMap((c) => c.children),
    );
  }

  /** Route on a value: `select` names the case to run; `otherwise` runs when no case has that name. */
  branch<C extends Record<string, BranchArg<O>>, D extends BranchArg<O> | undefined = undefined>(
    select: (input: O) => string,
    cases: C,
    otherwise?: D,
  ): Flow<I, OutOf<C[keyof C]> | (D extends undefined ? never : OutOf<D>)> {
    if (typeof select !== 'function') throw new ValidationError('branch() needs a select function');
    const names = Object.keys(cases ?? {});
    if (names.length === 0) throw new ValidationError('branch() needs at least one case');
    const converted: Record<string, Node> = {};
    const children: Workflow[] = [];
    for (const name of names) {
      validateCaseName(name);
      const c = this.toNode(cases[name] as BranchArg<any>, `branch() case "${name}"`);
      converted[name] = c.node;
      children.push(...c.children);
    }
    let otherwiseNode: Node | undefined;
    if (otherwise !== undefined) {
      const c = this.toNode(otherwise as BranchArg<any>, 'branch() otherwise');
      otherwiseNode = c.node;
      children.push(...c.children);
    }
    return this.add({ kind: 'branch', select, cases: converted, ...(otherwiseNode ? { otherwise: otherwiseNode } : {}) }, children);
  }

  /**
   * Repeat a sub-flow; each iteration's output is the next one's input. The body
   * may return more than it takes (`B`, assignable to `O`): `until` and the steps
   * after the loop see the body's output type.
   */
  loop<B extends O>(body: SubFlow<O, B>, options: LoopOptions<B>): Flow<I, B> {
    if (!options || !Number.isInteger(options.max) || options.max < 1) {
      throw new ValidationError(`loop() needs max: a whole number of iterations >= 1 (got ${options?.max})`);
    }
    const onMax = options.onMax ?? 'fail';
    if (onMax !== 'fail' && onMax !== 'exit') throw new ValidationError(`loop() onMax must be "fail" or "exit" (got ${JSON.stringify(onMax)})`);
    if (options.until !== undefined && typeof options.until !== 'function') throw new ValidationError('loop() until must be a function');
    const { node, children } = this.toNode(body as BranchArg<any>, 'loop() body');
    return this.add({ kind: 'loop', body: node, max: options.max, onMax, ...(options.until ? { until: options.until } : {}) }, children);
  }

  /** Durable sleep: survives restarts; the output is the input, unchanged. */
  sleep(duration: number | string): Flow<I, O> {
    return this.add({ kind: 'sleep', ms: parseDuration(duration, 'sleep() duration') });
  }

  /**
   * Wait for an event sent to this instance by name (buffered FIFO); the output is the event's payload.
   * With `key`: an event published by name and key instead (keyed events).
   */
  waitForEvent<E = unknown>(name: string, options: EventOptions<I> & { onTimeout: 'continue' }): Flow<I, E | null>;
  waitForEvent<E = unknown>(name: string, options?: EventOptions<I>): Flow<I, E>;
  waitForEvent(name: string, options: EventOptions<I> = {}): Flow<I, any> {
    validateEventName(name);
    const timeoutMs = options.timeoutMs === undefined ? null : parseDuration(options.timeoutMs, 'waitForEvent() timeoutMs');
    const onTimeout = options.onTimeout ?? 'fail';
    if (onTimeout !== 'fail' && onTimeout !== 'continue') {
      throw new ValidationError(`waitForEvent() onTimeout must be "fail" or "continue" (got ${JSON.stringify(onTimeout)})`);
    }
    if (options.key !== undefined && typeof options.key !== 'function') {
      throw new ValidationError('waitForEvent() key must be a function of the workflow input that returns a string');
    }
    const key = options.key as ((input: unknown) => unknown) | undefined;
    return this.add({ kind: 'event', name, timeoutMs, onTimeout, ...(key ? { key } : {}) });
  }

  /** Start another workflow as a child with this input; its output is the child's output. */
  child<N>(workflow: Workflow<O, N>): Flow<I, N> {
    if (!isWorkflow(workflow)) throw new ValidationError('child() takes a built workflow');
    const { node, children } = this.toNode(workflow, 'child()');
    return this.add(node, children);
  }

  /** Check the graph and freeze it into a definition. */
  build(): Workflow<I, O> {
    if (this.workflowName === undefined) throw new ValidationError('build() is for workflows; a sub-flow is returned from its callback');
    return buildWorkflow<I, O>('workflow', this.workflowName, { kind: 'seq', steps: [...this.nodes] }, this.childWorkflows, this.inputParser, this.version);
  }
}

function check(node: Node, where: string): void {
  switch (node.kind) {
    case 'seq':
      node.steps.forEach((s, i) => check(s, `${where} step ${i}`));
      return;
    case 'parallel':
      node.branches.forEach((b, i) => {
        if (b.kind === 'seq' && b.steps.length === 0) throw new ValidationError(`${where}: parallel branch ${i} has no steps`);
        check(b, `${where} branch ${i}`);
      });
      return;
    case 'branch':
      for (const [name, c] of Object.entries(node.cases)) check(c, `${where} case "${name}"`);
      if (node.otherwise) check(node.otherwise, `${where} otherwise`);
      if (Object.hasOwn(node.cases, OTHERWISE)) throw new ValidationError(`${where}: "${OTHERWISE}" is not a case name`);
      return;
    case 'loop':
      if (node.body.kind === 'seq' && node.body.steps.length === 0) throw new ValidationError(`${where}: loop body has no steps`);
      check(node.body, `${where} loop body`);
      return;
    default:
      return;
  }
}

export function buildWorkflow<I, O>(
  kind: DefinitionKind,
  name: string,
  root: SeqNode,
  children: readonly Workflow[],
  parseInput?: InputParser<unknown>,
  version = 1,
): Workflow<I, O> {
  validateName('workflow', name);
  if (root.steps.length === 0) throw new ValidationError(`workflow "${name}" has no steps`);
  check(root, `workflow "${name}"`);
  const tasks = collectTasks(root, new Map(), `workflow "${name}"`);
  return Object.freeze({
    type: 'workflow' as const,
    kind,
    name,
    version,
    hash: definitionHash(kind, name, root, version),
    root,
    shape: shapeOf(root),
    estimatedSteps: estimateSteps(root),
    tasks,
    children: [...new Set(children)],
    ...(parseInput ? { parseInput } : {}),
  });
}

/** Start building a workflow. Annotate the input type, or let the first `then()` infer it. */
export function defineWorkflow<I = unknown>(name: string, options: WorkflowOptions<I> = {}): Flow<I, I> {
  validateName('workflow', name);
  if (options === null || typeof options !== 'object') throw new ValidationError(`workflow "${name}": options must be an object`);
  if (options.input !== undefined && typeof options.input !== 'function') {
    throw new ValidationError(`workflow "${name}": input must be a function that checks the input and returns it (for example a zod schema's parse)`);
  }
  const version = options.version ?? 1;
  if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
    throw new ValidationError(`workflow "${name}": version must be a whole number from 1 to ${MAX_VERSION} (got ${JSON.stringify(version)})`);
  }
  return new Flow<I, I>(name, [], [], options.input as InputParser<unknown> | undefined, version);
}

const MAX_VERSION = 1_000_000;

export interface WorkflowOptions<I> {
  /**
   * The input's check: the client runs it in `start` and `startMany` before anything is
   * written (a bad input is a ValidationError) and stores what it returns. Starts from SQL
   * are not checked here; a first task with its own `input` check is, by the worker.
   */
  input?: InputParser<I>;
  /**
   * Which version of the workflow this is (default 1). Give a changed shape a higher version and
   * keep exporting the old one until its instances have finished: a worker that exports both runs
   * instances of each under the shape they started with, and a start by name uses the highest.
   * A version other than 1 is part of the definition's hash.
   */
  version?: number;
}

/** The one-task workflow behind `client.enqueue(task)` and `baton enqueue`. */
export function taskWorkflow<I, O>(task: Task<I, O>): Workflow<I, O> {
  return buildWorkflow<I, O>('task', task.name, { kind: 'seq', steps: [{ kind: 'task', task }] }, [], task.parseInput);
}

/** A workflow and every workflow it starts as a child, each once. */
export function withDescendants(workflows: readonly Workflow[]): Workflow[] {
  const seen = new Map<string, Workflow>();
  const visit = (w: Workflow) => {
    const key = `${w.kind}:${w.name}:${w.hash}`;
    if (seen.has(key)) return;
    seen.set(key, w);
    w.children.forEach(visit);
  };
  workflows.forEach(visit);
  return [...seen.values()];
}
