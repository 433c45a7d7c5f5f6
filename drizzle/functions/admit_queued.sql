-- The reconciler's pass over limited tasks, once per tick: admit what can run now among the queued
-- tasks (a rate window that moved on, a row admission skipped because it was locked), and forget
-- rate_log entries older than their period. Locks the task names it admits for in name order (as
-- limit_admit does). At most p_limit task names a tick. Returns how many tasks it admitted.
CREATE OR REPLACE FUNCTION baton.admit_queued(p_limit integer DEFAULT 100) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_names text[];
  v_name text;
  v_admitted integer := 0;
  r record;
BEGIN
  DELETE FROM baton.rate_log l USING baton.task_limits lim
  WHERE lim.name = l.name AND l.at <= clock_timestamp() - coalesce(lim.rate_period_ms, 0) * interval '1 millisecond';
  v_names := ARRAY(
    WITH RECURSIVE n AS (
      (SELECT t.name FROM baton.tasks t WHERE t.status = 'queued' ORDER BY t.name LIMIT 1)
      UNION ALL
      SELECT (SELECT t.name FROM baton.tasks t WHERE t.status = 'queued' AND t.name > n.name ORDER BY t.name LIMIT 1)
      FROM n WHERE n.name IS NOT NULL
    )
    SELECT n.name FROM n WHERE n.name IS NOT NULL LIMIT p_limit);
  IF cardinality(v_names) = 0 THEN
    RETURN 0;
  END IF;
  FOREACH v_name IN ARRAY v_names LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:limit:' || v_name, 0));
  END LOOP;
  FOR r IN
    SELECT q.name, q.limit_key FROM (
      SELECT DISTINCT t.name, CASE WHEN coalesce(CASE WHEN l.concurrency IS NOT NULL THEN l.concurrency_keyed ELSE l.rate_keyed END, false)
        THEN t.limit_key END AS limit_key
      FROM baton.tasks t LEFT JOIN baton.task_limits l ON l.name = t.name
      WHERE t.status = 'queued' AND t.name = ANY (v_names)) q
    ORDER BY q.name, q.limit_key
  LOOP
    v_admitted := v_admitted + baton.admit(r.name, r.limit_key);
  END LOOP;
  IF v_admitted > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_admitted;
END
$$;
