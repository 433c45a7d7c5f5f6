-- Retry a failed or cancelled instance: the SQL API behind client.retry and
-- `baton retry <id>`. It runs again from the steps that failed or were
-- cancelled (see retry_instance), with its failed or cancelled child
-- instances. A child instance is retried through its parent: retrying it
-- alone would leave the parent's step finished. Errors: BTN02 no such
-- instance; BTS01 running, paused or completed, a child, or nothing to run
-- again (nothing is written). Returns the status it had, the step keys
-- reset and the descendants retried with it.
-- after: retry_instance
CREATE OR REPLACE FUNCTION baton.retry_workflow(p_id text)
RETURNS TABLE (was text, steps text[], children text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_w record;
  v_r record;
BEGIN
  IF p_id IS NULL OR length(p_id) = 0 OR length(p_id) > 2000 OR p_id ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'id must be a non-empty string without control characters' USING ERRCODE = 'BTV01';
  END IF;
  SELECT w.status, w.parent_id, w.parent_key INTO v_w FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_w.status NOT IN ('failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is %: only a failed or cancelled instance can be retried', p_id, v_w.status
      USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;
  IF v_w.parent_id IS NOT NULL THEN
    RAISE EXCEPTION 'workflow instance "%" is the child of "%" (step %): retry "%", which retries it too', p_id, v_w.parent_id, v_w.parent_key, v_w.parent_id
      USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;
  SELECT * INTO v_r FROM baton.retry_instance(p_id);
  PERFORM pg_notify('baton_ready', '');
  RETURN QUERY SELECT v_w.status::text, v_r.steps, v_r.children;
END
$$;
