-- Baton's functions: the SQL API (start_workflow, enqueue, send_event) and the
-- statements that must run inside the database in one round trip (claim,
-- timers, lease expiry, cancellation).
--
-- Lock order, which keeps these deadlock-free: a transaction that may WAIT for
-- task row locks first locks the instance rows (baton.workflows) of those
-- tasks, in ascending id order, parents included. A child's id is its parent's
-- id + '/' + step key, so a parent always sorts before its children. Statements
-- that take task row locks without holding instance locks never wait: they
-- use FOR UPDATE SKIP LOCKED.
--
-- Errors raised for callers carry SQLSTATEs of class BT: BTV01 bad input,
-- BTN01 unknown definition, BTN02 unknown instance, BTC01 id taken,
-- BTS01 wrong state. The client maps them to typed errors.

-- Checkpoints that leave an instance's status alone (a chain's steps) can be
-- HOT updates when its page has room.
ALTER TABLE baton.workflows SET (fillfactor = 75);
--> statement-breakpoint

-- Delete instances with everything that belongs to them (there are no foreign
-- keys: their per-row triggers cost the hot path too much).
CREATE OR REPLACE FUNCTION baton.delete_instances(p_ids text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_count integer;
BEGIN
  DELETE FROM baton.tasks WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.history WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.signals WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.events WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.workflows WHERE id = ANY (p_ids);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;
--> statement-breakpoint

-- One priority step equals this much waiting. Set per session by Baton's
-- processes (connection option baton.aging_interval_ms); SQL callers may set
-- it per database: ALTER DATABASE ... SET baton.aging_interval_ms = '60000'.
CREATE OR REPLACE FUNCTION baton.aging_interval() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(nullif(current_setting('baton.aging_interval_ms', true), ''), '60000')::bigint * interval '1 millisecond'
$$;
--> statement-breakpoint

-- Insert scheduled steps as task rows and start child instances.
-- p_rows: [{wf, key, kind, name, hash, input, priority, tags, maxAttempts,
--           delayMs, timeoutMs, runAt, held, child: {name, hash, priority, tags}}]
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
      d.available_at, coalesce(d."maxAttempts", 1), d.input, v_now, v_now
    FROM decided d
    RETURNING status, tags
  ), tag_sets AS (
    INSERT INTO baton.tag_sets (tags)
    SELECT DISTINCT i.tags FROM inserted i
    ON CONFLICT DO NOTHING
  )
  SELECT count(*) FILTER (WHERE status = 'ready') INTO v_ready FROM inserted;

  FOR v_child IN
    SELECT r.wf, r.key, r.input, r.held, c.name, c.hash, c.priority, c.tags
    FROM jsonb_to_recordset(p_rows) AS r(wf text, key text, kind text, input jsonb, held boolean, child jsonb)
    CROSS JOIN LATERAL jsonb_to_record(r.child) AS c(name text, hash text, priority integer, tags text[])
    WHERE r.kind = 'child'
  LOOP
    PERFORM baton.start_workflow(v_child.name, v_child.input, v_child.wf || '/' || v_child.key, v_child.priority,
      v_child.tags, 'useExisting', v_child.hash, NULL, 'workflow', v_child.wf, v_child.key, v_child.held IS TRUE);
  END LOOP;

  IF v_ready > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_ready;
END
$$;
--> statement-breakpoint

