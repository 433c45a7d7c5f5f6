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
