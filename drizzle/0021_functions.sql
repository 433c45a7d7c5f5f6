-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.
-- function: admit
-- Limits, part 3 of 3: admission. Turns the oldest `queued` tasks named p_name (in aging order,
-- ready_key) into `ready` while their limits allow, and returns how many. The caller holds the
-- task's advisory lock ('baton:limit:' || name) until its commit (limit_admit, admit_queued).
--   concurrency: at most `concurrency` rows of the task (of its key, when keyed) are admitted at
--     once: ready or running. A place frees when one leaves (completes, fails, is reclaimed by the
--     reconciler after its lease expired, is cancelled or paused).
--   rate: at most `rate` admissions in any `rate_period_ms` (per key, when keyed), counted in
--     baton.rate_log: it caps admissions, not starts (an admitted task on a busy fleet can start later).
--     A task the rate holds back stays queued; the reconciler tries again every tick (admit_queued).
-- p_key: the key whose place freed or whose task was queued. When the limit that applies first
-- (concurrency if any, else rate) counts per key, only that key's queue is looked at; otherwise the
-- task's whole queue. A task with no limits registered (any more) admits everything queued.
-- Never waits for a row lock (FOR UPDATE SKIP LOCKED): a row skipped here is admitted later by the
-- reconciler's tick at the latest.
CREATE OR REPLACE FUNCTION baton.admit(p_name text, p_key text) RETURNS integer
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_lim baton.task_limits%ROWTYPE;
  v_per_key boolean;
  v_free bigint := 2147483647;
  v_now timestamptz := clock_timestamp();
  v_n integer := 0;
  v_rkey text;
  v_blocked text[] := '{}';
  r record;
  v_cur refcursor;
  v_last bigint;
  v_first bigint;
BEGIN
  SELECT * INTO v_lim FROM baton.task_limits l WHERE l.name = p_name;
  IF NOT FOUND OR (v_lim.concurrency IS NULL AND v_lim.rate IS NULL) THEN
    WITH q AS (
      SELECT t.workflow_id, t.task_key FROM baton.tasks t WHERE t.status = 'queued' AND t.name = p_name
      FOR UPDATE SKIP LOCKED
    ), a AS (
      UPDATE baton.tasks t SET status = 'ready', updated_at = now()
      FROM q WHERE t.workflow_id = q.workflow_id AND t.task_key = q.task_key
      RETURNING 1
    )
    SELECT count(*) INTO v_n FROM a;
    RETURN v_n;
  END IF;
  v_per_key := CASE WHEN v_lim.concurrency IS NOT NULL THEN v_lim.concurrency_keyed ELSE v_lim.rate_keyed END;

  IF v_lim.concurrency IS NOT NULL THEN
    IF v_per_key THEN
      SELECT v_lim.concurrency - count(*) INTO v_free FROM baton.tasks t
      WHERE t.name = p_name AND t.limit_key = p_key AND t.limit_key IS NOT NULL AND t.status IN ('ready', 'running');
    ELSE
      SELECT v_lim.concurrency - count(*) INTO v_free FROM baton.tasks t
      WHERE t.name = p_name AND t.limit_key IS NOT NULL AND t.status IN ('ready', 'running');
    END IF;
    IF v_free <= 0 THEN
      RETURN 0;
    END IF;
  END IF;

  -- Candidates in aging order: one key's queue, or the task's whole queue (each by its own index).
  IF v_per_key THEN
    OPEN v_cur FOR SELECT t.workflow_id, t.task_key, t.limit_key FROM baton.tasks t
      WHERE t.status = 'queued' AND t.name = p_name AND t.limit_key = p_key
      ORDER BY t.ready_key LIMIT 1000 FOR UPDATE SKIP LOCKED;
  ELSE
    OPEN v_cur FOR SELECT t.workflow_id, t.task_key, t.limit_key FROM baton.tasks t
      WHERE t.status = 'queued' AND t.name = p_name
      ORDER BY t.ready_key LIMIT 1000 FOR UPDATE SKIP LOCKED;
  END IF;
  LOOP
    EXIT WHEN v_n >= v_free;
    FETCH v_cur INTO r;
    EXIT WHEN NOT FOUND;
    IF v_lim.rate IS NOT NULL THEN
      v_rkey := CASE WHEN v_lim.rate_keyed THEN r.limit_key ELSE '' END;
      CONTINUE WHEN v_rkey = ANY (v_blocked);
      -- The window's count: admissions are numbered per key (n), so it is the newest n minus the
      -- oldest n still inside the window, plus one; two index probes however high the rate.
      SELECT l.n INTO v_last FROM baton.rate_log l WHERE l.name = p_name AND l.key = v_rkey ORDER BY l.at DESC, l.n DESC LIMIT 1;
      SELECT l.n INTO v_first FROM baton.rate_log l
      WHERE l.name = p_name AND l.key = v_rkey AND l.at > v_now - v_lim.rate_period_ms * interval '1 millisecond'
      ORDER BY l.at, l.n LIMIT 1;
      IF v_first IS NOT NULL AND v_last - v_first + 1 >= v_lim.rate THEN
        -- Every later candidate of this rate key is held back too.
        EXIT WHEN NOT v_lim.rate_keyed OR v_per_key;
        v_blocked := v_blocked || v_rkey;
        CONTINUE;
      END IF;
      INSERT INTO baton.rate_log (name, key, at, n) VALUES (p_name, v_rkey, v_now, coalesce(v_last, 0) + 1);
    END IF;
    UPDATE baton.tasks t SET status = 'ready', updated_at = now() WHERE t.workflow_id = r.workflow_id AND t.task_key = r.task_key;
    v_n := v_n + 1;
  END LOOP;
  CLOSE v_cur;
  RETURN v_n;
