/**
 * The invariant checker behind `baton check` and the fault suite. It reads
 * one consistent snapshot (REPEATABLE READ) of a live or stopped system and
 * lists every violation of what Baton promises:
 *
 *   running-without-claim   a running task has no worker or lease
 *   claim-on-finished       a finished task still names a worker
 *   claim-expired           a lease expired longer ago than TTL + tick allows
 *   finished-twice          a task finished twice with no retry of it between (a 'retried'
 *                           checkpoint listing its key in detail.steps makes it runnable again)
 *   finished-unrecorded     a task a worker finished has no finishing checkpoint
 *   scheduled-twice         a step (a join, say) was scheduled more than once
 *   joined-twice            a parallel step's join (any-of, quorum or all) fired more than once
 *                           (checkpoints that fired one list its key in detail.joined)
 *   history-gap             history versions are not 1..version
 *   counter-mismatch        completed_task_count differs from completed task rows
 *   open-task-on-finished   a finished instance still has a waiting/queued/ready/running task
 *   stuck                   a running instance with nothing open and nothing to wake it
 *   child-not-own           a child step waits on '<instance>/<key>', which is missing or not its child
 *   over-limit              more tasks of a concurrency-limited task (per key, when keyed) are admitted
 *                           (ready or running) than its limit (the first instance named, the count in detail)
 *   event-consumed-twice    an event was consumed by more than one waitForEvent step (the completions that
 *                           name it: the first instance named), or is still buffered after one consumed it
 *   compensated-twice       a compensation ("!<key>", src/workflow/compensate.ts) ran to completion more
 *                           than once (its retries are fine: only completions count)
 *   compensation-of-unfinished  a compensation exists for a step that did not complete
 */
