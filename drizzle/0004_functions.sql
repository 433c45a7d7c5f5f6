-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.
-- function: claim_tasks
-- The claim: up to p_limit ready tasks, in aging order (ready_key), from the
-- tag sets this worker covers and the definitions it has, in one round trip.
-- Each claimed task gets a lease of p_ttl_ms and a new fencing epoch.
-- Soft bias: when a candidate is a retry this worker last failed, as many
-- further candidates are locked, and the retry goes after them; alone, it is
-- still taken. Only then are more rows locked than claimed.
-- Isolation: a task whose leases were lost p_isolate_from times or more (one
-- more loss fails it: it may be what kills its workers) is claimed only into
-- one of p_isolated_slots (the worker passes 1 when it holds no such task,
-- else 0), so it never takes innocent tasks down with it again.
-- Each row comes with its instance's snapshot (status, state, version), for
-- the optimistic commit, and for a waitForEvent step the oldest buffered event.
CREATE OR REPLACE FUNCTION baton.claim_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb)
LANGUAGE plpgsql
-- Key lookups only (see baton.commit): no sequential scan of a growing table, no JIT.
SET enable_seqscan = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_wf text[];
  v_key text[];
  v_rk timestamptz[];
  v_mine boolean[];
  v_iso boolean[];
  v_bias integer;
BEGIN
  -- Timers that are due become ready first (inline: a nested function call costs more than the probe).
  WITH due AS (
    SELECT t.workflow_id, t.task_key FROM baton.tasks t
    WHERE t.status = 'waiting' AND NOT t.paused AND t.available_at IS NOT NULL AND t.available_at <= now()
    ORDER BY t.available_at LIMIT 100
    FOR UPDATE SKIP LOCKED
  ), promoted AS (
    UPDATE baton.tasks t
    SET status = 'ready', ready_key = t.available_at + t.priority * baton.aging_interval(), updated_at = now()
    FROM due WHERE t.workflow_id = due.workflow_id AND t.task_key = due.task_key
    RETURNING 1
  )
  SELECT count(*) INTO v_bias FROM promoted;
  IF v_bias > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  SELECT array_agg(c.workflow_id ORDER BY c.ready_key), array_agg(c.task_key ORDER BY c.ready_key),
         array_agg(c.ready_key ORDER BY c.ready_key), array_agg(c.last_failed_worker IS NOT DISTINCT FROM p_worker ORDER BY c.ready_key),
         array_agg(c.lease_losses >= p_isolate_from ORDER BY c.ready_key)
  INTO v_wf, v_key, v_rk, v_mine, v_iso
  FROM (
    SELECT c.* FROM baton.tag_sets s
    CROSS JOIN LATERAL (
      SELECT t.workflow_id, t.task_key, t.ready_key, t.last_failed_worker, t.lease_losses
      FROM baton.tasks t
      WHERE t.status = 'ready' AND t.tags = s.tags AND t.definition_hash = ANY (p_hashes)
        AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
      ORDER BY t.ready_key
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    ) c
    WHERE s.tags <@ p_tags
    ORDER BY c.ready_key
    LIMIT p_limit
  ) c;
  IF v_wf IS NULL THEN
    RETURN;
  END IF;

  v_bias := (SELECT count(*) FROM unnest(v_mine) m WHERE m);
  IF v_bias > 0 THEN
    SELECT v_wf || coalesce(array_agg(c.workflow_id), '{}'), v_key || coalesce(array_agg(c.task_key), '{}'),
           v_rk || coalesce(array_agg(c.ready_key), '{}'), v_mine || coalesce(array_agg(c.last_failed_worker IS NOT DISTINCT FROM p_worker), '{}'),
           v_iso || coalesce(array_agg(c.lease_losses >= p_isolate_from), '{}')
    INTO v_wf, v_key, v_rk, v_mine, v_iso
    FROM (
      SELECT c.* FROM baton.tag_sets s
      CROSS JOIN LATERAL (
        SELECT t.workflow_id, t.task_key, t.ready_key, t.last_failed_worker, t.lease_losses
        FROM baton.tasks t
        WHERE t.status = 'ready' AND t.tags = s.tags AND t.definition_hash = ANY (p_hashes)
          AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
          AND (t.workflow_id, t.task_key) NOT IN (SELECT * FROM unnest(v_wf, v_key))
        ORDER BY t.ready_key
        LIMIT v_bias
        FOR UPDATE SKIP LOCKED
      ) c
      WHERE s.tags <@ p_tags
      ORDER BY c.ready_key
      LIMIT v_bias
    ) c;
  END IF;

  RETURN QUERY
  WITH ranked AS (
    SELECT u.*, row_number() OVER (PARTITION BY u.iso ORDER BY u.mine, u.rk) AS nth
    FROM unnest(v_wf, v_key, v_rk, v_mine, v_iso) AS u(wf, key, rk, mine, iso)
  ), chosen AS (
    SELECT r.wf, r.key FROM ranked r
    WHERE NOT r.iso OR r.nth <= p_isolated_slots
    ORDER BY r.mine, r.rk
    LIMIT p_limit
  ), claimed AS (
    UPDATE baton.tasks t
    SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
        started_at = coalesce(t.started_at, now()), updated_at = now()
    FROM chosen
    WHERE t.workflow_id = chosen.wf AND t.task_key = chosen.key
    RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
      t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key
  )
  SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses, c.input, c.output,
    c.available_at, c.lease_expires_at, w.name, w.status, w.state, w.version, w.priority, w.tags, w.parent_id, ev.id, ev.payload
  FROM claimed c
  JOIN baton.workflows w ON w.id = c.workflow_id
  LEFT JOIN LATERAL (
    SELECT e.id, e.payload FROM baton.events e
    WHERE c.kind = 'event' AND e.workflow_id = c.workflow_id AND e.name = c.name
    ORDER BY e.id LIMIT 1
  ) ev ON true
  ORDER BY c.ready_key;
