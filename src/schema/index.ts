/**
 * The database, schema `baton`. This file is the single source of truth:
 * `npm run generate` turns it into migrations under drizzle/, and a test fails
 * when the two disagree. Functions (the SQL API, the claim) live in custom
 * migrations because Drizzle cannot express them.
 *
 * Design notes (measured while building the hot path; today's figures are in
 * BENCHMARKS.md):
 * - Claims live on the task row (claimed_by, epoch, lease_expires_at), not in a
 *   table of their own: a separate claims table measured 15-25% slower at equal
 *   batch size. `baton.claims` is a view for people and tools that want one.
 * - `ready_key = available_at + priority * aging interval` gives exact,
 *   starvation-free aging with an index range scan: (tags, ready_key) where
 *   status = 'ready'.
 * - `epoch` is drawn from a global sequence, so a fencing token is never reused,
 *   not even by a task row that was deleted and created again with the same key.
 * - No foreign keys to `workflows`: their per-row trigger (and the lock it takes
 *   on the parent row) cost ~25% of a commit. An instance's rows are deleted
 *   together by baton.delete_instances(). Hot-path indexes are kept to what
 *   the claim and the commit need; `workflows` has fillfactor 75 so that
 *   checkpoints can be HOT updates. No index on workflows.status: every
 *   instance changes status when it ends, and an index on it made that update
 *   non-HOT (20% of a commit, measured); listing by status walks created_at.
 * - Ids, step keys and task and workflow names are in the "C" collation
 *   (migration 0034): in a database with a locale collation, comparing them
 *   through the locale doubled the job path's server time. Drizzle cannot
 *   express a column's collation, so test/collation.test.ts holds it.
 */
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';
import { bigint, boolean, check, index, integer, jsonb, pgSchema, primaryKey, real, text, timestamp } from 'drizzle-orm/pg-core';
import { CATCH_UP, DEFINITION_KINDS, HISTORY_KINDS, SIGNAL_KINDS, STEP_KINDS, TASK_STATUSES, WORKFLOW_STATUSES } from '../types.ts';

export const baton = pgSchema('baton');

/** `column in ('a', 'b', ...)` over one of the vocabulary's lists (src/types.ts), for a check constraint. */
function oneOf(column: AnyColumn, values: readonly string[]): SQL {
  return sql`${column} in (${sql.raw(values.map((v) => `'${v}'`).join(', '))})`;
}

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const epochSeq = baton.sequence('epoch_seq', { startWith: 1 });

export const workflows = baton.table(
  'workflows',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    definitionHash: text('definition_hash').notNull(),
    status: text('status', { enum: WORKFLOW_STATUSES }).notNull(),
    input: jsonb('input'),
    output: jsonb('output'),
    error: jsonb('error'),
    /** Null: each task keeps its own default priority. */
    priority: integer('priority'),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    parentId: text('parent_id'),
    parentKey: text('parent_key'),
    /** The control state of the pure state machine (frames of running composites). */
    state: jsonb('state').notNull(),
    currentStep: text('current_step'),
    completedTaskCount: integer('completed_task_count').notNull().default(0),
    /** Bumped on every checkpoint; history has one row per version. */
    version: integer('version').notNull().default(1),
    createdAt: tstz('created_at').notNull().defaultNow(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
    finishedAt: tstz('finished_at'),
    /**
     * The W3C trace context of the span that started this instance (`traceparent`, then a space and
     * `tracestate` if any); null when the start was not traced. Each attempt's span links to it.
     */
    traceContext: text('trace_context'),
  },
  (t) => [
    check('workflows_status_check', oneOf(t.status, WORKFLOW_STATUSES)),
    check('workflows_priority_check', sql`${t.priority} >= 0`),
    index('workflows_created_idx').on(t.createdAt.desc(), t.id.desc()),
    index('workflows_name_created_idx').on(t.name, t.createdAt.desc(), t.id.desc()),
    index('workflows_parent_idx').on(t.parentId).where(sql`${t.parentId} is not null`),
  ],
);

