-- Limits, part 1 of 3: no task with a concurrency or rate limit (limit_key set) enters `ready` except
-- through admission (baton.admit). These triggers catch every way in, so the paths that make tasks
-- ready (first steps, steps a commit schedules, retries, a lease reclaimed, resume, timers, retry of
-- an instance) need no code of their own, and the claim, which reads only `ready` rows, is unchanged:
--   * an INSERT of a limited row as `ready` stores it as `queued` instead (BEFORE INSERT: no extra write);
--   * an UPDATE that makes a limited row `ready` (from anything but `queued`, which is admission itself)
--     sets it back to `queued` at once (AFTER UPDATE, in the same transaction: nobody else ever sees it
--     ready, and a claim later in the same transaction, as in claim_tasks after its timers, does not
--     take it);
--   * an UPDATE that takes a limited row out of `ready` or `running` (committed, failed, reclaimed,
--     cancelled, paused) frees its place.
-- Each of these notes the task's name and key in the transaction-local setting `baton.admit`;
-- baton.limit_admit (deferred to the commit) then admits what the notes name.
-- Why AFTER UPDATE and not BEFORE UPDATE: a BEFORE UPDATE row trigger makes PostgreSQL fetch and lock
-- each row again before its WHEN clause is tested, on every update of baton.tasks (the claim and the
-- commit included); an AFTER trigger whose WHEN is false costs one null test per row.
-- Rows without limits (limit_key NULL) fail every WHEN clause at its first test.
CREATE OR REPLACE FUNCTION baton.limit_enter() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_notes jsonb := coalesce(nullif(current_setting('baton.admit', true), ''), '[]')::jsonb;
  v_note jsonb := jsonb_build_array(jsonb_build_array(NEW.name, NEW.limit_key));
BEGIN
  IF NOT v_notes @> v_note THEN
    PERFORM set_config('baton.admit', (v_notes || v_note)::text, true);
  END IF;
  IF TG_OP = 'INSERT' THEN
    NEW.status := 'queued';
    RETURN NEW;
  END IF;
  IF NEW.status = 'ready' THEN
    UPDATE baton.tasks t SET status = 'queued'
    WHERE t.workflow_id = NEW.workflow_id AND t.task_key = NEW.task_key AND t.status = 'ready';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS tasks_limit_insert ON baton.tasks;
--> statement-breakpoint
CREATE TRIGGER tasks_limit_insert BEFORE INSERT ON baton.tasks FOR EACH ROW
WHEN (NEW.limit_key IS NOT NULL AND NEW.status = 'ready')
EXECUTE FUNCTION baton.limit_enter();
--> statement-breakpoint
DROP TRIGGER IF EXISTS tasks_limit_update ON baton.tasks;
--> statement-breakpoint
CREATE TRIGGER tasks_limit_update AFTER UPDATE ON baton.tasks FOR EACH ROW
WHEN (NEW.limit_key IS NOT NULL AND (
  (NEW.status = 'ready' AND OLD.status NOT IN ('ready', 'queued'))
  OR (OLD.status IN ('ready', 'running') AND NEW.status NOT IN ('ready', 'running'))))
EXECUTE FUNCTION baton.limit_enter();