END
$$;
--> statement-breakpoint
-- function: commit
-- The optimistic commit of a batch of finished attempts (the worker's hot
-- path, one round trip). The worker ran the state machine on the snapshots it
-- was given at claim time; here, under the instances' row locks, each instance
-- is applied only if
--   * its version is still the one the worker computed from, and
--   * every attempt of it still holds its claim (the fence: same worker, same
--     epoch, still running), and every event it consumes is still there.
-- Otherwise nothing of that instance is written and its current snapshot is
-- returned ('conflict'); the worker recomputes and commits again. Attempts
-- that fail the fence are refused for good ('refused') and counted, except an
-- attempt this worker already committed ('duplicate': the retry of a commit
-- whose reply was lost with its connection). Applied instances are not
-- reported: no row back means everything was applied.
--
-- Parameters are sets of JSON objects with named fields, so that no two of
-- them can be swapped silently (src/store/commit.ts builds them):
--   p_items, one per attempt: {wf, key, epoch, status, paused, output, error, delayMs, eventId}
--     status: the task's new status (completed, failed, ready, waiting);
--     delayMs: for a retry, available again after this many ms (null: keep);
--     eventId: the id of the event a waitForEvent step consumed.
--   p_instances, one per instance: {id, parent, version, status, state, bump, done, output, error, step, finished, after}
--     parent: its parent instance's id (locked too, before it: ids sort parents first), or null;
--     after: the instance finished and needs after_finish (failed, or has a parent).
--   p_history, one per checkpoint: {wf, version, kind, detail}
--     version: the version the row records (the worker counts from the instance's version).
--   p_schedule: steps to insert as task rows (see schedule_tasks).
--   p_claim: null, or the worker's next claim riding along:
--     {limit, tags, hashes, ttlMs, isolateFrom, isolatedSlots} (see claim_tasks).
--
-- Every statement here looks rows up by key, so sequential scans are off: with
-- a few hundred keys against a growing table the planner would otherwise pick
-- a hash join over a sequential scan of baton.workflows (measured on PG 15:
-- 6-9 ms per commit at 10,000 instances, growing with the table). Hash joins
-- stay allowed (between the batch's own sets they are the right choice). Plans
-- are generic: plpgsql otherwise re-plans a statement at every call when its
-- custom plans look cheaper than the generic one, which the unknown sizes of
-- JSON sets make it believe (see insert_first_steps).
DROP FUNCTION IF EXISTS baton.commit(text, text[], text[], bigint[], text[], boolean[], jsonb[], jsonb[], bigint[], bigint[], text[],
  integer[], text[], jsonb[], integer[], integer[], jsonb[], jsonb[], text[], boolean[], boolean[], text[], integer[], text[], jsonb[],
  jsonb, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.commit(p_worker text, p_items jsonb, p_instances jsonb, p_history jsonb, p_schedule jsonb,
  p_claim jsonb DEFAULT NULL)
RETURNS TABLE (result text, workflow_id text, task_key text, status text, state jsonb, version integer, task jsonb)
LANGUAGE plpgsql
SET enable_seqscan = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_bad text[];
  v_refused text[];
  v_already text[];
  v_all boolean;
  v_ok text[];
  v_n integer;
  v_done text[];
  v_ids text[];
  v_parents text[];
  v_events boolean;
BEGIN
  -- Lock the instances and their parents in id order, by index, and compare versions. A parent
  -- never changes, so the worker's snapshot names it.
  SELECT array_agg(e.id), coalesce(array_agg(e.parent) FILTER (WHERE e.parent IS NOT NULL), '{}') INTO v_ids, v_parents
  FROM jsonb_to_recordset(p_instances) AS e(id text, parent text);
  WITH locked AS (
    SELECT w.id, w.version FROM baton.workflows w
    WHERE w.id = ANY (v_ids || v_parents)
    ORDER BY w.id FOR UPDATE
  )
  SELECT coalesce(array_agg(e.id), '{}') INTO v_bad
  FROM jsonb_to_recordset(p_instances) AS e(id text, version integer)
  LEFT JOIN locked l ON l.id = e.id
  WHERE l.id IS NULL OR l.version <> e.version;

  -- The fence, read under those locks: nothing else can change these task rows until we commit.
  SELECT coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE NOT coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}'),
         coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}')
  INTO v_refused, v_already
  FROM jsonb_to_recordset(p_items) AS f(wf text, key text, epoch bigint)
  LEFT JOIN baton.tasks t ON t.workflow_id = f.wf AND t.task_key = f.key
  WHERE NOT coalesce(t.epoch = f.epoch AND t.claimed_by = p_worker AND t.status = 'running', false);

  IF cardinality(v_refused) + cardinality(v_already) > 0 THEN
    v_bad := v_bad || ARRAY(SELECT split_part(r, E'\x1f', 1) FROM unnest(v_refused || v_already) r);
  END IF;
  v_events := EXISTS (SELECT 1 FROM jsonb_to_recordset(p_items) AS c("eventId" bigint) WHERE c."eventId" IS NOT NULL);
  IF v_events THEN
    v_bad := v_bad || ARRAY(
      SELECT c.wf FROM jsonb_to_recordset(p_items) AS c(wf text, "eventId" bigint)
      WHERE c."eventId" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM baton.events e WHERE e.id = c."eventId"));
  END IF;
  IF cardinality(v_refused) > 0 THEN
    INSERT INTO baton.stats (key, value) VALUES ('refused_results', cardinality(v_refused))
    ON CONFLICT (key) DO UPDATE SET value = baton.stats.value + excluded.value, updated_at = now();
  END IF;

  v_all := cardinality(v_bad) = 0;
  v_ok := CASE WHEN v_all THEN v_ids ELSE ARRAY(SELECT unnest(v_ids) EXCEPT SELECT unnest(v_bad)) END;

  IF cardinality(v_ok) > 0 THEN
    IF v_events THEN
      DELETE FROM baton.events e USING jsonb_to_recordset(p_items) AS c(wf text, "eventId" bigint)
      WHERE e.id = c."eventId" AND (v_all OR c.wf = ANY (v_ok));
    END IF;

    UPDATE baton.tasks t
    SET status = c.status,
        paused = c.paused,
        output = CASE WHEN c.status = 'completed' THEN c.output ELSE t.output END,
        last_error = coalesce(c.error, t.last_error),
        last_failed_worker = CASE WHEN c.error IS NOT NULL THEN p_worker ELSE t.last_failed_worker END,
        available_at = CASE WHEN c."delayMs" IS NOT NULL THEN now() + c."delayMs" * interval '1 millisecond' ELSE t.available_at END,
        ready_key = CASE WHEN c.status = 'ready' THEN now() + t.priority * baton.aging_interval() ELSE t.ready_key END,
        progress = CASE WHEN c.status = 'completed' THEN 100 ELSE t.progress END,
        claimed_by = NULL, lease_expires_at = NULL,
        finished_at = CASE WHEN c.status IN ('completed', 'failed') THEN now() END,
        updated_at = now()
    FROM jsonb_to_recordset(p_items) AS c(wf text, key text, status text, paused boolean, output jsonb, error jsonb, "delayMs" bigint)
    WHERE t.workflow_id = c.wf AND t.task_key = c.key AND (v_all OR c.wf = ANY (v_ok));

    UPDATE baton.workflows w
    SET status = e.status, state = e.state, version = w.version + e.bump, completed_task_count = w.completed_task_count + e.done,
        output = CASE WHEN e.status = 'completed' THEN e.output ELSE w.output END,
        error = coalesce(e.error, w.error),
        current_step = CASE WHEN e.finished THEN NULL ELSE coalesce(e.step, w.current_step) END,
        finished_at = CASE WHEN e.finished THEN now() ELSE w.finished_at END,
        updated_at = now()
    FROM jsonb_to_recordset(p_instances)
      AS e(id text, status text, state jsonb, bump integer, done integer, output jsonb, error jsonb, step text, finished boolean)
    WHERE w.id = e.id AND (v_all OR e.id = ANY (v_ok));

    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT h.wf, h.version, h.kind, h.detail FROM jsonb_to_recordset(p_history) AS h(wf text, version integer, kind text, detail jsonb)
    WHERE v_all OR h.wf = ANY (v_ok);

    IF jsonb_array_length(p_schedule) > 0 THEN
      PERFORM baton.schedule_tasks(CASE WHEN v_all THEN p_schedule
        ELSE (SELECT coalesce(jsonb_agg(r), '[]') FROM jsonb_array_elements(p_schedule) r WHERE r ->> 'wf' = ANY (v_ok)) END);
    END IF;

    -- Failed instances, and children, need their open work closed and their parents told; the others only waiters.
    v_done := ARRAY(SELECT e.id FROM jsonb_to_recordset(p_instances) AS e(id text, after boolean) WHERE e.after AND (v_all OR e.id = ANY (v_ok)));
    IF cardinality(v_done) > 0 THEN
      PERFORM baton.after_finish(v_done);
    END IF;
    v_done := ARRAY(SELECT e.id FROM jsonb_to_recordset(p_instances) AS e(id text, finished boolean, after boolean)
                    WHERE e.finished AND NOT e.after AND (v_all OR e.id = ANY (v_ok)));
    v_n := cardinality(v_done);
    IF v_n > 0 THEN
      PERFORM pg_notify('baton_done', CASE WHEN length(array_to_string(v_done, ',')) < 7000 THEN array_to_string(v_done, ',') ELSE '*' END);
    END IF;
  END IF;

  IF NOT v_all THEN
    RETURN QUERY
    SELECT 'conflict', w.id, NULL::text, w.status, w.state, w.version, NULL::jsonb
    FROM baton.workflows w WHERE w.id = ANY (v_bad)
    UNION ALL
    SELECT 'refused', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_refused) r
    UNION ALL
    SELECT 'duplicate', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_already) r;
  END IF;
  -- The worker's next tasks, in the same round trip (it asks for as many as it has room for).
  IF coalesce((p_claim ->> 'limit')::integer, 0) > 0 THEN
    RETURN QUERY
    SELECT 'claimed', c.workflow_id, c.task_key, NULL::text, NULL::jsonb, NULL::integer, to_jsonb(c)
    FROM baton.claim_tasks(p_worker, (p_claim ->> 'limit')::integer, ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'tags')),
      ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'hashes')), (p_claim ->> 'ttlMs')::integer,
      coalesce((p_claim ->> 'isolateFrom')::integer, 2147483647), coalesce((p_claim ->> 'isolatedSlots')::integer, 0)) c;
  END IF;
