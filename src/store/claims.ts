/**
 * Claims: leases on task rows. Claim (one round trip, aging order, tags,
 * definitions), renew (one statement for all of a worker's claims), release.
 * Results are written under the fence by the worker's commit (commit.ts).
 *
 * A claim is valid while the row is `running`, `claimed_by` is the worker and
 * `epoch` is the one the claim returned. Every write of a result checks all
 * three (the fence); a worker whose claim expired and was taken over (a
 * zombie) is refused and counted, never applied.
 */
import type { SerializedError } from '../errors.ts';
import type { StepKind, TaskStatus, WorkflowStatus } from '../types.ts';
import type { Executor } from './executor.ts';
import { isPool, prepared, query } from './executor.ts';

export interface ClaimedTask {
  workflowId: string;
  taskKey: string;
  kind: StepKind;
  name: string;
  definitionHash: string;
  epoch: number;
  /** Including this one. */
  attempts: number;
  maxAttempts: number;
  /** Times this task's lease was lost before (its worker crashed or froze). */
  leaseLosses: number;
  input: unknown;
  /** A child step: the child's outcome envelope. */
  output: unknown;
  /** A waitForEvent step: its deadline (null: no time-out). */
  availableAt: Date | null;
  leaseExpiresAt: Date;
  workflow: {
    name: string;
    status: WorkflowStatus;
    state: unknown;
    version: number;
    priority: number | null;
    tags: string[];
    parentId: string | null;
    /** The instance's stored trace context (traceparent, then a space and tracestate if any); null when its start was not traced. */
    traceContext: string | null;
  };
  /** A waitForEvent step: the oldest buffered event, if any. */
  event: { id: number; payload: unknown } | null;
  /**
   * A keyed waitForEvent step: the key it waits on, or '' while it is not computed yet (then `input`
   * is its instance's input, to compute it from). Null for every other step.
   */
  eventKey: string | null;
  /**
   * Claimed with `declares`: its last attempt lost its lease, or it lost one ever, so the worker
   * marks it begun (beginClaims) before it runs it; see drizzle/functions/reclaim_expired.sql.
   * Always false for a claim without `declares`.
   */
  suspect: boolean;
}

export interface ClaimParams {
  workerId: string;
  limit: number;
  /** The tags this worker offers. */
  tags: string[];
  /** The definitions this worker can run. */
  hashes: string[];
  ttlMs: number;
  /** Tasks with at least this many lost leases are isolated (see baton.claim_tasks). */
  isolateFrom?: number;
  /** How many isolated tasks this claim may take (1 when the worker holds none, else 0). */
  isolatedSlots?: number;
  /**
   * The worker marks a suspect begun (beginClaims) before running it: until then a lost lease costs
   * the suspect nothing. Without it every claimed task is begun at once (see reclaim_expired).
   */
  declares?: boolean;
}

export interface ClaimRow {
  workflow_id: string;
  task_key: string;
  kind: StepKind;
  name: string;
  definition_hash: string;
  epoch: number;
  attempts: number;
  max_attempts: number;
  lease_losses: number;
  input: unknown;
  output: unknown;
  available_at: Date | string | null;
  lease_expires_at: Date | string;
  workflow_name: string;
  workflow_status: WorkflowStatus;
  workflow_state: unknown;
  workflow_version: number;
  workflow_priority: number | null;
  workflow_tags: string[];
  workflow_parent: string | null;
  event_id: number | null;
  event_payload: unknown;
  workflow_trace_context: string | null;
  event_key: string | null;
  suspect: boolean;
}

/**
 * Claim up to `limit` ready tasks (also turning due timers into ready tasks first). Given a pool,
 * the claim is its own transaction and commits without waiting for its WAL flush (fencing makes
 * a claim lost in a crash harmless; see drizzle/0002); given a client, it is part of the caller's
 * transaction, whose durability it leaves alone.
 */
export async function claimTasks(ex: Executor, p: ClaimParams): Promise<ClaimedTask[]> {
  if (p.limit <= 0) return [];
  const [name, fn] = isPool(ex) ? ['baton_claim_v3', 'claim_tasks_async_commit'] : ['baton_claim_tx_v2', 'claim_tasks'];
  const rows = await prepared<ClaimRow>(ex, name, `select * from baton.${fn}($1, $2, $3::text[], $4::text[], $5, $6, $7, $8)`, [
    p.workerId,
    p.limit,
    p.tags,
    p.hashes,
    p.ttlMs,
    p.isolateFrom ?? 2_147_483_647,
    p.isolatedSlots ?? 0,
    p.declares ?? false,
  ]);
  return rows.map(claimedTask);
}

function date(v: Date | string | null): Date | null {
  return v === null ? null : v instanceof Date ? v : new Date(v);
}

