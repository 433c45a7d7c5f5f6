-- An instance's checkpoints in version order, after version p_after, at most
-- p_limit (NULL: all): the rows of baton.history, with the checkpoints that
-- are not stored: 'started' (baton.started_checkpoint) and a one-task job's
-- quiet 'completed' (baton.finished_checkpoint). Read history through this
-- function, not from the table: the table has no version 1 for most
-- instances, and no row at all for most completed jobs.
-- after: started_checkpoint, finished_checkpoint
CREATE OR REPLACE FUNCTION baton.instance_history(p_id text, p_after integer DEFAULT 0, p_limit integer DEFAULT NULL)
RETURNS TABLE (version integer, kind text, detail jsonb, at timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT c.version, c.kind, c.detail, c.at
  FROM (
    SELECT s.version, s.kind, s.detail, s.at FROM baton.started_checkpoint(p_id) s WHERE p_after < 1
    UNION ALL
    SELECT h.version, h.kind, h.detail, h.at FROM baton.history h WHERE h.workflow_id = p_id AND h.version > p_after
    UNION ALL
    SELECT f.version, f.kind, f.detail, f.at FROM baton.finished_checkpoint(p_id) f WHERE f.version > p_after
  ) c
  ORDER BY c.version
  LIMIT p_limit
$$;
