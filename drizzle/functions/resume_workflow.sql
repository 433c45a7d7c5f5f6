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
  IF v_status IN ('completed', 'failed', 'cancelled', 'compensated') THEN
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