/** A claim row (from claim_tasks, or row_to_json of one inside baton.commit) as a ClaimedTask. */
export function claimedTask(r: ClaimRow): ClaimedTask {
  return {
    workflowId: r.workflow_id,
    taskKey: r.task_key,
    kind: r.kind,
    name: r.name,
    definitionHash: r.definition_hash,
    epoch: r.epoch,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    leaseLosses: r.lease_losses,
    input: r.input,
    output: r.output,
    availableAt: date(r.available_at),
    leaseExpiresAt: date(r.lease_expires_at)!,
    workflow: {
      name: r.workflow_name,
      status: r.workflow_status,
      state: r.workflow_state,
      version: r.workflow_version,
      priority: r.workflow_priority,
      tags: r.workflow_tags,
      parentId: r.workflow_parent,
      traceContext: r.workflow_trace_context ?? null,
    },
    event: r.event_id === null ? null : { id: Number(r.event_id), payload: r.event_payload },
    eventKey: r.event_key ?? null,
    suspect: r.suspect ?? false,
  };
}

/** A task a worker would take next (see findAvailableTasks), with what a status view shows of it. */
export interface AvailableTask {
  workflowId: string;
  taskKey: string;
  kind: StepKind;
  name: string;
  definitionHash: string;
  priority: number;
  tags: string[];
  /** Its place in line: when it became ready + priority * the aging interval. */
  readyKey: Date;
  /** Attempts so far (not counting the next). */
  attempts: number;
  maxAttempts: number;
  leaseLosses: number;
}

export interface AvailableFilter {
  /** The worker whose view this is: its own failed retries go after other tasks. Null: nobody's. */
  workerId?: string | null;
  limit: number;
  /** The tags the worker offers. */
  tags: string[];
  /** The definitions it can run; null: any definition. */
  hashes?: string[] | null;
  /** As in ClaimParams (defaults: no isolation). */
  isolateFrom?: number;
  isolatedSlots?: number;
}

/**
 * What a worker would claim next, in the order it would take them, without claiming or locking
 * anything (monitoring, tests): the claim's own choice, baton.find_available_tasks, read-only.
 * Due timers not promoted yet are not listed (the next claim promotes them first).
 */
export async function findAvailableTasks(ex: Executor, f: AvailableFilter): Promise<AvailableTask[]> {
  if (f.limit <= 0) return [];
  return query<AvailableTask>(
    ex,
    `select t.workflow_id as "workflowId", t.task_key as "taskKey", t.kind, t.name, t.definition_hash as "definitionHash",
       t.priority, t.tags, a.ready_key as "readyKey", t.attempts, t.max_attempts as "maxAttempts", t.lease_losses as "leaseLosses"
     from baton.find_available_tasks($1, $2, $3::text[], $4::text[], $5, $6, p_lock => false) with ordinality a
     join baton.tasks t on t.workflow_id = a.workflow_id and t.task_key = a.task_key
     order by a.ordinality`,
    [f.workerId ?? null, f.limit, f.tags, f.hashes ?? null, f.isolateFrom ?? 2_147_483_647, f.isolatedSlots ?? 0],
  );
}

export interface ClaimRef {
  workflowId: string;
  taskKey: string;
  epoch: number;
}

function refsJson(claims: ClaimRef[]): string {
  return JSON.stringify(claims.map((c) => ({ wf: c.workflowId, key: c.taskKey, epoch: c.epoch })));
}

/**
 * Extend the leases of these claims by ttl, in one statement, and record the
 * worker's heartbeat. Only the owner with the current epoch renews. Rows that
 * another transaction is changing right now (a commit, a cancel) are skipped
 * this time rather than waited for. Returns the claims that are lost: no
 * longer this worker's, or no longer running.
 */
export async function renewClaims(ex: Executor, workerId: string, claims: ClaimRef[], ttlMs: number): Promise<ClaimRef[]> {
  const rows = await query<{ wf: string; key: string; epoch: number; state: 'renewed' | 'busy' | 'lost' }>(
    ex,
    `with refs as (
       select * from jsonb_to_recordset($2::jsonb) as r(wf text, key text, epoch bigint)
     ), beat as (
       update baton.workers set heartbeat_at = now() where id = $1
     ), lockable as (
       select t.workflow_id, t.task_key from baton.tasks t join refs r on t.workflow_id = r.wf and t.task_key = r.key
       where t.claimed_by = $1 and t.epoch = r.epoch and t.status = 'running'
       for update of t skip locked
     ), renewed as (
       update baton.tasks t set lease_expires_at = now() + $3 * interval '1 millisecond'
       from lockable l where t.workflow_id = l.workflow_id and t.task_key = l.task_key
       returning t.workflow_id, t.task_key
     )
     select r.wf, r.key, r.epoch,
       case when exists (select 1 from renewed n where n.workflow_id = r.wf and n.task_key = r.key) then 'renewed'
            when exists (select 1 from baton.tasks t where t.workflow_id = r.wf and t.task_key = r.key and t.claimed_by = $1
                           and t.epoch = r.epoch and t.status = 'running') then 'busy'
            else 'lost' end as state
     from refs r`,
    [workerId, refsJson(claims), ttlMs],
  );
  return rows.filter((r) => r.state === 'lost').map((r) => ({ workflowId: r.wf, taskKey: r.key, epoch: r.epoch }));
}

