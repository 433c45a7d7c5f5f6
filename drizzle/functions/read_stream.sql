-- An instance's output stream from a cursor: the frames with seq > p_from, oldest first, at most
-- p_limit (1 to 10000). Pass the last seq read back as p_from to go on.
CREATE OR REPLACE FUNCTION baton.read_stream(p_id text, p_from bigint DEFAULT 0, p_limit integer DEFAULT 1000)
RETURNS TABLE (seq bigint, task_key text, attempt integer, frame jsonb, at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT f.seq, f.task_key, f.attempt, f.frame, f.at
  FROM baton.stream_frames f
  WHERE f.workflow_id = p_id AND f.seq > coalesce(p_from, 0)
  ORDER BY f.seq
  LIMIT least(greatest(coalesce(p_limit, 1000), 1), 10000)
$$;