-- Finished child instances hand their outcome to the parent's child step,
-- which becomes ready (or stays held while the parent is paused).
CREATE OR REPLACE FUNCTION baton.settle_parents(p_ids text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_count integer;
BEGIN
  UPDATE baton.tasks t
  SET status = CASE WHEN t.paused THEN 'waiting' ELSE 'ready' END,
      ready_key = CASE WHEN t.paused THEN NULL ELSE now() + t.priority * baton.aging_interval() END,
      output = jsonb_build_object('status', w.status, 'output', w.output, 'error', w.error),
      updated_at = now()
  FROM baton.workflows w
  WHERE w.id = ANY (p_ids) AND w.parent_id IS NOT NULL AND w.status IN ('completed', 'failed', 'cancelled')
    AND t.workflow_id = w.parent_id AND t.task_key = w.parent_key AND t.kind = 'child' AND t.status = 'waiting';
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_count;
END
$$;
--> statement-breakpoint

-- Unfinished instances among p_ids, and all their unfinished descendants,
-- become cancelled with p_error; their open tasks are cancelled (a running
-- task's worker finds out at its next renewal, or at once via baton_cancel).
-- The caller holds the locks of p_ids; descendants are locked here (they sort
-- after their ancestors). Returns the ids cancelled.
CREATE OR REPLACE FUNCTION baton.cancel_tree(p_ids text[], p_error jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_more text[];
BEGIN
  v_ids := ARRAY(SELECT w.id FROM baton.workflows w WHERE w.id = ANY (p_ids) AND w.status IN ('pending', 'running', 'paused'));
  v_more := v_ids;
  LOOP
    v_more := ARRAY(
      SELECT w.id FROM baton.workflows w
      WHERE w.parent_id = ANY (v_more) AND w.status IN ('pending', 'running', 'paused') AND NOT (w.id = ANY (v_ids))
      ORDER BY w.id FOR UPDATE);
    EXIT WHEN cardinality(v_more) = 0;
    v_ids := v_ids || v_more;
  END LOOP;
  IF cardinality(v_ids) = 0 THEN
    RETURN v_ids;
  END IF;

  WITH done AS (
    UPDATE baton.workflows w
    SET status = 'cancelled', error = p_error, finished_at = now(), updated_at = now(), version = w.version + 1, current_step = NULL
    WHERE w.id = ANY (v_ids) AND w.status IN ('pending', 'running', 'paused')
    RETURNING w.id, w.version
  )
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  SELECT done.id, done.version, 'cancelled', jsonb_build_object('status', 'cancelled', 'error', p_error)
  FROM done;

  UPDATE baton.tasks t
  SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
  WHERE t.workflow_id = ANY (v_ids) AND t.status IN ('waiting', 'ready', 'running');

  PERFORM pg_notify('baton_cancel', left(array_to_string(v_ids, ','), 7000));
  PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(v_ids, ',')) < 7000 THEN array_to_string(v_ids, ',') ELSE '*' END);
  RETURN v_ids;
END
$$;
--> statement-breakpoint

-- After instances finished (completed or failed) in the caller's transaction:
-- close their open tasks, cancel what their failed steps left running in child
-- instances, hand outcomes to parents, and tell waiters.
CREATE OR REPLACE FUNCTION baton.after_finish(p_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_children text[];
BEGIN
  IF cardinality(p_ids) = 0 THEN
    RETURN;
  END IF;
  UPDATE baton.tasks t
  SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
  WHERE t.workflow_id = ANY (p_ids) AND t.status IN ('waiting', 'ready', 'running');
  v_children := ARRAY(
    SELECT w.id FROM baton.workflows w
    WHERE w.parent_id = ANY (p_ids) AND w.status IN ('pending', 'running', 'paused')
    ORDER BY w.id FOR UPDATE);
  IF cardinality(v_children) > 0 THEN
    PERFORM baton.cancel_tree(v_children, jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
      'message', 'cancelled because its parent workflow finished'));
  END IF;
  PERFORM baton.settle_parents(p_ids);
  PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(p_ids, ',')) < 7000 THEN array_to_string(p_ids, ',') ELSE '*' END);
END
$$;
--> statement-breakpoint

-- Start an instance of a registered definition: the SQL API, and what the
-- client calls. The first steps come from the plan the registering worker
-- computed, so no code runs here.
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
  p_paused boolean DEFAULT false
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_id text;
  v_tags text[];
  v_status text;
  v_plan jsonb;
  v_rows jsonb;
  v_what text := CASE WHEN p_kind = 'task' THEN 'task' ELSE 'workflow' END;
