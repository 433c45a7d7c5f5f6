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
-- p_limit_key: the key of the first steps whose task has limits counted per key (defineTask's
-- concurrency.key / rateLimit.key; the client computes it from the input). Required (BTV01) when a
-- first step has such a limit, except for a child (a worker computes its children's keys; with none,
-- the step is not limited, and its worker's check of the key fails it).
DROP FUNCTION IF EXISTS baton.start_workflow(text, jsonb, text, integer, text[], text, text, timestamptz, text, text, text, boolean);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.start_workflow(text, jsonb, text, integer, text[], text, text, timestamptz, text, text, text, boolean, text, text);
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
  p_tracestate text DEFAULT NULL,
  p_limit_key text DEFAULT NULL
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

  IF p_limit_key IS NOT NULL AND (length(p_limit_key) NOT BETWEEN 1 AND 255 OR p_limit_key ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'limit key must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;

  v_def := baton.start_definition(p_name, p_kind, p_hash);
  IF p_limit_key IS NULL AND p_parent_id IS NULL AND v_def.plan @? '$.steps[*].limit ? (@.keyed == true)' THEN
    RAISE EXCEPTION '% "%" starts with a task whose limits count per key: pass the key (p_limit_key)',
      CASE WHEN p_kind = 'task' THEN 'task' ELSE 'workflow' END, p_name USING ERRCODE = 'BTV01';
  END IF;

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

  IF baton.insert_first_steps(ARRAY[v_id], ARRAY[p_input], v_def.plan, v_def.hash, p_priority, v_tags, p_run_at, p_paused, p_parent_id,
       ARRAY[p_limit_key]) > 0 THEN
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
      NULL, 'workflow', v_id, v_child.key, p_paused, p_traceparent, p_tracestate, p_limit_key);
  END LOOP;
  RETURN QUERY SELECT v_id, true;
END
$$;
