-- Limits, part 2 of 3: at the commit of a transaction that queued a limited task or freed a place
-- (see limit_enter), admit what its notes name. A deferred constraint trigger, so that it runs once
-- the transaction has done everything else: it then takes one advisory lock per task name, in name
-- order (two transactions never wait for each other's names the other way round), and holds them to
-- the commit, so that admissions of one task never overlap: each counts what the others committed.
-- Name order is the "C" collation's, as baton.admit_queued's (tasks.name sorts in it): the names here
-- come from JSON, whose text sorts in the database's collation unless told.
-- While it holds them it waits for nothing else (admission skips locked rows). The first firing
-- does the work of the whole transaction and clears the notes; later firings find none.
CREATE OR REPLACE FUNCTION baton.limit_admit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_notes text := current_setting('baton.admit', true);
  v_name text;
  v_admitted integer := 0;
  r record;
BEGIN
  IF v_notes IS NULL OR v_notes = '' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('baton.admit', '', true);
  FOR v_name IN SELECT DISTINCT (n ->> 0) COLLATE "C" FROM jsonb_array_elements(v_notes::jsonb) n ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:limit:' || v_name, 0));
  END LOOP;
  FOR r IN SELECT DISTINCT (n ->> 0) COLLATE "C" AS name, n ->> 1 AS key FROM jsonb_array_elements(v_notes::jsonb) n ORDER BY 1, 2 LOOP
    v_admitted := v_admitted + baton.admit(r.name, r.key);
  END LOOP;
  IF v_admitted > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS tasks_limit_admit_insert ON baton.tasks;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER tasks_limit_admit_insert AFTER INSERT ON baton.tasks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
WHEN (NEW.limit_key IS NOT NULL AND NEW.status = 'queued')
EXECUTE FUNCTION baton.limit_admit();
--> statement-breakpoint
DROP TRIGGER IF EXISTS tasks_limit_admit_update ON baton.tasks;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER tasks_limit_admit_update AFTER UPDATE ON baton.tasks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
WHEN (NEW.limit_key IS NOT NULL AND (
  (NEW.status = 'ready' AND OLD.status NOT IN ('ready', 'queued'))
  OR (OLD.status IN ('ready', 'running') AND NEW.status NOT IN ('ready', 'running'))))
EXECUTE FUNCTION baton.limit_admit();
