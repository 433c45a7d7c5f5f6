-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.
-- function: claim_tasks
-- The claim: up to p_limit ready tasks, in aging order (ready_key), from the
-- tag sets this worker covers and the definitions it has, in one round trip.
-- Each claimed task gets a lease of p_ttl_ms and a new fencing epoch.
-- Which tasks, in which order, is baton.find_available_tasks (p_lock => true:
-- it locks candidates FOR UPDATE SKIP LOCKED as it scans), the one definition
-- of the choice, soft bias and isolation included; a peek reads the same.
-- Soft bias: when a candidate is a retry this worker last failed, as many
-- further candidates are locked, and the retry goes after them; alone, it is
-- still taken. Only then are more rows locked than claimed.
-- Isolation: a task whose leases were lost p_isolate_from times or more (one
-- more loss fails it: it may be what kills its workers) is claimed only into
-- one of p_isolated_slots (the worker passes 1 when it holds no such task,
-- else 0), so it never takes innocent tasks down with it again.
-- Lost leases and suspects: a claim by a worker that says when it begins a suspect (p_declares,
-- as every worker since migration 0039 does) leaves `begun` false; an older caller's claims count
-- as begun at once (what a lost lease cost before). `suspect` comes back true for a task whose
-- last attempt lost its lease, or that lost one ever: such a worker marks it begun
-- (baton.tasks.begun, src/store/claims.ts beginClaims) before it runs it, and what its next lost
-- lease costs depends on that (see reclaim_expired).
-- A task row whose input is NULL is a first step: its input is its instance's (stored once, there).
-- workflow_trace_context: the instance's stored trace context (null unless its start was traced),
-- read from the instance row the claim joins anyway.
-- Each row comes with its instance's snapshot (status, state, version), for
-- the optimistic commit, and for a waitForEvent step an event of its own:
-- the n-th wait claimed here for one (instance, name), in line order, gets
-- the n-th oldest free event, which is then held for that attempt (held_key,
-- held_epoch, held_until = its lease) until its commit deletes it. An event is
-- free when it is held by nobody, or by this very step (a lost or given-back
-- claim takes its event again), or its hold lapsed: past held_until and the
-- holding attempt no longer running. held_until is what a claim committed
-- after this statement's snapshot is seen by: a row it held is locked here
-- (FOR UPDATE SKIP LOCKED, never waiting), re-read at its newest version, and
-- its fresh held_until keeps it out even though the tasks read here predate
-- that claim. A wait that finds no free event gets none and re-waits.
-- A keyed wait (waitForEvent with `key`; tasks.event_key set) takes events published
-- under its name and key instead (baton.publish_event), the same way, among those not
-- past their expires_at; event_key comes back with it. One whose key is still ''
-- (not computed yet) gets no event but its instance's input as `input`: its worker
-- computes the key from it and commits the step back to waiting under that key.
DROP FUNCTION IF EXISTS baton.claim_tasks(text, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.claim_tasks(text, integer, text[], text[], integer, integer, integer, boolean);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.claim_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_declares boolean DEFAULT false)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text,
  suspect boolean)
LANGUAGE plpgsql
-- Key lookups only (see baton.commit): no sequential scan of a growing table, no JIT, and no hash or
-- merge join of the claimed rows with baton.tasks or baton.workflows: on a small table (a few hundred
-- rows, as on a new or quiet system) the planner otherwise joined through a full scan of tasks_pkey,
-- every claim reading every task (PostgreSQL 15, 500 tasks: 492 pages per claim of one, 20 without).
-- The event part joins the batch's own sets with each other and turns them back on.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_promoted integer;
  v_wf text[];
  v_key text[];
  v_tid tid[];
  v_events boolean;
