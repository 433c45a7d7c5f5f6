-- An instance's checkpoints in version order, after version p_after, at most
-- p_limit (NULL: all): the rows of baton.history, with the 'started'
-- checkpoint that is not stored (baton.started_checkpoint). Read history
-- through this function, not from the table: the table has no version 1 for
-- most instances.
-- after: started_checkpoint
CREATE OR REPLACE FUNCTION baton.instance_history(p_id text, p_after integer DEFAULT 0, p_limit integer DEFAULT NULL)
RETURNS TABLE (version integer, kind text, detail jsonb, at timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT c.version, c.kind, c.detail, c.at
  FROM (
    SELECT s.version, s.kind, s.detail, s.at FROM baton.started_checkpoint(p_id) s WHERE p_after < 1
    UNION ALL
    SELECT h.version, h.kind, h.detail, h.at FROM baton.history h WHERE h.workflow_id = p_id AND h.version > p_after
  ) c
  ORDER BY c.version
  LIMIT p_limit
$$;
