/**
 * The pure workflow state machine:
 *
 *     step(definition, { status, state }, event) -> { status, state, schedule, output | error }
 *
 * No I/O and no clock: durations are returned as delays for the caller to add
 * to its own notion of now. The caller (the worker's commit, inside one
 * transaction with the instance row locked) persists the new state, inserts
 * the scheduled steps as task rows and appends a history row.
 *
 * State is small on purpose. Sequences, branches and loops need none: a
 * finished step's key says which step comes next (seq "…/3" -> "…/4", loop
 * iteration "…/i2" -> "…/i3", case "…/c:x" -> the branch is done). Only a
 * running parallel step keeps a frame: how many branches are still out and the
 * outputs of those that finished. Because every completion of an instance is
 * applied under its row lock, the last branch to finish sees `left === 1` and
 * schedules the join exactly once. Any-of and quorum joins (join.ts) keep a
 * little more in their frame, and may cancel the branches still out.
 *
 *   event       running/paused                     finished
 *   start       schedule the first steps           -
 *   completed   advance from that step             ignored
 *   failed      instance fails                     ignored
 *   branch      choose the case, schedule it       ignored
 *   timedOut    waitForEvent gave up: fail, or     ignored
 *               continue with null (onTimeout)
 *
 * A failure of an instance with completed steps that have compensations does
 * not fail it: it compensates (compensate.ts, which also takes every event
 * while compensating and those of compensation steps, keys "!...").
 *
 * Cancel, pause and resume are not events here: the database applies them
 * under the instance's row lock (baton.cancel_workflow, pause_workflow,
 * resume_workflow), and the machine sees their result as the snapshot's
 * status. While it is paused, scheduled steps come back `held`: they exist
 * but are not run until resume.
 */
import { serializeError, type SerializedError } from '../errors.ts';
import { FINISHED_STATUSES, type StepKind, type WorkflowStatus } from '../types.ts';
import type { Workflow } from './builder.ts';
import { beginCompensation, compensationEvent, compensationOf, isCompensationKey, recordCompleted, type SagaState } from './compensate.ts';
import type { Task } from './task.ts';
import { joinKey, nodeAt, OTHERWISE, parentKey, type BranchNode, type Node } from './graph.ts';
import { branchCompleted, deferEnd, openFrame, settled, stepFailed, type JoinRun, type JoinState, type ParallelFrame } from './join.ts';

export interface MachineState extends JoinState {
  /** Open parallel steps, by activation key. */
  par: Record<string, ParallelFrame>;
  /** Steps completed so far (task rows that reached `completed`). */
  done: number;
  /** Completed steps with a compensation: key -> `done` at their completion (compensate.ts). Absent until one completes. */
  comp?: Record<string, number>;
  /** Present while compensating (compensate.ts). */
  sag?: SagaState;
}

export interface Snapshot {
  status: WorkflowStatus;
  state: MachineState;
}

export type MachineEvent =
  | { type: 'start'; input: unknown }
  | { type: 'completed'; key: string; output: unknown }
  | { type: 'failed'; key: string; error: SerializedError }
  | { type: 'branch'; key: string; input: unknown }
  | { type: 'timedOut'; key: string };

export interface ScheduledStep {
  key: string;
  kind: StepKind;
  /** Task name, event name, child workflow name, or the step kind. */
  name: string;
  input: unknown;
  /** The task's own default priority; an instance priority overrides it. */
  priority: number;
  tags: string[];
  maxAttempts: number;
  /** sleep: run this long after scheduling. */
  delayMs: number | null;
  /** event: give up this long after scheduling. */
  timeoutMs: number | null;
  child: { name: string; hash: string } | null;
  /** Created while the instance is paused: runs after resume. */
  held: boolean;
  /** Only on a task with concurrency or rate limits: whether they count per key (the key is computed outside, from the input). */
  limit?: { keyed: boolean };
  /** Only on a keyed waitForEvent step (its worker computes the key from the instance's input). */
  keyed?: true;
  /** A compensation: the key of the step it undoes (its input is that step's input and output). */
  compensates?: string;
}

