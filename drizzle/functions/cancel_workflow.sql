-- Cancel an instance and its running descendants, atomically against a
-- racing completion (both take the instance row lock). Returns the status it had.
-- Cancelling a cancelled instance changes nothing and returns 'cancelled'
-- (see resume_workflow for the rule); cancelling a completed, failed or
-- compensated one is an error.
-- p_compensate: instead of ending it now, close its forward work and let it
-- compensate its completed steps (baton.request_compensation); it ends
-- compensated (or cancelled, with nothing to compensate). Asking again while
-- it compensates changes nothing.
DROP FUNCTION IF EXISTS baton.cancel_workflow(text, text, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.cancel_workflow(p_id text, p_reason text DEFAULT NULL, p_requested_by text DEFAULT NULL,
  p_compensate boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_parent text;
  v_error jsonb;
BEGIN
  SELECT w.parent_id INTO v_parent FROM baton.workflows w WHERE w.id = p_id;
  PERFORM 1 FROM baton.workflows w WHERE w.id IN (p_id, v_parent) ORDER BY w.id FOR UPDATE;
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status = 'cancelled' THEN
    RETURN v_status;
  END IF;
  IF v_status IN ('completed', 'failed', 'compensated') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  INSERT INTO baton.signals (workflow_id, kind, reason, requested_by)
  VALUES (p_id, 'cancel', p_reason, p_requested_by)
  ON CONFLICT (workflow_id, kind) DO UPDATE SET reason = excluded.reason, requested_by = excluded.requested_by, requested_at = now();
  v_error := jsonb_strip_nulls(jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
    'message', 'cancelled' || coalesce(': ' || p_reason, ''), 'reason', p_reason, 'requestedBy', p_requested_by));
  IF coalesce(p_compensate, false) THEN
    PERFORM baton.request_compensation(p_id, v_error || '{"compensate": true}');
    RETURN v_status;
  END IF;
  PERFORM baton.cancel_tree(ARRAY[p_id], v_error);
  PERFORM baton.settle_parents(ARRAY[p_id]);
  RETURN v_status;
END
$$;