export const tasks = baton.table(
  'tasks',
  {
    workflowId: text('workflow_id').notNull(),
    taskKey: text('task_key').notNull(),
    kind: text('kind', { enum: STEP_KINDS }).notNull(),
    /** Task name (kind task), event name (event), child workflow name (child), step label otherwise. */
    name: text('name').notNull(),
    definitionHash: text('definition_hash').notNull(),
    status: text('status', { enum: TASK_STATUSES }).notNull(),
    /** Held by a pause of its instance: not claimed, not woken by the clock. */
    paused: boolean('paused').notNull().default(false),
    priority: integer('priority').notNull().default(0),
    /** Required worker tags, sorted and unique. */
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    /** available_at + priority * aging interval, set when the task becomes ready. */
    readyKey: tstz('ready_key'),
    /** When the task can run (or could, once ready); null = waits for an event or a child only. */
    availableAt: tstz('available_at'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(1),
    leaseLosses: integer('lease_losses').notNull().default(0),
    /**
     * Whether the running attempt may have begun: false only for a suspect (its last attempt lost its
     * lease) that its worker has not yet marked begun (it does so before running it); every other
     * claim sets it true. A lost lease counts only then; see drizzle/functions/reclaim_expired.sql.
     */
    begun: boolean('begun').notNull().default(false),
    epoch: bigint('epoch', { mode: 'number' }).notNull().default(0),
    claimedBy: text('claimed_by'),
    claimedAt: tstz('claimed_at'),
    leaseExpiresAt: tstz('lease_expires_at'),
    input: jsonb('input'),
    /**
     * NULL for the step of a one-task job that completed quietly (finished_by set): its output is
     * its instance's, stored once there.
     */
    output: jsonb('output'),
    lastError: jsonb('last_error'),
    /**
     * The worker whose commit completed a one-task job quietly: no history row was written for
     * it, baton.finished_checkpoint derives that checkpoint from this row and its instance.
     */
    finishedBy: text('finished_by'),
    lastFailedWorker: text('last_failed_worker'),
    /**
     * Set only for a task with a concurrency or rate limit (baton.task_limits): the key its limits
     * count under ('' when they count the task as a whole). Such a row enters `ready` only through
     * admission (baton.admit); see drizzle/functions/limit_enter.sql.
     */
    limitKey: text('limit_key'),
    /**
     * Set only for a keyed waitForEvent step (src/workflow/keyed-events.ts): the key it waits on, or ''
     * until a worker has computed it from the instance's input. Null on every other row.
     */
    eventKey: text('event_key'),
    progress: real('progress'),
    progressMessage: text('progress_message'),
    createdAt: tstz('created_at').notNull().defaultNow(),
    startedAt: tstz('started_at'),
    finishedAt: tstz('finished_at'),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.workflowId, t.taskKey], name: 'tasks_pkey' }),
    check('tasks_status_check', oneOf(t.status, TASK_STATUSES)),
    check('tasks_kind_check', oneOf(t.kind, STEP_KINDS)),
    check('tasks_ready_key_check', sql`${t.status} <> 'ready' or ${t.readyKey} is not null`),
    check('tasks_claim_check', sql`${t.status} <> 'running' or (${t.claimedBy} is not null and ${t.leaseExpiresAt} is not null)`),
    // The claim: one range scan per tag set, in aging order.
    index('tasks_ready_idx').on(t.tags, t.readyKey).where(sql`${t.status} = 'ready'`),
    // Timers: sleeps, retry back-off, event time-outs, delayed starts.
    index('tasks_due_idx')
      .on(t.availableAt)
      .where(sql`${t.status} = 'waiting' and not ${t.paused} and ${t.availableAt} is not null`),
    // The reconciler's scan for expired leases.
    index('tasks_lease_idx').on(t.leaseExpiresAt).where(sql`${t.status} = 'running'`),
    // Limits (empty unless a task has them): the queue admission takes from, and the admitted count.
    index('tasks_queued_idx').on(t.name, t.limitKey, t.readyKey).where(sql`${t.status} = 'queued'`),
    index('tasks_queued_name_idx').on(t.name, t.readyKey).where(sql`${t.status} = 'queued'`),
    index('tasks_admitted_idx')
      .on(t.name, t.limitKey)
      .where(sql`${t.limitKey} is not null and ${t.status} in ('ready', 'running')`),
    // Keyed waits (empty unless a workflow uses them): baton.publish_event wakes the oldest waiting one.
    index('tasks_keyed_wait_idx').on(t.name, t.eventKey, t.createdAt).where(sql`${t.status} = 'waiting' and ${t.eventKey} is not null`),
  ],
);

/**
 * Each task's concurrency and rate limits, as the newest registration of a definition using it said
 * (null: none). `*_keyed`: the limit counts per key (the task's `key(input)`), else for the task as a whole.
 */
export const taskLimits = baton.table('task_limits', {
  name: text('name').primaryKey(),
  concurrency: integer('concurrency'),
  concurrencyKeyed: boolean('concurrency_keyed').notNull().default(false),
  rate: integer('rate'),
  ratePeriodMs: integer('rate_period_ms'),
  rateKeyed: boolean('rate_keyed').notNull().default(false),
  updatedAt: tstz('updated_at').notNull().defaultNow(),
});