BEGIN
  IF p_name IS NULL OR p_name = '' THEN
    RAISE EXCEPTION 'a % name is required', v_what USING ERRCODE = 'BTV01';
  END IF;
  IF p_kind IS NULL OR p_kind NOT IN ('workflow', 'task') THEN
    RAISE EXCEPTION 'kind must be workflow or task (got %)', coalesce(p_kind, 'null') USING ERRCODE = 'BTV01';
  END IF;
  IF p_on_conflict IS NULL OR p_on_conflict NOT IN ('fail', 'useExisting', 'terminateExisting') THEN
    RAISE EXCEPTION 'on_conflict must be fail, useExisting or terminateExisting (got %)', coalesce(p_on_conflict, 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_id IS NOT NULL AND p_parent_id IS NULL AND (length(p_id) = 0 OR length(p_id) > 255 OR p_id ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'id must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_priority IS NOT NULL AND (p_priority < 0 OR p_priority > 1000000) THEN
    RAISE EXCEPTION 'priority must be a whole number from 0 to 1000000, lower runs first (got %)', p_priority USING ERRCODE = 'BTV01';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(coalesce(p_tags, '{}')) t WHERE t IS NULL OR length(t) NOT BETWEEN 1 AND 128 OR t ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'each tag must be 1-128 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_input IS NOT NULL AND octet_length(p_input::text) > coalesce(nullif(current_setting('baton.max_payload_bytes', true), ''), '1048576')::bigint THEN
    RAISE EXCEPTION 'input is % bytes, over the limit of %', octet_length(p_input::text), current_setting('baton.max_payload_bytes', true)
      USING ERRCODE = 'BTV01';
  END IF;

  SELECT * INTO v_def FROM baton.definitions d
  WHERE d.name = p_name AND d.kind = p_kind AND (p_hash IS NULL OR d.hash = p_hash)
  ORDER BY d.first_seen DESC, d.hash
  LIMIT 1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown % "%"%: no worker has registered it', v_what, p_name,
      CASE WHEN p_hash IS NULL THEN '' ELSE format(' (definition %s)', p_hash) END
      USING ERRCODE = 'BTN01', HINT = 'start a worker that defines it, or check the name';
  END IF;

  v_id := coalesce(p_id, gen_random_uuid()::text);
  v_tags := ARRAY(SELECT DISTINCT t FROM unnest(coalesce(p_tags, '{}')) t ORDER BY t);
  v_plan := v_def.plan;
  IF jsonb_path_exists(v_plan, '$.steps[*] ? (@.kind == "event")') THEN
    -- Pairs with send_event: a buffered event is seen, or the waiting step is.
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || v_id, 0));
  END IF;

  LOOP
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, parent_id, parent_key, state, current_step,
      version, created_at, updated_at)
    VALUES (v_id, p_name, v_def.hash, CASE WHEN p_paused THEN 'paused' ELSE 'running' END, p_input, p_priority, v_tags, p_parent_id, p_parent_key, v_plan -> 'state',
      (SELECT string_agg(s ->> 'name', ', ') FROM jsonb_array_elements(v_plan -> 'steps') s), 1, now(), now())
    ON CONFLICT (id) DO NOTHING;
    EXIT WHEN FOUND;

    SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = v_id FOR UPDATE;
    CONTINUE WHEN NOT FOUND; -- deleted meanwhile: try again
    IF p_on_conflict = 'useExisting' THEN
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

  SELECT coalesce(jsonb_agg(jsonb_build_object(
      'wf', v_id, 'key', s ->> 'key', 'kind', s ->> 'kind', 'name', s ->> 'name', 'hash', v_def.hash, 'input', p_input,
      'priority', coalesce(p_priority, (s ->> 'priority')::integer),
      'tags', (SELECT coalesce(jsonb_agg(DISTINCT x ORDER BY x), '[]') FROM jsonb_array_elements_text((s -> 'tags') || to_jsonb(v_tags)) x),
      'maxAttempts', (s ->> 'maxAttempts')::integer, 'delayMs', s -> 'delayMs', 'timeoutMs', s -> 'timeoutMs',
      'runAt', to_jsonb(p_run_at), 'held', p_paused,
      'child', CASE WHEN s -> 'child' IS NULL OR jsonb_typeof(s -> 'child') = 'null' THEN NULL
               ELSE (s -> 'child') || jsonb_build_object('priority', p_priority, 'tags', to_jsonb(v_tags)) END)), '[]')
  INTO v_rows
  FROM jsonb_array_elements(v_plan -> 'steps') s;

  INSERT INTO baton.history (workflow_id, version, kind, detail)
  VALUES (v_id, 1, 'started', jsonb_build_object('status', CASE WHEN p_paused THEN 'paused' ELSE 'running' END, 'definition', v_def.hash, 'state', v_plan -> 'state',
    'scheduled', (SELECT jsonb_agg(s ->> 'key') FROM jsonb_array_elements(v_plan -> 'steps') s),
    'priority', p_priority, 'tags', to_jsonb(v_tags), 'parent', p_parent_id));

  PERFORM baton.schedule_tasks(v_rows);
  RETURN QUERY SELECT v_id, true;
END
$$;
--> statement-breakpoint

