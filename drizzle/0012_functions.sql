-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.
-- function: start_definition
-- The definition a start uses (start_workflow, start_many): the given hash, or
-- the highest version registered under that name and kind (the newest among
-- shapes of one version); BTN01 when there is none. Versions let a rolling
-- deploy keep the old shape for the instances already running under it, while
-- new starts by name take the new one.
CREATE OR REPLACE FUNCTION baton.start_definition(p_name text, p_kind text, p_hash text)
RETURNS baton.definitions
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_def baton.definitions%ROWTYPE;
BEGIN
  SELECT * INTO v_def FROM baton.definitions d
  WHERE d.name = p_name AND d.kind = p_kind AND (p_hash IS NULL OR d.hash = p_hash)
  ORDER BY d.version DESC, d.first_seen DESC, d.hash
  LIMIT 1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown % "%"%: no worker has registered it', CASE WHEN p_kind = 'task' THEN 'task' ELSE 'workflow' END, p_name,
      CASE WHEN p_hash IS NULL THEN '' ELSE format(' (definition %s)', p_hash) END
      USING ERRCODE = 'BTN01', HINT = 'start a worker that defines it, or check the name';
  END IF;
  RETURN v_def;
END
$$;
