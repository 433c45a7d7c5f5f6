/**
 * Events: messages sent to an instance by name, buffered FIFO until a
 * waitForEvent step consumes one. An event may arrive before its instance.
 * The claim hands each waiting step it takes the oldest buffered event of its
 * name that no other running attempt holds, and holds it for that attempt; the
 * worker's commit deletes it (baton.claim_tasks, baton.commit).
 */
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

/** Buffer an event; wakes a waiting step. Raises InvalidStateError for a finished instance. Returns the event id. */
export async function sendEvent(ex: Executor, workflowId: string, name: string, payload: unknown): Promise<number> {
  const rows = await query<{ id: number }>(ex, `select baton.send_event($1, $2, $3::jsonb) as id`, [workflowId, name, JSON.stringify(payload ?? null)]);
  return rows[0]!.id;
}