-- A one-task job: the workflow behind a task a worker registered.
CREATE OR REPLACE FUNCTION baton.enqueue(
  p_task text,
  p_input jsonb DEFAULT NULL,
  p_id text DEFAULT NULL,
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail',
  p_run_at timestamptz DEFAULT NULL,
  p_hash text DEFAULT NULL
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE sql AS $$
  SELECT * FROM baton.start_workflow(p_task, p_input, p_id, p_priority, p_tags, p_on_conflict, p_hash, p_run_at, 'task')
$$;
--> statement-breakpoint

-- Many instances of one definition in one call (generated ids): one row per
-- input, in order. p_inputs is a JSON array.
CREATE OR REPLACE FUNCTION baton.start_many(
  p_name text,
  p_inputs jsonb,
  p_kind text DEFAULT 'workflow',
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_hash text DEFAULT NULL
) RETURNS TABLE (workflow_id text)
LANGUAGE sql AS $$
  SELECT s.workflow_id
  FROM jsonb_array_elements(p_inputs) WITH ORDINALITY AS x(input, n)
  CROSS JOIN LATERAL baton.start_workflow(p_name, x.input, NULL, p_priority, p_tags, 'fail', p_hash, NULL, p_kind) s
  ORDER BY x.n
$$;
--> statement-breakpoint

-- Cancel an instance and its running descendants, atomically against a
-- racing completion (both take the instance row lock). Returns the status it had.
CREATE OR REPLACE FUNCTION baton.cancel_workflow(p_id text, p_reason text DEFAULT NULL, p_requested_by text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_parent text;
BEGIN
  SELECT w.parent_id INTO v_parent FROM baton.workflows w WHERE w.id = p_id;
  PERFORM 1 FROM baton.workflows w WHERE w.id IN (p_id, v_parent) ORDER BY w.id FOR UPDATE;
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status IN ('completed', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  INSERT INTO baton.signals (workflow_id, kind, reason, requested_by)
  VALUES (p_id, 'cancel', p_reason, p_requested_by)
  ON CONFLICT (workflow_id, kind) DO UPDATE SET reason = excluded.reason, requested_by = excluded.requested_by, requested_at = now();
  PERFORM baton.cancel_tree(ARRAY[p_id], jsonb_strip_nulls(jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
    'message', 'cancelled' || coalesce(': ' || p_reason, ''), 'reason', p_reason, 'requestedBy', p_requested_by)));
  PERFORM baton.settle_parents(ARRAY[p_id]);
  RETURN v_status;
END
$$;
--> statement-breakpoint

-- Send an event to an instance: buffered FIFO by (instance, name); a
-- waitForEvent step waiting for it becomes ready. An instance that does not
-- exist yet keeps the event (it may arrive before the start).
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
  WHERE t.workflow_id = p_id AND t.kind = 'event' AND t.name = p_name AND t.status = 'waiting' AND NOT t.paused;
  IF FOUND THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_event;
END
$$;
--> statement-breakpoint

-- Timers: sleeps that are due, retries whose back-off has passed, event
-- time-outs and delayed starts become ready. Never waits for a lock.
CREATE OR REPLACE FUNCTION baton.promote_due(p_limit integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_count integer;
BEGIN
  WITH due AS (
    SELECT t.workflow_id, t.task_key FROM baton.tasks t
    WHERE t.status = 'waiting' AND NOT t.paused AND t.available_at IS NOT NULL AND t.available_at <= now()
    ORDER BY t.available_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  )
  UPDATE baton.tasks t
  SET status = 'ready', ready_key = t.available_at + t.priority * baton.aging_interval(), updated_at = now()
  FROM due
  WHERE t.workflow_id = due.workflow_id AND t.task_key = due.task_key;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_count;
END
$$;
--> statement-breakpoint

-- The claim: up to p_limit ready tasks, in aging order (ready_key), from the
-- tag sets this worker covers and the definitions it has, in one round trip.
-- Each claimed task gets a lease of p_ttl_ms and a new fencing epoch.
-- Soft bias: when a candidate is a retry this worker last failed, as many
-- further candidates are locked, and the retry goes after them; alone, it is
-- still taken. Only then are more rows locked than claimed.
-- Isolation: a task whose leases were lost p_isolate_from times or more (one
-- more loss fails it: it may be what kills its workers) is claimed only into
-- one of p_isolated_slots (the worker passes 1 when it holds no such task,
-- else 0), so it never takes innocent tasks down with it again.
-- Each row comes with its instance's snapshot (status, state, version), for
-- the optimistic commit, and for a waitForEvent step the oldest buffered event.
CREATE OR REPLACE FUNCTION baton.claim_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_wf text[];
  v_key text[];
  v_rk timestamptz[];
  v_mine boolean[];
  v_iso boolean[];
  v_bias integer;
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
  SELECT count(*) INTO v_bias FROM promoted;
  IF v_bias > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  SELECT array_agg(c.workflow_id ORDER BY c.ready_key), array_agg(c.task_key ORDER BY c.ready_key),
         array_agg(c.ready_key ORDER BY c.ready_key), array_agg(c.last_failed_worker IS NOT DISTINCT FROM p_worker ORDER BY c.ready_key),
         array_agg(c.lease_losses >= p_isolate_from ORDER BY c.ready_key)
  INTO v_wf, v_key, v_rk, v_mine, v_iso
  FROM (
    SELECT c.* FROM baton.tag_sets s
    CROSS JOIN LATERAL (
      SELECT t.workflow_id, t.task_key, t.ready_key, t.last_failed_worker, t.lease_losses
      FROM baton.tasks t
      WHERE t.status = 'ready' AND t.tags = s.tags AND t.definition_hash = ANY (p_hashes)
        AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
      ORDER BY t.ready_key
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    ) c
    WHERE s.tags <@ p_tags
    ORDER BY c.ready_key
    LIMIT p_limit
  ) c;
  IF v_wf IS NULL THEN
    RETURN;
  END IF;

  v_bias := (SELECT count(*) FROM unnest(v_mine) m WHERE m);
  IF v_bias > 0 THEN
    SELECT v_wf || coalesce(array_agg(c.workflow_id), '{}'), v_key || coalesce(array_agg(c.task_key), '{}'),
           v_rk || coalesce(array_agg(c.ready_key), '{}'), v_mine || coalesce(array_agg(c.last_failed_worker IS NOT DISTINCT FROM p_worker), '{}'),
           v_iso || coalesce(array_agg(c.lease_losses >= p_isolate_from), '{}')
    INTO v_wf, v_key, v_rk, v_mine, v_iso
    FROM (
      SELECT c.* FROM baton.tag_sets s
      CROSS JOIN LATERAL (
        SELECT t.workflow_id, t.task_key, t.ready_key, t.last_failed_worker, t.lease_losses
        FROM baton.tasks t
        WHERE t.status = 'ready' AND t.tags = s.tags AND t.definition_hash = ANY (p_hashes)
          AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
          AND (t.workflow_id, t.task_key) NOT IN (SELECT * FROM unnest(v_wf, v_key))
        ORDER BY t.ready_key
        LIMIT v_bias
        FOR UPDATE SKIP LOCKED
      ) c
      WHERE s.tags <@ p_tags
      ORDER BY c.ready_key
      LIMIT v_bias
    ) c;
  END IF;

  RETURN QUERY
  WITH ranked AS (
    SELECT u.*, row_number() OVER (PARTITION BY u.iso ORDER BY u.mine, u.rk) AS nth
    FROM unnest(v_wf, v_key, v_rk, v_mine, v_iso) AS u(wf, key, rk, mine, iso)
  ), chosen AS (
    SELECT r.wf, r.key FROM ranked r
    WHERE NOT r.iso OR r.nth <= p_isolated_slots
    ORDER BY r.mine, r.rk
    LIMIT p_limit
  ), claimed AS (
    UPDATE baton.tasks t
    SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
        started_at = coalesce(t.started_at, now()), updated_at = now()
    FROM chosen
    WHERE t.workflow_id = chosen.wf AND t.task_key = chosen.key
    RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
      t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key
  )
  SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses, c.input, c.output,
    c.available_at, c.lease_expires_at, w.name, w.status, w.state, w.version, w.priority, w.tags, w.parent_id, ev.id, ev.payload
  FROM claimed c
  JOIN baton.workflows w ON w.id = c.workflow_id
  LEFT JOIN LATERAL (
    SELECT e.id, e.payload FROM baton.events e
    WHERE c.kind = 'event' AND e.workflow_id = c.workflow_id AND e.name = c.name
    ORDER BY e.id LIMIT 1
  ) ev ON true
  ORDER BY c.ready_key;
END
$$;
--> statement-breakpoint

-- The optimistic commit of a batch of finished attempts (the worker's hot
-- path, one round trip). The worker ran the state machine on the snapshots it
-- was given at claim time; here, under the instances' row locks, each instance
-- is applied only if
--   * its version is still the one the worker computed from, and
--   * every attempt of it still holds its claim (the fence: same worker, same
--     epoch, still running), and every event it consumes is still there.
-- Otherwise nothing of that instance is written and its current snapshot is
-- returned ('conflict'); the worker recomputes and commits again. Attempts
-- that fail the fence are refused for good ('refused') and counted, except an
-- attempt this worker already committed ('duplicate': the retry of a commit
-- whose reply was lost with its connection). Applied instances are not
-- reported: no row back means everything was applied.
--
-- Arrays, one element per attempt (i_*), per instance (w_*), per history row (h_*):
--   i_status: the task's new status (completed, failed, ready, waiting);
--   i_delay: for a retry, available again after this many ms (null: keep);
--   w_after: the instance finished and needs after_finish (failed, or has a parent);
--   h_version: the version each history row records (the worker counts from w_version).
CREATE OR REPLACE FUNCTION baton.commit(
  p_worker text,
  i_wf text[], i_key text[], i_epoch bigint[], i_status text[], i_paused boolean[], i_output jsonb[], i_error jsonb[],
  i_delay bigint[], i_event bigint[],
  w_id text[], w_version integer[], w_status text[], w_state jsonb[], w_bump integer[], w_done integer[], w_output jsonb[],
  w_error jsonb[], w_step text[], w_finished boolean[], w_after boolean[],
  h_wf text[], h_version integer[], h_kind text[], h_detail jsonb[],
  p_schedule jsonb,
  p_claim_limit integer DEFAULT 0, p_claim_tags text[] DEFAULT '{}', p_claim_hashes text[] DEFAULT '{}',
  p_claim_ttl_ms integer DEFAULT 0, p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0
)
RETURNS TABLE (result text, workflow_id text, task_key text, status text, state jsonb, version integer, task jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_bad text[];
  v_refused text[];
  v_already text[];
  v_all boolean;
  v_ok text[];
  v_n integer;
  v_done text[];
BEGIN
  -- Lock the instances (and their parents) in id order, by index, and compare versions.
  WITH locked AS (
    SELECT w.id, w.version FROM baton.workflows w
    WHERE w.id = ANY (w_id || ARRAY(SELECT p.parent_id FROM baton.workflows p WHERE p.id = ANY (w_id) AND p.parent_id IS NOT NULL))
    ORDER BY w.id FOR UPDATE
  )
  SELECT coalesce(array_agg(e.id), '{}') INTO v_bad
  FROM unnest(w_id, w_version) AS e(id, version)
  LEFT JOIN locked l ON l.id = e.id
  WHERE l.id IS NULL OR l.version <> e.version;

  -- The fence, read under those locks: nothing else can change these task rows until we commit.
  SELECT coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE NOT coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}'),
         coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}')
  INTO v_refused, v_already
  FROM unnest(i_wf, i_key, i_epoch) AS f(wf, key, epoch)
  LEFT JOIN baton.tasks t ON t.workflow_id = f.wf AND t.task_key = f.key
  WHERE NOT coalesce(t.epoch = f.epoch AND t.claimed_by = p_worker AND t.status = 'running', false);

  IF cardinality(v_refused) + cardinality(v_already) > 0 THEN
    v_bad := v_bad || ARRAY(SELECT split_part(r, E'\x1f', 1) FROM unnest(v_refused || v_already) r);
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(i_event) e WHERE e IS NOT NULL) THEN
    v_bad := v_bad || ARRAY(
      SELECT c.wf FROM unnest(i_wf, i_event) AS c(wf, event)
      WHERE c.event IS NOT NULL AND NOT EXISTS (SELECT 1 FROM baton.events e WHERE e.id = c.event));
  END IF;
  IF cardinality(v_refused) > 0 THEN
    INSERT INTO baton.stats (key, value) VALUES ('refused_results', cardinality(v_refused))
    ON CONFLICT (key) DO UPDATE SET value = baton.stats.value + excluded.value, updated_at = now();
  END IF;

  v_all := cardinality(v_bad) = 0;
  v_ok := CASE WHEN v_all THEN w_id ELSE ARRAY(SELECT unnest(w_id) EXCEPT SELECT unnest(v_bad)) END;

  IF cardinality(v_ok) > 0 THEN
    IF EXISTS (SELECT 1 FROM unnest(i_event) e WHERE e IS NOT NULL) THEN
      DELETE FROM baton.events e USING unnest(i_wf, i_event) AS c(wf, event)
      WHERE e.id = c.event AND (v_all OR c.wf = ANY (v_ok));
    END IF;

    UPDATE baton.tasks t
    SET status = c.status,
        paused = c.paused,
        output = CASE WHEN c.status = 'completed' THEN c.output ELSE t.output END,
        last_error = coalesce(c.error, t.last_error),
        last_failed_worker = CASE WHEN c.error IS NOT NULL THEN p_worker ELSE t.last_failed_worker END,
        available_at = CASE WHEN c.delay IS NOT NULL THEN now() + c.delay * interval '1 millisecond' ELSE t.available_at END,
        ready_key = CASE WHEN c.status = 'ready' THEN now() + t.priority * baton.aging_interval() ELSE t.ready_key END,
        progress = CASE WHEN c.status = 'completed' THEN 100 ELSE t.progress END,
        claimed_by = NULL, lease_expires_at = NULL,
        finished_at = CASE WHEN c.status IN ('completed', 'failed') THEN now() END,
        updated_at = now()
    FROM unnest(i_wf, i_key, i_status, i_paused, i_output, i_error, i_delay) AS c(wf, key, status, paused, output, error, delay)
    WHERE t.workflow_id = c.wf AND t.task_key = c.key AND (v_all OR c.wf = ANY (v_ok));

    UPDATE baton.workflows w
    SET status = e.status, state = e.state, version = w.version + e.bump, completed_task_count = w.completed_task_count + e.done,
        output = CASE WHEN e.status = 'completed' THEN e.output ELSE w.output END,
        error = coalesce(e.error, w.error),
        current_step = CASE WHEN e.finished THEN NULL ELSE coalesce(e.step, w.current_step) END,
        finished_at = CASE WHEN e.finished THEN now() ELSE w.finished_at END,
        updated_at = now()
    FROM unnest(w_id, w_status, w_state, w_bump, w_done, w_output, w_error, w_step, w_finished)
      AS e(id, status, state, bump, done, output, error, step, finished)
    WHERE w.id = e.id AND (v_all OR e.id = ANY (v_ok));

    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT h.wf, h.version, h.kind, h.detail FROM unnest(h_wf, h_version, h_kind, h_detail) AS h(wf, version, kind, detail)
    WHERE v_all OR h.wf = ANY (v_ok);

    IF jsonb_array_length(p_schedule) > 0 THEN
      PERFORM baton.schedule_tasks(CASE WHEN v_all THEN p_schedule
        ELSE (SELECT coalesce(jsonb_agg(r), '[]') FROM jsonb_array_elements(p_schedule) r WHERE r ->> 'wf' = ANY (v_ok)) END);
    END IF;

    -- Failed instances, and children, need their open work closed and their parents told; the others only waiters.
    v_done := ARRAY(SELECT e.id FROM unnest(w_id, w_after) AS e(id, after) WHERE e.after AND (v_all OR e.id = ANY (v_ok)));
    IF cardinality(v_done) > 0 THEN
      PERFORM baton.after_finish(v_done);
    END IF;
    v_done := ARRAY(SELECT e.id FROM unnest(w_id, w_finished, w_after) AS e(id, finished, after)
                    WHERE e.finished AND NOT e.after AND (v_all OR e.id = ANY (v_ok)));
    v_n := cardinality(v_done);
    IF v_n > 0 THEN
      PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(v_done, ',')) < 7000 THEN array_to_string(v_done, ',') ELSE '*' END);
    END IF;
  END IF;

  IF NOT v_all THEN
    RETURN QUERY
    SELECT 'conflict', w.id, NULL::text, w.status, w.state, w.version, NULL::jsonb
    FROM baton.workflows w WHERE w.id = ANY (v_bad)
    UNION ALL
    SELECT 'refused', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_refused) r
    UNION ALL
    SELECT 'duplicate', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_already) r;
  END IF;
  -- The worker's next tasks, in the same round trip (it asks for as many as it has room for).
  IF p_claim_limit > 0 THEN
    RETURN QUERY
    SELECT 'claimed', c.workflow_id, c.task_key, NULL::text, NULL::jsonb, NULL::integer, to_jsonb(c)
    FROM baton.claim_tasks(p_worker, p_claim_limit, p_claim_tags, p_claim_hashes, p_claim_ttl_ms, p_isolate_from, p_isolated_slots) c;
  END IF;
