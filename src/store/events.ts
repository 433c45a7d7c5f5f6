/**
 * Events: messages sent to an instance by name, buffered FIFO until a
 * waitForEvent step consumes one. An event may arrive before its instance.
 */
import type { Executor } from './executor.ts';
import { query } from './executor.ts';

/** Buffer an event; wakes a waiting step. Raises InvalidStateError for a finished instance. Returns the event id. */
export async function sendEvent(ex: Executor, workflowId: string, name: string, payload: unknown): Promise<number> {
  const rows = await query<{ id: number }>(ex, `select baton.send_event($1, $2, $3::jsonb) as id`, [workflowId, name, JSON.stringify(payload ?? null)]);
  return rows[0]!.id;
}

/**
 * Take the oldest event of that name (deleting it). Concurrent consumers never
 * get the same event: each skips rows another has locked.
 */
export async function consumeOldestEvent(ex: Executor, workflowId: string, name: string): Promise<{ id: number; payload: unknown } | null> {
  const rows = await query<{ id: number; payload: unknown }>(
    ex,
    `delete from baton.events where id = (
       select id from baton.events where workflow_id = $1 and name = $2 order by id limit 1 for update skip locked
     ) returning id, payload`,
    [workflowId, name],
  );
  return rows[0] ?? null;
}

export async function listEvents(ex: Executor, workflowId: string): Promise<{ id: number; name: string; payload: unknown; createdAt: Date }[]> {
  return query(
    ex,
    `select id, name, payload, created_at as "createdAt" from baton.events where workflow_id = $1 order by id`,
    [workflowId],
  );
}