END
$$;
--> statement-breakpoint
-- function: insert_first_steps
-- The first steps of freshly inserted instances, set-based: one INSERT for the
-- task rows of all of them (a plan's steps x the instances), one for their
-- 'started' history rows. The instances' rows exist already (the caller
-- inserted them, so it knows they are new). Child steps are left to the
-- caller (each starts an instance of its own). This is what makes a bulk
-- start cost a few statements instead of a function call per instance.
-- p_ids and p_inputs are parallel arrays; p_plan is definitions.plan.
-- Returns how many task rows became ready at once.
CREATE OR REPLACE FUNCTION baton.insert_first_steps(p_ids text[], p_inputs jsonb[], p_plan jsonb, p_hash text, p_priority integer,
  p_tags text[], p_run_at timestamptz, p_held boolean, p_parent_id text)
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
      CASE s ->> 'kind'
        WHEN 'sleep' THEN v_now + (s ->> 'delayMs')::bigint * interval '1 millisecond'
        WHEN 'event' THEN v_now + (s ->> 'timeoutMs')::bigint * interval '1 millisecond'
        ELSE greatest(v_now, coalesce(p_run_at, v_now))
      END AS available_at
    FROM jsonb_array_elements(p_plan -> 'steps') s
    WHERE s ->> 'kind' <> 'child'
  ), decided AS (
    SELECT i.id, i.input, st.*,
      CASE
        WHEN p_held OR st.kind = 'sleep' THEN 'waiting'
        WHEN st.kind = 'event' THEN
          CASE WHEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = i.id AND e.name = st.name) THEN 'ready' ELSE 'waiting' END
        WHEN st.available_at > v_now THEN 'waiting'
        ELSE 'ready'
      END AS status
    FROM unnest(p_ids, p_inputs) AS i(id, input)
    CROSS JOIN steps st
  ), inserted AS (
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, ready_key,
      available_at, max_attempts, input, created_at, updated_at)
    SELECT d.id, d.key, d.kind, d.name, p_hash, d.status, p_held, d.priority, d.tags,
      CASE WHEN d.status = 'ready' THEN least(d.available_at, v_now) + d.priority * baton.aging_interval() END,
      d.available_at, d.max_attempts, d.input, v_now, v_now
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
  )
  SELECT count(*) FILTER (WHERE status = 'ready') INTO v_ready FROM inserted;
  RETURN v_ready;