END
$$;
--> statement-breakpoint

-- Pause an instance and its running descendants: running tasks finish, no
-- other task of theirs is claimed (ready ones are held) until resume.
CREATE OR REPLACE FUNCTION baton.pause_workflow(p_id text, p_requested_by text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_ids text[];
  v_more text[];
BEGIN
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status IN ('completed', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  IF v_status = 'paused' THEN
    RETURN v_status;
  END IF;
  v_ids := ARRAY[p_id];
  v_more := v_ids;
  LOOP
    v_more := ARRAY(SELECT w.id FROM baton.workflows w WHERE w.parent_id = ANY (v_more) AND w.status IN ('pending', 'running')
                    ORDER BY w.id FOR UPDATE);
    EXIT WHEN cardinality(v_more) = 0;
    v_ids := v_ids || v_more;
  END LOOP;
  INSERT INTO baton.signals (workflow_id, kind, requested_by) VALUES (p_id, 'pause', p_requested_by)
  ON CONFLICT (workflow_id, kind) DO UPDATE SET requested_by = excluded.requested_by, requested_at = now();
  WITH done AS (
    UPDATE baton.workflows w SET status = 'paused', version = w.version + 1, updated_at = now()
    WHERE w.id = ANY (v_ids) AND w.status IN ('pending', 'running')
    RETURNING w.id, w.version
  )
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  SELECT done.id, done.version, 'paused', jsonb_build_object('status', 'paused', 'requestedBy', p_requested_by) FROM done;
  UPDATE baton.tasks t SET paused = true, status = 'waiting', updated_at = now()
  WHERE t.workflow_id = ANY (v_ids) AND t.status IN ('ready', 'waiting') AND NOT t.paused;
  RETURN v_status;
END
$$;
--> statement-breakpoint

-- Resume a paused instance and its paused descendants: what was held runs.
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
  IF v_status <> 'paused' THEN
    RAISE EXCEPTION 'workflow instance "%" is %, not paused', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
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

-- Instances failed by something outside the state machine (a task whose
-- leases were lost too often). p_errors is a jsonb object: id -> error.
CREATE OR REPLACE FUNCTION baton.fail_instances(p_errors jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
BEGIN
  WITH done AS (
    UPDATE baton.workflows w
    SET status = 'failed', error = p_errors -> w.id, finished_at = now(), updated_at = now(), version = w.version + 1, current_step = NULL
    WHERE w.id IN (SELECT jsonb_object_keys(p_errors)) AND w.status IN ('pending', 'running', 'paused')
    RETURNING w.id, w.version
  ), logged AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT done.id, done.version, 'failed', jsonb_build_object('status', 'failed', 'error', p_errors -> done.id)
    FROM done
    RETURNING workflow_id
  )
  SELECT ARRAY(SELECT workflow_id FROM logged) INTO v_ids;
  PERFORM baton.after_finish(v_ids);
  RETURN v_ids;
END
$$;
--> statement-breakpoint

-- Expired leases (a worker crashed, froze or lost its connection): the task
-- is ready again (its ready_key, and so its place in line, is kept), the
-- attempt counts, and "lease lost" is recorded. A task whose leases were lost
-- p_max_losses times, or that used up its attempts, fails with its instance:
-- it probably kills the worker that runs it.
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

  WITH expired AS (
    SELECT t.workflow_id, t.task_key, t.claimed_by, t.epoch, t.attempts, t.max_attempts, t.lease_losses + 1 AS losses
    FROM baton.tasks t
    WHERE t.workflow_id = ANY (v_ids) AND t.status = 'running' AND t.lease_expires_at < now()
    FOR UPDATE
  ), changed AS (
    UPDATE baton.tasks t
    SET status = CASE WHEN e.losses >= p_max_losses OR e.attempts >= e.max_attempts THEN 'failed' ELSE 'ready' END,
        lease_losses = e.losses,
        last_error = jsonb_build_object('name', 'LeaseLostError', 'code', 'LEASE_LOST',
          'message', format('lease lost: worker %s stopped renewing its claim (attempt %s, lease lost %s time(s))', e.claimed_by, e.attempts, e.losses),
          'worker', e.claimed_by, 'attempt', e.attempts),
        last_failed_worker = e.claimed_by,
        claimed_by = NULL, lease_expires_at = NULL, updated_at = now(),
        finished_at = CASE WHEN e.losses >= p_max_losses OR e.attempts >= e.max_attempts THEN now() END,
        ready_key = coalesce(t.ready_key, now() + t.priority * baton.aging_interval())
    FROM expired e
    WHERE t.workflow_id = e.workflow_id AND t.task_key = e.task_key
    RETURNING t.workflow_id, t.task_key, t.status, t.last_error, e.attempts, e.claimed_by, e.epoch
  ), versions AS (
    UPDATE baton.workflows w
    SET version = w.version + n.cnt, updated_at = now()
    FROM (SELECT changed.workflow_id, count(*) AS cnt FROM changed GROUP BY changed.workflow_id) n
    WHERE w.id = n.workflow_id
    RETURNING w.id, w.version, n.cnt
  ), logged AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT c.workflow_id, v.version - v.cnt + row_number() OVER (PARTITION BY c.workflow_id ORDER BY c.task_key), 'lease_lost',
      jsonb_build_object('key', c.task_key, 'attempt', c.attempts, 'worker', c.claimed_by, 'epoch', c.epoch, 'error', c.last_error,
        'task', c.status)
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
