BEGIN;
SET LOCAL synchronous_commit = off;
WITH c AS (
  SELECT workflow_id, task_key FROM baton_model.tasks WHERE status = 'ready' AND tags = '{}' ORDER BY ready_key LIMIT :b FOR UPDATE SKIP LOCKED
), u AS (
  UPDATE baton_model.tasks t SET status = 'running', epoch = nextval('baton_model.epoch_seq'), claimed_by = 'w' || :client_id, claimed_at = now(),
    lease_expires_at = now() + interval '30 s', attempts = t.attempts + 1, started_at = coalesce(t.started_at, now()), updated_at = now()
  FROM c WHERE t.workflow_id = c.workflow_id AND t.task_key = c.task_key
  RETURNING t.workflow_id, t.task_key, t.epoch
) SELECT count(*) FROM u JOIN baton_model.workflows w ON w.id = u.workflow_id;
COMMIT;
BEGIN;
WITH c AS (
  SELECT workflow_id, task_key, epoch FROM baton_model.tasks WHERE status = 'running' AND claimed_by = 'w' || :client_id
), wf AS (
  UPDATE baton_model.workflows w SET status = 'completed', output = 'null', version = w.version + 1, completed_task_count = 1, current_step = NULL, updated_at = now(), finished_at = now()
  FROM c WHERE w.id = c.workflow_id RETURNING w.id
)
UPDATE baton_model.tasks t SET status = 'completed', claimed_by = NULL, lease_expires_at = NULL, finished_at = now(), finished_by = 'w', progress = 100, updated_at = now()
  FROM c WHERE t.workflow_id = c.workflow_id AND t.task_key = c.task_key AND t.epoch = c.epoch;
COMMIT;
