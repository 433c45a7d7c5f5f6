-- Finished child instances hand their outcome to the parent's child step,
-- which becomes ready (or stays held while the parent is paused).
CREATE OR REPLACE FUNCTION baton.settle_parents(p_ids text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_count integer;
BEGIN
  UPDATE baton.tasks t
  SET status = CASE WHEN t.paused THEN 'waiting' ELSE 'ready' END,
      ready_key = CASE WHEN t.paused THEN NULL ELSE now() + t.priority * baton.aging_interval() END,
      output = jsonb_build_object('status', w.status, 'output', w.output, 'error', w.error),
      updated_at = now()
  FROM baton.workflows w
  WHERE w.id = ANY (p_ids) AND w.parent_id IS NOT NULL AND w.status IN ('completed', 'failed', 'cancelled', 'compensated')
    AND t.workflow_id = w.parent_id AND t.task_key = w.parent_key AND t.kind = 'child' AND t.status = 'waiting';
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_count;
END
$$;
