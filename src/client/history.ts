/** Rebuilding an instance's state at any version from its history (pure). */
import { applyPatch } from '../workflow/patch.ts';

export interface HistoryRecord {
  version: number;
  kind: string;
  detail: Record<string, unknown>;
  at: Date;
}

export interface RebuiltState {
  version: number;
  status: string;
  state: unknown;
}

/**
 * The status and control state after `version` (the latest when omitted):
 * the `started` checkpoint's state, then each checkpoint's merge patch, in order.
 */
export function stateAt(history: HistoryRecord[], version?: number): RebuiltState {
  const sorted = [...history].sort((a, b) => a.version - b.version);
  const upto = version ?? sorted.at(-1)?.version ?? 0;
  let status = 'pending';
  let state: unknown = {};
  let at = 0;
  for (const h of sorted) {
    if (h.version > upto) break;
    if (h.kind === 'started') state = h.detail.state ?? {};
    else if (h.detail.patch !== undefined) state = applyPatch(state, h.detail.patch);
    if (typeof h.detail.status === 'string') status = h.detail.status;
    at = h.version;
  }
  return { version: at, status, state };
}
