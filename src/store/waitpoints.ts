/** Waitpoint completions (baton.complete_waitpoint): a verified token's claims deliver its event, once. */
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

export interface VerifiedWaitpoint {
  workflowId: string;
  event: string;
  nonce: string;
  issuedAt: number;
  expiresAt: number;
}

/** Deliver the payload as the token's event; the event id. Refusals are WaitpointTokenErrors (nothing written). */
export async function completeWaitpoint(ex: Executor, w: VerifiedWaitpoint, payload: unknown): Promise<number> {
  const rows = await query<{ id: string }>(ex, `select baton.complete_waitpoint($1, $2, $3, $4, $5, $6::jsonb) as id`, [
    w.workflowId,
    w.event,
    w.nonce,
    new Date(w.issuedAt),
    new Date(w.expiresAt),
    JSON.stringify(payload ?? null),
  ]);
  return Number(rows[0]!.id);
}
