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
DROP FUNCTION IF EXISTS baton.claim_tasks(text, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.claim_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text)
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
      w.parent_id, NULL::bigint, NULL::jsonb, w.trace_context
    FROM unnest(v_wf, v_key, v_kind, v_name, v_hash, v_epoch, v_attempts, v_max, v_losses, v_input, v_output, v_avail, v_lease)
      WITH ORDINALITY AS c(workflow_id, task_key, kind, name, definition_hash, epoch, attempts, max_attempts, lease_losses, input, output,
        available_at, lease_expires_at, n)
    JOIN baton.workflows w ON w.id = c.workflow_id
    ORDER BY c.n;
    RETURN;
  END IF;

  RETURN QUERY
  WITH claimed AS (
    SELECT * FROM unnest(v_wf, v_key, v_kind, v_name, v_hash, v_epoch, v_attempts, v_max, v_losses, v_input, v_output, v_avail, v_lease, v_rk)
      WITH ORDINALITY AS c(workflow_id, task_key, kind, name, definition_hash, epoch, attempts, max_attempts, lease_losses, input, output,
        available_at, lease_expires_at, ready_key, n)
  ), waits AS (
    SELECT c.workflow_id, c.name, c.task_key, c.epoch, c.lease_expires_at,
      row_number() OVER (PARTITION BY c.workflow_id, c.name ORDER BY c.ready_key, c.task_key) AS nth
    FROM claimed c WHERE c.kind = 'event'
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
  ), given AS (
    SELECT w.workflow_id, w.task_key, w.epoch, w.lease_expires_at, f.id, f.payload
    FROM waits w JOIN free f ON f.workflow_id = w.workflow_id AND f.name = w.name AND f.nth = w.nth
  ), held AS (
    UPDATE baton.events e SET held_key = g.task_key, held_epoch = g.epoch, held_until = g.lease_expires_at
    FROM given g WHERE e.id = g.id
  )
  SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses,
    coalesce(c.input, w.input), c.output, c.available_at, c.lease_expires_at, w.name, w.status, w.state, w.version, w.priority, w.tags,
    w.parent_id, g.id, g.payload, w.trace_context
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
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY SELECT * FROM baton.claim_tasks(p_worker, p_limit, p_tags, p_hashes, p_ttl_ms, p_isolate_from, p_isolated_slots);
END
$$;
--> statement-breakpoint
-- function: schedule_tasks
-- Insert scheduled steps as task rows and start child instances.
-- p_rows: [{wf, key, kind, name, hash, input, priority, tags, maxAttempts,
--           delayMs, timeoutMs, runAt, held, child: {name, hash, priority, tags, traceparent, tracestate}}]
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
      tags text[], "maxAttempts" integer, "delayMs" bigint, "timeoutMs" bigint, "runAt" timestamptz, held boolean)
  ), decided AS (
    SELECT rows.*,
      CASE
        WHEN rows.is_held THEN 'waiting'
        WHEN rows.kind IN ('sleep', 'child') THEN 'waiting'
        WHEN rows.kind = 'event' THEN
          CASE WHEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = rows.wf AND e.name = rows.name) THEN 'ready' ELSE 'waiting' END
        WHEN rows.available_at > v_now THEN 'waiting'
        ELSE 'ready'
      END AS status
    FROM rows
  ), inserted AS (
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, ready_key,
      available_at, max_attempts, input, created_at, updated_at)
    SELECT d.wf, d.key, d.kind, d.name, d.hash, d.status, d.is_held, coalesce(d.priority, 0), coalesce(d.tags, '{}'),
      CASE WHEN d.status = 'ready' THEN least(coalesce(d.available_at, v_now), v_now) + coalesce(d.priority, 0) * baton.aging_interval() END,
      d.available_at, coalesce(d."maxAttempts", 1), coalesce(d.input, 'null'), v_now, v_now
    FROM decided d
    RETURNING status, tags
  ), tag_sets AS (
    INSERT INTO baton.tag_sets (tags)
    SELECT DISTINCT i.tags FROM inserted i
    ON CONFLICT DO NOTHING
  )
  SELECT count(*) FILTER (WHERE status = 'ready') INTO v_ready FROM inserted;

  FOR v_child IN
    SELECT r.wf, r.key, r.input, r.held, c.name, c.hash, c.priority, c.tags, c.traceparent, c.tracestate
    FROM jsonb_to_recordset(p_rows) AS r(wf text, key text, kind text, input jsonb, held boolean, child jsonb)
    CROSS JOIN LATERAL jsonb_to_record(r.child) AS c(name text, hash text, priority integer, tags text[], traceparent text, tracestate text)
    WHERE r.kind = 'child'
  LOOP
    -- The child's trace context: the span of the attempt that scheduled it, else (untraced) its parent's.
    PERFORM baton.start_workflow(v_child.name, v_child.input, v_child.wf || '/' || v_child.key, v_child.priority,
      v_child.tags, 'useExisting', v_child.hash, NULL, 'workflow', v_child.wf, v_child.key, v_child.held IS TRUE,
      v_child.traceparent, v_child.tracestate);
  END LOOP;

  IF v_ready > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_ready;
