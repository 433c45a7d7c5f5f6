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
CREATE OR REPLACE FUNCTION baton.claim_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text)
LANGUAGE plpgsql
-- Key lookups only (see baton.commit): no sequential scan of a growing table, no JIT.
SET enable_seqscan = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_promoted integer;
  v_wf text[];
  v_key text[];
  v_kind text[];
  v_name text[];
  v_hash text[];
  v_epoch bigint[];
  v_attempts integer[];
  v_max integer[];
  v_losses integer[];
  v_input jsonb[];
  v_output jsonb[];
  v_avail timestamptz[];
  v_lease timestamptz[];
  v_rk timestamptz[];
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

  -- The claim itself, its rows kept in arrays (one per column, element i of each is one row, in the
  -- order the worker takes them), so that the event part runs only when a waitForEvent step was
  -- claimed: with none, its CTEs cost every claim about 50 us (measured on PostgreSQL 18), and its
  -- UPDATE of baton.events may be planned as a scan of every buffered event.
  WITH claimed AS (
    UPDATE baton.tasks t
    SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
        started_at = coalesce(t.started_at, now()), updated_at = now()
    FROM baton.find_available_tasks(p_worker, p_limit, p_tags, p_hashes, p_isolate_from, p_isolated_slots, p_lock => true) chosen
    WHERE t.workflow_id = chosen.workflow_id AND t.task_key = chosen.task_key
    RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
      t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key
  ), ordered AS (
    SELECT * FROM claimed c ORDER BY c.ready_key, c.workflow_id, c.task_key
  )
  SELECT array_agg(c.workflow_id), array_agg(c.task_key), array_agg(c.kind), array_agg(c.name), array_agg(c.definition_hash),
    array_agg(c.epoch), array_agg(c.attempts), array_agg(c.max_attempts), array_agg(c.lease_losses), array_agg(c.input),
    array_agg(c.output), array_agg(c.available_at), array_agg(c.lease_expires_at), array_agg(c.ready_key),
    coalesce(bool_or(c.kind = 'event'), false)
  INTO v_wf, v_key, v_kind, v_name, v_hash, v_epoch, v_attempts, v_max, v_losses, v_input, v_output, v_avail, v_lease, v_rk, v_events
  FROM ordered c;
  IF v_wf IS NULL THEN
    RETURN;
  END IF;

  IF NOT v_events THEN
    RETURN QUERY
    SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses,
      coalesce(c.input, w.input), c.output, c.available_at, c.lease_expires_at, w.name, w.status, w.state, w.version, w.priority, w.tags,
      w.parent_id, NULL::bigint, NULL::jsonb, w.trace_context, NULL::text
    FROM unnest(v_wf, v_key, v_kind, v_name, v_hash, v_epoch, v_attempts, v_max, v_losses, v_input, v_output, v_avail, v_lease)
      WITH ORDINALITY AS c(workflow_id, task_key, kind, name, definition_hash, epoch, attempts, max_attempts, lease_losses, input, output,
        available_at, lease_expires_at, n)
    JOIN baton.workflows w ON w.id = c.workflow_id
    ORDER BY c.n;
    RETURN;
  END IF;

  RETURN QUERY
  WITH claimed AS (
    SELECT c.*, t.event_key
    FROM unnest(v_wf, v_key, v_kind, v_name, v_hash, v_epoch, v_attempts, v_max, v_losses, v_input, v_output, v_avail, v_lease, v_rk)
      WITH ORDINALITY AS c(workflow_id, task_key, kind, name, definition_hash, epoch, attempts, max_attempts, lease_losses, input, output,
        available_at, lease_expires_at, ready_key, n)
    LEFT JOIN baton.tasks t ON c.kind = 'event' AND t.workflow_id = c.workflow_id AND t.task_key = c.task_key
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
    w.status, w.state, w.version, w.priority, w.tags, w.parent_id, g.id, g.payload, w.trace_context, c.event_key
  FROM claimed c
  JOIN baton.workflows w ON w.id = c.workflow_id
  LEFT JOIN given g ON g.workflow_id = c.workflow_id AND g.task_key = c.task_key
  ORDER BY c.n;
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
CREATE OR REPLACE FUNCTION baton.claim_tasks_async_commit(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY SELECT * FROM baton.claim_tasks(p_worker, p_limit, p_tags, p_hashes, p_ttl_ms, p_isolate_from, p_isolated_slots);
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
--     {limit, tags, hashes, ttlMs, isolateFrom, isolatedSlots} (see claim_tasks).
--
-- Every statement here looks rows up by key, so sequential scans are off: with
-- a few hundred keys against a growing table the planner would otherwise pick
-- a hash join over a sequential scan of baton.workflows (measured on PG 15:
-- 6-9 ms per commit at 10,000 instances, growing with the table). Hash joins
-- stay allowed (between the batch's own sets they are the right choice). Plans
-- are generic: plpgsql otherwise re-plans a statement at every call when its
-- custom plans look cheaper than the generic one, which the unknown sizes of
-- JSON sets make it believe (see insert_first_steps).
DROP FUNCTION IF EXISTS baton.commit(text, text[], text[], bigint[], text[], boolean[], jsonb[], jsonb[], bigint[], bigint[], text[],
  integer[], text[], jsonb[], integer[], integer[], jsonb[], jsonb[], text[], boolean[], boolean[], text[], integer[], text[], jsonb[],
  jsonb, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.commit(p_worker text, p_items jsonb, p_instances jsonb, p_history jsonb, p_schedule jsonb,
  p_claim jsonb DEFAULT NULL)
RETURNS TABLE (result text, workflow_id text, task_key text, status text, state jsonb, version integer, task jsonb)
LANGUAGE plpgsql
SET enable_seqscan = off
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
  -- order (the join is driven by the sorted set: see the lock order in drizzle/functions/README.md).
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
                done integer, output jsonb, error jsonb, step text, finished boolean) ORDER BY e.id) e
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
      WHERE t.workflow_id = c.wf AND t.task_key = c.key AND (v_all OR c.wf = ANY (v_ok))
        AND t.epoch = c.epoch AND t.claimed_by = p_worker AND t.status = 'running';
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
    SELECT 'conflict', w.id, NULL::text, w.status, w.state, w.version, NULL::jsonb
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
    SELECT 'claimed', c.workflow_id, c.task_key, NULL::text, NULL::jsonb, NULL::integer, to_jsonb(c)
    FROM baton.claim_tasks(p_worker, (p_claim ->> 'limit')::integer, ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'tags')),
      ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'hashes')), (p_claim ->> 'ttlMs')::integer,
      coalesce((p_claim ->> 'isolateFrom')::integer, 2147483647), coalesce((p_claim ->> 'isolatedSlots')::integer, 0)) c;
  END IF;
