-- Pause an instance and its running descendants: running tasks finish, no
-- other task of theirs is claimed (ready ones are held) until resume.
-- NOTIFY baton_paused with their ids (or '*').
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
  IF v_status IN ('completed', 'failed', 'cancelled', 'compensated') THEN
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
  WHERE t.workflow_id = ANY (v_ids) AND t.status IN ('ready', 'queued', 'waiting') AND NOT t.paused;
  -- For watchers (the dashboard): a pause changes status but makes nothing ready or done.
  PERFORM pg_notify('baton_paused', CASE WHEN length(array_to_string(v_ids, ',')) < 7000 THEN array_to_string(v_ids, ',') ELSE '*' END);
  RETURN v_status;
END
$$;