END
$$;
--> statement-breakpoint
-- function: start_many
-- Many instances of one definition in one call: one row per input, in order,
-- with whether it was created. p_inputs is a JSON array. Set-based: one INSERT
-- per table for the whole batch (the instances, their first steps, their
-- history), so a bulk start costs about what a plain queue's bulk insert does.
-- Definitions whose first steps start child workflows go through
-- start_workflow per input.
-- p_ids: NULL (every id generated), or one id per input (NULL: generated);
-- an id that is taken follows p_on_conflict as start_workflow does (fail:
-- BTC01 and nothing is written; useExisting: created false;
-- terminateExisting: the old instance is cancelled and replaced). The
-- taken ones go through start_workflow one by one; the rest stay set-based.
-- p_traceparent, p_tracestate: as in start_workflow, the same for every instance.
DROP FUNCTION IF EXISTS baton.start_many(text, jsonb, text, integer, text[], text);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.start_many(text, jsonb, text, integer, text[], text, text[], text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.start_many(
  p_name text,
  p_inputs jsonb,
  p_kind text DEFAULT 'workflow',
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_hash text DEFAULT NULL,
  p_ids text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail',
  p_traceparent text DEFAULT NULL,
  p_tracestate text DEFAULT NULL
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE plpgsql
-- Generic plans for every statement inside (see insert_first_steps).
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_tags text[];
  v_given text[];
  v_ids text[];
  v_inputs jsonb[];
  v_new text[];
  v_new_inputs jsonb[];
  v_created boolean[];
  v_limit bigint := coalesce(nullif(current_setting('baton.max_payload_bytes', true), ''), '1048576')::bigint;
  v_big record;
  v_n integer;
  v_one boolean;
  v_trace text;
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
  IF p_traceparent IS NOT NULL OR p_tracestate IS NOT NULL THEN
    v_trace := baton.trace_context(p_traceparent, p_tracestate);
  END IF;
  IF p_inputs IS NULL OR jsonb_typeof(p_inputs) <> 'array' THEN
    RAISE EXCEPTION 'inputs must be a JSON array (got %)', coalesce(jsonb_typeof(p_inputs), 'null') USING ERRCODE = 'BTV01';
  END IF;
  IF p_on_conflict IS NULL OR p_on_conflict NOT IN ('fail', 'useExisting', 'terminateExisting') THEN
    RAISE EXCEPTION 'on_conflict must be fail, useExisting or terminateExisting (got %)', coalesce(p_on_conflict, 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_ids IS NOT NULL THEN
    IF cardinality(p_ids) <> jsonb_array_length(p_inputs) THEN
      RAISE EXCEPTION 'ids has % entries for % inputs: give one id (or null) per input', cardinality(p_ids), jsonb_array_length(p_inputs)
        USING ERRCODE = 'BTV01';
    END IF;
    SELECT x.n INTO v_n FROM unnest(p_ids) WITH ORDINALITY AS x(id, n)
    WHERE x.id IS NOT NULL AND (length(x.id) = 0 OR length(x.id) > 255 OR x.id ~ '[[:cntrl:]]')
    ORDER BY x.n LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'ids[%] must be 1-255 characters without control characters', v_n - 1 USING ERRCODE = 'BTV01';
    END IF;
    SELECT min(x.n) AS first, max(x.n) AS second, x.id INTO v_big FROM unnest(p_ids) WITH ORDINALITY AS x(id, n)
    WHERE x.id IS NOT NULL GROUP BY x.id HAVING count(*) > 1 ORDER BY min(x.n) LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'ids[%] repeats ids[%] ("%"): each instance needs its own id', v_big.second - 1, v_big.first - 1, v_big.id
        USING ERRCODE = 'BTV01';
    END IF;
  END IF;
  v_def := baton.start_definition(p_name, p_kind, p_hash);

  SELECT array_agg(p_ids[x.n] ORDER BY x.n), array_agg(coalesce(p_ids[x.n], gen_random_uuid()::text) ORDER BY x.n),
    array_agg(x.input ORDER BY x.n)
  INTO v_given, v_ids, v_inputs
  FROM jsonb_array_elements(p_inputs) WITH ORDINALITY AS x(input, n);
  IF v_ids IS NULL THEN
    RETURN;
  END IF;
  SELECT x.n, octet_length(x.input::text) AS size INTO v_big
  FROM unnest(v_inputs) WITH ORDINALITY AS x(input, n)
  WHERE octet_length(x.input::text) > v_limit
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'inputs[%] is % bytes, over the limit of %', v_big.n - 1, v_big.size, v_limit USING ERRCODE = 'BTV01';
  END IF;

  IF v_def.plan @? '$.steps[*] ? (@.kind == "child")' THEN
    RETURN QUERY
    SELECT s.workflow_id, s.created FROM unnest(v_given, v_inputs) WITH ORDINALITY AS x(id, input, n)
    CROSS JOIN LATERAL baton.start_workflow(p_name, x.input, x.id, p_priority, v_tags, p_on_conflict, v_def.hash, NULL, p_kind,
      p_traceparent => p_traceparent, p_tracestate => p_tracestate) s
    ORDER BY x.n;
    RETURN;
  END IF;

  IF p_ids IS NULL THEN
    -- Generated ids only: nothing can be taken.
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at,
      trace_context)
    SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now(), v_trace
    FROM unnest(v_ids, v_inputs) AS i(id, input)
    CROSS JOIN (SELECT string_agg(s ->> 'name', ', ') AS names FROM jsonb_array_elements(v_def.plan -> 'steps') s) step;
    IF baton.insert_first_steps(v_ids, v_inputs, v_def.plan, v_def.hash, p_priority, v_tags, NULL, false, NULL) > 0 THEN
      PERFORM pg_notify('baton_ready', '');
    END IF;
    RETURN QUERY SELECT i, true FROM unnest(v_ids) i;
    RETURN;
  END IF;

  IF v_def.plan @? '$.steps[*] ? (@.kind == "event")' THEN
    -- Pairs with send_event, as in start_workflow: a buffered event is seen, or the waiting step is.
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || i, 0)) FROM unnest(v_given) i WHERE i IS NOT NULL ORDER BY i;
  END IF;
  WITH inserted AS (
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at,
      trace_context)
    SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now(), v_trace
    FROM unnest(v_ids, v_inputs) AS i(id, input)
    CROSS JOIN (SELECT string_agg(s ->> 'name', ', ') AS names FROM jsonb_array_elements(v_def.plan -> 'steps') s) step
    ON CONFLICT (id) DO NOTHING
    RETURNING id, input
  )
  SELECT coalesce(array_agg(i.id), '{}'), coalesce(array_agg(i.input), '{}') INTO v_new, v_new_inputs FROM inserted i;
  IF cardinality(v_new) > 0 AND baton.insert_first_steps(v_new, v_new_inputs, v_def.plan, v_def.hash, p_priority, v_tags, NULL, false, NULL) > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;

  -- The taken ids: each by start_workflow, with the caller's policy (in input order).
  SELECT array_agg(n.id IS NOT NULL ORDER BY x.n) INTO v_created
  FROM unnest(v_ids) WITH ORDINALITY AS x(id, n) LEFT JOIN unnest(v_new) AS n(id) ON n.id = x.id;
  FOR v_n IN 1 .. cardinality(v_ids) LOOP
    CONTINUE WHEN v_created[v_n];
    SELECT s.created INTO v_one
    FROM baton.start_workflow(p_name, v_inputs[v_n], v_ids[v_n], p_priority, v_tags, p_on_conflict, v_def.hash, NULL, p_kind,
      p_traceparent => p_traceparent, p_tracestate => p_tracestate) s;
    v_created[v_n] := v_one;
  END LOOP;
  RETURN QUERY SELECT x.id, x.created FROM unnest(v_ids, v_created) WITH ORDINALITY AS x(id, created, n) ORDER BY x.n;
