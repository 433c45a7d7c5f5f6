-- After instances finished (completed, failed, cancelled or compensated) in the
-- caller's transaction: close their open tasks, cancel what their failed steps
-- left running in child instances, hand outcomes to parents, and tell waiters.
-- An instance among p_ids still running began to compensate: its forward work
-- is closed the same way, its compensations ('!' keys) are kept, and workers
-- are told at once to stop its running forward tasks (baton_cancel, '!<id>').
CREATE OR REPLACE FUNCTION baton.after_finish(p_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_children text[];
  v_halted text[];
BEGIN
  IF cardinality(p_ids) = 0 THEN
    RETURN;
  END IF;
  UPDATE baton.tasks t
  SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
  FROM baton.workflows w
  WHERE t.workflow_id = ANY (p_ids) AND t.status IN ('waiting', 'queued', 'ready', 'running') AND w.id = t.workflow_id
    AND (w.status NOT IN ('running', 'paused') OR left(t.task_key, 1) <> '!');
  v_halted := ARRAY(SELECT '!' || w.id FROM baton.workflows w WHERE w.id = ANY (p_ids) AND w.status IN ('running', 'paused'));
  IF cardinality(v_halted) > 0 THEN
    PERFORM pg_notify('baton_cancel', left(array_to_string(v_halted, ','), 7000));
  END IF;
  v_children := ARRAY(
    SELECT w.id FROM baton.workflows w
    WHERE w.parent_id = ANY (p_ids) AND w.status IN ('pending', 'running', 'paused')
    ORDER BY w.id FOR UPDATE);
  IF cardinality(v_children) > 0 THEN
    PERFORM baton.cancel_tree(v_children, jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
      'message', 'cancelled because its parent workflow finished'));
  END IF;
  PERFORM baton.settle_parents(p_ids);
  PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(p_ids, ',')) < 7000 THEN array_to_string(p_ids, ',') ELSE '*' END);
END
$$;
