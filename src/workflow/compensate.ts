/**
 * Saga compensation: `.then(task, { compensate: undo })` registers `undo` as
 * the step's compensation. Pure, like the machine that calls it.
 *
 *   forward     every completion of a step with a compensation is recorded in
 *               state.comp (its key -> its rank among completions, state.done).
 *   a failure   a step failed for good (or the machine failed the instance:
 *               a branch, a loop limit, an event timeout). With nothing in
 *               state.comp the instance fails as before. Otherwise it stays
 *               running and compensates: state.sag holds why (`err`), the step
 *               whose compensation runs (`at`) and those left (`left`), latest
 *               completion first. The transition says `halt`: the commit closes
 *               the open forward work (tasks, child instances), as for a failure.
 *   a cancel    baton.cancel_workflow(..., p_compensate) closes the forward work
 *               and schedules a `compensate` step keyed "!@<version>" whose
 *               output is the cancel's error; its completion starts the same
 *               way (with nothing to compensate, the instance ends cancelled).
 *               baton.fail_instances does the same for a step failed outside
 *               the machine (its leases were lost too often).
 *   compensate  one at a time, in reverse order of completion. The step for
 *               step K is keyed "!K"; its input is `{ input, output }` of K's
 *               task row, filled in by baton.schedule_tasks (the state keeps no
 *               payloads). It is an ordinary task row: claimed, leased, fenced,
 *               retried under the compensation task's own policy.
 *   its end     each completion schedules the next; after the last, the
 *               instance ends `compensated` (error: CompensatedError, the cause
 *               inside). A compensation that fails for good ends the instance
 *               `failed` (CompensationFailedError, both errors inside, `step`
 *               the compensation's key so a retry runs it again and goes on).
 *
 * Forward events that arrive while compensating (only from the same commit
 * batch: the forward work is closed) change nothing, except the completion
 * of a step with a compensation, which is compensated next.
 */
import type { SerializedError } from '../errors.ts';
import type { WorkflowStatus } from '../types.ts';
import { nodeAt, type Node } from './graph.ts';
import type { Task } from './task.ts';

/** Compensation keys start with this ("!<step key>", and "!@<n>" for a cancel's request). */
export const COMPENSATION_MARK = '!';
const MARK_CODE = 33;
const CANCEL_PREFIX = '!@';

export interface SagaState {
  /** Why compensation runs: the step's error, or the cancel's. */
  err: SerializedError;
  /** The step whose compensation is scheduled now. */
  at: string;
  /** Steps still to compensate, next first. */
  left: string[];
}

/** What the machine's run offers this module (structurally: no import of machine.ts). */
export interface SagaRun {
  status: WorkflowStatus;
  error?: SerializedError;
  halt: boolean;
  readonly def: { readonly root: Node };
  readonly state: { done: number; comp?: Record<string, number>; sag?: SagaState };
  scheduleCompensation(key: string, task: Task, step: string): void;
}

/** A machine event as this module reads it. */
export interface SagaEvent {
  type: 'completed' | 'failed' | 'branch' | 'timedOut';
  key: string;
  output?: unknown;
  error?: SerializedError;
}

export function compensationKey(stepKey: string): string {
  return COMPENSATION_MARK + stepKey;
}

export function isCompensationKey(key: string): boolean {
  return key.charCodeAt(0) === MARK_CODE;
}

/** The compensation task of the step at `node`, if it has one. */
export function compensationOf(node: Node): Task | undefined {
  return node.kind === 'task' ? node.compensate : undefined;
}

/** A step with a compensation completed (state.done already counts it). */
export function recordCompleted(run: SagaRun, key: string): void {
  run.state.comp = { ...run.state.comp, [key]: run.state.done };
  const sag = run.state.sag;
  if (sag) run.state.sag = { ...sag, left: [key, ...sag.left] };
}

/** Start compensating for `err`; false when no completed step has a compensation. */
export function beginCompensation(run: SagaRun, err: SerializedError): boolean {
  const comp = run.state.comp;
  if (!comp || run.state.sag) return false;
  const keys = Object.keys(comp).sort((a, b) => comp[b]! - comp[a]!);
  const [at, ...left] = keys;
  if (at === undefined) return false;
  run.state.sag = { err, at, left };
  run.halt = true;
  schedule(run, at);
  return true;
}

function schedule(run: SagaRun, step: string): void {
  const task = compensationOf(nodeAt(run.def.root, step));
  if (!task) throw new Error(`step "${step}" has no compensation in this definition`);
  run.scheduleCompensation(compensationKey(step), task, step);
}

/**
 * An event of a compensating instance, or of a compensation step: returns why it changed nothing,
 * or undefined when it was applied.
 */
export function compensationEvent(run: SagaRun, event: SagaEvent): string | undefined {
  const sag = run.state.sag;
  if (event.key.startsWith(CANCEL_PREFIX)) {
    if (event.type !== 'completed') return undefined; // cannot fail: it runs no code
    if (sag) return 'the instance is already compensating';
    const err = event.output as SerializedError;
    if (!beginCompensation(run, err)) {
      // Nothing to compensate: the instance ends as the request's cause says (a cancel, or a failure outside the machine).
      run.status = err.code === 'CANCELLED' ? 'cancelled' : 'failed';
      run.error = err;
    }
    return undefined;
  }
  if (!isCompensationKey(event.key)) {
    // A forward event while compensating.
    if (event.type === 'completed' && compensationOf(nodeAt(run.def.root, event.key))) {
      recordCompleted(run, event.key);
      return undefined;
    }
    return 'the instance is compensating';
  }
  if (!sag || compensationKey(sag.at) !== event.key) return `${event.key} is not the compensation running now`;
  const step = sag.at;
  if (event.type === 'failed') {
    const e = event.error!;
    run.status = 'failed';
    run.error = {
      name: 'CompensationFailedError',
      code: 'COMPENSATION_FAILED',
      message: `the compensation of step "${step}" failed: ${e.message} (it ran because: ${sag.err.message})`,
      step: event.key,
      retryable: false,
      cause: sag.err,
      compensation: e,
    };
    return undefined;
  }
  if (event.type !== 'completed') return `${event.key} is a compensation`;
  const [next, ...left] = sag.left;
  if (next === undefined) {
    delete run.state.sag;
    run.status = 'compensated';
    run.error = {
      name: 'CompensatedError',
      code: 'COMPENSATED',
      message: `compensated ${Object.keys(run.state.comp ?? {}).length} step(s) after: ${sag.err.message}`,
      ...(typeof sag.err.step === 'string' ? { step: sag.err.step } : {}),
      retryable: false,
      cause: sag.err,
    };
    return undefined;
  }
  run.state.sag = { ...sag, at: next, left };
  schedule(run, next);
  return undefined;
}
