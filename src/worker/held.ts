/** What a worker holds: a claimed task, its definition, its abort controller, and where it is in its life. */
import type { SerializedError } from '../errors.ts';
import type { ClaimedTask } from '../store/claims.ts';
import type { TraceHeaders } from '../store/instances.ts';
import type { Workflow } from '../workflow/builder.ts';
import { isCompensationKey } from '../workflow/compensate.ts';

export type HeldPhase = 'buffered' | 'running' | 'committing';
export type LostReason = 'lease' | 'cancelled' | 'shutdown';

export interface Held {
  readonly id: string;
  readonly task: ClaimedTask;
  readonly def: Workflow;
  readonly abort: AbortController;
  phase: HeldPhase;
  /** Set when the claim is known to be gone (or given up at shutdown). */
  lost: LostReason | null;
  /** Local estimate of the lease's end (ms since epoch). */
  expiresAt: number;
  startedAt?: number;
  progress?: { percent: number; message: string | null; dirty: boolean };
  /** The trace context of this attempt's span, when it records: child workflows its commit starts are children of it. */
  trace?: TraceHeaders;
  /** ctx.stream, once the handler used it: the attempt's end waits for its frames (worker/streams.ts). */
  stream?: { end(): Promise<void> };
}

export function heldId(workflowId: string, taskKey: string): string {
  return `${workflowId}\u0000${taskKey}`;
}

/**
 * The worker's Held. Its AbortController is made on first use: when the
 * handler reads `ctx.signal`, or when something aborts the attempt. Most
 * handlers never look at their signal and most attempts are never aborted,
 * and an AbortSignal (an EventTarget) was the costliest object the worker
 * made per task (S1 profile: createAbortSignal and its listeners, about 4% of
 * the worker's CPU, plus the garbage they leave).
 */
export class HeldTask implements Held {
  readonly id: string;
  phase: HeldPhase = 'buffered';
  lost: LostReason | null = null;
  startedAt?: number;
  progress?: { percent: number; message: string | null; dirty: boolean };
  trace?: TraceHeaders;
  private controller: AbortController | undefined = undefined;
  private onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly task: ClaimedTask,
    readonly def: Workflow,
    public expiresAt: number,
  ) {
    this.id = heldId(task.workflowId, task.taskKey);
  }

  get abort(): AbortController {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.onAbort) this.controller.signal.addEventListener('abort', this.onAbort, { once: true });
    }
    return this.controller;
  }

  /** Call `listener` when the attempt is aborted from now on (as an 'abort' listener on the signal would be), until unwatchAbort(). */
  watchAbort(listener: () => void): void {
    this.onAbort = listener;
    if (this.controller) this.controller.signal.addEventListener('abort', listener, { once: true });
  }

  unwatchAbort(): void {
    if (this.controller && this.onAbort) this.controller.signal.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
  }
}

/** Watch for an abort of `held`'s attempt: without making its controller when it is a HeldTask. */
export function watchAbort(held: Held, listener: () => void): void {
  if (held instanceof HeldTask) held.watchAbort(listener);
  else held.abort.signal.addEventListener('abort', listener, { once: true });
}

export function unwatchAbort(held: Held, listener: () => void): void {
  if (held instanceof HeldTask) held.unwatchAbort();
  else held.abort.signal.removeEventListener('abort', listener);
}

/** How an attempt ended, as the commit planner needs it. */
export type Outcome =
  | { kind: 'completed'; output: unknown; eventId?: number }
  | { kind: 'branch'; input: unknown }
  | { kind: 'timedOut' }
  | { kind: 'error'; error: SerializedError; final: boolean; delayMs: number }
  /** eventKey: a keyed wait's key, computed by this attempt. */
  | { kind: 'rewait'; eventKey?: string };

/**
 * Whether a baton_cancel notification (ids, from its payload) stops this task: '<id>' names a
 * cancelled instance; '!<id>' one that began to compensate, whose forward tasks stop and whose
 * compensations run on (src/workflow/compensate.ts).
 */
function stopsOnCancel(ids: ReadonlySet<string>, task: { workflowId: string; taskKey: string }): boolean {
  return ids.has(task.workflowId) || (ids.has(`!${task.workflowId}`) && !isCompensationKey(task.taskKey));
}

/**
 * Which held tasks a baton_cancel payload stops. Its comma-separated entries name whole instances
 * ('<id>', or '!<id>': see stopsOnCancel), or single tasks as '<instance>\x1f<key>' (the branches
 * a join cancelled).
 */
export function cancelledBy(payload: string): (h: { id: string; task: { workflowId: string; taskKey: string } }) => boolean {
  const ids = new Set<string>();
  const tasks = new Set<string>();
  for (const entry of payload.split(',')) {
    const at = entry.indexOf('\x1f');
    if (at < 0) ids.add(entry);
    else tasks.add(heldId(entry.slice(0, at), entry.slice(at + 1)));
  }
  return (h) => stopsOnCancel(ids, h.task) || tasks.has(h.id);
}
