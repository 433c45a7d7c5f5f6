-- One priority step equals this much waiting. Set per session by Baton's
-- processes (connection option baton.aging_interval_ms); SQL callers may set
-- it per database: ALTER DATABASE ... SET baton.aging_interval_ms = '60000'.
CREATE OR REPLACE FUNCTION baton.aging_interval() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(nullif(current_setting('baton.aging_interval_ms', true), ''), '60000')::bigint * interval '1 millisecond'
$$;