export interface Transition {
  status: WorkflowStatus;
  state: MachineState;
  schedule: ScheduledStep[];
  /** Set when this event finished the instance as completed. */
  output?: unknown;
  /** Set when this event failed the instance. */
  error?: SerializedError;
  /** Why the event changed nothing (already finished, duplicate, ...). */
  ignored?: string;
  /** The error a timed-out step failed with, when a join counted it as a failed branch (the instance goes on). */
  stepError?: SerializedError;
  /** Steps (activation keys, with all under them) whose open work is cancelled: branches a join left out, or a failed branch's rest. */
  cancel?: string[];
  /** Parallel steps whose join fired. */
  joined?: string[];
  /** Compensation began: the open forward work (tasks, child instances) is to be closed. */
  halt?: true;
}

export interface StepOptions {
  /** Plan mode (the SQL API's start): a branch met at start becomes a `branch` step for a worker to decide. */
  deferBranches?: boolean;
}

export function initialState(): MachineState {
  return { par: {}, done: 0 };
}

const SYSTEM_STEP_ATTEMPTS = 1_000;

/**
 * A copy of the state that a step may change without touching the snapshot: the parallel frames
 * (their counters and outputs) are what it changes, so those are copied; anything else is kept
 * as it is. structuredClone of the whole state made the machine's step 4% of a worker's busy CPU
 * in an S1-like drain (CPU profile); with this copy it is 1.5%.
 */
function copyState(state: MachineState): MachineState {
  const par: Record<string, ParallelFrame> = {};
  for (const [key, frame] of Object.entries(state.par)) {
    par[key] = frame.ok ? { ...frame, out: { ...frame.out }, ok: [...frame.ok], bad: [...frame.bad!] } : { ...frame, out: { ...frame.out } };
  }
  return { ...state, par };
}

const FINISHED: ReadonlySet<WorkflowStatus> = new Set(FINISHED_STATUSES);

class Run implements JoinRun {
  status: WorkflowStatus;
  readonly state: MachineState;
  readonly schedule: ScheduledStep[] = [];
  readonly cancel: string[] = [];
  readonly joined: string[] = [];
  output?: unknown;
  error?: SerializedError;
  stepError?: SerializedError;
  halt = false;

  constructor(
    readonly def: Workflow,
    snapshot: Snapshot,
    readonly options: StepOptions,
  ) {
    this.status = snapshot.status;
    this.state = copyState(snapshot.state);
  }

  get root(): Node {
    return this.def.root;
  }

  get finished(): boolean {
    return FINISHED.has(this.status);
  }

  private push(key: string, kind: StepKind, name: string, input: unknown, extra: Partial<ScheduledStep> = {}): void {
    this.schedule.push({
      key,
      kind,
      name,
      input,
      priority: 0,
      tags: [],
      // The worker's own steps (sleep, event, child, branch) are idempotent and their failures are
      // final anyway; only lost leases (a crashed worker) can end them, and those have their own limit.
      maxAttempts: SYSTEM_STEP_ATTEMPTS,
      delayMs: null,
      timeoutMs: null,
      child: null,
      held: this.status === 'paused',
      ...extra,
    });
  }

  fail(error: SerializedError): void {
    if (this.finished) return;
    if (this.state.comp && beginCompensation(this, error)) return;
    this.status = 'failed';
    this.error = error;
  }