END
$$;
--> statement-breakpoint
-- function: admit_queued
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
--> statement-breakpoint
-- function: after_finish
-- After instances finished (completed or failed) in the caller's transaction:
-- close their open tasks, cancel what their failed steps left running in child
-- instances, hand outcomes to parents, and tell waiters.
CREATE OR REPLACE FUNCTION baton.after_finish(p_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_children text[];
BEGIN
  IF cardinality(p_ids) = 0 THEN
    RETURN;
  END IF;
  UPDATE baton.tasks t
  SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
  WHERE t.workflow_id = ANY (p_ids) AND t.status IN ('waiting', 'queued', 'ready', 'running');
  v_children := ARRAY(
    SELECT w.id FROM baton.workflows w
    WHERE w.parent_id = ANY (p_ids) AND w.status IN ('pending', 'running', 'paused')
    ORDER BY w.id FOR UPDATE);
  IF cardinality(v_children) > 0 THEN
    PERFORM baton.cancel_tree(v_children, jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
      'message', 'cancelled because its parent workflow finished'));
  END IF;
  PERFORM baton.settle_parents(p_ids);
  PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(p_ids, ',')) < 7000 THEN array_to_string(p_ids, ',') ELSE '*' END);
END
$$;
--> statement-breakpoint
-- function: cancel_tree
-- Unfinished instances among p_ids, and all their unfinished descendants,
-- become cancelled with p_error; their open tasks are cancelled (a running
-- task's worker finds out at its next renewal, or at once via baton_cancel).
-- The caller holds the locks of p_ids; descendants are locked here (they sort
-- after their ancestors). Returns the ids cancelled.
CREATE OR REPLACE FUNCTION baton.cancel_tree(p_ids text[], p_error jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_more text[];
BEGIN
  v_ids := ARRAY(SELECT w.id FROM baton.workflows w WHERE w.id = ANY (p_ids) AND w.status IN ('pending', 'running', 'paused'));
  v_more := v_ids;
  LOOP
    v_more := ARRAY(
      SELECT w.id FROM baton.workflows w
      WHERE w.parent_id = ANY (v_more) AND w.status IN ('pending', 'running', 'paused') AND NOT (w.id = ANY (v_ids))
      ORDER BY w.id FOR UPDATE);
    EXIT WHEN cardinality(v_more) = 0;
    v_ids := v_ids || v_more;
  END LOOP;
  IF cardinality(v_ids) = 0 THEN
    RETURN v_ids;
  END IF;

  WITH done AS (
    UPDATE baton.workflows w
    SET status = 'cancelled', error = p_error, finished_at = now(), updated_at = now(), version = w.version + 1, current_step = NULL
    WHERE w.id = ANY (v_ids) AND w.status IN ('pending', 'running', 'paused')
    RETURNING w.id, w.version
  )
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  SELECT done.id, done.version, 'cancelled', jsonb_build_object('status', 'cancelled', 'error', p_error)
  FROM done;

  UPDATE baton.tasks t
  SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
  WHERE t.workflow_id = ANY (v_ids) AND t.status IN ('waiting', 'queued', 'ready', 'running');

  PERFORM pg_notify('baton_cancel', left(array_to_string(v_ids, ','), 7000));
  PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(v_ids, ',')) < 7000 THEN array_to_string(v_ids, ',') ELSE '*' END);
  RETURN v_ids;