/**
 * Admissions of rate-limited tasks, per task and key, kept for one period: the sliding window's log.
 * `n` numbers a key's admissions 1, 2, 3, ... (under the task's admission lock), so the count in a
 * window is two index probes, newest n - oldest n in the window + 1, however high the rate.
 */
export const rateLog = baton.table(
  'rate_log',
  {
    name: text('name').notNull(),
    key: text('key').notNull(),
    at: tstz('at').notNull(),
    n: bigint('n', { mode: 'number' }).notNull(),
  },
  (t) => [index('rate_log_idx').on(t.name, t.key, t.at, t.n)],
);

/** A claim is a running task row; this view shows them under the design's name. */
export const claims = baton.view('claims').as((qb) =>
  qb
    .select({
      workflowId: tasks.workflowId,
      taskKey: tasks.taskKey,
      workerId: sql<string>`${tasks.claimedBy}`.as('worker_id'),
      epoch: tasks.epoch,
      claimedAt: tasks.claimedAt,
      expiresAt: sql<Date>`${tasks.leaseExpiresAt}`.as('expires_at'),
    })
    .from(tasks)
    .where(sql`${tasks.status} = 'running'`),
);

/** The distinct required-tag sets in use; a worker claims from those its tags cover. */
export const tagSets = baton.table('tag_sets', {
  tags: text('tags').array().primaryKey(),
  createdAt: tstz('created_at').notNull().defaultNow(),
});

export const signals = baton.table(
  'signals',
  {
    workflowId: text('workflow_id').notNull(),
    kind: text('kind', { enum: SIGNAL_KINDS }).notNull(),
    reason: text('reason'),
    requestedBy: text('requested_by'),
    requestedAt: tstz('requested_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.workflowId, t.kind], name: 'signals_pkey' }),
    check('signals_kind_check', oneOf(t.kind, SIGNAL_KINDS)),
  ],
);

/**
 * External messages, consumed FIFO: addressed to an instance by name (workflow_id set, key null:
 * baton.send_event), or published by name and key to whichever instance waits on them (key set,
 * workflow_id null: baton.publish_event, kept until expires_at). No foreign key: an event may arrive
 * before its instance or its waiter.
 * held_*: the waitForEvent attempt the claim handed it to (task key, epoch, lease at the claim; and
 * for a keyed event, the instance), until that attempt commits and deletes it. Only free events go to
 * another wait; a hold lapses when its attempt stops running.
 */
export const events = baton.table(
  'events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    workflowId: text('workflow_id'),
    name: text('name').notNull(),
    /** A published (keyed) event's key; null for an event sent to an instance. */
    key: text('key'),
    payload: jsonb('payload'),
    createdAt: tstz('created_at').notNull().defaultNow(),
    /** A keyed event is not delivered after this (baton.publish_event's retention); null for the others. */
    expiresAt: tstz('expires_at'),
    heldWorkflowId: text('held_workflow_id'),
    heldKey: text('held_key'),
    heldEpoch: bigint('held_epoch', { mode: 'number' }),
    heldUntil: tstz('held_until'),
  },
  (t) => [
    check('events_address_check', sql`(${t.workflowId} is null) <> (${t.key} is null)`),
    index('events_lookup_idx').on(t.workflowId, t.name, t.id),
    index('events_created_idx').on(t.createdAt),
    index('events_keyed_idx').on(t.name, t.key, t.id).where(sql`${t.key} is not null`),
    index('events_expires_idx').on(t.expiresAt).where(sql`${t.expiresAt} is not null`),
  ],
);

/** Append-only: one row per checkpoint (version) of an instance. */
export const history = baton.table(
  'history',
  {
    workflowId: text('workflow_id').notNull(),
    version: integer('version').notNull(),
    /** One of HISTORY_KINDS (not enforced by a check constraint). */
    kind: text('kind', { enum: HISTORY_KINDS }).notNull(),
    detail: jsonb('detail').notNull(),
    at: tstz('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.workflowId, t.version], name: 'history_pkey' })],
);

/** What workers registered: the shape of each workflow and the plan of its first steps. */
export const definitions = baton.table(
  'definitions',
  {
    name: text('name').notNull(),
    hash: text('hash').notNull(),
    kind: text('kind', { enum: DEFINITION_KINDS }).notNull(),
    /** defineWorkflow's `version`: a start by name uses the highest registered. */
    version: integer('version').notNull().default(1),
    graph: jsonb('graph').notNull(),
    /** The initial control state and first tasks, so SQL callers can start instances. */
    plan: jsonb('plan').notNull(),
    firstSeen: tstz('first_seen').notNull().defaultNow(),
    lastSeen: tstz('last_seen').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.name, t.hash], name: 'definitions_pkey' }),
    check('definitions_kind_check', oneOf(t.kind, DEFINITION_KINDS)),
  ],
);

