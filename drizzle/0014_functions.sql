-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.
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
--                 one is buffered)
--   child         its failed or cancelled child instance is retried too (this
--                 function, recursively); a completed child hands its output
--                 again (ready); a gone child makes the retry an error
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
  SELECT w.status, w.error, w.version INTO v_w FROM baton.workflows w WHERE w.id = p_id;
  IF v_w.status = 'failed' AND NOT EXISTS (
    SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = v_w.error ->> 'step' AND t.status = 'failed') THEN
    RAISE EXCEPTION 'workflow instance "%" failed in the workflow itself, not in a step (%): there is no step to run again',
      p_id, coalesce(v_w.error ->> 'message', 'no error recorded') USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;

  -- Child steps to run again: lock their instances in id order (children sort after their parent).
  PERFORM 1 FROM baton.workflows c
  WHERE c.parent_id = p_id
    AND EXISTS (SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = c.parent_key AND t.kind = 'child'
                  AND t.status IN ('failed', 'cancelled'))
  ORDER BY c.id FOR UPDATE;
  FOR v_child IN
    SELECT t.task_key, c.id, c.status
    FROM baton.tasks t
    LEFT JOIN baton.workflows c ON c.id = t.workflow_id || '/' || t.task_key AND c.parent_id = t.workflow_id AND c.parent_key = t.task_key
    WHERE t.workflow_id = p_id AND t.kind = 'child' AND t.status IN ('failed', 'cancelled')
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
          WHEN t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name) THEN 'ready'
          WHEN t.kind = 'child' AND c.status = 'completed' THEN 'ready'
          ELSE 'waiting'
        END,
        ready_key = CASE
          WHEN t.kind IN ('task', 'branch')
            OR (t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name))
            OR (t.kind = 'child' AND c.status = 'completed')
          THEN now() + t.priority * baton.aging_interval()
        END,
        available_at = CASE t.kind
          WHEN 'sleep' THEN t.available_at
          WHEN 'event' THEN now() + greatest(t.available_at - t.created_at, interval '0')
          WHEN 'child' THEN NULL
          ELSE now()
        END,
        output = CASE WHEN t.kind = 'child' AND c.status = 'completed'
          THEN jsonb_build_object('status', c.status, 'output', c.output, 'error', c.error) END,
        attempts = 0, lease_losses = 0, paused = false, last_error = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL,
        progress = NULL, progress_message = NULL, started_at = NULL, finished_at = NULL, updated_at = now()
    FROM baton.tasks o
    LEFT JOIN baton.workflows c ON o.kind = 'child' AND c.id = o.workflow_id || '/' || o.task_key
    WHERE o.workflow_id = p_id AND o.status IN ('failed', 'cancelled')
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
-- function: retry_workflow
-- Retry a failed or cancelled instance: the SQL API behind client.retry and
-- `baton retry <id>`. It runs again from the steps that failed or were
-- cancelled (see retry_instance), with its failed or cancelled child
-- instances. A child instance is retried through its parent: retrying it
-- alone would leave the parent's step finished. Errors: BTN02 no such
-- instance; BTS01 running, paused or completed, a child, or nothing to run
-- again (nothing is written). Returns the status it had, the step keys
-- reset and the descendants retried with it.
-- after: retry_instance
CREATE OR REPLACE FUNCTION baton.retry_workflow(p_id text)
RETURNS TABLE (was text, steps text[], children text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_w record;
  v_r record;
BEGIN
  IF p_id IS NULL OR length(p_id) = 0 OR length(p_id) > 2000 OR p_id ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'id must be a non-empty string without control characters' USING ERRCODE = 'BTV01';
  END IF;
  SELECT w.status, w.parent_id, w.parent_key INTO v_w FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_w.status NOT IN ('failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is %: only a failed or cancelled instance can be retried', p_id, v_w.status
      USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;
  IF v_w.parent_id IS NOT NULL THEN
    RAISE EXCEPTION 'workflow instance "%" is the child of "%" (step %): retry "%", which retries it too', p_id, v_w.parent_id, v_w.parent_key, v_w.parent_id
      USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;
  SELECT * INTO v_r FROM baton.retry_instance(p_id);
  PERFORM pg_notify('baton_ready', '');
  RETURN QUERY SELECT v_w.status::text, v_r.steps, v_r.children;
END
$$;
--> statement-breakpoint
-- function: retry_many
-- Retry many instances at once (`baton retry --status failed --name order`):
-- the top-level instances with one of p_statuses (failed, cancelled), of
-- workflow p_name (any when NULL), that ended at or after p_since (any when
-- NULL), at most p_limit of them, oldest end first. Each is retried by
-- retry_workflow in a subtransaction of its own, in id order (the lock
-- order); one that cannot be retried (it failed outside a step, or changed
-- meanwhile) is skipped with the reason, and the others go on.
-- One row per instance considered.
-- after: retry_workflow
CREATE OR REPLACE FUNCTION baton.retry_many(p_statuses text[], p_name text DEFAULT NULL, p_since timestamptz DEFAULT NULL,
  p_limit integer DEFAULT 1000)
RETURNS TABLE (workflow_id text, was text, retried boolean, reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_id text;
  v_status text;
  v_r record;
BEGIN
  IF p_statuses IS NULL OR cardinality(p_statuses) = 0
     OR EXISTS (SELECT 1 FROM unnest(p_statuses) s WHERE s IS NULL OR s NOT IN ('failed', 'cancelled')) THEN
    RAISE EXCEPTION 'statuses must be failed and/or cancelled (got %)', coalesce(array_to_string(p_statuses, ', ', 'null'), 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
    RAISE EXCEPTION 'limit must be a whole number from 1 to 10000 (got %)', coalesce(p_limit::text, 'null') USING ERRCODE = 'BTV01';
  END IF;
  FOR v_id, v_status IN
    SELECT c.id, c.status FROM (
      SELECT w.id, w.status FROM baton.workflows w
      WHERE w.status = ANY (p_statuses) AND w.parent_id IS NULL
        AND (p_name IS NULL OR w.name = p_name) AND (p_since IS NULL OR w.finished_at >= p_since)
      ORDER BY w.finished_at, w.id
      LIMIT p_limit) c
    ORDER BY c.id
  LOOP
    BEGIN
      SELECT * INTO v_r FROM baton.retry_workflow(v_id);
      RETURN QUERY SELECT v_id, v_r.was, true, NULL::text;
    EXCEPTION WHEN SQLSTATE 'BTS01' OR SQLSTATE 'BTN02' THEN
      RETURN QUERY SELECT v_id, v_status, false, SQLERRM;
    END;
  END LOOP;
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
DROP FUNCTION IF EXISTS baton.start_many(text, jsonb, text, integer, text[], text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.start_many(
  p_name text,
  p_inputs jsonb,
  p_kind text DEFAULT 'workflow',
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_hash text DEFAULT NULL,
  p_ids text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail'
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
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
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
    CROSS JOIN LATERAL baton.start_workflow(p_name, x.input, x.id, p_priority, v_tags, p_on_conflict, v_def.hash, NULL, p_kind) s
    ORDER BY x.n;
    RETURN;
  END IF;

  IF p_ids IS NULL THEN
    -- Generated ids only: nothing can be taken.
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at)
    SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now()
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
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at)
    SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now()
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
    FROM baton.start_workflow(p_name, v_inputs[v_n], v_ids[v_n], p_priority, v_tags, p_on_conflict, v_def.hash, NULL, p_kind) s;
    v_created[v_n] := v_one;
  END LOOP;
  RETURN QUERY SELECT x.id, x.created FROM unnest(v_ids, v_created) WITH ORDINALITY AS x(id, created, n) ORDER BY x.n;
END
$$;