END
$$;
--> statement-breakpoint
-- function: insert_first_steps
-- The first steps of freshly inserted instances, set-based: one INSERT for the
-- task rows of all of them (a plan's steps x the instances). Their 'started'
-- checkpoint is stored only for instances that start paused (p_held); for the
-- others it is read from the instance (baton.started_checkpoint), one history
-- row fewer per start. The instances' rows exist already (the caller
-- inserted them, so it knows they are new). Child steps are left to the
-- caller (each starts an instance of its own). This is what makes a bulk
-- start cost a few statements instead of a function call per instance.
-- p_ids and p_inputs are parallel arrays; p_plan is definitions.plan.
-- A first step's input is its instance's: it is stored once, on the instance,
-- and the task row's input is NULL (the claim reads it from the instance).
-- p_limit_keys (NULL, or parallel to p_ids): each instance's key for its first steps that have
-- limits counted per key (plan step `limit.keyed`); a step with limits not per key gets the key ''.
-- A keyed step whose key is NULL gets no limit_key (the callers that must have one check for it).
-- Returns how many task rows became ready at once.
DROP FUNCTION IF EXISTS baton.insert_first_steps(text[], jsonb[], jsonb, text, integer, text[], timestamptz, boolean, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.insert_first_steps(p_ids text[], p_inputs jsonb[], p_plan jsonb, p_hash text, p_priority integer,
  p_tags text[], p_run_at timestamptz, p_held boolean, p_parent_id text, p_limit_keys text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
-- The planner sees plan steps x instances with unknown sizes and estimates costs high enough to
-- JIT-compile this statement: 1.5 s for a 5,000-row insert that takes 0.2 s without it (PG 15).
-- Those estimates also make plpgsql judge its generic plan worse than a custom one, so it planned
-- the statement again at every call: 1.4 ms per single start, 0.16 ms with the generic plan.
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_now timestamptz := now();
  v_ready integer;
  v_status text := CASE WHEN p_held THEN 'paused' ELSE 'running' END;
BEGIN
  WITH steps AS (
    SELECT s ->> 'key' AS key, s ->> 'kind' AS kind, s ->> 'name' AS name,
      coalesce(p_priority, (s ->> 'priority')::integer, 0) AS priority,
      ARRAY(SELECT DISTINCT x FROM unnest(ARRAY(SELECT jsonb_array_elements_text(s -> 'tags')) || p_tags) x ORDER BY x) AS tags,
      coalesce((s ->> 'maxAttempts')::integer, 1) AS max_attempts,
      s -> 'limit' AS lim,
      CASE s ->> 'kind'
        WHEN 'sleep' THEN v_now + (s ->> 'delayMs')::bigint * interval '1 millisecond'
        WHEN 'event' THEN v_now + (s ->> 'timeoutMs')::bigint * interval '1 millisecond'
        ELSE greatest(v_now, coalesce(p_run_at, v_now))
      END AS available_at
    FROM jsonb_array_elements(p_plan -> 'steps') s
    WHERE s ->> 'kind' <> 'child'
  ), decided AS (
    SELECT i.id, st.*, CASE WHEN st.lim IS NULL THEN NULL WHEN (st.lim ->> 'keyed')::boolean THEN i.limit_key ELSE '' END AS limit_key,
      CASE
        WHEN p_held OR st.kind = 'sleep' THEN 'waiting'
        WHEN st.kind = 'event' THEN
          CASE WHEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = i.id AND e.name = st.name) THEN 'ready' ELSE 'waiting' END
        WHEN st.available_at > v_now THEN 'waiting'
        ELSE 'ready'
      END AS status
    FROM unnest(p_ids, p_inputs, coalesce(p_limit_keys, '{}')) AS i(id, input, limit_key)
    CROSS JOIN steps st
    WHERE i.id IS NOT NULL
  ), inserted AS (
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, ready_key,
      available_at, max_attempts, input, limit_key, created_at, updated_at)
    SELECT d.id, d.key, d.kind, d.name, p_hash, d.status, p_held, d.priority, d.tags,
      CASE WHEN d.status = 'ready' THEN least(d.available_at, v_now) + d.priority * baton.aging_interval() END,
      d.available_at, d.max_attempts, NULL, d.limit_key, v_now, v_now
    FROM decided d
    RETURNING status, tags
  ), tag_sets AS (
    INSERT INTO baton.tag_sets (tags)
    SELECT DISTINCT i.tags FROM inserted i
    ON CONFLICT DO NOTHING
  ), started AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT i.id, 1, 'started', d.detail
    FROM unnest(p_ids) AS i(id)
    CROSS JOIN (SELECT jsonb_build_object('status', v_status, 'definition', p_hash, 'state', p_plan -> 'state',
        'scheduled', (SELECT jsonb_agg(s ->> 'key') FROM jsonb_array_elements(p_plan -> 'steps') s),
        'priority', p_priority, 'tags', to_jsonb(p_tags), 'parent', p_parent_id) AS detail) d
    WHERE p_held
  )
  SELECT count(*) FILTER (WHERE status = 'ready') INTO v_ready FROM inserted;
  RETURN v_ready;
