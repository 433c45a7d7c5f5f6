-- Retry many instances at once (`baton retry --status failed --name order`):
-- the top-level instances with one of p_statuses (failed, cancelled), of
-- workflow p_name (any when NULL), that ended at or after p_since (any when
-- NULL), at most p_limit of them, oldest end first. Each is retried by
-- retry_workflow in a subtransaction of its own, in id order (the lock
-- order); one that cannot be retried (it failed outside a step, or changed
-- meanwhile) is skipped with the reason, and the others go on.
-- One row per instance considered.
-- after: retry_workflow
CREATE OR REPLACE FUNCTION baton.retry_many(p_statuses text[], p_name text DEFAULT NULL, p_since timestamptz DEFAULT NULL,
  p_limit integer DEFAULT 1000)
RETURNS TABLE (workflow_id text, was text, retried boolean, reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_id text;
  v_status text;
  v_r record;
BEGIN
  IF p_statuses IS NULL OR cardinality(p_statuses) = 0
     OR EXISTS (SELECT 1 FROM unnest(p_statuses) s WHERE s IS NULL OR s NOT IN ('failed', 'cancelled')) THEN
    RAISE EXCEPTION 'statuses must be failed and/or cancelled (got %)', coalesce(array_to_string(p_statuses, ', ', 'null'), 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
    RAISE EXCEPTION 'limit must be a whole number from 1 to 10000 (got %)', coalesce(p_limit::text, 'null') USING ERRCODE = 'BTV01';
  END IF;
  FOR v_id, v_status IN
    SELECT c.id, c.status FROM (
      SELECT w.id, w.status FROM baton.workflows w
      WHERE w.status = ANY (p_statuses) AND w.parent_id IS NULL
        AND (p_name IS NULL OR w.name = p_name) AND (p_since IS NULL OR w.finished_at >= p_since)
      ORDER BY w.finished_at, w.id
      LIMIT p_limit) c
    ORDER BY c.id
  LOOP
    BEGIN
      SELECT * INTO v_r FROM baton.retry_workflow(v_id);
      RETURN QUERY SELECT v_id, v_r.was, true, NULL::text;
    EXCEPTION WHEN SQLSTATE 'BTS01' OR SQLSTATE 'BTN02' THEN
      RETURN QUERY SELECT v_id, v_status, false, SQLERRM;
    END;
  END LOOP;
END
$$;
