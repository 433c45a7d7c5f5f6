/** What a worker holds: a claimed task, its definition, its abort controller, and where it is in its life. */
import type { SerializedError } from '../errors.ts';
import type { ClaimedTask } from '../store/claims.ts';
import type { Workflow } from '../workflow/builder.ts';

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
}

export function heldId(workflowId: string, taskKey: string): string {
  return `${workflowId}\u0000${taskKey}`;
}

/** How an attempt ended, as the commit planner needs it. */
export type Outcome =
  | { kind: 'completed'; output: unknown; eventId?: number }
  | { kind: 'branch'; input: unknown }
  | { kind: 'timedOut' }
  | { kind: 'error'; error: SerializedError; final: boolean; delayMs: number }
  | { kind: 'rewait' };