END
$$;
--> statement-breakpoint
-- function: insert_first_steps
-- The first steps of freshly inserted instances, set-based: one INSERT for the
-- task rows of all of them (a plan's steps x the instances). Their 'started'
-- checkpoint is stored only for instances that start paused (p_held); for the
-- others it is read from the instance (baton.started_checkpoint), one history
-- row fewer per start. The instances' rows exist already (the caller
-- inserted them, so it knows they are new). Child steps are left to the
-- caller (each starts an instance of its own). This is what makes a bulk
-- start cost a few statements instead of a function call per instance.
-- p_ids and p_inputs are parallel arrays; p_plan is definitions.plan.
-- A first step's input is its instance's: it is stored once, on the instance,
-- and the task row's input is NULL (the claim reads it from the instance).
-- p_limit_keys (NULL, or parallel to p_ids): each instance's key for its first steps that have
-- limits counted per key (plan step `limit.keyed`); a step with limits not per key gets the key ''.
-- A keyed step whose key is NULL gets no limit_key (the callers that must have one check for it).
-- A keyed waitForEvent step (plan step `keyed`) starts ready with event_key '' (see schedule_tasks).
-- Returns how many task rows became ready at once.
DROP FUNCTION IF EXISTS baton.insert_first_steps(text[], jsonb[], jsonb, text, integer, text[], timestamptz, boolean, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.insert_first_steps(p_ids text[], p_inputs jsonb[], p_plan jsonb, p_hash text, p_priority integer,
  p_tags text[], p_run_at timestamptz, p_held boolean, p_parent_id text, p_limit_keys text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
-- The planner sees plan steps x instances with unknown sizes and estimates costs high enough to
-- JIT-compile this statement: 1.5 s for a 5,000-row insert that takes 0.2 s without it (PG 15).
-- Those estimates also make plpgsql judge its generic plan worse than a custom one, so it planned
-- the statement again at every call: 1.4 ms per single start, 0.16 ms with the generic plan.
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_now timestamptz := now();
  v_ready integer;
  v_status text := CASE WHEN p_held THEN 'paused' ELSE 'running' END;
BEGIN
  WITH steps AS (
    SELECT s ->> 'key' AS key, s ->> 'kind' AS kind, s ->> 'name' AS name,
      coalesce(p_priority, (s ->> 'priority')::integer, 0) AS priority,
      ARRAY(SELECT DISTINCT x FROM unnest(ARRAY(SELECT jsonb_array_elements_text(s -> 'tags')) || p_tags) x ORDER BY x) AS tags,
      coalesce((s ->> 'maxAttempts')::integer, 1) AS max_attempts,
      s -> 'limit' AS lim,
      coalesce((s ->> 'keyed')::boolean, false) AS keyed,
      CASE s ->> 'kind'
        WHEN 'sleep' THEN v_now + (s ->> 'delayMs')::bigint * interval '1 millisecond'
        WHEN 'event' THEN v_now + (s ->> 'timeoutMs')::bigint * interval '1 millisecond'
        ELSE greatest(v_now, coalesce(p_run_at, v_now))
      END AS available_at
    FROM jsonb_array_elements(p_plan -> 'steps') s
    WHERE s ->> 'kind' <> 'child'
  ), decided AS (
    SELECT i.id, st.*, CASE WHEN st.lim IS NULL THEN NULL WHEN (st.lim ->> 'keyed')::boolean THEN i.limit_key ELSE '' END AS limit_key,
      CASE
        WHEN p_held OR st.kind = 'sleep' THEN 'waiting'
        WHEN st.kind = 'event' AND st.keyed THEN 'ready'
        WHEN st.kind = 'event' THEN
          CASE WHEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = i.id AND e.name = st.name) THEN 'ready' ELSE 'waiting' END
        WHEN st.available_at > v_now THEN 'waiting'
        ELSE 'ready'
      END AS status
    FROM unnest(p_ids, p_inputs, coalesce(p_limit_keys, '{}')) AS i(id, input, limit_key)
    CROSS JOIN steps st
    WHERE i.id IS NOT NULL
  ), inserted AS (
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, ready_key,
      available_at, max_attempts, input, limit_key, event_key, created_at, updated_at)
    SELECT d.id, d.key, d.kind, d.name, p_hash, d.status, p_held, d.priority, d.tags,
      CASE WHEN d.status = 'ready' THEN least(d.available_at, v_now) + d.priority * baton.aging_interval() END,
      d.available_at, d.max_attempts, NULL, d.limit_key, CASE WHEN d.keyed THEN '' END, v_now, v_now
    FROM decided d
    RETURNING status, tags
  ), tag_sets AS (
    INSERT INTO baton.tag_sets (tags)
    SELECT DISTINCT i.tags FROM inserted i
    ON CONFLICT DO NOTHING
  ), started AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT i.id, 1, 'started', d.detail
    FROM unnest(p_ids) AS i(id)
    CROSS JOIN (SELECT jsonb_build_object('status', v_status, 'definition', p_hash, 'state', p_plan -> 'state',
        'scheduled', (SELECT jsonb_agg(s ->> 'key') FROM jsonb_array_elements(p_plan -> 'steps') s),
        'priority', p_priority, 'tags', to_jsonb(p_tags), 'parent', p_parent_id) AS detail) d
    WHERE p_held
  )
  SELECT count(*) FILTER (WHERE status = 'ready') INTO v_ready FROM inserted;
  RETURN v_ready;
