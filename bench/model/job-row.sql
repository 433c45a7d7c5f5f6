BEGIN;
SET LOCAL synchronous_commit = off;
WITH c AS (
  SELECT id FROM baton_model.jobs WHERE status = 'ready' AND tags = '{}' ORDER BY ready_key LIMIT :b FOR UPDATE SKIP LOCKED
) UPDATE baton_model.jobs j SET status = 'running', epoch = nextval('baton_model.epoch_seq'), claimed_by = 'w' || :client_id,
    lease_expires_at = now() + interval '30 s', attempts = j.attempts + 1, started_at = coalesce(j.started_at, now()), updated_at = now()
  FROM c WHERE j.id = c.id;
COMMIT;
BEGIN;
WITH c AS (
  SELECT id, epoch FROM baton_model.jobs WHERE status = 'running' AND claimed_by = 'w' || :client_id
)
UPDATE baton_model.jobs j SET status = 'completed', output = 'null', claimed_by = NULL, lease_expires_at = NULL,
  finished_at = now(), updated_at = now()
  FROM c WHERE j.id = c.id AND j.epoch = c.epoch;
COMMIT;