BEGIN
  -- Timers that are due become ready first (inline: a nested function call costs more than the probe).
  WITH due AS (
    SELECT t.workflow_id, t.task_key FROM baton.tasks t
    WHERE t.status = 'waiting' AND NOT t.paused AND t.available_at IS NOT NULL AND t.available_at <= now()
    ORDER BY t.available_at LIMIT 100
    FOR UPDATE SKIP LOCKED
  ), promoted AS (
    UPDATE baton.tasks t
    SET status = 'ready', ready_key = t.available_at + t.priority * baton.aging_interval(), updated_at = now()
    FROM due WHERE t.workflow_id = due.workflow_id AND t.task_key = due.task_key
    RETURNING 1
  )
  SELECT count(*) INTO v_promoted FROM promoted;
  IF v_promoted > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;

  -- The choice (rows locked), with each row's kind and address (see find_available_tasks).
  SELECT array_agg(f.workflow_id), array_agg(f.task_key), array_agg(f.row_address), coalesce(bool_or(f.kind = 'event'), false)
  INTO v_wf, v_key, v_tid, v_events
  FROM baton.find_available_tasks(p_worker, p_limit, p_tags, p_hashes, p_isolate_from, p_isolated_slots, p_lock => true) f;
  IF v_wf IS NULL THEN
    RETURN;
  END IF;

  -- No waitForEvent step among them (nearly every claim): one statement claims the rows, by the
  -- addresses of the versions locked above, and returns them with their instances' snapshots.
  IF NOT v_events THEN
    RETURN QUERY
    WITH claimed AS (
      UPDATE baton.tasks t
      SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
          lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
          started_at = coalesce(t.started_at, now()), begun = NOT p_declares, updated_at = now()
      FROM unnest(v_tid, v_wf, v_key) AS u(tid, wf, key)
      WHERE t.ctid = u.tid AND t.workflow_id = u.wf AND t.task_key = u.key
      RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
        t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key,
        t.lease_losses > 0 OR coalesce(t.last_error ->> 'code' = 'LEASE_LOST', false) AS suspect
    )
    SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses,
      coalesce(c.input, w.input), c.output, c.available_at, c.lease_expires_at, w.name, w.status, w.state, w.version, w.priority, w.tags,
      w.parent_id, NULL::bigint, NULL::jsonb, w.trace_context, NULL::text, c.suspect
    FROM claimed c
    JOIN baton.workflows w ON w.id = c.workflow_id
    ORDER BY c.ready_key, c.workflow_id, c.task_key;
    RETURN;
  END IF;

  -- With one, the same statement also gives each wait its event (below). It runs only then: its CTEs
  -- would cost every claim about 50 us (measured on PostgreSQL 18), and its UPDATE of baton.events may
  -- be planned as a scan of every buffered event. Hash and merge joins are on for it, for this function
  -- only (the SET clauses above restore them on return).
  PERFORM set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true);
  RETURN QUERY
  WITH claimed AS (
    UPDATE baton.tasks t
    SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
        started_at = coalesce(t.started_at, now()), begun = NOT p_declares, updated_at = now()
    FROM unnest(v_tid, v_wf, v_key) AS u(tid, wf, key)
    WHERE t.ctid = u.tid AND t.workflow_id = u.wf AND t.task_key = u.key
    RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
      t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key, t.event_key,
      t.lease_losses > 0 OR coalesce(t.last_error ->> 'code' = 'LEASE_LOST', false) AS suspect
  ), waits AS (
    SELECT c.workflow_id, c.name, c.task_key, c.epoch, c.lease_expires_at,
      row_number() OVER (PARTITION BY c.workflow_id, c.name ORDER BY c.ready_key, c.task_key) AS nth
    FROM claimed c WHERE c.kind = 'event' AND c.event_key IS NULL
  ), free AS (
    SELECT g.workflow_id, g.name, ev.id, ev.payload, row_number() OVER (PARTITION BY g.workflow_id, g.name ORDER BY ev.id) AS nth
    FROM (SELECT w.workflow_id, w.name, count(*) AS n, array_agg(w.task_key) AS keys FROM waits w GROUP BY w.workflow_id, w.name) g
    CROSS JOIN LATERAL (
      SELECT e.id, e.payload FROM baton.events e
      WHERE e.workflow_id = g.workflow_id AND e.name = g.name
        AND (e.held_epoch IS NULL OR e.held_key = ANY (g.keys)
          OR (e.held_until <= now() AND NOT EXISTS (
            SELECT 1 FROM baton.tasks h
            WHERE h.workflow_id = e.workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running')))
      ORDER BY e.id
      LIMIT g.n
      FOR UPDATE SKIP LOCKED
    ) ev
  ), kwaits AS (
    SELECT c.workflow_id, c.name, c.event_key, c.task_key, c.epoch, c.lease_expires_at,
      row_number() OVER (PARTITION BY c.name, c.event_key ORDER BY c.ready_key, c.workflow_id, c.task_key) AS nth
    FROM claimed c WHERE c.kind = 'event' AND c.event_key <> ''
  ), kfree AS (
    SELECT g.name, g.event_key, ev.id, ev.payload, row_number() OVER (PARTITION BY g.name, g.event_key ORDER BY ev.id) AS nth
    FROM (SELECT w.name, w.event_key, count(*) AS n, array_agg(w.workflow_id || E'\x1f' || w.task_key) AS holders
          FROM kwaits w GROUP BY w.name, w.event_key) g
    CROSS JOIN LATERAL (
      SELECT e.id, e.payload FROM baton.events e
      WHERE e.name = g.name AND e.key = g.event_key AND e.expires_at > now()
        AND (e.held_epoch IS NULL OR e.held_workflow_id || E'\x1f' || e.held_key = ANY (g.holders)
          OR (e.held_until <= now() AND NOT EXISTS (
            SELECT 1 FROM baton.tasks h
            WHERE h.workflow_id = e.held_workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running')))
      ORDER BY e.id
      LIMIT g.n
      FOR UPDATE SKIP LOCKED
    ) ev
  ), given AS (
    SELECT w.workflow_id, w.task_key, w.epoch, w.lease_expires_at, f.id, f.payload
    FROM waits w JOIN free f ON f.workflow_id = w.workflow_id AND f.name = w.name AND f.nth = w.nth
    UNION ALL
    SELECT w.workflow_id, w.task_key, w.epoch, w.lease_expires_at, f.id, f.payload
    FROM kwaits w JOIN kfree f ON f.name = w.name AND f.event_key = w.event_key AND f.nth = w.nth
  ), held AS (
    UPDATE baton.events e SET held_workflow_id = g.workflow_id, held_key = g.task_key, held_epoch = g.epoch, held_until = g.lease_expires_at
    FROM given g WHERE e.id = g.id
  )
  SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses,
    CASE WHEN c.event_key = '' THEN w.input ELSE coalesce(c.input, w.input) END, c.output, c.available_at, c.lease_expires_at, w.name,
    w.status, w.state, w.version, w.priority, w.tags, w.parent_id, g.id, g.payload, w.trace_context, c.event_key, c.suspect
  FROM claimed c
  JOIN baton.workflows w ON w.id = c.workflow_id
  LEFT JOIN given g ON g.workflow_id = c.workflow_id AND g.task_key = c.task_key
  ORDER BY c.ready_key, c.workflow_id, c.task_key;
END
$$;
--> statement-breakpoint
-- function: claim_tasks_async_commit
-- A worker's own claim commits without waiting for its WAL flush (synchronous_commit off for that
-- transaction only). Measured on PostgreSQL 15 here: a one-task claim 0.87 -> 0.50 ms round trip.
-- Safe because of fencing: if the server crashes before the claim reaches disk, the task is simply
-- ready again with its old epoch, and the worker's later commit (which is durable) is refused for
-- not holding the claim; the task runs again, as after any lost lease. Commits stay synchronous, and
-- a claim riding along a commit (baton.commit calls claim_tasks) is as durable as that commit.
DROP FUNCTION IF EXISTS baton.claim_tasks_async_commit(text, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.claim_tasks_async_commit(text, integer, text[], text[], integer, integer, integer, boolean);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.claim_tasks_async_commit(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_declares boolean DEFAULT false)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text,
  suspect boolean)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY SELECT * FROM baton.claim_tasks(p_worker, p_limit, p_tags, p_hashes, p_ttl_ms, p_isolate_from, p_isolated_slots, p_declares);
END
$$;
--> statement-breakpoint
-- function: commit
-- The optimistic commit of a batch of finished attempts (the worker's hot
-- path, one round trip). The worker ran the state machine on the snapshots it
-- was given at claim time; here, under the instances' row locks, each instance
-- is applied only if
--   * its version is still the one the worker computed from, and
--   * every attempt of it still holds its claim (the fence: same worker, same
--     epoch, still running), and every event it consumes is still there and
--     held by that attempt (see claim_tasks).
-- Otherwise nothing of that instance is written and its current snapshot is
-- returned ('conflict'); the worker recomputes and commits again. An attempt
-- whose event is gone is also named ('event_gone'): the worker recomputes it
-- as a re-wait, so it cannot conflict again for that event. Attempts
-- that fail the fence are refused for good ('refused') and counted, except an
-- attempt this worker already committed ('duplicate': the retry of a commit
-- whose reply was lost with its connection). Applied instances are not
-- reported: no row back means everything was applied.
--
-- Parameters are sets of JSON objects with named fields, so that no two of
-- them can be swapped silently (src/store/commit.ts builds them):
--   p_items, one per attempt: {wf, key, epoch, status, paused, output, error, delayMs, eventId, eventKey, quiet}
--     status: the task's new status (completed, failed, ready, waiting; cancelled: a join or a failed
--       branch committed in the same batch just before it cancelled its step);
--     quiet: the attempt completed a one-task job, whose checkpoint is not stored (the worker sends no
--       history row for it, and null as the task's output: it is the instance's): the task row keeps
--       the committing worker in finished_by, from which baton.finished_checkpoint derives the row;
--     delayMs: for a retry, available again after this many ms (null: keep);
--     eventId: the id of the event a waitForEvent step consumed;
--     eventKey: a keyed waitForEvent step's key, computed by its worker (its re-wait stores it on the row).
--     A re-wait (a waitForEvent step that got no event: status waiting, no error) is made ready
--     instead when a free event of its name is buffered now: one sent while it ran woke nobody.
--     A keyed re-wait looks for a free published event of its name and key, under the advisory lock
--     baton.publish_event takes for them (so that either it sees the event or the publish sees it waiting).
--   p_instances, one per instance: {id, parent, version, status, state, bump, done, output, error, step, finished, after, cancel}
--     parent: its parent instance's id (locked too, before it: ids sort parents first), or null;
--     cancel: absent, or activation keys whose open work ends cancelled (see cancel_steps);
--     after: the instance finished and needs after_finish (failed, or has a parent).
--   p_history, one per checkpoint: {wf, version, kind, detail}
--     version: the version the row records (the worker counts from the instance's version).
--   p_schedule: steps to insert as task rows (see schedule_tasks).
--   p_claim: null, or the worker's next claim riding along:
--     {limit, tags, hashes, ttlMs, isolateFrom, isolatedSlots, declares} (see claim_tasks).
--
-- Every statement here looks rows up by key, so sequential scans are off: with
-- a few hundred keys against a growing table the planner would otherwise pick
-- a hash join over a sequential scan of baton.workflows (measured on PG 15:
-- 6-9 ms per commit at 10,000 instances, growing with the table). On the fast
-- path hash and merge joins are off too: on a small table (a few hundred rows,
-- a new or quiet system) they made each commit a full scan of workflows_pkey
-- (PostgreSQL 15, 500 jobs: 250 pages for one instance, 5 by key). After it they
-- are on again (between the batch's own sets, on the slow path and in the
-- functions called below, hash joins are the right choice). Plans
-- are generic: plpgsql otherwise re-plans a statement at every call when its
-- custom plans look cheaper than the generic one, which the unknown sizes of
-- JSON sets make it believe (see insert_first_steps).
DROP FUNCTION IF EXISTS baton.commit(text, text[], text[], bigint[], text[], boolean[], jsonb[], jsonb[], bigint[], bigint[], text[],
  integer[], text[], jsonb[], integer[], integer[], jsonb[], jsonb[], text[], boolean[], boolean[], text[], integer[], text[], jsonb[],
  jsonb, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.commit(text, jsonb, jsonb, jsonb, jsonb, jsonb);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.commit(p_worker text, p_items jsonb, p_instances jsonb, p_history jsonb, p_schedule jsonb,
  p_claim jsonb DEFAULT NULL)
RETURNS TABLE (result text, workflow_id text, task_key text, status text, state jsonb, version integer, task json)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_bad text[];
  v_refused text[];
  v_already text[];
  v_all boolean;
  v_ok text[];
  v_n integer;
  v_done text[];
  v_ids text[];
  v_parents text[];
  v_events boolean;
  v_keys boolean;
  v_rewaits boolean;
  v_gone text[] := '{}';
  v_wake text[] := '{}';
  v_fast boolean;
  v_cancels boolean;
  v_cancel jsonb;
BEGIN
  SELECT array_agg(e.id), coalesce(array_agg(e.parent) FILTER (WHERE e.parent IS NOT NULL), '{}'), coalesce(bool_or(e.cancel IS NOT NULL), false)
  INTO v_ids, v_parents, v_cancels
  FROM jsonb_to_recordset(p_instances) AS e(id text, parent text, cancel jsonb);
  SELECT coalesce(bool_or(c."eventId" IS NOT NULL), false), coalesce(bool_or(c.status = 'waiting' AND c.error IS NULL AND NOT c.paused), false),
    coalesce(bool_or(c."eventKey" IS NOT NULL), false)
  INTO v_events, v_rewaits, v_keys
  FROM jsonb_to_recordset(p_items) AS c("eventId" bigint, status text, error jsonb, paused boolean, "eventKey" text);

  -- The fast path, for a batch with no child instance, no event consumed and no re-wait (every job, most
  -- workflow steps): each instance is locked, compared and written by one UPDATE, and each attempt's
  -- fence is checked by the UPDATE that writes it, instead of a locking read and a fence read first
  -- (measured on PostgreSQL 18: about 14 us per job each, of the commit's ~150). The instances are updated in id
  -- order (the join is driven by the sorted set: see the lock order in drizzle/functions/README.md; the ids
  -- come from JSON, so their sort names the "C" collation that baton.workflows.id sorts in).
  -- A conflicting instance (another version) is left as it is and reported, its attempts' fences read
  -- as on the slow path. An attempt of an applied instance that fails its fence undoes the whole fast
  -- path (an exception block is a subtransaction) and the slow path below runs instead, which sorts
  -- out refused and duplicate attempts.
  v_fast := cardinality(v_parents) = 0 AND NOT v_events AND NOT v_rewaits AND NOT v_keys;
  IF v_fast THEN
    BEGIN
      WITH applied AS (
        UPDATE baton.workflows w
        SET status = e.status, state = e.state, version = w.version + e.bump, completed_task_count = w.completed_task_count + e.done,
            output = CASE WHEN e.status = 'completed' THEN e.output ELSE w.output END,
            error = coalesce(e.error, w.error),
            current_step = CASE WHEN e.finished THEN NULL ELSE coalesce(e.step, w.current_step) END,
            finished_at = CASE WHEN e.finished THEN now() ELSE w.finished_at END,
            updated_at = now()
        FROM (SELECT * FROM jsonb_to_recordset(p_instances) AS e(id text, version integer, status text, state jsonb, bump integer,
                done integer, output jsonb, error jsonb, step text, finished boolean) ORDER BY e.id COLLATE "C") e
        WHERE w.id = e.id AND w.version = e.version
        RETURNING w.id
      )
      SELECT coalesce(array_agg(a.id), '{}') INTO v_ok FROM applied a;
      v_all := cardinality(v_ok) = cardinality(v_ids);
      v_bad := CASE WHEN v_all THEN '{}' ELSE ARRAY(SELECT unnest(v_ids) EXCEPT SELECT unnest(v_ok)) END;

      UPDATE baton.tasks t
      SET status = c.status,
          paused = c.paused,
          output = CASE WHEN c.status = 'completed' THEN c.output ELSE t.output END,
          last_error = coalesce(c.error, t.last_error),
          last_failed_worker = CASE WHEN c.error IS NOT NULL THEN p_worker ELSE t.last_failed_worker END,
          available_at = CASE WHEN c."delayMs" IS NOT NULL THEN now() + c."delayMs" * interval '1 millisecond' ELSE t.available_at END,
          ready_key = CASE WHEN c.status = 'ready' THEN now() + t.priority * baton.aging_interval() ELSE t.ready_key END,
          progress = CASE WHEN c.status = 'completed' THEN 100 ELSE t.progress END,
          claimed_by = NULL, lease_expires_at = NULL,
          finished_at = CASE WHEN c.status IN ('completed', 'failed', 'cancelled') THEN now() END,
          finished_by = CASE WHEN c.quiet THEN p_worker END,
          updated_at = now()
      FROM jsonb_to_recordset(p_items) AS c(wf text, key text, epoch bigint, status text, paused boolean, output jsonb, error jsonb, "delayMs" bigint,
        quiet boolean)
      -- The fence: still this attempt's claim. Its worker and status tests are written against the item
      -- (c.epoch is never null), so that they are join conditions, not filters on baton.tasks alone: the
      -- plan is then one primary-key lookup per item, whatever the statistics say. As filters, with
      -- statistics taken while nothing ran (a backlog analyzed before the workers started), the planner
      -- believed one row was running and drove the join from tasks_lease_idx, re-reading the items for
      -- each running task (185-205 ms for 500 items, S1 at 2k instead of 12k jobs/s), or, on a small
      -- table, from a scan of the whole primary key (PostgreSQL 15, 500 tasks: 483 pages for one item,
      -- 10 by key).
      WHERE t.workflow_id = c.wf AND t.task_key = c.key AND (v_all OR c.wf = ANY (v_ok)) AND t.epoch = c.epoch
        AND t.claimed_by = CASE WHEN c.epoch IS NOT NULL THEN p_worker END
        AND t.status = CASE WHEN c.epoch IS NOT NULL THEN 'running' END;
      GET DIAGNOSTICS v_n = ROW_COUNT;
      IF v_n <> (SELECT count(*) FROM jsonb_to_recordset(p_items) AS c(wf text) WHERE v_all OR c.wf = ANY (v_ok)) THEN
        RAISE EXCEPTION USING ERRCODE = 'BTF01', MESSAGE = 'baton.commit: a fence failed on the fast path';
      END IF;
    EXCEPTION WHEN SQLSTATE 'BTF01' THEN
      v_fast := false;
    END;
    IF v_fast AND NOT v_all THEN
      -- The conflicting instances' attempts: refused or already committed ones are reported with the conflict.
      SELECT coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE NOT coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}'),
             coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}')
      INTO v_refused, v_already
      FROM jsonb_to_recordset(p_items) AS f(wf text, key text, epoch bigint)
      LEFT JOIN baton.tasks t ON t.workflow_id = f.wf AND t.task_key = f.key
      WHERE f.wf = ANY (v_bad) AND NOT coalesce(t.epoch = f.epoch AND t.claimed_by = p_worker AND t.status = 'running', false);
      IF cardinality(v_refused) > 0 THEN
        INSERT INTO baton.stats (key, value) VALUES ('refused_results', cardinality(v_refused))
        ON CONFLICT (key) DO UPDATE SET value = baton.stats.value + excluded.value, updated_at = now();
      END IF;
    END IF;
  END IF;

  -- Hash and merge joins again, for this function only (the SET clauses above restore them on return).
  PERFORM set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true);

  IF NOT v_fast THEN
    -- The slow path. Lock the instances and their parents in id order, by index, and compare versions. A
    -- parent never changes, so the worker's snapshot names it.
    WITH locked AS (
      SELECT w.id, w.version FROM baton.workflows w
      WHERE w.id = ANY (v_ids || v_parents)
      ORDER BY w.id FOR UPDATE
    )
    SELECT coalesce(array_agg(e.id), '{}') INTO v_bad
    FROM jsonb_to_recordset(p_instances) AS e(id text, version integer)
    LEFT JOIN locked l ON l.id = e.id
    WHERE l.id IS NULL OR l.version <> e.version;

    -- The fence, read under those locks: nothing else can change these task rows until we commit.
    SELECT coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE NOT coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}'),
           coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}')
    INTO v_refused, v_already
    FROM jsonb_to_recordset(p_items) AS f(wf text, key text, epoch bigint)
    LEFT JOIN baton.tasks t ON t.workflow_id = f.wf AND t.task_key = f.key
    WHERE NOT coalesce(t.epoch = f.epoch AND t.claimed_by = p_worker AND t.status = 'running', false);

    IF cardinality(v_refused) + cardinality(v_already) > 0 THEN
      v_bad := v_bad || ARRAY(SELECT split_part(r, E'\x1f', 1) FROM unnest(v_refused || v_already) r);
    END IF;
    IF v_events THEN
      v_gone := ARRAY(
        SELECT c.wf || E'\x1f' || c.key FROM jsonb_to_recordset(p_items) AS c(wf text, key text, epoch bigint, "eventId" bigint)
        WHERE c."eventId" IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM baton.events e WHERE e.id = c."eventId" AND (e.held_epoch IS NULL OR e.held_epoch = c.epoch)));
      v_bad := v_bad || ARRAY(SELECT split_part(r, E'\x1f', 1) FROM unnest(v_gone) r);
    END IF;
    IF cardinality(v_refused) > 0 THEN
      INSERT INTO baton.stats (key, value) VALUES ('refused_results', cardinality(v_refused))
      ON CONFLICT (key) DO UPDATE SET value = baton.stats.value + excluded.value, updated_at = now();
    END IF;

    v_all := cardinality(v_bad) = 0;
    v_ok := CASE WHEN v_all THEN v_ids ELSE ARRAY(SELECT unnest(v_ids) EXCEPT SELECT unnest(v_bad)) END;

    IF cardinality(v_ok) > 0 THEN
      IF v_events THEN
        DELETE FROM baton.events e USING jsonb_to_recordset(p_items) AS c(wf text, "eventId" bigint)
        WHERE e.id = c."eventId" AND (v_all OR c.wf = ANY (v_ok));
      END IF;
      -- Re-waits with a free event now (the rule of claim_tasks; the events just consumed are gone).
      IF v_rewaits THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('baton:keyed:' || k.name || E'\x1f' || k.event_key, 0))
        FROM (
          SELECT DISTINCT t.name, coalesce(c."eventKey", t.event_key) AS event_key
          FROM jsonb_to_recordset(p_items) AS c(wf text, key text, status text, error jsonb, paused boolean, "eventKey" text)
          JOIN baton.tasks t ON t.workflow_id = c.wf AND t.task_key = c.key
          WHERE c.status = 'waiting' AND c.error IS NULL AND NOT c.paused AND t.kind = 'event' AND (v_all OR c.wf = ANY (v_ok))
            AND coalesce(c."eventKey", t.event_key) <> ''
          ORDER BY 1, 2
        ) k;
        v_wake := ARRAY(
          SELECT c.wf || E'\x1f' || c.key
          FROM jsonb_to_recordset(p_items) AS c(wf text, key text, status text, error jsonb, paused boolean, "eventKey" text)
          JOIN baton.tasks t ON t.workflow_id = c.wf AND t.task_key = c.key
          WHERE c.status = 'waiting' AND c.error IS NULL AND NOT c.paused AND t.kind = 'event' AND (v_all OR c.wf = ANY (v_ok))
            AND CASE WHEN coalesce(c."eventKey", t.event_key) IS NULL THEN EXISTS (
              SELECT 1 FROM baton.events e
              WHERE e.workflow_id = t.workflow_id AND e.name = t.name
                AND (e.held_epoch IS NULL OR e.held_key = t.task_key
                  OR (e.held_until <= now() AND NOT EXISTS (
                    SELECT 1 FROM baton.tasks h
                    WHERE h.workflow_id = e.workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running'))))
            ELSE EXISTS (
              SELECT 1 FROM baton.events e
              WHERE e.name = t.name AND e.key = coalesce(c."eventKey", t.event_key) AND e.expires_at > now()
                AND (e.held_epoch IS NULL OR (e.held_workflow_id = t.workflow_id AND e.held_key = t.task_key)
                  OR (e.held_until <= now() AND NOT EXISTS (
                    SELECT 1 FROM baton.tasks h
                    WHERE h.workflow_id = e.held_workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running'))))
            END);
      END IF;

      UPDATE baton.tasks t
      SET status = CASE WHEN cardinality(v_wake) > 0 AND c.wf || E'\x1f' || c.key = ANY (v_wake) THEN 'ready' ELSE c.status END,
          paused = c.paused,
          output = CASE WHEN c.status = 'completed' THEN c.output ELSE t.output END,
          last_error = coalesce(c.error, t.last_error),
          last_failed_worker = CASE WHEN c.error IS NOT NULL THEN p_worker ELSE t.last_failed_worker END,
          available_at = CASE WHEN c."delayMs" IS NOT NULL THEN now() + c."delayMs" * interval '1 millisecond' ELSE t.available_at END,
          ready_key = CASE WHEN c.status = 'ready' OR (cardinality(v_wake) > 0 AND c.wf || E'\x1f' || c.key = ANY (v_wake))
            THEN now() + t.priority * baton.aging_interval() ELSE t.ready_key END,
          progress = CASE WHEN c.status = 'completed' THEN 100 ELSE t.progress END,
          claimed_by = NULL, lease_expires_at = NULL,
          finished_at = CASE WHEN c.status IN ('completed', 'failed', 'cancelled') THEN now() END,
          finished_by = CASE WHEN c.quiet THEN p_worker END,
          event_key = coalesce(c."eventKey", t.event_key),
          updated_at = now()
      FROM jsonb_to_recordset(p_items) AS c(wf text, key text, status text, paused boolean, output jsonb, error jsonb, "delayMs" bigint,
        quiet boolean, "eventKey" text)
      WHERE t.workflow_id = c.wf AND t.task_key = c.key AND (v_all OR c.wf = ANY (v_ok));

      UPDATE baton.workflows w
      SET status = e.status, state = e.state, version = w.version + e.bump, completed_task_count = w.completed_task_count + e.done,
          output = CASE WHEN e.status = 'completed' THEN e.output ELSE w.output END,
          error = coalesce(e.error, w.error),
          current_step = CASE WHEN e.finished THEN NULL ELSE coalesce(e.step, w.current_step) END,
          finished_at = CASE WHEN e.finished THEN now() ELSE w.finished_at END,
          updated_at = now()
      FROM jsonb_to_recordset(p_instances)
        AS e(id text, status text, state jsonb, bump integer, done integer, output jsonb, error jsonb, step text, finished boolean)
      WHERE w.id = e.id AND (v_all OR e.id = ANY (v_ok));
    END IF;
  END IF;

  IF cardinality(v_ok) > 0 THEN
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT h.wf, h.version, h.kind, h.detail FROM jsonb_to_recordset(p_history) AS h(wf text, version integer, kind text, detail jsonb)
    WHERE v_all OR h.wf = ANY (v_ok);

    -- Branches a join no longer needs, and the rest of failed branches (src/workflow/join.ts).
    IF v_cancels THEN
      SELECT jsonb_agg(jsonb_build_object('wf', e.id, 'key', k.key)) INTO v_cancel
      FROM jsonb_to_recordset(p_instances) AS e(id text, cancel jsonb)
      CROSS JOIN LATERAL jsonb_array_elements_text(e.cancel) AS k(key)
      WHERE e.cancel IS NOT NULL AND (v_all OR e.id = ANY (v_ok));
      IF v_cancel IS NOT NULL THEN
        PERFORM baton.cancel_steps(v_cancel);
      END IF;
    END IF;

    IF jsonb_array_length(p_schedule) > 0 THEN
      PERFORM baton.schedule_tasks(CASE WHEN v_all THEN p_schedule
        ELSE (SELECT coalesce(jsonb_agg(r), '[]') FROM jsonb_array_elements(p_schedule) r WHERE r ->> 'wf' = ANY (v_ok)) END);
    END IF;

    -- Failed instances, and children, need their open work closed and their parents told; the others only waiters.
    v_done := ARRAY(SELECT e.id FROM jsonb_to_recordset(p_instances) AS e(id text, after boolean) WHERE e.after AND (v_all OR e.id = ANY (v_ok)));
    IF cardinality(v_done) > 0 THEN
      PERFORM baton.after_finish(v_done);
    END IF;
    v_done := ARRAY(SELECT e.id FROM jsonb_to_recordset(p_instances) AS e(id text, finished boolean, after boolean)
                    WHERE e.finished AND NOT e.after AND (v_all OR e.id = ANY (v_ok)));
    v_n := cardinality(v_done);
    IF v_n > 0 THEN
      PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(v_done, ',')) < 7000 THEN array_to_string(v_done, ',') ELSE '*' END);
    END IF;
    IF cardinality(v_wake) > 0 THEN
      PERFORM pg_notify('baton_ready', '');
    END IF;
  END IF;

  IF NOT v_all THEN
    RETURN QUERY
    SELECT 'conflict', w.id, NULL::text, w.status, w.state, w.version, NULL::json
    FROM baton.workflows w WHERE w.id = ANY (v_bad)
    UNION ALL
    SELECT 'refused', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_refused) r
    UNION ALL
    SELECT 'duplicate', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_already) r
    UNION ALL
    SELECT 'event_gone', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_gone) r;
  END IF;
  -- The worker's next tasks, in the same round trip (it asks for as many as it has room for).
  IF coalesce((p_claim ->> 'limit')::integer, 0) > 0 THEN
    RETURN QUERY
    SELECT 'claimed', c.workflow_id, c.task_key, NULL::text, NULL::jsonb, NULL::integer, row_to_json(c)
    FROM baton.claim_tasks(p_worker, (p_claim ->> 'limit')::integer, ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'tags')),
      ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'hashes')), (p_claim ->> 'ttlMs')::integer,
      coalesce((p_claim ->> 'isolateFrom')::integer, 2147483647), coalesce((p_claim ->> 'isolatedSlots')::integer, 0),
      coalesce((p_claim ->> 'declares')::boolean, false)) c;
  END IF;
