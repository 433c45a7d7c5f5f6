-- The checks every start shares (start_workflow, start_many): a clear BTV01
-- error for each bad argument. Returns the tags normalised (distinct, sorted).
CREATE OR REPLACE FUNCTION baton.start_checks(p_name text, p_kind text, p_priority integer, p_tags text[])
RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF p_name IS NULL OR p_name = '' THEN
    RAISE EXCEPTION 'a % name is required', CASE WHEN p_kind = 'task' THEN 'task' ELSE 'workflow' END USING ERRCODE = 'BTV01';
  END IF;
  IF p_kind IS NULL OR p_kind NOT IN ('workflow', 'task') THEN
    RAISE EXCEPTION 'kind must be workflow or task (got %)', coalesce(p_kind, 'null') USING ERRCODE = 'BTV01';
  END IF;
  IF p_priority IS NOT NULL AND (p_priority < 0 OR p_priority > 1000000) THEN
    RAISE EXCEPTION 'priority must be a whole number from 0 to 1000000, lower runs first (got %)', p_priority USING ERRCODE = 'BTV01';
  END IF;
  IF p_tags IS NULL OR cardinality(p_tags) = 0 THEN
    RETURN '{}';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(p_tags) t WHERE t IS NULL OR length(t) NOT BETWEEN 1 AND 128 OR t ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'each tag must be 1-128 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  RETURN ARRAY(SELECT DISTINCT t FROM unnest(p_tags) t ORDER BY t);
END
$$;
