-- Cancel the open work under some steps of instances whose row locks the
-- caller holds (baton.commit): the branches a join no longer needs, or the
-- rest of a failed branch (src/workflow/join.ts). p_steps: [{wf, key}], each
-- an activation key; its task and every task under it ('<key>/...') that is
-- still open becomes cancelled, and the child instances started by those
-- steps are cancelled with their descendants. Workers running one of these
-- tasks are told on baton_cancel, one '<instance>\x1f<task key>' per task
-- (entries without \x1f name whole instances); a payload too long to send is
-- left out, and those workers find out at their next lease renewal instead.
CREATE OR REPLACE FUNCTION baton.cancel_steps(p_steps jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_running text[];
  v_children text[];
  v_payload text;
BEGIN
  WITH targets AS (
    SELECT t.workflow_id, t.task_key, t.status
    FROM baton.tasks t
    JOIN (SELECT DISTINCT s.wf, s.key FROM jsonb_to_recordset(p_steps) AS s(wf text, key text)) s ON t.workflow_id = s.wf
    WHERE (t.task_key = s.key OR left(t.task_key, length(s.key) + 1) = s.key || '/')
      AND t.status IN ('waiting', 'queued', 'ready', 'running')
  ), cancelled AS (
    UPDATE baton.tasks t
    SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
    FROM targets g
    WHERE t.workflow_id = g.workflow_id AND t.task_key = g.task_key
    RETURNING g.workflow_id, g.task_key, g.status AS was
  )
  SELECT coalesce(array_agg(c.workflow_id || E'\x1f' || c.task_key) FILTER (WHERE c.was = 'running'), '{}') INTO v_running FROM cancelled c;

  v_children := ARRAY(
    SELECT w.id FROM baton.workflows w
    JOIN (SELECT DISTINCT s.wf, s.key FROM jsonb_to_recordset(p_steps) AS s(wf text, key text)) s ON w.parent_id = s.wf
    WHERE (w.parent_key = s.key OR left(w.parent_key, length(s.key) + 1) = s.key || '/') AND w.status IN ('pending', 'running', 'paused')
    ORDER BY w.id FOR UPDATE OF w);
  IF cardinality(v_children) > 0 THEN
    PERFORM baton.cancel_tree(v_children, jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
      'message', 'cancelled because its parent workflow''s parallel step no longer needs it'));
  END IF;

  IF cardinality(v_running) > 0 THEN
    v_payload := array_to_string(v_running, ',');
    IF length(v_payload) < 7000 THEN
      PERFORM pg_notify('baton_cancel', v_payload);
    END IF;
  END IF;
END
$$;