END
$$;
--> statement-breakpoint
-- function: limit_admit
-- Limits, part 2 of 3: at the commit of a transaction that queued a limited task or freed a place
-- (see limit_enter), admit what its notes name. A deferred constraint trigger, so that it runs once
-- the transaction has done everything else: it then takes one advisory lock per task name, in name
-- order (two transactions never wait for each other's names the other way round), and holds them to
-- the commit, so that admissions of one task never overlap: each counts what the others committed.
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
  FOR v_name IN SELECT DISTINCT n ->> 0 FROM jsonb_array_elements(v_notes::jsonb) n ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:limit:' || v_name, 0));
  END LOOP;
  FOR r IN SELECT DISTINCT n ->> 0 AS name, n ->> 1 AS key FROM jsonb_array_elements(v_notes::jsonb) n ORDER BY 1, 2 LOOP
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
--> statement-breakpoint
-- function: limit_enter
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
--> statement-breakpoint
-- function: pause_workflow
-- Pause an instance and its running descendants: running tasks finish, no
-- other task of theirs is claimed (ready ones are held) until resume.
CREATE OR REPLACE FUNCTION baton.pause_workflow(p_id text, p_requested_by text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_ids text[];
  v_more text[];
BEGIN
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status IN ('completed', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  IF v_status = 'paused' THEN
    RETURN v_status;
  END IF;
  v_ids := ARRAY[p_id];
  v_more := v_ids;
  LOOP
    v_more := ARRAY(SELECT w.id FROM baton.workflows w WHERE w.parent_id = ANY (v_more) AND w.status IN ('pending', 'running')
                    ORDER BY w.id FOR UPDATE);
    EXIT WHEN cardinality(v_more) = 0;
    v_ids := v_ids || v_more;
  END LOOP;
  INSERT INTO baton.signals (workflow_id, kind, requested_by) VALUES (p_id, 'pause', p_requested_by)
  ON CONFLICT (workflow_id, kind) DO UPDATE SET requested_by = excluded.requested_by, requested_at = now();
  WITH done AS (
    UPDATE baton.workflows w SET status = 'paused', version = w.version + 1, updated_at = now()
    WHERE w.id = ANY (v_ids) AND w.status IN ('pending', 'running')
    RETURNING w.id, w.version
  )
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  SELECT done.id, done.version, 'paused', jsonb_build_object('status', 'paused', 'requestedBy', p_requested_by) FROM done;
  UPDATE baton.tasks t SET paused = true, status = 'waiting', updated_at = now()
  WHERE t.workflow_id = ANY (v_ids) AND t.status IN ('ready', 'queued', 'waiting') AND NOT t.paused;
  RETURN v_status;
END
$$;
--> statement-breakpoint
-- function: schedule_tasks
-- Insert scheduled steps as task rows and start child instances.
-- p_rows: [{wf, key, kind, name, hash, input, priority, tags, maxAttempts,
--           delayMs, timeoutMs, runAt, held, limitKey, child: {name, hash, priority, tags, traceparent, tracestate, limitKey}}]
-- limitKey: for a task with limits, the key they count under ('' for the task as a whole; the worker
-- computed it), else null; a child's is its first steps' (see start_workflow).
-- Returns how many rows became ready at once.
CREATE OR REPLACE FUNCTION baton.schedule_tasks(p_rows jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz := now();
  v_ready integer;
  v_child record;
BEGIN
  WITH rows AS (
    SELECT r.*, (r.held IS TRUE) AS is_held,
      CASE r.kind
        WHEN 'sleep' THEN v_now + r."delayMs" * interval '1 millisecond'
        WHEN 'event' THEN v_now + r."timeoutMs" * interval '1 millisecond'
        WHEN 'child' THEN NULL
        ELSE greatest(v_now, coalesce(r."runAt", v_now))
      END AS available_at
    FROM jsonb_to_recordset(p_rows) AS r(wf text, key text, kind text, name text, hash text, input jsonb, priority integer,
      tags text[], "maxAttempts" integer, "delayMs" bigint, "timeoutMs" bigint, "runAt" timestamptz, held boolean, "limitKey" text)
  ), decided AS (
    SELECT rows.*,
      CASE
        WHEN rows.is_held THEN 'waiting'
        WHEN rows.kind IN ('sleep', 'child') THEN 'waiting'
        WHEN rows.kind = 'event' THEN
          CASE WHEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = rows.wf AND e.name = rows.name) THEN 'ready' ELSE 'waiting' END
        WHEN rows.available_at > v_now THEN 'waiting'
        ELSE 'ready'
      END AS status
    FROM rows
  ), inserted AS (
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, ready_key,
      available_at, max_attempts, input, limit_key, created_at, updated_at)
    SELECT d.wf, d.key, d.kind, d.name, d.hash, d.status, d.is_held, coalesce(d.priority, 0), coalesce(d.tags, '{}'),
      CASE WHEN d.status = 'ready' THEN least(coalesce(d.available_at, v_now), v_now) + coalesce(d.priority, 0) * baton.aging_interval() END,
      d.available_at, coalesce(d."maxAttempts", 1), coalesce(d.input, 'null'), d."limitKey", v_now, v_now
    FROM decided d
    RETURNING status, tags
  ), tag_sets AS (
    INSERT INTO baton.tag_sets (tags)
    SELECT DISTINCT i.tags FROM inserted i
    ON CONFLICT DO NOTHING
  )
  SELECT count(*) FILTER (WHERE status = 'ready') INTO v_ready FROM inserted;

  FOR v_child IN
    SELECT r.wf, r.key, r.input, r.held, c.name, c.hash, c.priority, c.tags, c.traceparent, c.tracestate, c."limitKey"
    FROM jsonb_to_recordset(p_rows) AS r(wf text, key text, kind text, input jsonb, held boolean, child jsonb)
    CROSS JOIN LATERAL jsonb_to_record(r.child) AS c(name text, hash text, priority integer, tags text[], traceparent text, tracestate text,
      "limitKey" text)
    WHERE r.kind = 'child'
  LOOP
    -- The child's trace context: the span of the attempt that scheduled it, else (untraced) its parent's.
    PERFORM baton.start_workflow(v_child.name, v_child.input, v_child.wf || '/' || v_child.key, v_child.priority,
      v_child.tags, 'useExisting', v_child.hash, NULL, 'workflow', v_child.wf, v_child.key, v_child.held IS TRUE,
      v_child.traceparent, v_child.tracestate, v_child."limitKey");
  END LOOP;

  IF v_ready > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_ready;
END
$$;
--> statement-breakpoint
-- function: start_many
-- Many instances of one definition in one call: one row per input, in order,
-- with whether it was created. p_inputs is a JSON array. Set-based: one INSERT
-- per table for the whole batch (the instances, their first steps, their
-- history), so a bulk start costs about what a plain queue's bulk insert does.
-- Definitions whose first steps start child workflows go through
-- start_workflow per input.
-- p_ids: NULL (every id generated), or one id per input (NULL: generated);
-- an id that is taken follows p_on_conflict as start_workflow does (fail:
-- BTC01 and nothing is written; useExisting: created false;
-- terminateExisting: the old instance is cancelled and replaced). The
-- taken ones go through start_workflow one by one; the rest stay set-based.
-- p_traceparent, p_tracestate: as in start_workflow, the same for every instance.
-- p_limit_keys: NULL, or one key per input for first steps whose limits count per key (see
-- start_workflow); required when there are such steps.
DROP FUNCTION IF EXISTS baton.start_many(text, jsonb, text, integer, text[], text);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.start_many(text, jsonb, text, integer, text[], text, text[], text);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.start_many(text, jsonb, text, integer, text[], text, text[], text, text, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.start_many(
  p_name text,
  p_inputs jsonb,
  p_kind text DEFAULT 'workflow',
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_hash text DEFAULT NULL,
  p_ids text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail',
  p_traceparent text DEFAULT NULL,
  p_tracestate text DEFAULT NULL,
  p_limit_keys text[] DEFAULT NULL
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE plpgsql
-- Generic plans for every statement inside (see insert_first_steps).
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_tags text[];
  v_given text[];
  v_ids text[];
  v_inputs jsonb[];
  v_new text[];
  v_new_inputs jsonb[];
  v_new_keys text[];
  v_created boolean[];
  v_limit bigint := coalesce(nullif(current_setting('baton.max_payload_bytes', true), ''), '1048576')::bigint;
  v_big record;
  v_n integer;
  v_one boolean;
  v_trace text;
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
  IF p_traceparent IS NOT NULL OR p_tracestate IS NOT NULL THEN
    v_trace := baton.trace_context(p_traceparent, p_tracestate);
  END IF;
  IF p_inputs IS NULL OR jsonb_typeof(p_inputs) <> 'array' THEN
    RAISE EXCEPTION 'inputs must be a JSON array (got %)', coalesce(jsonb_typeof(p_inputs), 'null') USING ERRCODE = 'BTV01';
  END IF;
  IF p_on_conflict IS NULL OR p_on_conflict NOT IN ('fail', 'useExisting', 'terminateExisting') THEN
    RAISE EXCEPTION 'on_conflict must be fail, useExisting or terminateExisting (got %)', coalesce(p_on_conflict, 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_ids IS NOT NULL THEN
    IF cardinality(p_ids) <> jsonb_array_length(p_inputs) THEN
      RAISE EXCEPTION 'ids has % entries for % inputs: give one id (or null) per input', cardinality(p_ids), jsonb_array_length(p_inputs)
        USING ERRCODE = 'BTV01';
    END IF;
    SELECT x.n INTO v_n FROM unnest(p_ids) WITH ORDINALITY AS x(id, n)
    WHERE x.id IS NOT NULL AND (length(x.id) = 0 OR length(x.id) > 255 OR x.id ~ '[[:cntrl:]]')
    ORDER BY x.n LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'ids[%] must be 1-255 characters without control characters', v_n - 1 USING ERRCODE = 'BTV01';
    END IF;
    SELECT min(x.n) AS first, max(x.n) AS second, x.id INTO v_big FROM unnest(p_ids) WITH ORDINALITY AS x(id, n)
    WHERE x.id IS NOT NULL GROUP BY x.id HAVING count(*) > 1 ORDER BY min(x.n) LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'ids[%] repeats ids[%] ("%"): each instance needs its own id', v_big.second - 1, v_big.first - 1, v_big.id
        USING ERRCODE = 'BTV01';
    END IF;
  END IF;
  v_def := baton.start_definition(p_name, p_kind, p_hash);
  IF p_limit_keys IS NOT NULL AND cardinality(p_limit_keys) <> jsonb_array_length(p_inputs) THEN
    RAISE EXCEPTION 'limit keys has % entries for % inputs: give one key per input', cardinality(p_limit_keys), jsonb_array_length(p_inputs)
      USING ERRCODE = 'BTV01';
  END IF;
  IF v_def.plan @? '$.steps[*].limit ? (@.keyed == true)'
     AND (p_limit_keys IS NULL OR array_position(p_limit_keys, NULL) IS NOT NULL) THEN
    RAISE EXCEPTION '% "%" starts with a task whose limits count per key: pass one key per input (p_limit_keys)',
      CASE WHEN p_kind = 'task' THEN 'task' ELSE 'workflow' END, p_name USING ERRCODE = 'BTV01';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(p_limit_keys) k WHERE length(k) NOT BETWEEN 1 AND 255 OR k ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'each limit key must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;

  SELECT array_agg(p_ids[x.n] ORDER BY x.n), array_agg(coalesce(p_ids[x.n], gen_random_uuid()::text) ORDER BY x.n),
    array_agg(x.input ORDER BY x.n)
  INTO v_given, v_ids, v_inputs
  FROM jsonb_array_elements(p_inputs) WITH ORDINALITY AS x(input, n);
  IF v_ids IS NULL THEN
    RETURN;
  END IF;
  SELECT x.n, octet_length(x.input::text) AS size INTO v_big
  FROM unnest(v_inputs) WITH ORDINALITY AS x(input, n)
  WHERE octet_length(x.input::text) > v_limit
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'inputs[%] is % bytes, over the limit of %', v_big.n - 1, v_big.size, v_limit USING ERRCODE = 'BTV01';
  END IF;

  IF v_def.plan @? '$.steps[*] ? (@.kind == "child")' THEN
    RETURN QUERY
    SELECT s.workflow_id, s.created FROM unnest(v_given, v_inputs) WITH ORDINALITY AS x(id, input, n)
    CROSS JOIN LATERAL baton.start_workflow(p_name, x.input, x.id, p_priority, v_tags, p_on_conflict, v_def.hash, NULL, p_kind,
      p_traceparent => p_traceparent, p_tracestate => p_tracestate, p_limit_key => p_limit_keys[x.n]) s
    ORDER BY x.n;
    RETURN;
  END IF;

  IF p_ids IS NULL THEN
    -- Generated ids only: nothing can be taken.
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at,
      trace_context)
    SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now(), v_trace
    FROM unnest(v_ids, v_inputs) AS i(id, input)
    CROSS JOIN (SELECT string_agg(s ->> 'name', ', ') AS names FROM jsonb_array_elements(v_def.plan -> 'steps') s) step;
    IF baton.insert_first_steps(v_ids, v_inputs, v_def.plan, v_def.hash, p_priority, v_tags, NULL, false, NULL, p_limit_keys) > 0 THEN
      PERFORM pg_notify('baton_ready', '');
    END IF;
    RETURN QUERY SELECT i, true FROM unnest(v_ids) i;
    RETURN;
  END IF;

  IF v_def.plan @? '$.steps[*] ? (@.kind == "event")' THEN
    -- Pairs with send_event, as in start_workflow: a buffered event is seen, or the waiting step is.
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || i, 0)) FROM unnest(v_given) i WHERE i IS NOT NULL ORDER BY i;
  END IF;
  WITH inserted AS (
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at,
      trace_context)
    SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now(), v_trace
    FROM unnest(v_ids, v_inputs) AS i(id, input)
    CROSS JOIN (SELECT string_agg(s ->> 'name', ', ') AS names FROM jsonb_array_elements(v_def.plan -> 'steps') s) step
    ON CONFLICT (id) DO NOTHING
    RETURNING id, input
  )
  SELECT coalesce(array_agg(i.id), '{}'), coalesce(array_agg(i.input), '{}') INTO v_new, v_new_inputs FROM inserted i;
  IF p_limit_keys IS NOT NULL THEN
    v_new_keys := ARRAY(SELECT p_limit_keys[x.n] FROM unnest(v_new) n(id) JOIN unnest(v_ids) WITH ORDINALITY AS x(id, n) ON x.id = n.id);
  END IF;
  IF cardinality(v_new) > 0 AND baton.insert_first_steps(v_new, v_new_inputs, v_def.plan, v_def.hash, p_priority, v_tags, NULL, false, NULL,
       v_new_keys) > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;

  -- The taken ids: each by start_workflow, with the caller's policy (in input order).
  SELECT array_agg(n.id IS NOT NULL ORDER BY x.n) INTO v_created
  FROM unnest(v_ids) WITH ORDINALITY AS x(id, n) LEFT JOIN unnest(v_new) AS n(id) ON n.id = x.id;
  FOR v_n IN 1 .. cardinality(v_ids) LOOP
    CONTINUE WHEN v_created[v_n];
    SELECT s.created INTO v_one
    FROM baton.start_workflow(p_name, v_inputs[v_n], v_ids[v_n], p_priority, v_tags, p_on_conflict, v_def.hash, NULL, p_kind,
      p_traceparent => p_traceparent, p_tracestate => p_tracestate, p_limit_key => p_limit_keys[v_n]) s;
    v_created[v_n] := v_one;
  END LOOP;
  RETURN QUERY SELECT x.id, x.created FROM unnest(v_ids, v_created) WITH ORDINALITY AS x(id, created, n) ORDER BY x.n;
END
$$;
--> statement-breakpoint
-- function: start_workflow
-- Start an instance of a registered definition: the SQL API, and what the
-- client calls. The first steps come from the plan the registering worker
-- computed, so no code runs here.
-- A child (p_parent_id, p_parent_key; id '<parent>/<key>', useExisting) adopts
-- an existing instance only when it is that very child (a retried start).
-- Any other instance under that id (callers may choose ids with '/') is left
-- alone, and the parent's child step is told the child failed, so the parent
-- fails with a clear error instead of waiting for an instance that will never
-- settle it.
-- p_traceparent, p_tracestate: the W3C trace context of the caller's span
-- (stored in trace_context; each attempt's span is its child and links to it).
-- A child started without one takes its parent's.
-- p_limit_key: the key of the first steps whose task has limits counted per key (defineTask's
-- concurrency.key / rateLimit.key; the client computes it from the input). Required (BTV01) when a
-- first step has such a limit, except for a child (a worker computes its children's keys; with none,
-- the step is not limited, and its worker's check of the key fails it).
DROP FUNCTION IF EXISTS baton.start_workflow(text, jsonb, text, integer, text[], text, text, timestamptz, text, text, text, boolean);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.start_workflow(text, jsonb, text, integer, text[], text, text, timestamptz, text, text, text, boolean, text, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.start_workflow(
  p_name text,
  p_input jsonb DEFAULT NULL,
  p_id text DEFAULT NULL,
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail',
  p_hash text DEFAULT NULL,
  p_run_at timestamptz DEFAULT NULL,
  p_kind text DEFAULT 'workflow',
  p_parent_id text DEFAULT NULL,
  p_parent_key text DEFAULT NULL,
  p_paused boolean DEFAULT false,
  p_traceparent text DEFAULT NULL,
  p_tracestate text DEFAULT NULL,
  p_limit_key text DEFAULT NULL
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE plpgsql
-- Generic plans for every statement inside (see insert_first_steps).
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_id text;
  v_tags text[];
  v_status text;
  v_parent text;
  v_parent_key text;
  v_child record;
  v_trace text;
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
  IF p_traceparent IS NOT NULL OR p_tracestate IS NOT NULL THEN
    v_trace := baton.trace_context(p_traceparent, p_tracestate);
  ELSIF p_parent_id IS NOT NULL THEN
    SELECT w.trace_context INTO v_trace FROM baton.workflows w WHERE w.id = p_parent_id;
  END IF;
  IF p_on_conflict IS NULL OR p_on_conflict NOT IN ('fail', 'useExisting', 'terminateExisting') THEN
    RAISE EXCEPTION 'on_conflict must be fail, useExisting or terminateExisting (got %)', coalesce(p_on_conflict, 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_id IS NOT NULL AND p_parent_id IS NULL AND (length(p_id) = 0 OR length(p_id) > 255 OR p_id ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'id must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_input IS NOT NULL AND octet_length(p_input::text) > coalesce(nullif(current_setting('baton.max_payload_bytes', true), ''), '1048576')::bigint THEN
    RAISE EXCEPTION 'input is % bytes, over the limit of %', octet_length(p_input::text), current_setting('baton.max_payload_bytes', true)
      USING ERRCODE = 'BTV01';
  END IF;

  IF p_limit_key IS NOT NULL AND (length(p_limit_key) NOT BETWEEN 1 AND 255 OR p_limit_key ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'limit key must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;

  v_def := baton.start_definition(p_name, p_kind, p_hash);
  IF p_limit_key IS NULL AND p_parent_id IS NULL AND v_def.plan @? '$.steps[*].limit ? (@.keyed == true)' THEN
    RAISE EXCEPTION '% "%" starts with a task whose limits count per key: pass the key (p_limit_key)',
      CASE WHEN p_kind = 'task' THEN 'task' ELSE 'workflow' END, p_name USING ERRCODE = 'BTV01';
  END IF;

  v_id := coalesce(p_id, gen_random_uuid()::text);
  IF p_id IS NOT NULL AND v_def.plan @? '$.steps[*] ? (@.kind == "event")' THEN
    -- Pairs with send_event: a buffered event is seen, or the waiting step is.
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || v_id, 0));
  END IF;

  LOOP
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, parent_id, parent_key, state, current_step,
      version, created_at, updated_at, trace_context)
    VALUES (v_id, p_name, v_def.hash, CASE WHEN p_paused THEN 'paused' ELSE 'running' END, p_input, p_priority, v_tags, p_parent_id,
      p_parent_key, v_def.plan -> 'state', (SELECT string_agg(s ->> 'name', ', ') FROM jsonb_array_elements(v_def.plan -> 'steps') s),
      1, now(), now(), v_trace)
    ON CONFLICT (id) DO NOTHING;
    EXIT WHEN FOUND;

    SELECT w.status, w.parent_id, w.parent_key INTO v_status, v_parent, v_parent_key FROM baton.workflows w WHERE w.id = v_id FOR UPDATE;
    CONTINUE WHEN NOT FOUND; -- deleted meanwhile: try again
    IF p_on_conflict = 'useExisting' AND p_parent_id IS NOT NULL
       AND (v_parent IS DISTINCT FROM p_parent_id OR v_parent_key IS DISTINCT FROM p_parent_key) THEN
      UPDATE baton.tasks t
      SET status = CASE WHEN t.paused THEN 'waiting' ELSE 'ready' END,
          ready_key = CASE WHEN t.paused THEN NULL ELSE now() + t.priority * baton.aging_interval() END,
          output = jsonb_build_object('status', 'failed', 'output', NULL, 'error', jsonb_build_object(
            'name', 'ChildIdTakenError', 'code', 'CHILD_ID_TAKEN', 'id', v_id,
            'message', format('instance id "%s" is taken by an instance that is not a child of "%s" (step %s); it was started with that id directly',
              v_id, p_parent_id, p_parent_key))),
          updated_at = now()
      WHERE t.workflow_id = p_parent_id AND t.task_key = p_parent_key AND t.kind = 'child' AND t.status = 'waiting';
      IF FOUND THEN
        PERFORM pg_notify('baton_ready', '');
      END IF;
      RETURN QUERY SELECT v_id, false;
      RETURN;
    ELSIF p_on_conflict = 'useExisting' THEN
      RETURN QUERY SELECT v_id, false;
      RETURN;
    ELSIF p_on_conflict = 'terminateExisting' THEN
      PERFORM baton.cancel_workflow(v_id, 'terminated: started again with the same id', 'baton')
      WHERE v_status IN ('pending', 'running', 'paused');
      PERFORM baton.delete_instances(ARRAY[v_id]);
    ELSE
      RAISE EXCEPTION 'workflow instance "%" already exists (status %)', v_id, v_status
        USING ERRCODE = 'BTC01', DETAIL = v_status;
    END IF;
  END LOOP;

  IF baton.insert_first_steps(ARRAY[v_id], ARRAY[p_input], v_def.plan, v_def.hash, p_priority, v_tags, p_run_at, p_paused, p_parent_id,
       ARRAY[p_limit_key]) > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  IF NOT v_def.plan @? '$.steps[*] ? (@.kind == "child")' THEN
    RETURN QUERY SELECT v_id, true;
    RETURN;
  END IF;
  FOR v_child IN
    SELECT s ->> 'key' AS key, s -> 'child' ->> 'name' AS name, s -> 'child' ->> 'hash' AS hash
    FROM jsonb_array_elements(v_def.plan -> 'steps') s
    WHERE s ->> 'kind' = 'child'
  LOOP
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, max_attempts, input)
    SELECT v_id, v_child.key, 'child', v_child.name, v_def.hash, 'waiting', p_paused, coalesce(p_priority, (s ->> 'priority')::integer, 0),
      ARRAY(SELECT DISTINCT x FROM unnest(ARRAY(SELECT jsonb_array_elements_text(s -> 'tags')) || v_tags) x ORDER BY x),
      coalesce((s ->> 'maxAttempts')::integer, 1), p_input
    FROM jsonb_array_elements(v_def.plan -> 'steps') s WHERE s ->> 'key' = v_child.key;
    PERFORM baton.start_workflow(v_child.name, p_input, v_id || '/' || v_child.key, p_priority, v_tags, 'useExisting', v_child.hash,
      NULL, 'workflow', v_id, v_child.key, p_paused, p_traceparent, p_tracestate, p_limit_key);
  END LOOP;
  RETURN QUERY SELECT v_id, true;
END
$$;
--> statement-breakpoint
-- function: enqueue
-- A one-task job: the workflow behind a task a worker registered.
-- p_traceparent, p_tracestate: as in start_workflow. p_limit_key: the key its limits count under,
-- when they count per key (see start_workflow).
DROP FUNCTION IF EXISTS baton.enqueue(text, jsonb, text, integer, text[], text, timestamptz, text);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.enqueue(text, jsonb, text, integer, text[], text, timestamptz, text, text, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.enqueue(
  p_task text,
  p_input jsonb DEFAULT NULL,
  p_id text DEFAULT NULL,
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_on_conflict text DEFAULT 'fail',
  p_run_at timestamptz DEFAULT NULL,
  p_hash text DEFAULT NULL,
  p_traceparent text DEFAULT NULL,
  p_tracestate text DEFAULT NULL,
  p_limit_key text DEFAULT NULL
) RETURNS TABLE (workflow_id text, created boolean)
LANGUAGE sql AS $$
  SELECT * FROM baton.start_workflow(p_task, p_input, p_id, p_priority, p_tags, p_on_conflict, p_hash, p_run_at, 'task',
    p_traceparent => p_traceparent, p_tracestate => p_tracestate, p_limit_key => p_limit_key)
$$;
