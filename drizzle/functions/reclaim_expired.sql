-- Expired leases (a worker crashed, froze or lost its connection): the task
-- is ready again (its ready_key, and so its place in line, is kept) and "lease
-- lost" is recorded. What the lost lease costs the task depends on whether its
-- attempt may have begun (baton.tasks.begun, set by the claim; see claim_tasks):
--   it may have (begun): an ordinary task, which its worker may start as soon as
--     it is claimed, or a suspect its worker marked begun before running it (a
--     task whose last attempt lost its lease, or that lost one ever). The
--     attempt counts and so does the lost lease. A task whose leases were lost
--     p_max_losses times, or that used up its attempts, fails with its
--     instance: it probably kills the worker that runs it.
--   it surely did not: a suspect its worker had not marked begun. The attempt
--     is given back and no lost lease is counted.
-- So a crash costs a task held but never started one lost lease at most, the
-- first time (it is not a suspect yet); after that, only the crashes of workers
-- that had begun it count. A task that kills its worker fails after as many
-- crashes as before. (Counting nothing at the first crash was tried: the tasks
-- beside a poison task, reclaimed with it and claimed again with it in line
-- order, then used up their attempts before isolation kept them apart.)
CREATE OR REPLACE FUNCTION baton.reclaim_expired(p_max_losses integer, p_limit integer DEFAULT 1000)
RETURNS TABLE (reclaimed integer, failed integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_reclaimed integer := 0;
  v_failed integer := 0;
  v_errors jsonb;
BEGIN
  v_ids := ARRAY(
    SELECT DISTINCT t.workflow_id FROM baton.tasks t
    WHERE t.status = 'running' AND t.lease_expires_at < now()
    LIMIT p_limit);
  IF cardinality(v_ids) = 0 THEN
    RETURN QUERY SELECT 0, 0;
    RETURN;
  END IF;
  PERFORM 1 FROM baton.workflows w
  WHERE w.id = ANY (v_ids || ARRAY(SELECT p.parent_id FROM baton.workflows p WHERE p.id = ANY (v_ids) AND p.parent_id IS NOT NULL))
  ORDER BY w.id FOR UPDATE;

  WITH expired AS (
    SELECT t.workflow_id, t.task_key, t.claimed_by, t.epoch, t.begun AS ran, t.attempts AS attempt,
      CASE WHEN t.begun THEN t.attempts ELSE greatest(t.attempts - 1, 0) END AS attempts,
      t.max_attempts, t.lease_losses + t.begun::integer AS losses
    FROM baton.tasks t
    WHERE t.workflow_id = ANY (v_ids) AND t.status = 'running' AND t.lease_expires_at < now()
    FOR UPDATE
  ), changed AS (
    UPDATE baton.tasks t
    SET status = CASE WHEN e.ran AND (e.losses >= p_max_losses OR e.attempts >= e.max_attempts) THEN 'failed' ELSE 'ready' END,
        lease_losses = e.losses, attempts = e.attempts,
        last_error = jsonb_build_object('name', 'LeaseLostError', 'code', 'LEASE_LOST',
          'message', CASE WHEN e.ran
            THEN format('lease lost: worker %s stopped renewing its claim (attempt %s, lease lost %s time(s))', e.claimed_by, e.attempt, e.losses)
            ELSE format('lease lost: worker %s stopped renewing its claim before the attempt began (the attempt is given back; lease lost %s time(s))',
              e.claimed_by, e.losses) END,
          'worker', e.claimed_by, 'attempt', e.attempt, 'counted', e.ran),
        last_failed_worker = e.claimed_by,
        claimed_by = NULL, lease_expires_at = NULL, updated_at = now(),
        finished_at = CASE WHEN e.ran AND (e.losses >= p_max_losses OR e.attempts >= e.max_attempts) THEN now() END,
        ready_key = coalesce(t.ready_key, now() + t.priority * baton.aging_interval())
    FROM expired e
    WHERE t.workflow_id = e.workflow_id AND t.task_key = e.task_key
    RETURNING t.workflow_id, t.task_key, t.status, t.last_error, e.attempt, e.claimed_by, e.epoch, e.ran
  ), versions AS (
    UPDATE baton.workflows w
    SET version = w.version + n.cnt, updated_at = now()
    FROM (SELECT changed.workflow_id, count(*) AS cnt FROM changed GROUP BY changed.workflow_id) n
    WHERE w.id = n.workflow_id
    RETURNING w.id, w.version, n.cnt
  ), logged AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT c.workflow_id, v.version - v.cnt + row_number() OVER (PARTITION BY c.workflow_id ORDER BY c.task_key), 'lease_lost',
      jsonb_build_object('key', c.task_key, 'attempt', c.attempt, 'worker', c.claimed_by, 'epoch', c.epoch, 'error', c.last_error,
        'task', c.status, 'counted', c.ran)
    FROM changed c JOIN versions v ON v.id = c.workflow_id
    RETURNING 1
  )
  SELECT count(*) FILTER (WHERE c.status = 'ready'), count(*) FILTER (WHERE c.status = 'failed'),
    jsonb_object_agg(c.workflow_id, c.last_error || jsonb_build_object('step', c.task_key,
      'message', 'task "' || c.task_key || '" failed: ' || (c.last_error ->> 'message'))) FILTER (WHERE c.status = 'failed')
  INTO v_reclaimed, v_failed, v_errors
  FROM changed c;

  IF v_reclaimed > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  IF v_errors IS NOT NULL THEN
    PERFORM baton.fail_instances(v_errors);
  END IF;
  RETURN QUERY SELECT v_reclaimed, v_failed;
END
$$;
