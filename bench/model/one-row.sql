BEGIN;
SET LOCAL synchronous_commit = off;
WITH c AS (
  SELECT id FROM baton_model.workflows WHERE j_status = 'ready' AND tags = '{}' ORDER BY j_ready_key LIMIT :b FOR UPDATE SKIP LOCKED
) UPDATE baton_model.workflows w SET j_status = 'running', j_epoch = nextval('baton_model.epoch_seq'), j_claimed_by = 'w' || :client_id,
    j_lease = now() + interval '30 s', j_attempts = w.j_attempts + 1, j_started = coalesce(w.j_started, now()), updated_at = now()
  FROM c WHERE w.id = c.id;
COMMIT;
BEGIN;
WITH c AS (
  SELECT id, j_epoch FROM baton_model.workflows WHERE j_status = 'running' AND j_claimed_by = 'w' || :client_id
)
UPDATE baton_model.workflows w SET j_status = 'completed', status = 'completed', output = 'null', version = w.version + 1, completed_task_count = 1,
  current_step = NULL, updated_at = now(), finished_at = now(), j_claimed_by = NULL, j_lease = NULL
  FROM c WHERE w.id = c.id AND w.j_epoch = c.j_epoch;
COMMIT;