END
$$;
--> statement-breakpoint
-- function: start_checks
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
--> statement-breakpoint
-- function: start_definition
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
--> statement-breakpoint
-- function: start_many
-- Many instances of one definition in one call (generated ids): one row per
-- input, in order. p_inputs is a JSON array. Set-based: one INSERT per table
-- for the whole batch (the instances, their first steps, their history), so a
-- bulk start costs about what a plain queue's bulk insert does. Definitions
-- whose first steps start child workflows go through start_workflow per input.
CREATE OR REPLACE FUNCTION baton.start_many(
  p_name text,
  p_inputs jsonb,
  p_kind text DEFAULT 'workflow',
  p_priority integer DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_hash text DEFAULT NULL
) RETURNS TABLE (workflow_id text)
LANGUAGE plpgsql
-- Generic plans for every statement inside (see insert_first_steps).
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_tags text[];
  v_ids text[];
  v_inputs jsonb[];
  v_limit bigint := coalesce(nullif(current_setting('baton.max_payload_bytes', true), ''), '1048576')::bigint;
  v_big record;
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
  IF p_inputs IS NULL OR jsonb_typeof(p_inputs) <> 'array' THEN
    RAISE EXCEPTION 'inputs must be a JSON array (got %)', coalesce(jsonb_typeof(p_inputs), 'null') USING ERRCODE = 'BTV01';
  END IF;
  v_def := baton.start_definition(p_name, p_kind, p_hash);

  SELECT array_agg(gen_random_uuid()::text ORDER BY x.n), array_agg(x.input ORDER BY x.n)
  INTO v_ids, v_inputs
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
    SELECT s.workflow_id FROM unnest(v_inputs) WITH ORDINALITY AS x(input, n)
    CROSS JOIN LATERAL baton.start_workflow(p_name, x.input, NULL, p_priority, v_tags, 'fail', v_def.hash, NULL, p_kind) s
    ORDER BY x.n;
    RETURN;
  END IF;

  INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, state, current_step, version, created_at, updated_at)
  SELECT i.id, p_name, v_def.hash, 'running', i.input, p_priority, v_tags, v_def.plan -> 'state', step.names, 1, now(), now()
  FROM unnest(v_ids, v_inputs) AS i(id, input)
  CROSS JOIN (SELECT string_agg(s ->> 'name', ', ') AS names FROM jsonb_array_elements(v_def.plan -> 'steps') s) step;
  IF baton.insert_first_steps(v_ids, v_inputs, v_def.plan, v_def.hash, p_priority, v_tags, NULL, false, NULL) > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN QUERY SELECT unnest(v_ids);
