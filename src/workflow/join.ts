/**
 * Any-of and quorum joins: `parallel(branches, { join: 'any' | { quorum: k }, rest })`.
 * The part of the pure state machine that decides when such a join fires, what
 * the next step receives, which branches are cancelled, and when a quorum can
 * no longer be met. No I/O: the machine returns the keys to cancel and the
 * commit cancels them (baton.cancel_steps).
 *
 * A parallel step with a join rule keeps a frame (MachineState.par, under its key):
 *
 *   left   branches still out (neither completed nor failed)
 *   out    outputs of completed branches, as JSON text, until the join fires
 *   ok     completed branches, in the order they completed (the winners' order)
 *   bad    failed branches
 *   fired  the join fired with rest 'finish': the frame stays while stragglers run
 *
 *   event              before the join fires                      after it (rest 'finish')
 *   branch completes   ok += b; the `need`-th fires the join:     left -= 1; the last one out ends
 *                      'cancel' cancels the branches still out,   the instance if its steps had all
 *                      'finish' keeps the frame for them          finished meanwhile
 *   branch fails       bad += b, its own open steps cancelled;    left -= 1, its open steps cancelled
 *                      when fewer than `need` branches can still
 *                      complete, the step fails at once
 *
 * Exactly once: every event of an instance is applied under its row lock to its
 * newest state (baton.commit compares versions), so only one event can see the
 * `need`-th completion; the branches the firing cancels are fenced off in that
 * same transaction, so a late result of theirs is refused, and a completion under
 * a parallel step whose frame is gone is ignored here besides.
 *
 * A failure goes up its key to the nearest parallel step with a rule; the steps
 * between (sequences, loops, branches, 'all' joins) fail with it. With none,
 * the instance fails. Frames are kept when a step fails, so that retrying the
 * instance (which runs failed and cancelled steps again) finds them as they were.
 */
import type { SerializedError } from '../errors.ts';
import { joinKey, nodeAt, type Node, type ParallelNode } from './graph.ts';

export interface ParallelFrame {
  /** Branches still running. */
  left: number;
  /**
   * Outputs of finished branches, by branch index, as JSON text: state holds
   * no nulls of its own, so history can store it as merge patches.
   */
  out: Record<string, string>;
  /** With a join rule: the completed branches, in the order they completed. */
  ok?: number[];
  /** With a join rule: the failed branches. */
  bad?: number[];
  /** With rest 'finish': the join fired; the branches still out are stragglers. */
  fired?: true;
}

/** The part of the machine's state joins use. */
export interface JoinState {
  par: Record<string, ParallelFrame>;
  /** The instance's output, as JSON text, when its steps finished while stragglers still ran. */
  end?: string;
}

/** What join decisions act on: the machine's run of one event. */
export interface JoinRun {
  readonly root: Node;
  readonly state: JoinState;
  /** Activation keys whose open steps the commit cancels. */
  readonly cancel: string[];
  /** Keys of the parallel steps whose join fired in this event. */
  readonly joined: string[];
  finish(key: string, output: unknown): void;
  fail(error: SerializedError): void;
}

export function openFrame(node: ParallelNode): ParallelFrame {
  const frame: ParallelFrame = { left: node.branches.length, out: {} };
  if (node.join) Object.assign(frame, { ok: [], bad: [] });
  return frame;
}

/** The parallel step a key lies under, nearest first (its last "b<i>" segment: only branches have those), or null. */
function enclosing(key: string): { parallel: string; branch: number } | null {
  const segments = key.split('/');
  for (let i = segments.length - 1; i >= 1; i--) {
    if (segments[i]!.charCodeAt(0) === 98 /* b */) return { parallel: segments.slice(0, i).join('/'), branch: Number(segments[i]!.slice(1)) };
  }
  return null;
}

/**
 * Whether the step at `key` lies under a parallel step that already settled (its join fired,
 * or its branch was cancelled): its completion changes nothing. Keys outside parallel steps
 * (every one-task job's) are not looked at.
 */
export function settled(state: JoinState, key: string): boolean {
  if (!key.includes('/b')) return false;
  const e = enclosing(key);
  return e !== null && state.par[e.parallel] === undefined;
}

/** Frames under a parallel step's branches, except those of the branches listed (still needed). */
function dropFrames(state: JoinState, parallel: string, keep: readonly number[]): void {
  const prefix = `${parallel}/`;
  for (const key of Object.keys(state.par)) {
    if (!key.startsWith(prefix)) continue;
    const branch = Number(key.slice(prefix.length).split('/')[0]!.slice(1));
    if (!keep.includes(branch)) delete state.par[key];
  }
}

function stragglersOut(state: JoinState): boolean {
  for (const key in state.par) if (state.par[key]!.fired) return true;
  return false;
}