END
$$;
--> statement-breakpoint
-- function: reclaim_expired
-- Expired leases (a worker crashed, froze or lost its connection): the task
-- is ready again (its ready_key, and so its place in line, is kept) and "lease
-- lost" is recorded. What the lost lease costs the task depends on what is known
-- of its attempt (baton.tasks.begun; see claim_tasks):
--   it may have run: it was marked begun (its worker does that before running a
--     suspect; an older worker's claims are marked at once), or it is not a
--     suspect (nobody says when those begin). The attempt counts and so does
--     the lost lease. A task whose leases were lost p_max_losses times, or that
--     used up its attempts, fails with its instance: it probably kills the
--     worker that runs it.
--   it surely did not: a suspect (its last attempt lost its lease, or it lost
--     one ever) that its worker had not marked begun. The attempt is given back
--     and no lost lease is counted.
-- So a crash costs a task held but not started one lost lease at most, the
-- first time; after that only the crashes of workers that were running it
-- count. (Counting none at the first crash was tried: the tasks beside a
-- poison task, reclaimed with it and claimed again with it in line order, then
-- reached their attempts before isolation kept them apart.)
CREATE OR REPLACE FUNCTION baton.reclaim_expired(p_max_losses integer, p_limit integer DEFAULT 1000)
RETURNS TABLE (reclaimed integer, failed integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_reclaimed integer := 0;
  v_failed integer := 0;
  v_errors jsonb;
BEGIN
  v_ids := ARRAY(
    SELECT DISTINCT t.workflow_id FROM baton.tasks t
    WHERE t.status = 'running' AND t.lease_expires_at < now()
    LIMIT p_limit);
  IF cardinality(v_ids) = 0 THEN
    RETURN QUERY SELECT 0, 0;
    RETURN;
  END IF;
  PERFORM 1 FROM baton.workflows w
  WHERE w.id = ANY (v_ids || ARRAY(SELECT p.parent_id FROM baton.workflows p WHERE p.id = ANY (v_ids) AND p.parent_id IS NOT NULL))
  ORDER BY w.id FOR UPDATE;

  WITH locked AS (
    SELECT t.workflow_id, t.task_key, t.claimed_by, t.epoch, t.begun, t.attempts, t.max_attempts, t.lease_losses,
      t.lease_losses > 0 OR coalesce(t.last_error ->> 'code' = 'LEASE_LOST', false) AS suspect
    FROM baton.tasks t
    WHERE t.workflow_id = ANY (v_ids) AND t.status = 'running' AND t.lease_expires_at < now()
    FOR UPDATE
  ), expired AS (
    -- ran: the attempt began (begun) or may have (not a suspect); only a suspect not begun surely did not.
    SELECT l.workflow_id, l.task_key, l.claimed_by, l.epoch, r.ran, l.attempts AS attempt,
      CASE WHEN r.ran THEN l.attempts ELSE greatest(l.attempts - 1, 0) END AS attempts,
      l.max_attempts, l.lease_losses + r.ran::integer AS losses
    FROM locked l CROSS JOIN LATERAL (SELECT l.begun OR NOT l.suspect AS ran) r
  ), changed AS (
    UPDATE baton.tasks t
    SET status = CASE WHEN e.ran AND (e.losses >= p_max_losses OR e.attempts >= e.max_attempts) THEN 'failed' ELSE 'ready' END,
        lease_losses = e.losses, attempts = e.attempts,
        last_error = jsonb_build_object('name', 'LeaseLostError', 'code', 'LEASE_LOST',
          'message', CASE WHEN e.ran
            THEN format('lease lost: worker %s stopped renewing its claim (attempt %s, lease lost %s time(s))', e.claimed_by, e.attempt, e.losses)
            ELSE format('lease lost: worker %s stopped renewing its claim before the attempt began (the attempt is given back; lease lost %s time(s))',
              e.claimed_by, e.losses) END,
          'worker', e.claimed_by, 'attempt', e.attempt, 'counted', e.ran),
        last_failed_worker = e.claimed_by,
        claimed_by = NULL, lease_expires_at = NULL, updated_at = now(),
        finished_at = CASE WHEN e.ran AND (e.losses >= p_max_losses OR e.attempts >= e.max_attempts) THEN now() END,
        ready_key = coalesce(t.ready_key, now() + t.priority * baton.aging_interval())
    FROM expired e
    WHERE t.workflow_id = e.workflow_id AND t.task_key = e.task_key
    RETURNING t.workflow_id, t.task_key, t.status, t.last_error, e.attempt, e.claimed_by, e.epoch, e.ran
  ), versions AS (
    UPDATE baton.workflows w
    SET version = w.version + n.cnt, updated_at = now()
    FROM (SELECT changed.workflow_id, count(*) AS cnt FROM changed GROUP BY changed.workflow_id) n
    WHERE w.id = n.workflow_id
    RETURNING w.id, w.version, n.cnt
  ), logged AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT c.workflow_id, v.version - v.cnt + row_number() OVER (PARTITION BY c.workflow_id ORDER BY c.task_key), 'lease_lost',
      jsonb_build_object('key', c.task_key, 'attempt', c.attempt, 'worker', c.claimed_by, 'epoch', c.epoch, 'error', c.last_error,
        'task', c.status, 'counted', c.ran)
    FROM changed c JOIN versions v ON v.id = c.workflow_id
    RETURNING 1
  )
  SELECT count(*) FILTER (WHERE c.status = 'ready'), count(*) FILTER (WHERE c.status = 'failed'),
    jsonb_object_agg(c.workflow_id, c.last_error || jsonb_build_object('step', c.task_key,
      'message', 'task "' || c.task_key || '" failed: ' || (c.last_error ->> 'message'))) FILTER (WHERE c.status = 'failed')
  INTO v_reclaimed, v_failed, v_errors
  FROM changed c;

  IF v_reclaimed > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  IF v_errors IS NOT NULL THEN
    PERFORM baton.fail_instances(v_errors);
  END IF;
  RETURN QUERY SELECT v_reclaimed, v_failed;
END
$$;
