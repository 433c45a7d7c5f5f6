/** Rebuilding an instance's state at any version from its history (pure). */
import type { HistoryEntry } from '../store/history.ts';
import type { WorkflowStatus } from '../types.ts';
import { applyPatch } from '../workflow/patch.ts';

export interface RebuiltState {
  version: number;
  status: WorkflowStatus;
  state: unknown;
}

/**
 * The status and control state after `version` (the latest when omitted):
 * the `started` checkpoint's state, then each checkpoint's merge patch, in order;
 * a parallel step's finished branch outputs come back as values.
 */
export function stateAt(history: HistoryEntry[], version?: number): RebuiltState {
  const sorted = [...history].sort((a, b) => a.version - b.version);
  const upto = version ?? sorted.at(-1)?.version ?? 0;
  let status: WorkflowStatus = 'pending';
  let state: unknown = {};
  let at = 0;
  for (const h of sorted) {
    if (h.version > upto) break;
    if (h.kind === 'started') state = h.detail.state ?? {};
    else if (h.detail.patch !== undefined) state = applyPatch(state, h.detail.patch);
    if (typeof h.detail.status === 'string') status = h.detail.status as WorkflowStatus;
    at = h.version;
  }
  return { version: at, status, state: decodeOutputs(state) };
}

/**
 * The machine keeps a parallel step's finished branch outputs as JSON text
 * (`ParallelFrame.out`: state holds no nulls of its own, so history can store
 * it as merge patches). A caller asking for the state wants the values.
 */
function decodeOutputs(state: unknown): unknown {
  const par = (state as { par?: unknown } | null)?.par;
  if (typeof par !== 'object' || par === null) return state;
  const frames = Object.fromEntries(
    Object.entries(par as Record<string, { out?: Record<string, unknown> }>).map(([key, frame]) => [
      key,
      frame?.out && typeof frame.out === 'object'
        ? { ...frame, out: Object.fromEntries(Object.entries(frame.out).map(([branch, text]) => [branch, typeof text === 'string' ? JSON.parse(text) : text])) }
        : frame,
    ]),
  );
  return { ...(state as object), par: frames };
}
