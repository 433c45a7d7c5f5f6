-- Many instances of one definition in one call (generated ids): one row per
-- input, in order. p_inputs is a JSON array. Set-based: one INSERT per table
-- for the whole batch (the instances, their first steps, their history), so a
-- bulk start costs about what a plain queue's bulk insert does. Definitions
-- whose first steps start child workflows go through start_workflow per input.
CREATE OR REPLACE FUNCTION baton.start_many(
  p_name text,
  p_inputs jsonb,
  p_kind text DEFAULT 'workflow',
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_hash text DEFAULT NULL
) RETURNS TABLE (workflow_id text)
LANGUAGE plpgsql
-- Generic plans for every statement inside (see insert_first_steps).
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_tags text[];
  v_ids text[];
  v_inputs jsonb[];
  v_limit bigint := coalesce(nullif(current_setting('baton.max_payload_bytes', true), ''), '1048576')::bigint;
  v_big record;
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
  IF p_inputs IS NULL OR jsonb_typeof(p_inputs) <> 'array' THEN
    RAISE EXCEPTION 'inputs must be a JSON array (got %)', coalesce(jsonb_typeof(p_inputs), 'null') USING ERRCODE = 'BTV01';
  END IF;
  v_def := baton.start_definition(p_name, p_kind, p_hash);

  SELECT array_agg(gen_random_uuid()::text ORDER BY x.n), array_agg(x.input ORDER BY x.n)
  INTO v_ids, v_inputs
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
    SELECT s.workflow_id FROM unnest(v_inputs) WITH ORDINALITY AS x(input, n)
    CROSS JOIN LATERAL baton.start_workflow(p_name, x.input, NULL, p_priority, v_tags, 'fail', v_def.hash, NULL, p_kind) s
    ORDER BY x.n;
    RETURN;
  END IF;

  INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at)
  SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now()
  FROM unnest(v_ids, v_inputs) AS i(id, input)
  CROSS JOIN (SELECT string_agg(s ->> 'name', ', ') AS names FROM jsonb_array_elements(v_def.plan -> 'steps') s) step;
  IF baton.insert_first_steps(v_ids, v_inputs, v_def.plan, v_def.hash, p_priority, v_tags, NULL, false, NULL) > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN QUERY SELECT unnest(v_ids);
END
$$;