END
$$;
--> statement-breakpoint
-- function: publish_event
-- Publish a keyed event: p_name and p_key address whichever instance waits for
-- them (waitForEvent(name, { key })), not an instance id. The event is
-- buffered, FIFO by (name, key), until a keyed wait consumes it, for at most
-- p_retention_ms (NULL: 7 days); after that it is never delivered, and the
-- reconciler deletes it. Each event is consumed by exactly one wait: the claim
-- hands the oldest free one to a claimed wait and holds it for that attempt,
-- whose commit deletes it (see claim_tasks, commit).
-- One waiter is woken per event: the oldest still waiting on (name, key), by
-- when its wait began. The advisory lock on (name, key) pairs with the commit
-- of a re-wait (baton.commit), which takes it before it looks for a buffered
-- event: either the commit sees this event, or this sees the waiting step.
-- Returns the event's id.
CREATE OR REPLACE FUNCTION baton.publish_event(p_name text, p_key text, p_payload jsonb DEFAULT NULL, p_retention_ms bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_event bigint;
BEGIN
  IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 128 OR p_name ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'event name must be 1-128 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 255 OR p_key ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'event key must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_retention_ms IS NOT NULL AND p_retention_ms NOT BETWEEN 1 AND 31536000000 THEN
    RAISE EXCEPTION 'event retention must be from 1 ms to 365 days (got % ms)', p_retention_ms USING ERRCODE = 'BTV01';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('baton:keyed:' || p_name || E'\x1f' || p_key, 0));
  INSERT INTO baton.events (workflow_id, name, key, payload, expires_at)
  VALUES (NULL, p_name, p_key, p_payload, now() + coalesce(p_retention_ms, 604800000) * interval '1 millisecond')
  RETURNING id INTO v_event;
  UPDATE baton.tasks t
  SET status = 'ready', ready_key = now() + t.priority * baton.aging_interval(), updated_at = now()
  FROM (
    SELECT w.workflow_id, w.task_key FROM baton.tasks w
    WHERE w.name = p_name AND w.event_key = p_key AND w.status = 'waiting' AND NOT w.paused AND w.kind = 'event'
    ORDER BY w.created_at, w.workflow_id, w.task_key
    LIMIT 1
    FOR UPDATE SKIP LOCKED
  ) oldest
  WHERE t.workflow_id = oldest.workflow_id AND t.task_key = oldest.task_key;
  IF FOUND THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_event;