/**
 * Mark these claims begun, before their attempts run (a worker does this for suspects only; see
 * drizzle/functions/reclaim_expired.sql): a lost lease from now on counts against them. Only the
 * owner with the current epoch marks. Returns the claims that are not this worker's any more.
 */
export async function beginClaims(ex: Executor, workerId: string, claims: ClaimRef[]): Promise<ClaimRef[]> {
  if (claims.length === 0) return [];
  const rows = await query<{ wf: string; key: string; epoch: number }>(
    ex,
    `with refs as (
       select * from jsonb_to_recordset($2::jsonb) as r(wf text, key text, epoch bigint)
     ), marked as (
       update baton.tasks t set begun = true
       from refs r where t.workflow_id = r.wf and t.task_key = r.key and t.claimed_by = $1 and t.epoch = r.epoch
         and t.status = 'running' and t.lease_expires_at > now()
       returning t.workflow_id, t.task_key
     )
     select r.wf, r.key, r.epoch from refs r
     where not exists (select 1 from marked m where m.workflow_id = r.wf and m.task_key = r.key)`,
    [workerId, refsJson(claims)],
  );
  return rows.map((r) => ({ workflowId: r.wf, taskKey: r.key, epoch: Number(r.epoch) }));
}

/**
 * Give claims back (graceful shutdown, prefetched tasks not started): the
 * tasks are ready again at once, keeping their place in line. `notStarted`
 * claims also give their attempt back. Returns how many were released.
 */
export async function releaseClaims(ex: Executor, workerId: string, claims: (ClaimRef & { notStarted?: boolean })[]): Promise<number> {
  if (claims.length === 0) return 0;
  const rows = await query(
    ex,
    `with refs as (
       select * from jsonb_to_recordset($2::jsonb) as r(wf text, key text, epoch bigint, "notStarted" boolean)
     ), lockable as (
       select t.workflow_id, t.task_key, r."notStarted" from baton.tasks t join refs r on t.workflow_id = r.wf and t.task_key = r.key
       where t.claimed_by = $1 and t.epoch = r.epoch and t.status = 'running'
       for update of t skip locked
     ), released as (
       update baton.tasks t
       set status = 'ready', claimed_by = null, lease_expires_at = null, updated_at = now(),
           attempts = case when l."notStarted" then greatest(t.attempts - 1, 0) else t.attempts end,
           ready_key = coalesce(t.ready_key, now() + t.priority * baton.aging_interval())
       from lockable l where t.workflow_id = l.workflow_id and t.task_key = l.task_key
       returning 1
     )
     select count(*)::int as n, (select pg_notify('baton_ready', '') from released limit 1) as notified from released`,
    [workerId, JSON.stringify(claims.map((c) => ({ wf: c.workflowId, key: c.taskKey, epoch: c.epoch, notStarted: c.notStarted ?? false })))],
  );
  return (rows[0] as { n: number }).n;
}

/** One task's result (baton.task_result), without loading its instance; kept after the instance finished. */
export interface TaskResultRow {
  status: TaskStatus;
  output: unknown;
  error: SerializedError | null;
  attempts: number;
  finishedAt: Date | null;
}

export async function loadTaskResult(ex: Executor, workflowId: string, taskKey: string): Promise<TaskResultRow | null> {
  const rows = await query<TaskResultRow>(
    ex,
    `select status, output, error, attempts, finished_at as "finishedAt" from baton.task_result($1, $2)`,
    [workflowId, taskKey],
  );
  return rows[0] ?? null;
}

/** Record progress of running attempts (fenced; rows being changed right now are skipped). */
export async function saveProgress(
  ex: Executor,
  workerId: string,
  updates: (ClaimRef & { percent: number; message: string | null })[],
): Promise<void> {
  if (updates.length === 0) return;
  await query(
    ex,
    `with refs as (
       select * from jsonb_to_recordset($2::jsonb) as r(wf text, key text, epoch bigint, percent real, message text)
     ), lockable as (
       select t.workflow_id, t.task_key, r.percent, r.message from baton.tasks t join refs r on t.workflow_id = r.wf and t.task_key = r.key
       where t.claimed_by = $1 and t.epoch = r.epoch and t.status = 'running'
       for update of t skip locked
     )
     update baton.tasks t set progress = l.percent, progress_message = l.message
     from lockable l where t.workflow_id = l.workflow_id and t.task_key = l.task_key`,
    [workerId, JSON.stringify(updates.map((u) => ({ wf: u.workflowId, key: u.taskKey, epoch: u.epoch, percent: u.percent, message: u.message })))],
  );
}
