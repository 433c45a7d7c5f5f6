-- Make an unfinished instance compensate (src/workflow/compensate.ts): its
-- forward work is closed (open tasks cancelled, child instances cancelled, as
-- for a failure) and a `compensate` step keyed '!@<version>' is scheduled,
-- whose output (p_error) the state machine takes as the cause: it schedules
-- the compensations of the completed steps, latest first, or, with none,
-- ends the instance cancelled (p_error's code CANCELLED) or failed. The caller
-- holds the instance's row lock. Returns false, changing nothing, when the
-- instance is finished, already compensating, or already asked to.
-- after: schedule_tasks, after_finish
CREATE OR REPLACE FUNCTION baton.request_compensation(p_id text, p_error jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_w record;
BEGIN
  SELECT w.status, w.state, w.version, w.definition_hash, w.priority, w.tags INTO v_w FROM baton.workflows w WHERE w.id = p_id;
  IF NOT FOUND OR v_w.status NOT IN ('pending', 'running', 'paused') OR v_w.state ? 'sag'
     OR EXISTS (SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.kind = 'compensate'
                  AND t.status IN ('waiting', 'queued', 'ready', 'running')) THEN
    RETURN false;
  END IF;
  PERFORM baton.schedule_tasks(jsonb_build_array(jsonb_build_object('wf', p_id, 'key', '!@' || v_w.version, 'kind', 'compensate',
    'name', 'compensate', 'hash', v_w.definition_hash, 'input', p_error, 'priority', coalesce(v_w.priority, 0), 'tags', to_jsonb(v_w.tags),
    'maxAttempts', 1000, 'held', v_w.status = 'paused')));
  UPDATE baton.workflows w SET current_step = 'compensate', updated_at = now() WHERE w.id = p_id;
  PERFORM baton.after_finish(ARRAY[p_id]);
  RETURN true;
END
$$;
