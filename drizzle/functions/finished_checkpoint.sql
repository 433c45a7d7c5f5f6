-- The last checkpoint of a one-task job that completed quietly: 'completed',
-- at the instance's version. It is not stored (one history row fewer per job:
-- the commit's insert into baton.history was about a tenth of a job's server
-- time, and the row about a quarter of its retained bytes), since everything
-- in it is on the task row and its instance: the step's key, attempt and
-- epoch, the worker that committed it (finished_by, set only for such a
-- commit), the state's patch (a one-task job's only change of state: one step
-- done) and the time. Returns no row for an instance that has no such task, or
-- that does not exist.
CREATE OR REPLACE FUNCTION baton.finished_checkpoint(p_id text)
RETURNS TABLE (workflow_id text, version integer, kind text, detail jsonb, at timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT w.id, w.version, 'completed',
    jsonb_build_object('key', t.task_key, 'attempt', t.attempts, 'worker', t.finished_by, 'epoch', t.epoch,
      'status', 'completed', 'patch', jsonb_build_object('done', w.completed_task_count)),
    t.finished_at
  FROM baton.workflows w
  JOIN baton.tasks t ON t.workflow_id = w.id
  WHERE w.id = p_id AND t.finished_by IS NOT NULL AND t.status = 'completed' AND w.status = 'completed'
$$;