END
$$;
--> statement-breakpoint
-- function: start_workflow
-- Start an instance of a registered definition: the SQL API, and what the
-- client calls. The first steps come from the plan the registering worker
-- computed, so no code runs here.
-- A child (p_parent_id, p_parent_key; id '<parent>/<key>', useExisting) adopts
-- an existing instance only when it is that very child (a retried start).
-- Any other instance under that id (callers may choose ids with '/') is left
-- alone, and the parent's child step is told the child failed, so the parent
-- fails with a clear error instead of waiting for an instance that will never
-- settle it.
-- p_traceparent, p_tracestate: the W3C trace context of the caller's span
-- (stored in trace_context; each attempt's span is its child and links to it).
-- A child started without one takes its parent's.
DROP FUNCTION IF EXISTS baton.start_workflow(text, jsonb, text, integer, text[], text, text, timestamptz, text, text, text, boolean);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.start_workflow(
  p_name text,
  p_input jsonb DEFAULT NULL,
  p_id text DEFAULT NULL,
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail',
  p_hash text DEFAULT NULL,
  p_run_at timestamptz DEFAULT NULL,
  p_kind text DEFAULT 'workflow',
  p_parent_id text DEFAULT NULL,
  p_parent_key text DEFAULT NULL,
  p_paused boolean DEFAULT false,
  p_traceparent text DEFAULT NULL,
  p_tracestate text DEFAULT NULL
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE plpgsql
-- Generic plans for every statement inside (see insert_first_steps).
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_id text;
  v_tags text[];
  v_status text;
  v_parent text;
  v_parent_key text;
  v_child record;
  v_trace text;
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
  IF p_traceparent IS NOT NULL OR p_tracestate IS NOT NULL THEN
    v_trace := baton.trace_context(p_traceparent, p_tracestate);
  ELSIF p_parent_id IS NOT NULL THEN
    SELECT w.trace_context INTO v_trace FROM baton.workflows w WHERE w.id = p_parent_id;
  END IF;
  IF p_on_conflict IS NULL OR p_on_conflict NOT IN ('fail', 'useExisting', 'terminateExisting') THEN
    RAISE EXCEPTION 'on_conflict must be fail, useExisting or terminateExisting (got %)', coalesce(p_on_conflict, 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_id IS NOT NULL AND p_parent_id IS NULL AND (length(p_id) = 0 OR length(p_id) > 255 OR p_id ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'id must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_input IS NOT NULL AND octet_length(p_input::text) > coalesce(nullif(current_setting('baton.max_payload_bytes', true), ''), '1048576')::bigint THEN
    RAISE EXCEPTION 'input is % bytes, over the limit of %', octet_length(p_input::text), current_setting('baton.max_payload_bytes', true)
      USING ERRCODE = 'BTV01';
  END IF;

  v_def := baton.start_definition(p_name, p_kind, p_hash);

  v_id := coalesce(p_id, gen_random_uuid()::text);
  IF p_id IS NOT NULL AND v_def.plan @? '$.steps[*] ? (@.kind == "event")' THEN
    -- Pairs with send_event: a buffered event is seen, or the waiting step is.
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || v_id, 0));
  END IF;

  LOOP
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, parent_id, parent_key, state, current_step,
      version, created_at, updated_at, trace_context)
    VALUES (v_id, p_name, v_def.hash, CASE WHEN p_paused THEN 'paused' ELSE 'running' END, p_input, p_priority, v_tags, p_parent_id,
      p_parent_key, v_def.plan -> 'state', (SELECT string_agg(s ->> 'name', ', ') FROM jsonb_array_elements(v_def.plan -> 'steps') s),
      1, now(), now(), v_trace)
    ON CONFLICT (id) DO NOTHING;
    EXIT WHEN FOUND;

    SELECT w.status, w.parent_id, w.parent_key INTO v_status, v_parent, v_parent_key FROM baton.workflows w WHERE w.id = v_id FOR UPDATE;
    CONTINUE WHEN NOT FOUND; -- deleted meanwhile: try again
    IF p_on_conflict = 'useExisting' AND p_parent_id IS NOT NULL
       AND (v_parent IS DISTINCT FROM p_parent_id OR v_parent_key IS DISTINCT FROM p_parent_key) THEN
      UPDATE baton.tasks t
      SET status = CASE WHEN t.paused THEN 'waiting' ELSE 'ready' END,
          ready_key = CASE WHEN t.paused THEN NULL ELSE now() + t.priority * baton.aging_interval() END,
          output = jsonb_build_object('status', 'failed', 'output', NULL, 'error', jsonb_build_object(
            'name', 'ChildIdTakenError', 'code', 'CHILD_ID_TAKEN', 'id', v_id,
            'message', format('instance id "%s" is taken by an instance that is not a child of "%s" (step %s); it was started with that id directly',
              v_id, p_parent_id, p_parent_key))),
          updated_at = now()
      WHERE t.workflow_id = p_parent_id AND t.task_key = p_parent_key AND t.kind = 'child' AND t.status = 'waiting';
      IF FOUND THEN
        PERFORM pg_notify('baton_ready', '');
      END IF;
      RETURN QUERY SELECT v_id, false;
      RETURN;
    ELSIF p_on_conflict = 'useExisting' THEN
      RETURN QUERY SELECT v_id, false;
      RETURN;
    ELSIF p_on_conflict = 'terminateExisting' THEN
      PERFORM baton.cancel_workflow(v_id, 'terminated: started again with the same id', 'baton')
      WHERE v_status IN ('pending', 'running', 'paused');
      PERFORM baton.delete_instances(ARRAY[v_id]);
    ELSE
      RAISE EXCEPTION 'workflow instance "%" already exists (status %)', v_id, v_status
        USING ERRCODE = 'BTC01', DETAIL = v_status;
    END IF;
  END LOOP;

  IF baton.insert_first_steps(ARRAY[v_id], ARRAY[p_input], v_def.plan, v_def.hash, p_priority, v_tags, p_run_at, p_paused, p_parent_id) > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  IF NOT v_def.plan @? '$.steps[*] ? (@.kind == "child")' THEN
    RETURN QUERY SELECT v_id, true;
    RETURN;
  END IF;
  FOR v_child IN
    SELECT s ->> 'key' AS key, s -> 'child' ->> 'name' AS name, s -> 'child' ->> 'hash' AS hash
    FROM jsonb_array_elements(v_def.plan -> 'steps') s
    WHERE s ->> 'kind' = 'child'
  LOOP
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, max_attempts, input)
    SELECT v_id, v_child.key, 'child', v_child.name, v_def.hash, 'waiting', p_paused, coalesce(p_priority, (s ->> 'priority')::integer, 0),
      ARRAY(SELECT DISTINCT x FROM unnest(ARRAY(SELECT jsonb_array_elements_text(s -> 'tags')) || v_tags) x ORDER BY x),
      coalesce((s ->> 'maxAttempts')::integer, 1), p_input
    FROM jsonb_array_elements(v_def.plan -> 'steps') s WHERE s ->> 'key' = v_child.key;
    PERFORM baton.start_workflow(v_child.name, p_input, v_id || '/' || v_child.key, p_priority, v_tags, 'useExisting', v_child.hash,
      NULL, 'workflow', v_id, v_child.key, p_paused, p_traceparent, p_tracestate);
  END LOOP;
  RETURN QUERY SELECT v_id, true;
