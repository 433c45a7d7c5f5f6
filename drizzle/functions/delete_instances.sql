-- Delete instances with everything that belongs to them (there are no foreign
-- keys: their per-row triggers cost the hot path too much).
CREATE OR REPLACE FUNCTION baton.delete_instances(p_ids text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_count integer;
BEGIN
  DELETE FROM baton.tasks WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.history WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.signals WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.events WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.stream_frames WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.waitpoint_uses WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.workflows WHERE id = ANY (p_ids);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;
