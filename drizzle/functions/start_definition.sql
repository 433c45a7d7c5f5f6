-- The definition a start uses (start_workflow, start_many): the given hash, or
-- the newest registered under that name and kind; BTN01 when there is none.
CREATE OR REPLACE FUNCTION baton.start_definition(p_name text, p_kind text, p_hash text)
RETURNS baton.definitions
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_def baton.definitions%ROWTYPE;
BEGIN
  SELECT * INTO v_def FROM baton.definitions d
  WHERE d.name = p_name AND d.kind = p_kind AND (p_hash IS NULL OR d.hash = p_hash)
  ORDER BY d.first_seen DESC, d.hash
  LIMIT 1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown % "%"%: no worker has registered it', CASE WHEN p_kind = 'task' THEN 'task' ELSE 'workflow' END, p_name,
      CASE WHEN p_hash IS NULL THEN '' ELSE format(' (definition %s)', p_hash) END
      USING ERRCODE = 'BTN01', HINT = 'start a worker that defines it, or check the name';
  END IF;
  RETURN v_def;
END
$$;
