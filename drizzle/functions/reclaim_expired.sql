-- Expired leases (a worker crashed, froze or lost its connection): the task
-- is ready again (its ready_key, and so its place in line, is kept) and "lease
-- lost" is recorded. What the lost lease costs the task depends on what is known
-- of its attempt (baton.tasks.begun; see claim_tasks):
--   it may have run: it was marked begun (its worker does that before running a
--     suspect; an older worker's claims are marked at once), or it is not a
--     suspect (nobody says when those begin). The attempt counts and so does
--     the lost lease. A task whose leases were lost p_max_losses times, or that
--     used up its attempts, fails with its instance: it probably kills the
--     worker that runs it.
--   it surely did not: a suspect (its last attempt lost its lease, or it lost
--     one ever) that its worker had not marked begun. The attempt is given back
--     and no lost lease is counted.
-- So a crash costs a task held but not started one lost lease at most, the
-- first time; after that only the crashes of workers that were running it
-- count. (Counting none at the first crash was tried: the tasks beside a
-- poison task, reclaimed with it and claimed again with it in line order, then
-- reached their attempts before isolation kept them apart.)
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

  WITH locked AS (
    SELECT t.workflow_id, t.task_key, t.claimed_by, t.epoch, t.begun, t.attempts, t.max_attempts, t.lease_losses,
      t.lease_losses > 0 OR coalesce(t.last_error ->> 'code' = 'LEASE_LOST', false) AS suspect
    FROM baton.tasks t
    WHERE t.workflow_id = ANY (v_ids) AND t.status = 'running' AND t.lease_expires_at < now()
    FOR UPDATE
  ), expired AS (
    -- ran: the attempt began (begun) or may have (not a suspect); only a suspect not begun surely did not.
    SELECT l.workflow_id, l.task_key, l.claimed_by, l.epoch, r.ran, l.attempts AS attempt,
      CASE WHEN r.ran THEN l.attempts ELSE greatest(l.attempts - 1, 0) END AS attempts,
      l.max_attempts, l.lease_losses + r.ran::integer AS losses
    FROM locked l CROSS JOIN LATERAL (SELECT l.begun OR NOT l.suspect AS ran) r
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
