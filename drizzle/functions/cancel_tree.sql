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
  WHERE t.workflow_id = ANY (v_ids) AND t.status IN ('waiting', 'queued', 'ready', 'running');

  PERFORM pg_notify('baton_cancel', left(array_to_string(v_ids, ','), 7000));
  PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(v_ids, ',')) < 7000 THEN array_to_string(v_ids, ',') ELSE '*' END);
  RETURN v_ids;
END
$$;