END
$$;
--> statement-breakpoint
-- function: start_workflow
-- Start an instance of a registered definition: the SQL API, and what the
-- client calls. The first steps come from the plan the registering worker
-- computed, so no code runs here.
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
  p_paused boolean DEFAULT false
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
  v_child record;
BEGIN
  v_tags := baton.start_checks(p_name, p_kind, p_priority, p_tags);
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

  v_def := baton.start_definition(p_name, p_kind, p_hash);

  v_id := coalesce(p_id, gen_random_uuid()::text);
  IF p_id IS NOT NULL AND v_def.plan @? '$.steps[*] ? (@.kind == "event")' THEN
    -- Pairs with send_event: a buffered event is seen, or the waiting step is.
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || v_id, 0));
  END IF;

  LOOP
    INSERT INTO baton.workflows (id, name, definition_hash, status, input, priority, tags, parent_id, parent_key, state, current_step,
      version, created_at, updated_at)
    VALUES (v_id, p_name, v_def.hash, CASE WHEN p_paused THEN 'paused' ELSE 'running' END, p_input, p_priority, v_tags, p_parent_id,
      p_parent_key, v_def.plan -> 'state', (SELECT string_agg(s ->> 'name', ', ') FROM jsonb_array_elements(v_def.plan -> 'steps') s),
      1, now(), now())
    ON CONFLICT (id) DO NOTHING;
    EXIT WHEN FOUND;

    SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = v_id FOR UPDATE;
    CONTINUE WHEN NOT FOUND; -- deleted meanwhile: try again
    IF p_on_conflict = 'useExisting' THEN
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

  IF baton.insert_first_steps(ARRAY[v_id], ARRAY[p_input], v_def.plan, v_def.hash, p_priority, v_tags, p_run_at, p_paused, p_parent_id) > 0 THEN
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
      NULL, 'workflow', v_id, v_child.key, p_paused);
  END LOOP;
  RETURN QUERY SELECT v_id, true;
END
$$;