import { FINISHED_STATUSES, type HistoryKind, type TaskStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { inTransaction, query } from './executor.ts';

export interface Violation {
  invariant: string;
  workflowId: string;
  taskKey?: string;
  detail: string;
}

export interface CheckReport {
  instances: number;
  tasks: number;
  violations: Violation[];
}

export interface CheckOptions {
  /** How long past its expiry a lease may be before the reconciler must have taken it back. */
  expiredGraceMs?: number;
}

/** A SQL list of literals: the vocabulary's words are plain identifiers, nothing to escape. */
const list = (values: readonly string[]) => `(${values.map((v) => `'${v}'`).join(', ')})`;
/** The quiet completions of one-task jobs, whose checkpoint is derived, not stored (baton.finished_checkpoint). */
const QUIET = `(select f.workflow_id, f.version, f.kind, f.detail from baton.tasks t cross join lateral baton.finished_checkpoint(t.workflow_id) f
   where t.finished_by is not null)`;
const STORED_AND_QUIET = `(select workflow_id, version, kind, detail from baton.history union all select * from ${QUIET} q)`;
/**
 * Every checkpoint: the stored ones, each instance's 'started' one where it is not stored
 * (baton.started_checkpoint), and the quiet completions.
 */
const CHECKPOINTS = `(select workflow_id, version, detail from baton.history
   union all select s.workflow_id, s.version, s.detail from baton.workflows w cross join lateral baton.started_checkpoint(w.id) s
   union all select workflow_id, version, detail from ${QUIET} q)`;

/** The history kinds that finish a task's attempt (a lost lease that fails the task also does). */
const FINISHING = list(['completed', 'task_failed', 'timed_out', 'branch'] satisfies HistoryKind[]);
const FINISHED = list(FINISHED_STATUSES);
const OPEN = list(['waiting', 'queued', 'ready', 'running'] satisfies TaskStatus[]);

export async function checkInvariants(ex: Executor, options: CheckOptions = {}): Promise<CheckReport> {
  const grace = options.expiredGraceMs ?? 10_000;
  return inTransaction(ex, async (tx) => {
    await query(tx, 'set transaction isolation level repeatable read, read only');
    const [{ instances, tasks }] = await query<{ instances: number; tasks: number }>(
      tx,
      `select (select count(*)::int from baton.workflows) as instances, (select count(*)::int from baton.tasks) as tasks`,
    );
    const violations = await query<Violation>(
      tx,
      `select 'running-without-claim' as invariant, workflow_id as "workflowId", task_key as "taskKey", 'status running, claimed_by ' || coalesce(claimed_by, 'null') as detail
       from baton.tasks where status = 'running' and (claimed_by is null or lease_expires_at is null)
     union all
       select 'claim-on-finished', workflow_id, task_key, status || ' but claimed by ' || claimed_by
       from baton.tasks where status in ${FINISHED} and claimed_by is not null
     union all
       select 'claim-expired', workflow_id, task_key, 'lease of ' || claimed_by || ' expired ' || round(extract(epoch from now() - lease_expires_at) * 1000) || ' ms ago'
       from baton.tasks where status = 'running' and lease_expires_at < now() - $1 * interval '1 millisecond'
     union all
       select 'finished-twice', f.workflow_id, f.key, count(*) + 1 || ' finishing checkpoints with no retry between them'
       from (
         select h.workflow_id, h.detail ->> 'key' as key, h.version,
           lag(h.version) over (partition by h.workflow_id, h.detail ->> 'key' order by h.version) as previous
         from ${STORED_AND_QUIET} h
         where h.kind in ${FINISHING} or (h.kind = 'lease_lost' and h.detail ->> 'task' = 'failed')
       ) f
       where f.previous is not null
         and not exists (select 1 from baton.history r where r.workflow_id = f.workflow_id and r.kind = 'retried'
                           and r.version > f.previous and r.version < f.version and coalesce(r.detail -> 'steps', '[]') ? f.key)
       group by f.workflow_id, f.key
     union all
       select 'finished-unrecorded', t.workflow_id, t.task_key, 'task ' || t.status || ' without a finishing checkpoint'
       from baton.tasks t
       where (t.status = 'completed' or (t.status = 'failed' and t.attempts > 0))
         and not exists (select 1 from ${STORED_AND_QUIET} h where h.workflow_id = t.workflow_id and h.detail ->> 'key' = t.task_key
                           and (h.kind in ${FINISHING} or (h.kind = 'lease_lost' and h.detail ->> 'task' = 'failed')))
     union all
       select 'scheduled-twice', h.workflow_id, k.key, count(*) || ' checkpoints scheduled it'
       from ${CHECKPOINTS} h cross join lateral jsonb_array_elements_text(coalesce(h.detail -> 'scheduled', '[]')) k(key)
       group by h.workflow_id, k.key having count(*) > 1
     union all
       select 'joined-twice', h.workflow_id, j.key, count(*) || ' checkpoints fired its join'
       from baton.history h cross join lateral jsonb_array_elements_text(h.detail -> 'joined') j(key)
       where h.detail ? 'joined'
       group by h.workflow_id, j.key having count(*) > 1
     union all
       select 'history-gap', w.id, null, 'versions ' || coalesce(h.n, 0) || ' rows, ' || coalesce(h.lo, 0) || '..' || coalesce(h.hi, 0) || ', instance at ' || w.version
       from baton.workflows w
       left join (select workflow_id, count(*) as n, min(version) as lo, max(version) as hi from ${CHECKPOINTS} c group by workflow_id) h on h.workflow_id = w.id
       where h.n is distinct from w.version or h.lo is distinct from 1 or h.hi is distinct from w.version
     union all
       select 'counter-mismatch', w.id, null, 'completed_task_count ' || w.completed_task_count || ', completed tasks ' || coalesce(t.n, 0)
       from baton.workflows w
       left join (select workflow_id, count(*) as n from baton.tasks where status = 'completed' group by workflow_id) t on t.workflow_id = w.id
       where w.completed_task_count <> coalesce(t.n, 0)
     union all
       select 'open-task-on-finished', t.workflow_id, t.task_key, 'instance ' || w.status || ', task ' || t.status
       from baton.tasks t join baton.workflows w on w.id = t.workflow_id
       where w.status in ${FINISHED} and t.status in ${OPEN}
     union all
       select 'child-not-own', t.workflow_id, t.task_key, 'waits on "' || t.workflow_id || '/' || t.task_key || '", '
         || case when c.id is null then 'which does not exist' else 'an instance that is not its child (its parent: ' || coalesce(c.parent_id || ', step ' || c.parent_key, 'none') || ')' end
       from baton.tasks t
       join baton.workflows w on w.id = t.workflow_id and w.status in ('running', 'paused')
       left join baton.workflows c on c.id = t.workflow_id || '/' || t.task_key
       where t.kind = 'child' and t.status = 'waiting' and t.output is null
         and (c.id is null or c.parent_id is distinct from t.workflow_id or c.parent_key is distinct from t.task_key)
     union all
       select 'over-limit', g.first, null, g.name || coalesce(' (key ' || g.key || ')', '') || ': ' || g.n || ' ready or running, limit ' || g.lim
       from (
         select t.name, case when l.concurrency_keyed then t.limit_key end as key, l.concurrency as lim, count(*) as n,
           min(t.workflow_id) as first
         from baton.tasks t join baton.task_limits l on l.name = t.name and l.concurrency is not null
         where t.limit_key is not null and t.status in ('ready', 'running')
         group by 1, 2, 3
       ) g
       where g.n > g.lim
     union all
       select 'event-consumed-twice', min(h.workflow_id), null, 'event ' || (h.detail ->> 'eventId') || ' consumed by ' || count(*) || ' waits'
       from baton.history h where h.kind = 'completed' and h.detail ? 'eventId'
       group by h.detail ->> 'eventId' having count(*) > 1
     union all
       select 'event-consumed-twice', h.workflow_id, h.detail ->> 'key', 'event ' || e.id || ' is still buffered after this step consumed it'
       from baton.history h join baton.events e on e.id = (h.detail ->> 'eventId')::bigint
       where h.kind = 'completed' and h.detail ? 'eventId'
     union all
       select 'compensated-twice', h.workflow_id, h.detail ->> 'key', count(*) || ' completions of one compensation'
       from baton.history h
       where h.kind = 'completed' and left(h.detail ->> 'key', 1) = '!' and left(h.detail ->> 'key', 2) <> '!@'
       group by h.workflow_id, h.detail ->> 'key' having count(*) > 1
     union all
       select 'compensation-of-unfinished', c.workflow_id, c.task_key, 'compensates step ' || substr(c.task_key, 2) || ', which is '
         || coalesce(s.status, 'missing')
       from baton.tasks c
       left join baton.tasks s on s.workflow_id = c.workflow_id and s.task_key = substr(c.task_key, 2)
       where c.kind = 'task' and left(c.task_key, 1) = '!' and s.status is distinct from 'completed'
     union all
       select 'stuck', w.id, null, 'instance ' || w.status || ' with no open step'
       from baton.workflows w
       where w.status in ('running', 'paused')
         and not exists (select 1 from baton.tasks t where t.workflow_id = w.id and t.status in ${OPEN})
     order by 1, 2, 3`,
      [grace],
    );
    return { instances, tasks, violations };
  });
}