END
$$;
--> statement-breakpoint
-- function: trace_context
-- The trace context a start stores (baton.workflows.trace_context): a W3C
-- traceparent, then a space and the tracestate if any. BTV01 when the
-- traceparent is not one (version, trace id, span id and flags in lower-case
-- hex), or the tracestate is over 512 characters or holds control characters.
-- Callers skip it when both are NULL (an untraced start calls nothing).
CREATE OR REPLACE FUNCTION baton.trace_context(p_traceparent text, p_tracestate text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_traceparent IS NULL THEN
    RAISE EXCEPTION 'tracestate was given without a traceparent' USING ERRCODE = 'BTV01';
  END IF;
  IF p_traceparent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' OR p_traceparent ~ '^ff-'
     OR p_traceparent ~ '^..-0{32}-' OR p_traceparent ~ '-0{16}-..$' THEN
    RAISE EXCEPTION 'traceparent must be a W3C traceparent, 00-<32 hex trace id>-<16 hex span id>-<2 hex flags> (got "%")',
      left(p_traceparent, 80) USING ERRCODE = 'BTV01';
  END IF;
  IF p_tracestate IS NOT NULL AND (length(p_tracestate) > 512 OR p_tracestate ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'tracestate must be at most 512 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  RETURN p_traceparent || coalesce(' ' || nullif(p_tracestate, ''), '');
END
$$;
--> statement-breakpoint
-- function: enqueue
-- A one-task job: the workflow behind a task a worker registered.
-- p_traceparent, p_tracestate: as in start_workflow.
DROP FUNCTION IF EXISTS baton.enqueue(text, jsonb, text, integer, text[], text, timestamptz, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.enqueue(
  p_task text,
  p_input jsonb DEFAULT NULL,
  p_id text DEFAULT NULL,
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail',
  p_run_at timestamptz DEFAULT NULL,
  p_hash text DEFAULT NULL,
  p_traceparent text DEFAULT NULL,
  p_tracestate text DEFAULT NULL
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE sql AS $$
  SELECT * FROM baton.start_workflow(p_task, p_input, p_id, p_priority, p_tags, p_on_conflict, p_hash, p_run_at, 'task',
    p_traceparent => p_traceparent, p_tracestate => p_tracestate)
$$;
