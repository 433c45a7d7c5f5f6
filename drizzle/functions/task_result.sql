-- One task's status and result, by instance id and task key, without loading the instance or its
-- other tasks (one primary-key lookup). No row when there is no such task. A one-task job that
-- completed quietly keeps its output once, on its instance (finished_by set, see
-- baton.finished_checkpoint): it is read from there. Kept after the instance finished, until
-- retention deletes the instance.
CREATE OR REPLACE FUNCTION baton.task_result(p_id text, p_key text)
RETURNS TABLE (status text, output jsonb, error jsonb, attempts integer, finished_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT t.status,
    CASE WHEN t.finished_by IS NULL THEN t.output ELSE (SELECT w.output FROM baton.workflows w WHERE w.id = t.workflow_id) END,
    t.last_error, t.attempts, t.finished_at
  FROM baton.tasks t
  WHERE t.workflow_id = p_id AND t.task_key = p_key
$$;
