/**
 * The workflow graph (what the builder produces) and its addressing.
 *
 * Every step that runs gets an *activation key*: the path from the root,
 * segments joined by "/":
 *
 *   seq step i        -> "i"            e.g. "2"
 *   parallel branch b -> "b<b>"         e.g. "1/b0", "1/b0/0" when the branch is a sub-flow
 *   branch case c     -> "c:<c>"        "c:*" for `otherwise`
 *   loop iteration n  -> "i<n>"         e.g. "3/i2/0"
 *
 * A task row's key is the activation key of its leaf step, so the key alone
 * says where in the graph (and in which loop iteration) it belongs. A
 * compensation's key is "!" and its step's key ("!1/b0"); a cancel's request
 * to compensate is "!" alone (see compensate.ts).
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors.ts';
import type { DefinitionKind } from '../types.ts';
import type { Task } from './task.ts';

export type Node = TaskNode | SeqNode | ParallelNode | BranchNode | LoopNode | SleepNode | EventNode | ChildNode;

export interface TaskNode {
  kind: 'task';
  task: Task;
  /** The task that undoes this one when a later step fails for good (see compensate.ts). */
  compensate?: Task;
}
export interface SeqNode {
  kind: 'seq';
  steps: Node[];
}
export interface ParallelNode {
  kind: 'parallel';
  branches: Node[];
  /** An any-of or quorum join (see join.ts); absent for the default, which waits for every branch. */
  join?: JoinRule;
}

/**
 * A parallel step's join other than 'all': it fires once `need` branches have completed
 * (1 for 'any'); `rest` says what happens to the branches still out when it fires.
 */
export interface JoinRule {
  /** 'any' hands the next step one winner; 'quorum' a list of `need` winners. */
  policy: 'any' | 'quorum';
  need: number;
  rest: 'cancel' | 'finish';
}
export interface BranchNode {
  kind: 'branch';
  /** Method syntax on purpose: a user's typed callback is stored here, and is called with that type's input. */
  select(input: unknown): string;
  cases: Record<string, Node>;
  otherwise?: Node;
}
export interface LoopNode {
  kind: 'loop';
  body: Node;
  /** Method syntax, as `select`. */
  until?(output: unknown, iteration: number): boolean;
  max: number;
  onMax: 'fail' | 'exit';
}
export interface SleepNode {
  kind: 'sleep';
  ms: number;
}
export interface EventNode {
  kind: 'event';
  name: string;
  timeoutMs: number | null;
  onTimeout: 'fail' | 'continue';
  /**
   * A keyed wait (src/workflow/keyed-events.ts): the key, from the instance's input. Code, so the
   * definition hash covers only that there is one (`keyed` in the shape). Method syntax, as `select`.
   */
  key?(input: unknown): unknown;
}
export interface ChildNode {
  kind: 'child';
  workflow: WorkflowRef;
}

/** What a graph needs to know of a workflow used as a child step. */
export interface WorkflowRef {
  readonly name: string;
  readonly hash: string;
}

/** A JSON description of the graph: stored in `definitions`, hashed, shown by tools. */
export type Shape =
  | { t: 'task'; name: string; priority: number; tags: string[]; maxAttempts: number; timeoutMs: number | null; compensate?: string }
  | { t: 'seq'; steps: Shape[] }
  | { t: 'parallel'; branches: Shape[]; join?: 'any' | { quorum: number }; rest?: 'cancel' | 'finish' }
  | { t: 'branch'; cases: Record<string, Shape>; otherwise?: Shape }
  | { t: 'loop'; body: Shape; max: number; onMax: 'fail' | 'exit'; until: boolean }
  | { t: 'sleep'; ms: number }
  | { t: 'event'; name: string; timeoutMs: number | null; onTimeout: 'fail' | 'continue'; keyed?: true }
  | { t: 'child'; workflow: string; hash: string };

export const OTHERWISE = '*';

export function joinKey(parent: string, segment: string): string {
  return parent === '' ? segment : `${parent}/${segment}`;
}

export function parentKey(key: string): { parent: string; segment: string } {
  const at = key.lastIndexOf('/');
  return at < 0 ? { parent: '', segment: key } : { parent: key.slice(0, at), segment: key.slice(at + 1) };
}

export class UnknownStepError extends ValidationError {
  constructor(key: string, why: string) {
    super(`step "${key}" does not exist in this definition (${why})`);
  }
}

/** The node an activation key points at. */
export function nodeAt(root: Node, key: string): Node {
  if (key === '') return root;
  let node = root;
  for (const segment of key.split('/')) {
    switch (node.kind) {
      case 'seq': {
        const next = /^\d+$/.test(segment) ? node.steps[Number(segment)] : undefined;
        if (!next) throw new UnknownStepError(key, `no step ${segment}`);
        node = next;
        break;
      }
      case 'parallel': {
        const next = /^b\d+$/.test(segment) ? node.branches[Number(segment.slice(1))] : undefined;
        if (!next) throw new UnknownStepError(key, `no branch ${segment}`);
        node = next;
        break;
      }
      case 'branch': {
        const name = segment.startsWith('c:') ? segment.slice(2) : undefined;
        const next = name === OTHERWISE ? node.otherwise : name !== undefined && Object.hasOwn(node.cases, name) ? node.cases[name] : undefined;
        if (!next) throw new UnknownStepError(key, `no case ${segment}`);
        node = next;
        break;
      }
      case 'loop':
        if (!/^i\d+$/.test(segment)) throw new UnknownStepError(key, `no iteration ${segment}`);
        node = node.body;
        break;
      default:
        throw new UnknownStepError(key, `a ${node.kind} step has no inner steps`);
    }
  }
  return node;
}