export const workers = baton.table('workers', {
  id: text('id').primaryKey(),
  host: text('host').notNull(),
  pid: integer('pid').notNull(),
  tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
  concurrency: integer('concurrency').notNull(),
  /** Definition hashes this worker can run. */
  definitions: text('definitions').array().notNull().default(sql`'{}'::text[]`),
  /** Names of the schedules this worker fires (a schedule no live worker lists does not fire). */
  schedules: text('schedules').array().notNull().default(sql`'{}'::text[]`),
  startedAt: tstz('started_at').notNull().defaultNow(),
  heartbeatAt: tstz('heartbeat_at').notNull().defaultNow(),
});

/**
 * Schedules, as the workers that fire them registered them (the newest registration wins).
 * `last_tick` only moves forward, under the row lock, in the transaction that starts the
 * tick's instance: that is what makes a tick fire once however many workers race for it.
 */
export const schedules = baton.table(
  'schedules',
  {
    name: text('name').primaryKey(),
    cron: text('cron').notNull(),
    timezone: text('timezone').notNull(),
    catchUp: text('catch_up', { enum: CATCH_UP }).notNull(),
    /** What a tick starts: a definition's kind, name and hash. */
    kind: text('kind', { enum: DEFINITION_KINDS }).notNull(),
    workflowName: text('workflow_name').notNull(),
    definitionHash: text('definition_hash').notNull(),
    input: jsonb('input'),
    firstSeen: tstz('first_seen').notNull().defaultNow(),
    lastSeen: tstz('last_seen').notNull().defaultNow(),
    /** The newest tick handled (started, or skipped by the catch-up policy); null before the first. */
    lastTick: tstz('last_tick'),
    /** The instance the newest started tick created, and when. */
    lastRunId: text('last_run_id'),
    lastRunAt: tstz('last_run_at'),
    /** The next tick after the last check, for people and tools (workers compute their own). */
    nextTick: tstz('next_tick'),
  },
  (t) => [check('schedules_catch_up_check', oneOf(t.catchUp, CATCH_UP)), check('schedules_kind_check', oneOf(t.kind, DEFINITION_KINDS))],
);

/**
 * Output streams (ctx.stream.write): frames appended by running attempts under their fence, read in
 * `seq` order, which counts per instance from 1 and is handed out under a per-instance lock, so a
 * reader's cursor never passes a frame that commits later. Deleted with their instance.
 */
export const streamFrames = baton.table(
  'stream_frames',
  {
    workflowId: text('workflow_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    taskKey: text('task_key').notNull(),
    /** The task's attempt number that wrote the frame. */
    attempt: integer('attempt').notNull(),
    frame: jsonb('frame'),
    at: tstz('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.workflowId, t.seq], name: 'stream_frames_pkey' })],
);

/**
 * Waitpoint tokens completed (client.completeWaitpoint, baton.complete_waitpoint), by nonce: a token
 * is used once. Deleted with their instance.
 */
export const waitpointUses = baton.table(
  'waitpoint_uses',
  {
    nonce: text('nonce').primaryKey(),
    workflowId: text('workflow_id').notNull(),
    event: text('event').notNull(),
    usedAt: tstz('used_at').notNull().defaultNow(),
  },
  (t) => [index('waitpoint_uses_workflow_idx').on(t.workflowId)],
);

/** Fleet-wide counters (refused late results, ...). */
export const stats = baton.table('stats', {
  key: text('key').primaryKey(),
  value: bigint('value', { mode: 'number' }).notNull().default(0),
  updatedAt: tstz('updated_at').notNull().defaultNow(),
});

/** One row per reconciler tick, kept briefly, so operators and tests can see it runs once per tick. */
export const reconcilerTicks = baton.table(
  'reconciler_ticks',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    workerId: text('worker_id').notNull(),
    startedAt: tstz('started_at').notNull(),
    finishedAt: tstz('finished_at').notNull().defaultNow(),
    reclaimed: integer('reclaimed').notNull().default(0),
    failed: integer('failed').notNull().default(0),
    promoted: integer('promoted').notNull().default(0),
    pruned: integer('pruned').notNull().default(0),
  },
  (t) => [index('reconciler_ticks_started_idx').on(t.startedAt)],
);
