-- Limits, part 3 of 3: admission. Turns the oldest `queued` tasks named p_name (in aging order,
-- ready_key) into `ready` while their limits allow, and returns how many. The caller holds the
-- task's advisory lock ('baton:limit:' || name) until its commit (limit_admit, admit_queued).
--   concurrency: at most `concurrency` rows of the task (of its key, when keyed) are admitted at
--     once: ready or running. A place frees when one leaves (completes, fails, is reclaimed by the
--     reconciler after its lease expired, is cancelled or paused).
--   rate: at most `rate` admissions in any `rate_period_ms` (per key, when keyed), counted in
--     baton.rate_log: it caps admissions, not starts (an admitted task on a busy fleet can start later).
--     A task the rate holds back stays queued; the reconciler tries again every tick (admit_queued).
-- p_key: the key whose place freed or whose task was queued. When the limit that applies first
-- (concurrency if any, else rate) counts per key, only that key's queue is looked at; otherwise the
-- task's whole queue. A task with no limits registered (any more) admits everything queued.
-- Never waits for a row lock (FOR UPDATE SKIP LOCKED): a row skipped here is admitted later by the
-- reconciler's tick at the latest.
CREATE OR REPLACE FUNCTION baton.admit(p_name text, p_key text) RETURNS integer
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_lim baton.task_limits%ROWTYPE;
  v_per_key boolean;
  v_free bigint := 2147483647;
  v_now timestamptz := clock_timestamp();
  v_n integer := 0;
  v_rkey text;
  v_blocked text[] := '{}';
  r record;
  v_cur refcursor;
  v_last bigint;
  v_first bigint;
BEGIN
  SELECT * INTO v_lim FROM baton.task_limits l WHERE l.name = p_name;
  IF NOT FOUND OR (v_lim.concurrency IS NULL AND v_lim.rate IS NULL) THEN
    WITH q AS (
      SELECT t.workflow_id, t.task_key FROM baton.tasks t WHERE t.status = 'queued' AND t.name = p_name
      FOR UPDATE SKIP LOCKED
    ), a AS (
      UPDATE baton.tasks t SET status = 'ready', updated_at = now()
      FROM q WHERE t.workflow_id = q.workflow_id AND t.task_key = q.task_key
      RETURNING 1
    )
    SELECT count(*) INTO v_n FROM a;
    RETURN v_n;
  END IF;
  v_per_key := CASE WHEN v_lim.concurrency IS NOT NULL THEN v_lim.concurrency_keyed ELSE v_lim.rate_keyed END;

  IF v_lim.concurrency IS NOT NULL THEN
    IF v_per_key THEN
      SELECT v_lim.concurrency - count(*) INTO v_free FROM baton.tasks t
      WHERE t.name = p_name AND t.limit_key = p_key AND t.limit_key IS NOT NULL AND t.status IN ('ready', 'running');
    ELSE
      SELECT v_lim.concurrency - count(*) INTO v_free FROM baton.tasks t
      WHERE t.name = p_name AND t.limit_key IS NOT NULL AND t.status IN ('ready', 'running');
    END IF;
    IF v_free <= 0 THEN
      RETURN 0;
    END IF;
  END IF;

  -- Candidates in aging order: one key's queue, or the task's whole queue (each by its own index).
  IF v_per_key THEN
    OPEN v_cur FOR SELECT t.workflow_id, t.task_key, t.limit_key FROM baton.tasks t
      WHERE t.status = 'queued' AND t.name = p_name AND t.limit_key = p_key
      ORDER BY t.ready_key LIMIT 1000 FOR UPDATE SKIP LOCKED;
  ELSE
    OPEN v_cur FOR SELECT t.workflow_id, t.task_key, t.limit_key FROM baton.tasks t
      WHERE t.status = 'queued' AND t.name = p_name
      ORDER BY t.ready_key LIMIT 1000 FOR UPDATE SKIP LOCKED;
  END IF;
  LOOP
    EXIT WHEN v_n >= v_free;
    FETCH v_cur INTO r;
    EXIT WHEN NOT FOUND;
    IF v_lim.rate IS NOT NULL THEN
      v_rkey := CASE WHEN v_lim.rate_keyed THEN r.limit_key ELSE '' END;
      CONTINUE WHEN v_rkey = ANY (v_blocked);
      -- The window's count: admissions are numbered per key (n), so it is the newest n minus the
      -- oldest n still inside the window, plus one; two index probes however high the rate.
      SELECT l.n INTO v_last FROM baton.rate_log l WHERE l.name = p_name AND l.key = v_rkey ORDER BY l.at DESC, l.n DESC LIMIT 1;
      SELECT l.n INTO v_first FROM baton.rate_log l
      WHERE l.name = p_name AND l.key = v_rkey AND l.at > v_now - v_lim.rate_period_ms * interval '1 millisecond'
      ORDER BY l.at, l.n LIMIT 1;
      IF v_first IS NOT NULL AND v_last - v_first + 1 >= v_lim.rate THEN
        -- Every later candidate of this rate key is held back too.
        EXIT WHEN NOT v_lim.rate_keyed OR v_per_key;
        v_blocked := v_blocked || v_rkey;
        CONTINUE;
      END IF;
      INSERT INTO baton.rate_log (name, key, at, n) VALUES (p_name, v_rkey, v_now, coalesce(v_last, 0) + 1);
    END IF;
    UPDATE baton.tasks t SET status = 'ready', updated_at = now() WHERE t.workflow_id = r.workflow_id AND t.task_key = r.task_key;
    v_n := v_n + 1;
  END LOOP;
  CLOSE v_cur;
  RETURN v_n;
END
$$;
