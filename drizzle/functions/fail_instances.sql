-- Instances failed by something outside the state machine (a task whose
-- leases were lost too often). p_errors is a jsonb object: id -> error.
-- Compensation (src/workflow/compensate.ts) is kept as the machine keeps it:
-- an instance with completed steps to compensate compensates instead of
-- failing (baton.request_compensation), and one whose compensation failed
-- fails with both errors (CompensationFailedError).
CREATE OR REPLACE FUNCTION baton.fail_instances(p_errors jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_id text;
  v_errors jsonb := p_errors;
BEGIN
  FOR v_id IN
    SELECT w.id FROM baton.workflows w
    WHERE w.id IN (SELECT jsonb_object_keys(p_errors)) AND w.status IN ('pending', 'running', 'paused')
      AND w.state ? 'comp' AND NOT w.state ? 'sag'
  LOOP
    PERFORM baton.request_compensation(v_id, p_errors -> v_id);
    v_errors := v_errors - v_id;
  END LOOP;
  SELECT v_errors || coalesce(jsonb_object_agg(w.id, jsonb_build_object('name', 'CompensationFailedError', 'code', 'COMPENSATION_FAILED',
      'message', format('the compensation of step "%s" failed: %s (it ran because: %s)', w.state -> 'sag' ->> 'at', x.e ->> 'message',
        w.state -> 'sag' -> 'err' ->> 'message'),
      'step', x.e ->> 'step', 'retryable', false, 'cause', w.state -> 'sag' -> 'err', 'compensation', x.e)), '{}')
  INTO v_errors
  FROM baton.workflows w CROSS JOIN LATERAL (SELECT v_errors -> w.id AS e) x
  WHERE w.id IN (SELECT jsonb_object_keys(v_errors)) AND w.state ? 'sag' AND x.e ->> 'step' = '!' || (w.state -> 'sag' ->> 'at');

  WITH done AS (
    UPDATE baton.workflows w
    SET status = 'failed', error = v_errors -> w.id, finished_at = now(), updated_at = now(), version = w.version + 1, current_step = NULL
    WHERE w.id IN (SELECT jsonb_object_keys(v_errors)) AND w.status IN ('pending', 'running', 'paused')
    RETURNING w.id, w.version
  ), logged AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT done.id, done.version, 'failed', jsonb_build_object('status', 'failed', 'error', v_errors -> done.id)
    FROM done
    RETURNING workflow_id
  )
  SELECT ARRAY(SELECT workflow_id FROM logged) INTO v_ids;
  PERFORM baton.after_finish(v_ids);
  RETURN v_ids;
END
$$;