  start(node: Node, key: string, input: unknown): void {
    if (this.finished) return;
    switch (node.kind) {
      case 'task': {
        const { options, name } = node.task;
        this.push(key, 'task', name, input, {
          priority: options.priority,
          tags: options.tags,
          maxAttempts: options.retry.maxAttempts,
          timeoutMs: options.timeoutMs,
          ...(options.limits ? { limit: { keyed: options.limits.key !== null } } : {}),
        });
        return;
      }
      case 'seq':
        if (node.steps.length === 0) this.finish(key, input);
        else this.start(node.steps[0]!, joinKey(key, '0'), input);
        return;
      case 'parallel':
        this.state.par[key] = openFrame(node);
        node.branches.forEach((branch, i) => this.start(branch, joinKey(key, `b${i}`), input));
        return;
      case 'branch':
        if (this.options.deferBranches) this.push(key, 'branch', 'branch', input);
        else this.choose(node, key, input);
        return;
      case 'loop':
        this.start(node.body, joinKey(key, 'i0'), input);
        return;
      case 'sleep':
        this.push(key, 'sleep', 'sleep', input, { delayMs: node.ms });
        return;
      case 'event':
        this.push(key, 'event', node.name, input, { timeoutMs: node.timeoutMs, ...(node.key ? { keyed: true as const } : {}) });
        return;
      case 'child':
        this.push(key, 'child', node.workflow.name, input, { child: { name: node.workflow.name, hash: node.workflow.hash } });
        return;
    }
  }

  scheduleCompensation(key: string, task: Task, step: string): void {
    const { options, name } = task;
    this.push(key, 'task', name, null, {
      priority: options.priority,
      tags: options.tags,
      maxAttempts: options.retry.maxAttempts,
      timeoutMs: options.timeoutMs,
      compensates: step,
      ...(options.limits ? { limit: { keyed: false } } : {}),
    });
  }

  choose(node: BranchNode, key: string, input: unknown): void {
    let name: unknown;
    try {
      name = node.select(input);
    } catch (error) {
      const e = serializeError(error);
      this.fail({ ...e, message: `branch at step "${key}" could not choose a case: ${e.message}`, step: key });
      return;
    }
    if (typeof name === 'string' && Object.hasOwn(node.cases, name)) {
      this.start(node.cases[name]!, joinKey(key, `c:${name}`), input);
    } else if (node.otherwise) {
      this.start(node.otherwise, joinKey(key, `c:${OTHERWISE}`), input);
    } else {
      this.fail({
        name: 'BranchError',
        message: `branch at step "${key}" chose ${JSON.stringify(name)}, which is not one of its cases (${Object.keys(node.cases).join(', ')}) and it has no otherwise`,
        step: key,
        retryable: false,
      });
    }
  }

  /** The step at `key` finished with `output`: advance its parent. */
  finish(key: string, output: unknown): void {
    if (this.finished) return;
    if (key === '') {
      if (deferEnd(this.state, output)) return; // rest 'finish': the instance completes after its stragglers
      this.status = 'completed';
      this.output = output;
      return;
    }
    const { parent, segment } = parentKey(key);
    const node = nodeAt(this.def.root, parent);
    switch (node.kind) {
      case 'seq': {
        const next = Number(segment) + 1;
        if (next < node.steps.length) this.start(node.steps[next]!, joinKey(parent, String(next)), output);
        else this.finish(parent, output);
        return;
      }
      case 'parallel': {
        const frame = this.state.par[parent];
        const branch = segment.slice(1);
        if (!frame) return;
        if (node.join) return branchCompleted(this, node, parent, Number(branch), output);
        if (Object.hasOwn(frame.out, branch)) return; // a duplicate completion changes nothing
        frame.out[branch] = JSON.stringify(output ?? null);
        frame.left -= 1;
        if (frame.left > 0) return;
        this.joined.push(parent);
        delete this.state.par[parent];
        this.finish(
          parent,
          node.branches.map((_, i) => JSON.parse(frame.out[String(i)]!)),
        );
        return;
      }
      case 'branch':
        this.finish(parent, output);
        return;
      case 'loop': {
        const iterations = Number(segment.slice(1)) + 1;
        let stop = false;
        if (node.until) {
          try {
            stop = node.until(output, iterations) === true;
          } catch (error) {
            const e = serializeError(error);
            this.fail({ ...e, message: `loop at step "${parent}" could not evaluate its condition: ${e.message}`, step: parent });
            return;
          }
        }
        if (stop) this.finish(parent, output);
        else if (iterations < node.max) this.start(node.body, joinKey(parent, `i${iterations}`), output);
        else if (!node.until || node.onMax === 'exit') this.finish(parent, output);
        else
          this.fail({
            name: 'LoopLimitError',
            message: `loop at step "${parent}" reached its limit of ${node.max} iterations`,
            step: parent,
            retryable: false,
          });
        return;
      }
      default:
        throw new Error(`step "${parent}" (${node.kind}) cannot contain step "${key}"`);
    }
  }