export function shapeOf(node: Node): Shape {
  switch (node.kind) {
    case 'task':
      return {
        t: 'task',
        name: node.task.name,
        priority: node.task.options.priority,
        tags: node.task.options.tags,
        maxAttempts: node.task.options.retry.maxAttempts,
        timeoutMs: node.task.options.timeoutMs,
        ...(node.compensate ? { compensate: node.compensate.name } : {}),
      };
    case 'seq':
      return { t: 'seq', steps: node.steps.map(shapeOf) };
    case 'parallel':
      return { t: 'parallel', branches: node.branches.map(shapeOf), ...(node.join ? joinShape(node.join) : {}) };
    case 'branch': {
      const cases = Object.fromEntries(Object.entries(node.cases).map(([k, v]) => [k, shapeOf(v)]));
      return node.otherwise ? { t: 'branch', cases, otherwise: shapeOf(node.otherwise) } : { t: 'branch', cases };
    }
    case 'loop':
      return { t: 'loop', body: shapeOf(node.body), max: node.max, onMax: node.onMax, until: node.until !== undefined };
    case 'sleep':
      return { t: 'sleep', ms: node.ms };
    case 'event':
      return { t: 'event', name: node.name, timeoutMs: node.timeoutMs, onTimeout: node.onTimeout, ...(node.key ? { keyed: true as const } : {}) };
    case 'child':
      return { t: 'child', workflow: node.workflow.name, hash: node.workflow.hash };
  }
}

function joinShape(rule: JoinRule): { join: 'any' | { quorum: number }; rest: 'cancel' | 'finish' } {
  return { join: rule.policy === 'any' ? 'any' : { quorum: rule.need }, rest: rule.rest };
}

/** The shape without per-task options: what the definition hash covers. */
function structural(shape: Shape): unknown {
  switch (shape.t) {
    case 'task':
      // A compensation is part of the shape: it decides what runs after a failure.
      return shape.compensate === undefined ? { t: 'task', name: shape.name } : { t: 'task', name: shape.name, compensate: shape.compensate };
    case 'seq':
      return { t: 'seq', steps: shape.steps.map(structural) };
    case 'parallel':
      // The join rule is part of the hash (it changes what the state holds); a plain parallel's hash is as it was.
      return { t: 'parallel', branches: shape.branches.map(structural), ...(shape.join ? { join: shape.join, rest: shape.rest } : {}) };
    case 'branch':
      return {
        t: 'branch',
        cases: Object.fromEntries(Object.keys(shape.cases).sort().map((k) => [k, structural(shape.cases[k]!)])),
        otherwise: shape.otherwise ? structural(shape.otherwise) : null,
      };
    case 'loop':
      return { t: 'loop', body: structural(shape.body), max: shape.max, onMax: shape.onMax, until: shape.until };
    default:
      return shape;
  }
}

/**
 * A hash of the graph's shape: task names (and their compensations) and step kinds, branch cases, loop
 * limits, sleeps, event names, child workflows (by their hash), and the
 * workflow's version when it is not 1. Handler code, task options (retries,
 * priority, tags, timeouts) and input checks are not part of it, so changing
 * those does not strand instances that are already running. Version 1 leaves
 * the hash as it was before versions existed.
 */
export function definitionHash(kind: DefinitionKind, name: string, root: Node, version = 1): string {
  const text = JSON.stringify({ v: 1, kind, name, root: structural(shapeOf(root)), ...(version === 1 ? {} : { version }) });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** How many steps a run goes through, counting each loop body once and the largest branch case. */
export function estimateSteps(node: Node): number {
  switch (node.kind) {
    case 'seq':
      return node.steps.reduce((n, s) => n + estimateSteps(s), 0);
    case 'parallel':
      return node.branches.reduce((n, s) => n + estimateSteps(s), 0);
    case 'branch':
      return 1 + Math.max(0, ...Object.values(node.cases).map(estimateSteps), node.otherwise ? estimateSteps(node.otherwise) : 0);
    case 'loop':
      return estimateSteps(node.body);
    default:
      return 1;
  }
}

/** Every task used in a graph, by name; two different tasks with one name are refused. */
export function collectTasks(node: Node, into = new Map<string, Task>(), owner = 'workflow'): Map<string, Task> {
  const add = (task: Task) => {
    const existing = into.get(task.name);
    if (existing && existing !== task) {
      throw new ValidationError(`${owner} uses two different tasks named "${task.name}"`);
    }
    into.set(task.name, task);
  };
  const visit = (n: Node) => {
    switch (n.kind) {
      case 'task':
        add(n.task);
        if (n.compensate) add(n.compensate);
        return;
      case 'seq':
        return n.steps.forEach(visit);
      case 'parallel':
        return n.branches.forEach(visit);
      case 'branch':
        Object.values(n.cases).forEach(visit);
        if (n.otherwise) visit(n.otherwise);
        return;
      case 'loop':
        return visit(n.body);
      default:
        return;
    }
  };
  visit(node);
  return into;
}
