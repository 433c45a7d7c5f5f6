-- Make one failed or cancelled instance run again from where it stopped (the
-- work of retry_workflow; the caller holds the instance's row lock and has
-- checked its status). Its failed and cancelled steps become runnable again
-- with fresh attempts; completed steps keep their outputs, and the control
-- state (open parallel frames) is kept as it was, since the steps reset here
-- are exactly the ones it still waits for. Task rows keep their input: a
-- first step's is NULL (the claim hands it the instance's input).
--   task, branch  ready now
--   sleep         waiting until its original wake-up time (at once if passed)
--   event         waiting with a fresh timeout of the same length (ready if
--                 one is buffered); a keyed wait is ready, to compute its key
--                 again (the key function may have been what failed)
--   child         its failed or cancelled child instance is retried too (this
--                 function, recursively); a completed child hands its output
--                 again (ready); a gone child makes the retry an error
-- Steps in branches that a fired join no longer waits for stay as they are
-- (baton.join_settled): what an any-of or quorum join cancelled is not run again.
-- An instance whose compensation failed (its error's step is the compensation,
-- '!<key>') runs that compensation again and goes on compensating: only its
-- compensation steps are reset, not the forward step that failed.
-- A failed instance whose error names no failed step (a branch, loop or
-- definition error after a completed step) has nothing to run again: BTS01.
-- Records a 'retried' checkpoint; p_via names the parent whose retry this is.
-- Returns the step keys reset and the descendants retried with it.
CREATE OR REPLACE FUNCTION baton.retry_instance(p_id text, p_via text DEFAULT NULL)
RETURNS TABLE (steps text[], children text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_w record;
  v_child record;
  v_sub record;
  v_children text[] := '{}';
  v_steps text[];
  v_names text;
  v_version integer;
BEGIN
  SELECT w.status, w.error, w.version, w.state INTO v_w FROM baton.workflows w WHERE w.id = p_id;
  IF v_w.status = 'failed' AND NOT EXISTS (
    SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = v_w.error ->> 'step' AND t.status = 'failed') THEN
    RAISE EXCEPTION 'workflow instance "%" failed in the workflow itself, not in a step (%): there is no step to run again',
      p_id, coalesce(v_w.error ->> 'message', 'no error recorded') USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;

  -- Child steps to run again: lock their instances in id order (children sort after their parent).
  PERFORM 1 FROM baton.workflows c
  WHERE c.parent_id = p_id
    AND EXISTS (SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = c.parent_key AND t.kind = 'child'
                  AND t.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, t.task_key))
    AND left(v_w.error ->> 'step', 1) IS DISTINCT FROM '!'
  ORDER BY c.id FOR UPDATE;
  FOR v_child IN
    SELECT t.task_key, c.id, c.status
    FROM baton.tasks t
    LEFT JOIN baton.workflows c ON c.id = t.workflow_id || '/' || t.task_key AND c.parent_id = t.workflow_id AND c.parent_key = t.task_key
    WHERE t.workflow_id = p_id AND t.kind = 'child' AND t.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, t.task_key)
      AND left(v_w.error ->> 'step', 1) IS DISTINCT FROM '!'
    ORDER BY c.id
  LOOP
    IF v_child.id IS NULL THEN
      RAISE EXCEPTION 'workflow instance "%" cannot be retried: its child instance "%/%" is gone', p_id, p_id, v_child.task_key
        USING ERRCODE = 'BTS01', DETAIL = v_w.status;
    END IF;
    IF v_child.status IN ('failed', 'cancelled') THEN
      SELECT * INTO v_sub FROM baton.retry_instance(v_child.id, p_id);
      v_children := v_children || v_child.id || v_sub.children;
    END IF;
  END LOOP;

  WITH reset AS (
    UPDATE baton.tasks t
    SET status = CASE
          WHEN t.kind IN ('task', 'branch') THEN 'ready'
          WHEN t.kind = 'event' AND t.event_key IS NOT NULL THEN 'ready'
          WHEN t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name) THEN 'ready'
          WHEN t.kind = 'child' AND c.status = 'completed' THEN 'ready'
          ELSE 'waiting'
        END,
        ready_key = CASE
          WHEN t.kind IN ('task', 'branch') OR (t.kind = 'event' AND t.event_key IS NOT NULL)
            OR (t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name))
            OR (t.kind = 'child' AND c.status = 'completed')
          THEN now() + t.priority * baton.aging_interval()
        END,
        available_at = CASE t.kind
          WHEN 'sleep' THEN t.available_at
          -- (no time-out stays none: greatest() would turn the NULL into 0, a time-out at once)
          WHEN 'event' THEN CASE WHEN t.available_at IS NOT NULL THEN now() + greatest(t.available_at - t.created_at, interval '0') END
          WHEN 'child' THEN NULL
          ELSE now()
        END,
        output = CASE WHEN t.kind = 'child' AND c.status = 'completed'
          THEN jsonb_build_object('status', c.status, 'output', c.output, 'error', c.error) END,
        event_key = CASE WHEN t.event_key IS NOT NULL THEN '' END,
        attempts = 0, lease_losses = 0, paused = false, last_error = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL,
        progress = NULL, progress_message = NULL, started_at = NULL, finished_at = NULL, updated_at = now()
    FROM baton.tasks o
    LEFT JOIN baton.workflows c ON o.kind = 'child' AND c.id = o.workflow_id || '/' || o.task_key
    WHERE o.workflow_id = p_id AND o.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, o.task_key)
      AND (left(v_w.error ->> 'step', 1) IS DISTINCT FROM '!' OR left(o.task_key, 1) = '!')
      AND t.workflow_id = o.workflow_id AND t.task_key = o.task_key
    RETURNING t.task_key, t.name
  )
  SELECT array_agg(r.task_key ORDER BY r.task_key), string_agg(DISTINCT r.name, ', ') INTO v_steps, v_names FROM reset r;
  IF v_steps IS NULL THEN
    RAISE EXCEPTION 'workflow instance "%" has no failed or cancelled step to run again', p_id USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;

  DELETE FROM baton.signals s WHERE s.workflow_id = p_id;
  UPDATE baton.workflows w
  SET status = 'running', error = NULL, output = NULL, finished_at = NULL, current_step = v_names,
      version = w.version + 1, updated_at = now()
  WHERE w.id = p_id
  RETURNING w.version INTO v_version;
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  VALUES (p_id, v_version, 'retried', jsonb_strip_nulls(jsonb_build_object('status', 'running', 'was', v_w.status, 'error', v_w.error,
    'steps', to_jsonb(v_steps), 'children', CASE WHEN cardinality(v_children) > 0 THEN to_jsonb(v_children) END, 'via', p_via)));
  RETURN QUERY SELECT v_steps, v_children;
END
$$;