END
$$;
--> statement-breakpoint
-- function: resume_workflow
-- Resume a paused instance and its paused descendants: what was held runs.
-- Returns the status it had. The rule for repeated control actions (pause,
-- resume, cancel): a repeat, or asking for what already holds, succeeds and
-- changes nothing (resuming a running instance returns 'running'); asking
-- what contradicts the instance's state is an error (resuming a finished one).
CREATE OR REPLACE FUNCTION baton.resume_workflow(p_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_ids text[];
  v_more text[];
  v_ready integer;
BEGIN
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status IN ('completed', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  IF v_status <> 'paused' THEN
    RETURN v_status;
  END IF;
  v_ids := ARRAY[p_id];
  v_more := v_ids;
  LOOP
    v_more := ARRAY(SELECT w.id FROM baton.workflows w WHERE w.parent_id = ANY (v_more) AND w.status = 'paused'
                    ORDER BY w.id FOR UPDATE);
    EXIT WHEN cardinality(v_more) = 0;
    v_ids := v_ids || v_more;
  END LOOP;
  DELETE FROM baton.signals s WHERE s.workflow_id = ANY (v_ids) AND s.kind = 'pause';
  WITH done AS (
    UPDATE baton.workflows w SET status = 'running', version = w.version + 1, updated_at = now()
    WHERE w.id = ANY (v_ids) AND w.status = 'paused'
    RETURNING w.id, w.version
  )
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  SELECT done.id, done.version, 'resumed', jsonb_build_object('status', 'running') FROM done;
  UPDATE baton.tasks t
  SET paused = false,
      status = CASE WHEN ready.yes THEN 'ready' ELSE 'waiting' END,
      ready_key = CASE WHEN ready.yes THEN least(coalesce(t.available_at, now()), now()) + t.priority * baton.aging_interval() END,
      updated_at = now()
  FROM baton.tasks src
  CROSS JOIN LATERAL (SELECT CASE
      -- A keyed wait: ready to compute its key (''), or when an event is published under it.
      WHEN src.kind = 'event' AND src.event_key IS NOT NULL THEN src.event_key = '' OR src.available_at <= now()
        OR EXISTS (SELECT 1 FROM baton.events e WHERE e.name = src.name AND e.key = src.event_key AND e.expires_at > now())
      WHEN src.kind = 'event' THEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = src.workflow_id AND e.name = src.name)
                                   OR src.available_at <= now()
      WHEN src.kind = 'child' THEN src.output IS NOT NULL
      ELSE src.available_at <= now()
    END AS yes) ready
  WHERE t.workflow_id = ANY (v_ids) AND t.paused AND t.workflow_id = src.workflow_id AND t.task_key = src.task_key;
  GET DIAGNOSTICS v_ready = ROW_COUNT;
  PERFORM pg_notify('baton_ready', '');
  RETURN v_status;
END
$$;
--> statement-breakpoint
-- function: retry_instance
-- Make one failed or cancelled instance run again from where it stopped (the
-- work of retry_workflow; the caller holds the instance's row lock and has
-- checked its status). Its failed and cancelled steps become runnable again
-- with fresh attempts; completed steps keep their outputs, and the control
-- state (open parallel frames) is kept as it was, since the steps reset here
-- are exactly the ones it still waits for. Task rows keep their input: a
-- first step's is NULL (the claim hands it the instance's input).
--   task, branch  ready now
--   sleep         waiting until its original wake-up time (at once if passed)
--   event         waiting with a fresh timeout of the same length (ready if
--                 one is buffered); a keyed wait is ready, to compute its key
--                 again (the key function may have been what failed)
--   child         its failed or cancelled child instance is retried too (this
--                 function, recursively); a completed child hands its output
--                 again (ready); a gone child makes the retry an error
-- Steps in branches that a fired join no longer waits for stay as they are
-- (baton.join_settled): what an any-of or quorum join cancelled is not run again.
-- A failed instance whose error names no failed step (a branch, loop or
-- definition error after a completed step) has nothing to run again: BTS01.
-- Records a 'retried' checkpoint; p_via names the parent whose retry this is.
-- Returns the step keys reset and the descendants retried with it.
CREATE OR REPLACE FUNCTION baton.retry_instance(p_id text, p_via text DEFAULT NULL)
RETURNS TABLE (steps text[], children text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_w record;
  v_child record;
  v_sub record;
  v_children text[] := '{}';
  v_steps text[];
  v_names text;
  v_version integer;
BEGIN
  SELECT w.status, w.error, w.version, w.state INTO v_w FROM baton.workflows w WHERE w.id = p_id;
  IF v_w.status = 'failed' AND NOT EXISTS (
    SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = v_w.error ->> 'step' AND t.status = 'failed') THEN
    RAISE EXCEPTION 'workflow instance "%" failed in the workflow itself, not in a step (%): there is no step to run again',
      p_id, coalesce(v_w.error ->> 'message', 'no error recorded') USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;

  -- Child steps to run again: lock their instances in id order (children sort after their parent).
  PERFORM 1 FROM baton.workflows c
  WHERE c.parent_id = p_id
    AND EXISTS (SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = c.parent_key AND t.kind = 'child'
                  AND t.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, t.task_key))
  ORDER BY c.id FOR UPDATE;
  FOR v_child IN
    SELECT t.task_key, c.id, c.status
    FROM baton.tasks t
    LEFT JOIN baton.workflows c ON c.id = t.workflow_id || '/' || t.task_key AND c.parent_id = t.workflow_id AND c.parent_key = t.task_key
    WHERE t.workflow_id = p_id AND t.kind = 'child' AND t.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, t.task_key)
    ORDER BY c.id
  LOOP
    IF v_child.id IS NULL THEN
      RAISE EXCEPTION 'workflow instance "%" cannot be retried: its child instance "%/%" is gone', p_id, p_id, v_child.task_key
        USING ERRCODE = 'BTS01', DETAIL = v_w.status;
    END IF;
    IF v_child.status IN ('failed', 'cancelled') THEN
      SELECT * INTO v_sub FROM baton.retry_instance(v_child.id, p_id);
      v_children := v_children || v_child.id || v_sub.children;
    END IF;
  END LOOP;

  WITH reset AS (
    UPDATE baton.tasks t
    SET status = CASE
          WHEN t.kind IN ('task', 'branch') THEN 'ready'
          WHEN t.kind = 'event' AND t.event_key IS NOT NULL THEN 'ready'
          WHEN t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name) THEN 'ready'
          WHEN t.kind = 'child' AND c.status = 'completed' THEN 'ready'
          ELSE 'waiting'
        END,
        ready_key = CASE
          WHEN t.kind IN ('task', 'branch') OR (t.kind = 'event' AND t.event_key IS NOT NULL)
            OR (t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name))
            OR (t.kind = 'child' AND c.status = 'completed')
          THEN now() + t.priority * baton.aging_interval()
        END,
        available_at = CASE t.kind
          WHEN 'sleep' THEN t.available_at
          -- (no time-out stays none: greatest() would turn the NULL into 0, a time-out at once)
          WHEN 'event' THEN CASE WHEN t.available_at IS NOT NULL THEN now() + greatest(t.available_at - t.created_at, interval '0') END
          WHEN 'child' THEN NULL
          ELSE now()
        END,
        output = CASE WHEN t.kind = 'child' AND c.status = 'completed'
          THEN jsonb_build_object('status', c.status, 'output', c.output, 'error', c.error) END,
        event_key = CASE WHEN t.event_key IS NOT NULL THEN '' END,
        attempts = 0, lease_losses = 0, paused = false, last_error = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL,
        progress = NULL, progress_message = NULL, started_at = NULL, finished_at = NULL, updated_at = now()
    FROM baton.tasks o
    LEFT JOIN baton.workflows c ON o.kind = 'child' AND c.id = o.workflow_id || '/' || o.task_key
    WHERE o.workflow_id = p_id AND o.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, o.task_key)
      AND t.workflow_id = o.workflow_id AND t.task_key = o.task_key
    RETURNING t.task_key, t.name
  )
  SELECT array_agg(r.task_key ORDER BY r.task_key), string_agg(DISTINCT r.name, ', ') INTO v_steps, v_names FROM reset r;
  IF v_steps IS NULL THEN
    RAISE EXCEPTION 'workflow instance "%" has no failed or cancelled step to run again', p_id USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;

  DELETE FROM baton.signals s WHERE s.workflow_id = p_id;
  UPDATE baton.workflows w
  SET status = 'running', error = NULL, output = NULL, finished_at = NULL, current_step = v_names,
      version = w.version + 1, updated_at = now()
  WHERE w.id = p_id
  RETURNING w.version INTO v_version;
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  VALUES (p_id, v_version, 'retried', jsonb_strip_nulls(jsonb_build_object('status', 'running', 'was', v_w.status, 'error', v_w.error,
    'steps', to_jsonb(v_steps), 'children', CASE WHEN cardinality(v_children) > 0 THEN to_jsonb(v_children) END, 'via', p_via)));
  RETURN QUERY SELECT v_steps, v_children;
