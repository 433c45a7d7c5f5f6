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