/**
 * The instance's steps all finished with `output`: true when stragglers still run, and the
 * output is kept until the last of them is done (rest 'finish' waits for them).
 */
export function deferEnd(state: JoinState, output: unknown): boolean {
  if (!stragglersOut(state)) return false;
  state.end = JSON.stringify(output ?? null);
  return true;
}

/** A straggler settled: the last one out ends an instance whose steps had all finished. */
function endIfDone(run: JoinRun, parallel: string, frame: ParallelFrame): void {
  if (frame.left > 0) return;
  delete run.state.par[parallel];
  dropFrames(run.state, parallel, frame.ok ?? []);
  if (run.state.end !== undefined && !stragglersOut(run.state)) {
    const output = JSON.parse(run.state.end) as unknown;
    delete run.state.end;
    run.finish('', output);
  }
}

/** What the step after an any-of or quorum join receives. */
function joinOutput(node: ParallelNode, frame: ParallelFrame): unknown {
  const winners = frame.ok!.map((branch) => ({ branch, output: JSON.parse(frame.out[String(branch)]!) as unknown }));
  return node.join!.policy === 'any' ? winners[0] : winners;
}

/** Branch `branch` of the parallel step at `parallel` (which has a join rule) completed. */
export function branchCompleted(run: JoinRun, node: ParallelNode, parallel: string, branch: number, output: unknown): void {
  const frame = run.state.par[parallel]!;
  if (frame.ok!.includes(branch)) return; // a duplicate completion changes nothing
  const failed = frame.bad!.indexOf(branch);
  if (failed >= 0) {
    // It failed before and was run again (the instance was retried): it is out again.
    frame.bad!.splice(failed, 1);
    frame.left += 1;
  }
  frame.ok!.push(branch);
  frame.left -= 1;
  if (frame.fired) {
    endIfDone(run, parallel, frame);
    return;
  }
  frame.out[String(branch)] = JSON.stringify(output ?? null);
  const rule = node.join!;
  if (frame.ok!.length < rule.need) return;

  const result = joinOutput(node, frame);
  run.joined.push(parallel);
  const out = node.branches.map((_, i) => i).filter((i) => !frame.ok!.includes(i) && !frame.bad!.includes(i));
  if (rule.rest === 'finish' && out.length > 0) {
    // Only the stragglers' count is needed now; the winners' outputs went to the next step.
    run.state.par[parallel] = { left: out.length, out: {}, ok: [...frame.ok!], bad: [...frame.bad!], fired: true };
    dropFrames(run.state, parallel, [...frame.ok!, ...out]);
  } else {
    delete run.state.par[parallel];
    dropFrames(run.state, parallel, frame.ok!);
    for (const i of out) run.cancel.push(joinKey(parallel, `b${i}`));
  }
  run.finish(parallel, result);
}

/**
 * The step at `key` failed with `error`: fail its way up to the nearest parallel step with a
 * join rule, which counts a failed branch; with none, the instance fails.
 */
export function stepFailed(run: JoinRun, key: string, error: SerializedError): void {
  let at = key;
  for (;;) {
    const e = enclosing(at);
    if (!e) return run.fail(error);
    const frame = run.state.par[e.parallel];
    if (!frame) return; // under a parallel step that settled: its failure changes nothing
    const node = nodeAt(run.root, e.parallel) as ParallelNode;
    if (node.join) return branchFailed(run, node, e.parallel, e.branch, error);
    at = e.parallel; // a plain parallel step fails with any branch
  }
}

function branchFailed(run: JoinRun, node: ParallelNode, parallel: string, branch: number, error: SerializedError): void {
  const frame = run.state.par[parallel]!;
  if (frame.ok!.includes(branch) || frame.bad!.includes(branch)) return;
  frame.bad!.push(branch);
  frame.left -= 1;
  // Whatever else of the branch is open stops (a failed task alone leaves nothing open: cancelling it changes nothing).
  run.cancel.push(joinKey(parallel, `b${branch}`));
  if (frame.fired) {
    endIfDone(run, parallel, frame);
    return;
  }
  const rule = node.join!;
  const possible = node.branches.length - frame.bad!.length;
  if (possible >= rule.need) return;
  // Fewer branches than the quorum can still complete: the step fails now. Its frame stays as it
  // is (a retry of the instance runs the failed branches again); what is still out is cancelled by
  // the failure that follows (the instance's, or an enclosing join's).
  const want = rule.policy === 'any' ? 'one branch' : `${rule.need} of ${node.branches.length} branches`;
  const failure: SerializedError = {
    ...error,
    name: 'JoinError',
    code: 'JOIN_UNREACHABLE',
    message: `parallel step "${parallel}" needs ${want} to complete, and ${frame.bad!.length} failed (last: ${error.message})`,
    retryable: false,
  };
  stepFailed(run, parallel, failure);
}