END
$$;
--> statement-breakpoint
-- function: schedule_tasks
-- Insert scheduled steps as task rows and start child instances.
-- p_rows: [{wf, key, kind, name, hash, input, priority, tags, maxAttempts,
--           delayMs, timeoutMs, runAt, held, limitKey, child: {name, hash, priority, tags, traceparent, tracestate, limitKey}}]
-- limitKey: for a task with limits, the key they count under ('' for the task as a whole; the worker
-- computed it), else null; a child's is its first steps' (see start_workflow).
-- keyed: a keyed waitForEvent step: it starts ready with event_key '' (its worker computes the key
-- from the instance's input, see claim_tasks), whatever is buffered.
-- Returns how many rows became ready at once.
CREATE OR REPLACE FUNCTION baton.schedule_tasks(p_rows jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz := now();
  v_ready integer;
  v_child record;
BEGIN
  WITH rows AS (
    SELECT r.*, (r.held IS TRUE) AS is_held,
      CASE r.kind
        WHEN 'sleep' THEN v_now + r."delayMs" * interval '1 millisecond'
        WHEN 'event' THEN v_now + r."timeoutMs" * interval '1 millisecond'
        WHEN 'child' THEN NULL
        ELSE greatest(v_now, coalesce(r."runAt", v_now))
      END AS available_at
    FROM jsonb_to_recordset(p_rows) AS r(wf text, key text, kind text, name text, hash text, input jsonb, priority integer,
      tags text[], "maxAttempts" integer, "delayMs" bigint, "timeoutMs" bigint, "runAt" timestamptz, held boolean, "limitKey" text,
      keyed boolean)
  ), decided AS (
    SELECT rows.*,
      CASE
        WHEN rows.is_held THEN 'waiting'
        WHEN rows.kind IN ('sleep', 'child') THEN 'waiting'
        WHEN rows.kind = 'event' AND rows.keyed THEN 'ready'
        WHEN rows.kind = 'event' THEN
          CASE WHEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = rows.wf AND e.name = rows.name) THEN 'ready' ELSE 'waiting' END
        WHEN rows.available_at > v_now THEN 'waiting'
        ELSE 'ready'
      END AS status
    FROM rows
  ), inserted AS (
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, ready_key,
      available_at, max_attempts, input, limit_key, event_key, created_at, updated_at)
    SELECT d.wf, d.key, d.kind, d.name, d.hash, d.status, d.is_held, coalesce(d.priority, 0), coalesce(d.tags, '{}'),
      CASE WHEN d.status = 'ready' THEN least(coalesce(d.available_at, v_now), v_now) + coalesce(d.priority, 0) * baton.aging_interval() END,
      d.available_at, coalesce(d."maxAttempts", 1), coalesce(d.input, 'null'), d."limitKey",
      CASE WHEN d.kind = 'event' AND d.keyed THEN '' END, v_now, v_now
    FROM decided d
    RETURNING status, tags
  ), tag_sets AS (
    INSERT INTO baton.tag_sets (tags)
    SELECT DISTINCT i.tags FROM inserted i
    ON CONFLICT DO NOTHING
  )
  SELECT count(*) FILTER (WHERE status = 'ready') INTO v_ready FROM inserted;

  FOR v_child IN
    SELECT r.wf, r.key, r.input, r.held, c.name, c.hash, c.priority, c.tags, c.traceparent, c.tracestate, c."limitKey"
    FROM jsonb_to_recordset(p_rows) AS r(wf text, key text, kind text, input jsonb, held boolean, child jsonb)
    CROSS JOIN LATERAL jsonb_to_record(r.child) AS c(name text, hash text, priority integer, tags text[], traceparent text, tracestate text,
      "limitKey" text)
    WHERE r.kind = 'child'
  LOOP
    -- The child's trace context: the span of the attempt that scheduled it, else (untraced) its parent's.
    PERFORM baton.start_workflow(v_child.name, v_child.input, v_child.wf || '/' || v_child.key, v_child.priority,
      v_child.tags, 'useExisting', v_child.hash, NULL, 'workflow', v_child.wf, v_child.key, v_child.held IS TRUE,
      v_child.traceparent, v_child.tracestate, v_child."limitKey");
  END LOOP;

  IF v_ready > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_ready;
END
$$;
--> statement-breakpoint
-- function: send_event
-- Send an event to an instance: buffered FIFO by (instance, name); a
-- waitForEvent step waiting for it becomes ready. An instance that does not
-- exist yet keeps the event (it may arrive before the start). A keyed wait
-- (event_key set) takes only published events (baton.publish_event), not these.
CREATE OR REPLACE FUNCTION baton.send_event(p_id text, p_name text, p_payload jsonb DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_event bigint;
BEGIN
  IF p_id IS NULL OR length(p_id) = 0 OR length(p_id) > 2000 OR p_id ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'id must be a non-empty string without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 128 OR p_name ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'event name must be 1-128 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || p_id, 0));
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF FOUND AND v_status IN ('completed', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %; the event was not stored', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  INSERT INTO baton.events (workflow_id, name, payload) VALUES (p_id, p_name, p_payload) RETURNING id INTO v_event;
  UPDATE baton.tasks t
  SET status = 'ready', ready_key = now() + t.priority * baton.aging_interval(), updated_at = now()
  WHERE t.workflow_id = p_id AND t.kind = 'event' AND t.name = p_name AND t.status = 'waiting' AND NOT t.paused
    AND t.event_key IS NULL;
  IF FOUND THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_event;
END
$$;
