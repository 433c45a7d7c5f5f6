/**
 * Events: messages sent to an instance by name, buffered FIFO until a
 * waitForEvent step consumes one. An event may arrive before its instance.
 * The claim hands each waiting step it takes the oldest buffered event of its
 * name that no other running attempt holds, and holds it for that attempt; the
 * worker's commit deletes it (baton.claim_tasks, baton.commit).
 */
import type { Executor } from './executor.ts';
import { query } from './executor.ts';
import { WAKE_STUCK } from './maintenance.ts';

/** Buffer an event; wakes a waiting step. Raises InvalidStateError for a finished instance. Returns the event id. */
export async function sendEvent(ex: Executor, workflowId: string, name: string, payload: unknown): Promise<number> {
  const rows = await query<{ id: number }>(ex, `select baton.send_event($1, $2, $3::jsonb) as id`, [workflowId, name, JSON.stringify(payload ?? null)]);
  return rows[0]!.id;
}

/**
 * Publish a keyed event (baton.publish_event): buffered FIFO by (name, key) for `retentionMs`, and
 * consumed by one keyed wait on them (src/workflow/keyed-events.ts). Returns the event id.
 */
export async function publishEvent(ex: Executor, name: string, key: string, payload: unknown, retentionMs: number): Promise<number> {
  const rows = await query<{ id: number }>(ex, `select baton.publish_event($1, $2, $3::jsonb, $4) as id`, [
    name,
    key,
    JSON.stringify(payload ?? null),
    retentionMs,
  ]);
  return Number(rows[0]!.id);
}

/**
 * The reconciler's safety net for keyed waits: for each (name, key) with a free published event not
 * past its retention, the oldest step still waiting on it is made ready. A publish and a re-wait
 * serialise on (name, key), so this finds one only when a wait was paused, retried or resumed while
 * its event arrived, or a hold lapsed with its attempt (a cancelled or crashed waiter). Returns how
 * many were woken.
 */
export async function wakeKeyedWaits(ex: Executor, limit = 1000): Promise<number> {
  const rows = await query<{ n: number }>(
    ex,
    `with pending as (
       select distinct e.name, e.key from baton.events e
       where e.key is not null and e.expires_at > now()
         and (e.held_epoch is null or (e.held_until <= now() and not exists (
           select 1 from baton.tasks h
           where h.workflow_id = e.held_workflow_id and h.task_key = e.held_key and h.epoch = e.held_epoch and h.status = 'running')))
       limit $1
     ), stuck as (
       select o.workflow_id, o.task_key from pending p
       cross join lateral (
         select t.workflow_id, t.task_key from baton.tasks t
         where t.name = p.name and t.event_key = p.key and t.status = 'waiting' and not t.paused and t.kind = 'event'
         order by t.created_at, t.workflow_id, t.task_key limit 1
         for update skip locked
       ) o
     )${WAKE_STUCK}`,
    [limit],
  );
  return rows[0]!.n;
}

/**
 * Published events past their retention that no running attempt holds are deleted (an event handed
 * to a wait before it expired is left to that wait's commit). Returns how many.
 */
export async function expireKeyedEvents(ex: Executor, limit = 1000): Promise<number> {
  const rows = await query<{ n: number }>(
    ex,
    `with gone as (
       delete from baton.events e
       where e.id in (
         select x.id from baton.events x
         where x.expires_at <= now()
           and (x.held_epoch is null or (x.held_until <= now() and not exists (
             select 1 from baton.tasks h
             where h.workflow_id = x.held_workflow_id and h.task_key = x.held_key and h.epoch = x.held_epoch and h.status = 'running')))
         order by x.expires_at limit $1
         for update skip locked)
       returning 1
     )
     select count(*)::int as n from gone`,
    [limit],
  );
  return rows[0]!.n;
}