  result(ignored?: string): Transition {
    const t: Transition = { status: this.status, state: this.state, schedule: this.schedule };
    if (this.output !== undefined || this.status === 'completed') t.output = this.output ?? null;
    if (this.error !== undefined) t.error = this.error;
    if (this.stepError !== undefined) t.stepError = this.stepError;
    if (this.cancel.length > 0) t.cancel = this.cancel;
    if (this.joined.length > 0) t.joined = this.joined;
    if (ignored !== undefined) t.ignored = ignored;
    if (this.halt) t.halt = true;
    return t;
  }
}

/** Apply one event to an instance. Pure: the snapshot is not modified. */
export function step(def: Workflow, snapshot: Snapshot, event: MachineEvent, options: StepOptions = {}): Transition {
  const run = new Run(def, snapshot, options);
  if (run.finished) return run.result(`the instance is already ${run.status}`);
  if (event.type !== 'start' && (run.state.sag || isCompensationKey(event.key))) {
    if (event.type === 'completed') run.state.done += 1;
    return run.result(compensationEvent(run, event));
  }
  switch (event.type) {
    case 'start':
      run.start(def.root, '', event.input);
      return run.result();
    case 'completed': {
      const node = nodeAt(def.root, event.key); // throws on a key this definition does not have
      run.state.done += 1;
      if (settled(run.state, event.key)) return run.result(`step "${event.key}" is under a parallel step that already joined`);
      if (compensationOf(node)) recordCompleted(run, event.key);
      run.finish(event.key, event.output);
      return run.result();
    }
    case 'failed':
      stepFailed(run, event.key, { ...event.error, step: event.key });
      return run.result();
    case 'branch': {
      const node = nodeAt(def.root, event.key);
      if (node.kind !== 'branch') throw new Error(`step "${event.key}" is a ${node.kind}, not a branch`);
      run.state.done += 1;
      run.choose(node, event.key, event.input);
      return run.result();
    }
    case 'timedOut': {
      const node = nodeAt(def.root, event.key);
      if (node.kind !== 'event') throw new Error(`step "${event.key}" is a ${node.kind}, not a waitForEvent`);
      if (node.onTimeout === 'continue') {
        run.state.done += 1;
        run.finish(event.key, null);
      } else {
        const error: SerializedError = {
          name: 'EventTimeoutError',
          code: 'TIMEOUT',
          message: `no "${node.name}" event arrived within ${node.timeoutMs} ms`,
          step: event.key,
          retryable: false,
        };
        stepFailed(run, event.key, error);
        if (run.error === undefined && !run.halt) run.stepError = error; // a join counted it as a failed branch (no compensation began)
      }
      return run.result();
    }
  }
}

/** What the SQL API needs to start an instance without running code: the first steps, inputs left out. */
export interface StartPlan {
  state: MachineState;
  steps: Omit<ScheduledStep, 'input' | 'held'>[];
}

export function startPlan(def: Workflow): StartPlan {
  const t = step(def, { status: 'running', state: initialState() }, { type: 'start', input: null }, { deferBranches: true });
  if (t.status !== 'running') throw new Error(`workflow "${def.name}" cannot finish at start`);
  return { state: t.state, steps: t.schedule.map(({ input: _input, held: _held, ...rest }) => rest) };
}
