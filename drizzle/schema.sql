-- The baton schema after every migration in drizzle/, dumped from PostgreSQL 15.
-- Written by `npm run sql:dump`, checked by `npm run sql:dump -- --check`: do not edit.
--
-- PostgreSQL database dump
--

--
-- Name: baton; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA baton;

--
-- Name: admit(text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.admit(p_name text, p_key text) RETURNS integer
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
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

--
-- Name: admit_queued(integer); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.admit_queued(p_limit integer DEFAULT 100) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: after_finish(text[]); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.after_finish(p_ids text[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_children text[];
  v_halted text[];
BEGIN
  IF cardinality(p_ids) = 0 THEN
    RETURN;
  END IF;
  UPDATE baton.tasks t
  SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
  FROM baton.workflows w
  WHERE t.workflow_id = ANY (p_ids) AND t.status IN ('waiting', 'queued', 'ready', 'running') AND w.id = t.workflow_id
    AND (w.status NOT IN ('running', 'paused') OR left(t.task_key, 1) <> '!');
  v_halted := ARRAY(SELECT '!' || w.id FROM baton.workflows w WHERE w.id = ANY (p_ids) AND w.status IN ('running', 'paused'));
  IF cardinality(v_halted) > 0 THEN
    PERFORM pg_notify('baton_cancel', left(array_to_string(v_halted, ','), 7000));
  END IF;
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

--
-- Name: aging_interval(); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.aging_interval() RETURNS interval
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  SELECT coalesce(nullif(current_setting('baton.aging_interval_ms', true), ''), '60000')::bigint * interval '1 millisecond'
$$;

--
-- Name: cancel_steps(jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.cancel_steps(p_steps jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_running text[];
  v_children text[];
  v_payload text;
BEGIN
  WITH targets AS (
    SELECT t.workflow_id, t.task_key, t.status
    FROM baton.tasks t
    JOIN (SELECT DISTINCT s.wf, s.key FROM jsonb_to_recordset(p_steps) AS s(wf text, key text)) s ON t.workflow_id = s.wf
    WHERE (t.task_key = s.key OR left(t.task_key, length(s.key) + 1) = s.key || '/')
      AND t.status IN ('waiting', 'queued', 'ready', 'running')
  ), cancelled AS (
    UPDATE baton.tasks t
    SET status = 'cancelled', finished_at = now(), updated_at = now(), claimed_by = NULL, lease_expires_at = NULL, paused = false
    FROM targets g
    WHERE t.workflow_id = g.workflow_id AND t.task_key = g.task_key
    RETURNING g.workflow_id, g.task_key, g.status AS was
  )
  SELECT coalesce(array_agg(c.workflow_id || E'\x1f' || c.task_key) FILTER (WHERE c.was = 'running'), '{}') INTO v_running FROM cancelled c;

  v_children := ARRAY(
    SELECT w.id FROM baton.workflows w
    JOIN (SELECT DISTINCT s.wf, s.key FROM jsonb_to_recordset(p_steps) AS s(wf text, key text)) s ON w.parent_id = s.wf
    WHERE (w.parent_key = s.key OR left(w.parent_key, length(s.key) + 1) = s.key || '/') AND w.status IN ('pending', 'running', 'paused')
    ORDER BY w.id FOR UPDATE OF w);
  IF cardinality(v_children) > 0 THEN
    PERFORM baton.cancel_tree(v_children, jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
      'message', 'cancelled because its parent workflow''s parallel step no longer needs it'));
  END IF;

  IF cardinality(v_running) > 0 THEN
    v_payload := array_to_string(v_running, ',');
    IF length(v_payload) < 7000 THEN
      PERFORM pg_notify('baton_cancel', v_payload);
    END IF;
  END IF;
END
$$;

--
-- Name: cancel_tree(text[], jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.cancel_tree(p_ids text[], p_error jsonb) RETURNS text[]
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: cancel_workflow(text, text, text, boolean); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.cancel_workflow(p_id text, p_reason text DEFAULT NULL::text, p_requested_by text DEFAULT NULL::text, p_compensate boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_status text;
  v_parent text;
  v_error jsonb;
BEGIN
  SELECT w.parent_id INTO v_parent FROM baton.workflows w WHERE w.id = p_id;
  PERFORM 1 FROM baton.workflows w WHERE w.id IN (p_id, v_parent) ORDER BY w.id FOR UPDATE;
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status = 'cancelled' THEN
    RETURN v_status;
  END IF;
  IF v_status IN ('completed', 'failed', 'compensated') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  INSERT INTO baton.signals (workflow_id, kind, reason, requested_by)
  VALUES (p_id, 'cancel', p_reason, p_requested_by)
  ON CONFLICT (workflow_id, kind) DO UPDATE SET reason = excluded.reason, requested_by = excluded.requested_by, requested_at = now();
  v_error := jsonb_strip_nulls(jsonb_build_object('name', 'CancelledError', 'code', 'CANCELLED',
    'message', 'cancelled' || coalesce(': ' || p_reason, ''), 'reason', p_reason, 'requestedBy', p_requested_by));
  IF coalesce(p_compensate, false) THEN
    PERFORM baton.request_compensation(p_id, v_error || '{"compensate": true}');
    RETURN v_status;
  END IF;
  PERFORM baton.cancel_tree(ARRAY[p_id], v_error);
  PERFORM baton.settle_parents(ARRAY[p_id]);
  RETURN v_status;
END
$$;

--
-- Name: claim_tasks(text, integer, text[], text[], integer, integer, integer, boolean); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.claim_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer, p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_declares boolean DEFAULT false) RETURNS TABLE(workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer, max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamp with time zone, lease_expires_at timestamp with time zone, workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer, workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text, suspect boolean)
    LANGUAGE plpgsql
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
#variable_conflict use_column
DECLARE
  v_promoted integer;
  v_wf text[];
  v_key text[];
  v_tid tid[];
  v_events boolean;
  v_n integer;
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
  SELECT count(*) INTO v_promoted FROM promoted;
  IF v_promoted > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;

  IF coalesce(p_limit, 0) <= 0 THEN
    RETURN;
  END IF;

  -- The common claim, in one statement: the first p_limit ready candidates in aging order, locked as
  -- they are scanned (find_available_tasks' scan), are claimed and returned with their instances'
  -- snapshots. It is the general path's choice exactly when none of them is a retry this worker last
  -- failed (the soft bias would look further and put it last), none is isolated (one lost lease from
  -- failing: p_isolated_slots of them at most) and none is a waitForEvent step (it gets an event of
  -- its own): then the candidates are the choice, in the same order. Otherwise it claims nothing,
  -- and the general path below chooses again from the same rows (this transaction holds their
  -- locks, so its SKIP LOCKED scan sees them). Measured on PostgreSQL 15 (claims of 100 from a
  -- backlog of 30,000 one-task jobs, one session): 24.3-24.8 us per job through the general path,
  -- 18.6-19.5 this way: no arrays built and unnested, no second scan of the rows, one statement.
  -- The claimed rows are looked up by key, not by the addresses the scan read: a row that another
  -- transaction updated after this statement's snapshot (and that is still ready) was locked at its
  -- newest version, which this snapshot does not see; by key, the update follows it there.
  RETURN QUERY
  WITH candidates AS MATERIALIZED (
    SELECT c.* FROM baton.tag_sets s
    CROSS JOIN LATERAL (
      SELECT t.workflow_id, t.task_key, t.ready_key, t.kind, t.last_failed_worker, t.lease_losses
      FROM baton.tasks t
      WHERE t.status = 'ready' AND t.tags = s.tags AND (p_hashes IS NULL OR t.definition_hash = ANY (p_hashes))
        AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
      ORDER BY t.ready_key
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    ) c
    WHERE s.tags <@ p_tags
    ORDER BY c.ready_key
    LIMIT p_limit
  ), claimed AS (
    UPDATE baton.tasks t
    SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
        started_at = coalesce(t.started_at, now()), begun = NOT (p_declares AND (t.lease_losses > 0 OR coalesce(t.last_error ->> 'code' = 'LEASE_LOST', false))), updated_at = now()
    FROM candidates u
    WHERE t.workflow_id = u.workflow_id AND t.task_key = u.task_key
      AND NOT EXISTS (SELECT 1 FROM candidates x WHERE x.kind = 'event' OR x.last_failed_worker = p_worker OR x.lease_losses >= p_isolate_from)
    RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
      t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key,
      NOT t.begun AS suspect
  )
  SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses,
    coalesce(c.input, w.input), c.output, c.available_at, c.lease_expires_at, w.name, w.status, w.state, w.version, w.priority, w.tags,
    w.parent_id, NULL::bigint, NULL::jsonb, w.trace_context, NULL::text, c.suspect
  FROM claimed c
  JOIN baton.workflows w ON w.id = c.workflow_id
  ORDER BY c.ready_key, c.workflow_id, c.task_key;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    RETURN;
  END IF;

  -- The general path. The choice (rows locked), with each row's kind and address (see find_available_tasks).
  SELECT array_agg(f.workflow_id), array_agg(f.task_key), array_agg(f.row_address), coalesce(bool_or(f.kind = 'event'), false)
  INTO v_wf, v_key, v_tid, v_events
  FROM baton.find_available_tasks(p_worker, p_limit, p_tags, p_hashes, p_isolate_from, p_isolated_slots, p_lock => true) f;
  IF v_wf IS NULL THEN
    RETURN;
  END IF;

  -- No waitForEvent step among them (the bias or isolation sent the claim here): one statement claims the rows, by the
  -- addresses of the versions locked above, and returns them with their instances' snapshots.
  IF NOT v_events THEN
    RETURN QUERY
    WITH claimed AS (
      UPDATE baton.tasks t
      SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
          lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
          started_at = coalesce(t.started_at, now()), begun = NOT (p_declares AND (t.lease_losses > 0 OR coalesce(t.last_error ->> 'code' = 'LEASE_LOST', false))), updated_at = now()
      FROM unnest(v_tid, v_wf, v_key) AS u(tid, wf, key)
      WHERE t.ctid = u.tid AND t.workflow_id = u.wf AND t.task_key = u.key
      RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
        t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key,
        NOT t.begun AS suspect
    )
    SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses,
      coalesce(c.input, w.input), c.output, c.available_at, c.lease_expires_at, w.name, w.status, w.state, w.version, w.priority, w.tags,
      w.parent_id, NULL::bigint, NULL::jsonb, w.trace_context, NULL::text, c.suspect
    FROM claimed c
    JOIN baton.workflows w ON w.id = c.workflow_id
    ORDER BY c.ready_key, c.workflow_id, c.task_key;
    RETURN;
  END IF;

  -- With one, the same statement also gives each wait its event (below). It runs only then: its CTEs
  -- would cost every claim about 50 us (measured on PostgreSQL 18), and its UPDATE of baton.events may
  -- be planned as a scan of every buffered event. Hash and merge joins are on for it, for this function
  -- only (the SET clauses above restore them on return).
  PERFORM set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true);
  RETURN QUERY
  WITH claimed AS (
    UPDATE baton.tasks t
    SET status = 'running', epoch = nextval('baton.epoch_seq'), claimed_by = p_worker, claimed_at = now(),
        lease_expires_at = now() + p_ttl_ms * interval '1 millisecond', attempts = t.attempts + 1,
        started_at = coalesce(t.started_at, now()), begun = NOT (p_declares AND (t.lease_losses > 0 OR coalesce(t.last_error ->> 'code' = 'LEASE_LOST', false))), updated_at = now()
    FROM unnest(v_tid, v_wf, v_key) AS u(tid, wf, key)
    WHERE t.ctid = u.tid AND t.workflow_id = u.wf AND t.task_key = u.key
    RETURNING t.workflow_id, t.task_key, t.kind, t.name, t.definition_hash, t.epoch, t.attempts, t.max_attempts, t.lease_losses,
      t.input, t.output, t.available_at, t.lease_expires_at, t.ready_key, t.event_key,
      NOT t.begun AS suspect
  ), waits AS (
    SELECT c.workflow_id, c.name, c.task_key, c.epoch, c.lease_expires_at,
      row_number() OVER (PARTITION BY c.workflow_id, c.name ORDER BY c.ready_key, c.task_key) AS nth
    FROM claimed c WHERE c.kind = 'event' AND c.event_key IS NULL
  ), free AS (
    SELECT g.workflow_id, g.name, ev.id, ev.payload, row_number() OVER (PARTITION BY g.workflow_id, g.name ORDER BY ev.id) AS nth
    FROM (SELECT w.workflow_id, w.name, count(*) AS n, array_agg(w.task_key) AS keys FROM waits w GROUP BY w.workflow_id, w.name) g
    CROSS JOIN LATERAL (
      SELECT e.id, e.payload FROM baton.events e
      WHERE e.workflow_id = g.workflow_id AND e.name = g.name
        AND (e.held_epoch IS NULL OR e.held_key = ANY (g.keys)
          OR (e.held_until <= now() AND NOT EXISTS (
            SELECT 1 FROM baton.tasks h
            WHERE h.workflow_id = e.workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running')))
      ORDER BY e.id
      LIMIT g.n
      FOR UPDATE SKIP LOCKED
    ) ev
  ), kwaits AS (
    SELECT c.workflow_id, c.name, c.event_key, c.task_key, c.epoch, c.lease_expires_at,
      row_number() OVER (PARTITION BY c.name, c.event_key ORDER BY c.ready_key, c.workflow_id, c.task_key) AS nth
    FROM claimed c WHERE c.kind = 'event' AND c.event_key <> ''
  ), kfree AS (
    SELECT g.name, g.event_key, ev.id, ev.payload, row_number() OVER (PARTITION BY g.name, g.event_key ORDER BY ev.id) AS nth
    FROM (SELECT w.name, w.event_key, count(*) AS n, array_agg(w.workflow_id || E'\x1f' || w.task_key) AS holders
          FROM kwaits w GROUP BY w.name, w.event_key) g
    CROSS JOIN LATERAL (
      SELECT e.id, e.payload FROM baton.events e
      WHERE e.name = g.name AND e.key = g.event_key AND e.expires_at > now()
        AND (e.held_epoch IS NULL OR e.held_workflow_id || E'\x1f' || e.held_key = ANY (g.holders)
          OR (e.held_until <= now() AND NOT EXISTS (
            SELECT 1 FROM baton.tasks h
            WHERE h.workflow_id = e.held_workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running')))
      ORDER BY e.id
      LIMIT g.n
      FOR UPDATE SKIP LOCKED
    ) ev
  ), given AS (
    SELECT w.workflow_id, w.task_key, w.epoch, w.lease_expires_at, f.id, f.payload
    FROM waits w JOIN free f ON f.workflow_id = w.workflow_id AND f.name = w.name AND f.nth = w.nth
    UNION ALL
    SELECT w.workflow_id, w.task_key, w.epoch, w.lease_expires_at, f.id, f.payload
    FROM kwaits w JOIN kfree f ON f.name = w.name AND f.event_key = w.event_key AND f.nth = w.nth
  ), held AS (
    UPDATE baton.events e SET held_workflow_id = g.workflow_id, held_key = g.task_key, held_epoch = g.epoch, held_until = g.lease_expires_at
    FROM given g WHERE e.id = g.id
  )
  SELECT c.workflow_id, c.task_key, c.kind, c.name, c.definition_hash, c.epoch, c.attempts, c.max_attempts, c.lease_losses,
    CASE WHEN c.event_key = '' THEN w.input ELSE coalesce(c.input, w.input) END, c.output, c.available_at, c.lease_expires_at, w.name,
    w.status, w.state, w.version, w.priority, w.tags, w.parent_id, g.id, g.payload, w.trace_context, c.event_key, c.suspect
  FROM claimed c
  JOIN baton.workflows w ON w.id = c.workflow_id
  LEFT JOIN given g ON g.workflow_id = c.workflow_id AND g.task_key = c.task_key
  ORDER BY c.ready_key, c.workflow_id, c.task_key;
END
$$;

--
-- Name: claim_tasks_async_commit(text, integer, text[], text[], integer, integer, integer, boolean); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.claim_tasks_async_commit(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer, p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_declares boolean DEFAULT false) RETURNS TABLE(workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer, max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamp with time zone, lease_expires_at timestamp with time zone, workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer, workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text, suspect boolean)
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY SELECT * FROM baton.claim_tasks(p_worker, p_limit, p_tags, p_hashes, p_ttl_ms, p_isolate_from, p_isolated_slots, p_declares);
END
$$;

--
-- Name: commit(text, jsonb, jsonb, jsonb, jsonb, jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.commit(p_worker text, p_items jsonb, p_instances jsonb, p_history jsonb, p_schedule jsonb, p_claim jsonb DEFAULT NULL::jsonb) RETURNS TABLE(result text, workflow_id text, task_key text, status text, state jsonb, version integer, task json)
    LANGUAGE plpgsql
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
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
  v_keys boolean;
  v_rewaits boolean;
  v_gone text[] := '{}';
  v_wake text[] := '{}';
  v_fast boolean;
  v_cancels boolean;
  v_cancel jsonb;
BEGIN
  SELECT array_agg(e.id), coalesce(array_agg(e.parent) FILTER (WHERE e.parent IS NOT NULL), '{}'), coalesce(bool_or(e.cancel IS NOT NULL), false)
  INTO v_ids, v_parents, v_cancels
  FROM jsonb_to_recordset(p_instances) AS e(id text, parent text, cancel jsonb);
  SELECT coalesce(bool_or(c."eventId" IS NOT NULL), false), coalesce(bool_or(c.status = 'waiting' AND c.error IS NULL AND NOT c.paused), false),
    coalesce(bool_or(c."eventKey" IS NOT NULL), false)
  INTO v_events, v_rewaits, v_keys
  FROM jsonb_to_recordset(p_items) AS c("eventId" bigint, status text, error jsonb, paused boolean, "eventKey" text);

  -- The fast path, for a batch with no child instance, no event consumed and no re-wait (every job, most
  -- workflow steps): each instance is locked, compared and written by one UPDATE, and each attempt's
  -- fence is checked by the UPDATE that writes it, instead of a locking read and a fence read first
  -- (measured on PostgreSQL 18: about 14 us per job each, of the commit's ~150). The instances are updated in id
  -- order (the join is driven by the sorted set: see the lock order in drizzle/functions/README.md; the ids
  -- come from JSON, so their sort names the "C" collation that baton.workflows.id sorts in).
  -- A conflicting instance (another version) is left as it is and reported, its attempts' fences read
  -- as on the slow path. An attempt of an applied instance that fails its fence undoes the whole fast
  -- path (an exception block is a subtransaction) and the slow path below runs instead, which sorts
  -- out refused and duplicate attempts.
  v_fast := cardinality(v_parents) = 0 AND NOT v_events AND NOT v_rewaits AND NOT v_keys;
  IF v_fast THEN
    BEGIN
      WITH applied AS (
        UPDATE baton.workflows w
        SET status = e.status, state = e.state, version = w.version + e.bump, completed_task_count = w.completed_task_count + e.done,
            output = CASE WHEN e.status = 'completed' THEN e.output ELSE w.output END,
            error = coalesce(e.error, w.error),
            current_step = CASE WHEN e.finished THEN NULL ELSE coalesce(e.step, w.current_step) END,
            finished_at = CASE WHEN e.finished THEN now() ELSE w.finished_at END,
            updated_at = now()
        FROM (SELECT * FROM jsonb_to_recordset(p_instances) AS e(id text, version integer, status text, state jsonb, bump integer,
                done integer, output jsonb, error jsonb, step text, finished boolean) ORDER BY e.id COLLATE "C") e
        WHERE w.id = e.id AND w.version = e.version
        RETURNING w.id
      )
      SELECT coalesce(array_agg(a.id), '{}') INTO v_ok FROM applied a;
      v_all := cardinality(v_ok) = cardinality(v_ids);
      v_bad := CASE WHEN v_all THEN '{}' ELSE ARRAY(SELECT unnest(v_ids) EXCEPT SELECT unnest(v_ok)) END;

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
          finished_at = CASE WHEN c.status IN ('completed', 'failed', 'cancelled') THEN now() END,
          finished_by = CASE WHEN c.quiet THEN p_worker END,
          updated_at = now()
      FROM jsonb_to_recordset(p_items) AS c(wf text, key text, epoch bigint, status text, paused boolean, output jsonb, error jsonb, "delayMs" bigint,
        quiet boolean)
      -- The fence: still this attempt's claim. Its worker and status tests are written against the item
      -- (c.epoch is never null), so that they are join conditions, not filters on baton.tasks alone: the
      -- plan is then one primary-key lookup per item, whatever the statistics say. As filters, with
      -- statistics taken while nothing ran (a backlog analyzed before the workers started), the planner
      -- believed one row was running and drove the join from tasks_lease_idx, re-reading the items for
      -- each running task (185-205 ms for 500 items, S1 at 2k instead of 12k jobs/s), or, on a small
      -- table, from a scan of the whole primary key (PostgreSQL 15, 500 tasks: 483 pages for one item,
      -- 10 by key).
      WHERE t.workflow_id = c.wf AND t.task_key = c.key AND (v_all OR c.wf = ANY (v_ok)) AND t.epoch = c.epoch
        AND t.claimed_by = CASE WHEN c.epoch IS NOT NULL THEN p_worker END
        AND t.status = CASE WHEN c.epoch IS NOT NULL THEN 'running' END;
      GET DIAGNOSTICS v_n = ROW_COUNT;
      IF v_n <> (SELECT count(*) FROM jsonb_to_recordset(p_items) AS c(wf text) WHERE v_all OR c.wf = ANY (v_ok)) THEN
        RAISE EXCEPTION USING ERRCODE = 'BTF01', MESSAGE = 'baton.commit: a fence failed on the fast path';
      END IF;
    EXCEPTION WHEN SQLSTATE 'BTF01' THEN
      v_fast := false;
    END;
    IF v_fast AND NOT v_all THEN
      -- The conflicting instances' attempts: refused or already committed ones are reported with the conflict.
      SELECT coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE NOT coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}'),
             coalesce(array_agg(f.wf || E'\x1f' || f.key) FILTER (WHERE coalesce(t.epoch = f.epoch AND t.status IN ('completed', 'failed'), false)), '{}')
      INTO v_refused, v_already
      FROM jsonb_to_recordset(p_items) AS f(wf text, key text, epoch bigint)
      LEFT JOIN baton.tasks t ON t.workflow_id = f.wf AND t.task_key = f.key
      WHERE f.wf = ANY (v_bad) AND NOT coalesce(t.epoch = f.epoch AND t.claimed_by = p_worker AND t.status = 'running', false);
      IF cardinality(v_refused) > 0 THEN
        INSERT INTO baton.stats (key, value) VALUES ('refused_results', cardinality(v_refused))
        ON CONFLICT (key) DO UPDATE SET value = baton.stats.value + excluded.value, updated_at = now();
      END IF;
    END IF;
  END IF;

  -- Hash and merge joins again, for this function only (the SET clauses above restore them on return).
  PERFORM set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true);

  IF NOT v_fast THEN
    -- The slow path. Lock the instances and their parents in id order, by index, and compare versions. A
    -- parent never changes, so the worker's snapshot names it.
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
    IF v_events THEN
      v_gone := ARRAY(
        SELECT c.wf || E'\x1f' || c.key FROM jsonb_to_recordset(p_items) AS c(wf text, key text, epoch bigint, "eventId" bigint)
        WHERE c."eventId" IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM baton.events e WHERE e.id = c."eventId" AND (e.held_epoch IS NULL OR e.held_epoch = c.epoch)));
      v_bad := v_bad || ARRAY(SELECT split_part(r, E'\x1f', 1) FROM unnest(v_gone) r);
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
      -- Re-waits with a free event now (the rule of claim_tasks; the events just consumed are gone).
      IF v_rewaits THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('baton:keyed:' || k.name || E'\x1f' || k.event_key, 0))
        FROM (
          SELECT DISTINCT t.name, coalesce(c."eventKey", t.event_key) AS event_key
          FROM jsonb_to_recordset(p_items) AS c(wf text, key text, status text, error jsonb, paused boolean, "eventKey" text)
          JOIN baton.tasks t ON t.workflow_id = c.wf AND t.task_key = c.key
          WHERE c.status = 'waiting' AND c.error IS NULL AND NOT c.paused AND t.kind = 'event' AND (v_all OR c.wf = ANY (v_ok))
            AND coalesce(c."eventKey", t.event_key) <> ''
          ORDER BY 1, 2
        ) k;
        v_wake := ARRAY(
          SELECT c.wf || E'\x1f' || c.key
          FROM jsonb_to_recordset(p_items) AS c(wf text, key text, status text, error jsonb, paused boolean, "eventKey" text)
          JOIN baton.tasks t ON t.workflow_id = c.wf AND t.task_key = c.key
          WHERE c.status = 'waiting' AND c.error IS NULL AND NOT c.paused AND t.kind = 'event' AND (v_all OR c.wf = ANY (v_ok))
            AND CASE WHEN coalesce(c."eventKey", t.event_key) IS NULL THEN EXISTS (
              SELECT 1 FROM baton.events e
              WHERE e.workflow_id = t.workflow_id AND e.name = t.name
                AND (e.held_epoch IS NULL OR e.held_key = t.task_key
                  OR (e.held_until <= now() AND NOT EXISTS (
                    SELECT 1 FROM baton.tasks h
                    WHERE h.workflow_id = e.workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running'))))
            ELSE EXISTS (
              SELECT 1 FROM baton.events e
              WHERE e.name = t.name AND e.key = coalesce(c."eventKey", t.event_key) AND e.expires_at > now()
                AND (e.held_epoch IS NULL OR (e.held_workflow_id = t.workflow_id AND e.held_key = t.task_key)
                  OR (e.held_until <= now() AND NOT EXISTS (
                    SELECT 1 FROM baton.tasks h
                    WHERE h.workflow_id = e.held_workflow_id AND h.task_key = e.held_key AND h.epoch = e.held_epoch AND h.status = 'running'))))
            END);
      END IF;

      UPDATE baton.tasks t
      SET status = CASE WHEN cardinality(v_wake) > 0 AND c.wf || E'\x1f' || c.key = ANY (v_wake) THEN 'ready' ELSE c.status END,
          paused = c.paused,
          output = CASE WHEN c.status = 'completed' THEN c.output ELSE t.output END,
          last_error = coalesce(c.error, t.last_error),
          last_failed_worker = CASE WHEN c.error IS NOT NULL THEN p_worker ELSE t.last_failed_worker END,
          available_at = CASE WHEN c."delayMs" IS NOT NULL THEN now() + c."delayMs" * interval '1 millisecond' ELSE t.available_at END,
          ready_key = CASE WHEN c.status = 'ready' OR (cardinality(v_wake) > 0 AND c.wf || E'\x1f' || c.key = ANY (v_wake))
            THEN now() + t.priority * baton.aging_interval() ELSE t.ready_key END,
          progress = CASE WHEN c.status = 'completed' THEN 100 ELSE t.progress END,
          claimed_by = NULL, lease_expires_at = NULL,
          finished_at = CASE WHEN c.status IN ('completed', 'failed', 'cancelled') THEN now() END,
          finished_by = CASE WHEN c.quiet THEN p_worker END,
          event_key = coalesce(c."eventKey", t.event_key),
          updated_at = now()
      FROM jsonb_to_recordset(p_items) AS c(wf text, key text, status text, paused boolean, output jsonb, error jsonb, "delayMs" bigint,
        quiet boolean, "eventKey" text)
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
    END IF;
  END IF;

  IF cardinality(v_ok) > 0 THEN
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT h.wf, h.version, h.kind, h.detail FROM jsonb_to_recordset(p_history) AS h(wf text, version integer, kind text, detail jsonb)
    WHERE v_all OR h.wf = ANY (v_ok);

    -- Branches a join no longer needs, and the rest of failed branches (src/workflow/join.ts).
    IF v_cancels THEN
      SELECT jsonb_agg(jsonb_build_object('wf', e.id, 'key', k.key)) INTO v_cancel
      FROM jsonb_to_recordset(p_instances) AS e(id text, cancel jsonb)
      CROSS JOIN LATERAL jsonb_array_elements_text(e.cancel) AS k(key)
      WHERE e.cancel IS NOT NULL AND (v_all OR e.id = ANY (v_ok));
      IF v_cancel IS NOT NULL THEN
        PERFORM baton.cancel_steps(v_cancel);
      END IF;
    END IF;

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
    IF cardinality(v_wake) > 0 THEN
      PERFORM pg_notify('baton_ready', '');
    END IF;
  END IF;

  IF NOT v_all THEN
    RETURN QUERY
    SELECT 'conflict', w.id, NULL::text, w.status, w.state, w.version, NULL::json
    FROM baton.workflows w WHERE w.id = ANY (v_bad)
    UNION ALL
    SELECT 'refused', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_refused) r
    UNION ALL
    SELECT 'duplicate', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_already) r
    UNION ALL
    SELECT 'event_gone', split_part(r, E'\x1f', 1), split_part(r, E'\x1f', 2), NULL, NULL, NULL, NULL FROM unnest(v_gone) r;
  END IF;
  -- The worker's next tasks, in the same round trip (it asks for as many as it has room for).
  IF coalesce((p_claim ->> 'limit')::integer, 0) > 0 THEN
    RETURN QUERY
    SELECT 'claimed', c.workflow_id, c.task_key, NULL::text, NULL::jsonb, NULL::integer, row_to_json(c)
    FROM baton.claim_tasks(p_worker, (p_claim ->> 'limit')::integer, ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'tags')),
      ARRAY(SELECT jsonb_array_elements_text(p_claim -> 'hashes')), (p_claim ->> 'ttlMs')::integer,
      coalesce((p_claim ->> 'isolateFrom')::integer, 2147483647), coalesce((p_claim ->> 'isolatedSlots')::integer, 0),
      coalesce((p_claim ->> 'declares')::boolean, false)) c;
  END IF;
END
$$;

--
-- Name: complete_waitpoint(text, text, text, timestamp with time zone, timestamp with time zone, jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.complete_waitpoint(p_id text, p_name text, p_nonce text, p_issued_at timestamp with time zone, p_expires_at timestamp with time zone, p_payload jsonb DEFAULT NULL::jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_status text;
BEGIN
  IF p_nonce IS NULL OR length(p_nonce) NOT BETWEEN 16 AND 128 OR p_issued_at IS NULL OR p_expires_at IS NULL THEN
    RAISE EXCEPTION 'a waitpoint needs a nonce of 16-128 characters, an issue time and an expiry' USING ERRCODE = 'BTV01';
  END IF;
  IF p_expires_at <= now() THEN
    RAISE EXCEPTION 'the waitpoint token expired at %', p_expires_at USING ERRCODE = 'BTW01', DETAIL = 'expired';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || p_id, 0));
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF EXISTS (SELECT 1 FROM baton.waitpoint_uses u WHERE u.nonce = p_nonce) THEN
    RAISE EXCEPTION 'the waitpoint token was already used' USING ERRCODE = 'BTW01', DETAIL = 'reused';
  END IF;
  IF v_status IN ('completed', 'failed', 'cancelled', 'compensated') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %: its waits are over', p_id, v_status USING ERRCODE = 'BTW01', DETAIL = 'closed';
  END IF;
  IF EXISTS (
    SELECT 1 FROM baton.tasks t
    WHERE t.workflow_id = p_id AND t.kind = 'event' AND t.name = p_name AND t.status = 'completed' AND t.finished_at >= p_issued_at
  ) THEN
    RAISE EXCEPTION 'the wait for "%" this token was made for has already completed', p_name USING ERRCODE = 'BTW01', DETAIL = 'closed';
  END IF;
  -- The same nonce sent for another instance at the same time (by SQL) is a reuse too.
  INSERT INTO baton.waitpoint_uses (nonce, workflow_id, event) VALUES (p_nonce, p_id, p_name) ON CONFLICT (nonce) DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the waitpoint token was already used' USING ERRCODE = 'BTW01', DETAIL = 'reused';
  END IF;
  RETURN baton.send_event(p_id, p_name, p_payload);
END
$$;

--
-- Name: delete_instances(text[]); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.delete_instances(p_ids text[]) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_count integer;
BEGIN
  DELETE FROM baton.tasks WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.history WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.signals WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.events WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.stream_frames WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.waitpoint_uses WHERE workflow_id = ANY (p_ids);
  DELETE FROM baton.workflows WHERE id = ANY (p_ids);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;

--
-- Name: enqueue(text, jsonb, text, integer, text[], text, timestamp with time zone, text, text, text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.enqueue(p_task text, p_input jsonb DEFAULT NULL::jsonb, p_id text DEFAULT NULL::text, p_priority integer DEFAULT NULL::integer, p_tags text[] DEFAULT NULL::text[], p_on_conflict text DEFAULT 'fail'::text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_hash text DEFAULT NULL::text, p_traceparent text DEFAULT NULL::text, p_tracestate text DEFAULT NULL::text, p_limit_key text DEFAULT NULL::text) RETURNS TABLE(workflow_id text, created boolean)
    LANGUAGE sql
    AS $$
  SELECT * FROM baton.start_workflow(p_task, p_input, p_id, p_priority, p_tags, p_on_conflict, p_hash, p_run_at, 'task',
    p_traceparent => p_traceparent, p_tracestate => p_tracestate, p_limit_key => p_limit_key)
$$;

--
-- Name: fail_instances(jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.fail_instances(p_errors jsonb) RETURNS text[]
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_ids text[];
  v_id text;
  v_errors jsonb := p_errors;
BEGIN
  FOR v_id IN
    SELECT w.id FROM baton.workflows w
    WHERE w.id IN (SELECT jsonb_object_keys(p_errors)) AND w.status IN ('pending', 'running', 'paused')
      AND w.state ? 'comp' AND NOT w.state ? 'sag'
  LOOP
    PERFORM baton.request_compensation(v_id, p_errors -> v_id);
    v_errors := v_errors - v_id;
  END LOOP;
  SELECT v_errors || coalesce(jsonb_object_agg(w.id, jsonb_build_object('name', 'CompensationFailedError', 'code', 'COMPENSATION_FAILED',
      'message', format('the compensation of step "%s" failed: %s (it ran because: %s)', w.state -> 'sag' ->> 'at', x.e ->> 'message',
        w.state -> 'sag' -> 'err' ->> 'message'),
      'step', x.e ->> 'step', 'retryable', false, 'cause', w.state -> 'sag' -> 'err', 'compensation', x.e)), '{}')
  INTO v_errors
  FROM baton.workflows w CROSS JOIN LATERAL (SELECT v_errors -> w.id AS e) x
  WHERE w.id IN (SELECT jsonb_object_keys(v_errors)) AND w.state ? 'sag' AND x.e ->> 'step' = '!' || (w.state -> 'sag' ->> 'at');

  WITH done AS (
    UPDATE baton.workflows w
    SET status = 'failed', error = v_errors -> w.id, finished_at = now(), updated_at = now(), version = w.version + 1, current_step = NULL
    WHERE w.id IN (SELECT jsonb_object_keys(v_errors)) AND w.status IN ('pending', 'running', 'paused')
    RETURNING w.id, w.version
  ), logged AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT done.id, done.version, 'failed', jsonb_build_object('status', 'failed', 'error', v_errors -> done.id)
    FROM done
    RETURNING workflow_id
  )
  SELECT ARRAY(SELECT workflow_id FROM logged) INTO v_ids;
  PERFORM baton.after_finish(v_ids);
  RETURN v_ids;
END
$$;

--
-- Name: find_available_tasks(text, integer, text[], text[], integer, integer, boolean); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.find_available_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_lock boolean DEFAULT false) RETURNS TABLE(workflow_id text, task_key text, ready_key timestamp with time zone, kind text, row_address tid)
    LANGUAGE plpgsql ROWS 100
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
#variable_conflict use_column
DECLARE
  v_wf text[];
  v_key text[];
  v_rk timestamptz[];
  v_kind text[];
  v_tid tid[];
  v_mine boolean[];
  v_iso boolean[];
  v_n bigint := p_limit;
  v_bias integer;
BEGIN
  IF coalesce(p_limit, 0) <= 0 THEN
    RETURN;
  END IF;
  LOOP
    IF p_lock THEN
      SELECT array_agg(c.workflow_id), array_agg(c.task_key), array_agg(c.ready_key), array_agg(c.kind), array_agg(c.ctid),
             array_agg(coalesce(c.last_failed_worker = p_worker, false)), array_agg(c.lease_losses >= p_isolate_from),
             count(*) FILTER (WHERE c.last_failed_worker = p_worker)
      INTO v_wf, v_key, v_rk, v_kind, v_tid, v_mine, v_iso, v_bias
      FROM (
        SELECT c.* FROM baton.tag_sets s
        CROSS JOIN LATERAL (
          SELECT t.workflow_id, t.task_key, t.ready_key, t.kind, t.ctid, t.last_failed_worker, t.lease_losses
          FROM baton.tasks t
          WHERE t.status = 'ready' AND t.tags = s.tags AND (p_hashes IS NULL OR t.definition_hash = ANY (p_hashes))
            AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
          ORDER BY t.ready_key
          LIMIT v_n
          FOR UPDATE SKIP LOCKED
        ) c
        WHERE s.tags <@ p_tags
        ORDER BY c.ready_key
        LIMIT v_n
      ) c;
    ELSE
      SELECT array_agg(c.workflow_id), array_agg(c.task_key), array_agg(c.ready_key), array_agg(c.kind), array_agg(c.ctid),
             array_agg(coalesce(c.last_failed_worker = p_worker, false)), array_agg(c.lease_losses >= p_isolate_from),
             count(*) FILTER (WHERE c.last_failed_worker = p_worker)
      INTO v_wf, v_key, v_rk, v_kind, v_tid, v_mine, v_iso, v_bias
      FROM (
        SELECT c.* FROM baton.tag_sets s
        CROSS JOIN LATERAL (
          SELECT t.workflow_id, t.task_key, t.ready_key, t.kind, t.ctid, t.last_failed_worker, t.lease_losses
          FROM baton.tasks t
          WHERE t.status = 'ready' AND t.tags = s.tags AND (p_hashes IS NULL OR t.definition_hash = ANY (p_hashes))
            AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
          ORDER BY t.ready_key
          LIMIT v_n
        ) c
        WHERE s.tags <@ p_tags
        ORDER BY c.ready_key
        LIMIT v_n
      ) c;
    END IF;
    -- Soft bias: once, as many further candidates as there are retries this worker failed.
    EXIT WHEN v_bias = 0 OR v_n > p_limit;
    v_n := p_limit + v_bias;
  END LOOP;
  IF v_wf IS NULL THEN
    RETURN;
  END IF;

  -- The arrays hold the candidates row by row (element i of each is one row), in no particular
  -- order: the order is made here.
  RETURN QUERY
  WITH ranked AS (
    SELECT u.*, row_number() OVER (PARTITION BY u.iso ORDER BY u.mine, u.rk) AS nth
    FROM unnest(v_wf, v_key, v_rk, v_kind, v_tid, v_mine, v_iso) AS u(wf, key, rk, kind, tid, mine, iso)
  )
  SELECT r.wf, r.key, r.rk, r.kind, r.tid FROM ranked r
  WHERE NOT r.iso OR r.nth <= p_isolated_slots
  ORDER BY r.mine, r.rk
  LIMIT p_limit;
END
$$;

--
-- Name: finished_checkpoint(text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.finished_checkpoint(p_id text) RETURNS TABLE(workflow_id text, version integer, kind text, detail jsonb, at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  SELECT w.id, w.version, 'completed',
    jsonb_build_object('key', t.task_key, 'attempt', t.attempts, 'worker', t.finished_by, 'epoch', t.epoch,
      'status', 'completed', 'patch', jsonb_build_object('done', w.completed_task_count)),
    t.finished_at
  FROM baton.workflows w
  JOIN baton.tasks t ON t.workflow_id = w.id
  WHERE w.id = p_id AND t.finished_by IS NOT NULL AND t.status = 'completed' AND w.status = 'completed'
$$;

--
-- Name: insert_first_steps(text[], jsonb[], jsonb, text, integer, text[], timestamp with time zone, boolean, text, text[]); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.insert_first_steps(p_ids text[], p_inputs jsonb[], p_plan jsonb, p_hash text, p_priority integer, p_tags text[], p_run_at timestamp with time zone, p_held boolean, p_parent_id text, p_limit_keys text[] DEFAULT NULL::text[]) RETURNS integer
    LANGUAGE plpgsql
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  v_now timestamptz := now();
  v_ready integer;
  v_status text := CASE WHEN p_held THEN 'paused' ELSE 'running' END;
BEGIN
  -- steps is MATERIALIZED: each step's fields (its sorted, de-duplicated tags above all) are worked out
  -- once per step, not once per task row. Inlined, the tags subquery ran for every instance: a bulk
  -- start of 5,000 one-task jobs spent 8.5 us per job in this statement, 5.6 materialized (PG 15).
  WITH steps AS MATERIALIZED (
    SELECT s ->> 'key' AS key, s ->> 'kind' AS kind, s ->> 'name' AS name,
      coalesce(p_priority, (s ->> 'priority')::integer, 0) AS priority,
      ARRAY(SELECT DISTINCT x FROM unnest(ARRAY(SELECT jsonb_array_elements_text(s -> 'tags')) || p_tags) x ORDER BY x) AS tags,
      coalesce((s ->> 'maxAttempts')::integer, 1) AS max_attempts,
      s -> 'limit' AS lim,
      coalesce((s ->> 'keyed')::boolean, false) AS keyed,
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
        WHEN st.kind = 'event' AND st.keyed THEN 'ready'
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
      available_at, max_attempts, input, limit_key, event_key, created_at, updated_at)
    SELECT d.id, d.key, d.kind, d.name, p_hash, d.status, p_held, d.priority, d.tags,
      CASE WHEN d.status = 'ready' THEN least(d.available_at, v_now) + d.priority * baton.aging_interval() END,
      d.available_at, d.max_attempts, NULL, d.limit_key, CASE WHEN d.keyed THEN '' END, v_now, v_now
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

--
-- Name: instance_history(text, integer, integer); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.instance_history(p_id text, p_after integer DEFAULT 0, p_limit integer DEFAULT NULL::integer) RETURNS TABLE(version integer, kind text, detail jsonb, at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  SELECT c.version, c.kind, c.detail, c.at
  FROM (
    SELECT s.version, s.kind, s.detail, s.at FROM baton.started_checkpoint(p_id) s WHERE p_after < 1
    UNION ALL
    SELECT h.version, h.kind, h.detail, h.at FROM baton.history h WHERE h.workflow_id = p_id AND h.version > p_after
    UNION ALL
    SELECT f.version, f.kind, f.detail, f.at FROM baton.finished_checkpoint(p_id) f WHERE f.version > p_after
  ) c
  ORDER BY c.version
  LIMIT p_limit
$$;

--
-- Name: join_settled(text, jsonb, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.join_settled(p_id text, p_state jsonb, p_key text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  SELECT EXISTS (
    SELECT 1
    FROM baton.history h
    CROSS JOIN LATERAL jsonb_array_elements_text(h.detail -> 'joined') j(key)
    CROSS JOIN LATERAL (
      SELECT p_state -> 'par' -> j.key AS frame,
             to_jsonb(substr(split_part(substr(p_key, length(j.key) + 2), '/', 1), 2)::integer) AS branch
    ) f
    WHERE h.workflow_id = p_id AND h.detail ? 'joined'
      AND left(p_key, length(j.key) + 1) = j.key || '/'
      AND (f.frame IS NULL OR NOT coalesce((f.frame ->> 'fired')::boolean, false)
           OR f.frame -> 'ok' @> f.branch OR f.frame -> 'bad' @> f.branch))
$$;

--
-- Name: limit_admit(); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.limit_admit() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: limit_enter(); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.limit_enter() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: pause_workflow(text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.pause_workflow(p_id text, p_requested_by text DEFAULT NULL::text) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_status text;
  v_ids text[];
  v_more text[];
BEGIN
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status IN ('completed', 'failed', 'cancelled', 'compensated') THEN
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
  -- For watchers (the dashboard): a pause changes status but makes nothing ready or done.
  PERFORM pg_notify('baton_paused', CASE WHEN length(array_to_string(v_ids, ',')) < 7000 THEN array_to_string(v_ids, ',') ELSE '*' END);
  RETURN v_status;
END
$$;

--
-- Name: promote_due(integer); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.promote_due(p_limit integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_count integer;
BEGIN
  WITH due AS (
    SELECT t.workflow_id, t.task_key FROM baton.tasks t
    WHERE t.status = 'waiting' AND NOT t.paused AND t.available_at IS NOT NULL AND t.available_at <= now()
    ORDER BY t.available_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  )
  UPDATE baton.tasks t
  SET status = 'ready', ready_key = t.available_at + t.priority * baton.aging_interval(), updated_at = now()
  FROM due
  WHERE t.workflow_id = due.workflow_id AND t.task_key = due.task_key;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_count;
END
$$;

--
-- Name: publish_event(text, text, jsonb, bigint); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.publish_event(p_name text, p_key text, p_payload jsonb DEFAULT NULL::jsonb, p_retention_ms bigint DEFAULT NULL::bigint) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_event bigint;
BEGIN
  IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 128 OR p_name ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'event name must be 1-128 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 255 OR p_key ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'event key must be 1-255 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_retention_ms IS NOT NULL AND p_retention_ms NOT BETWEEN 1 AND 31536000000 THEN
    RAISE EXCEPTION 'event retention must be from 1 ms to 365 days (got % ms)', p_retention_ms USING ERRCODE = 'BTV01';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('baton:keyed:' || p_name || E'\x1f' || p_key, 0));
  INSERT INTO baton.events (workflow_id, name, key, payload, expires_at)
  VALUES (NULL, p_name, p_key, p_payload, now() + coalesce(p_retention_ms, 604800000) * interval '1 millisecond')
  RETURNING id INTO v_event;
  UPDATE baton.tasks t
  SET status = 'ready', ready_key = now() + t.priority * baton.aging_interval(), updated_at = now()
  FROM (
    SELECT w.workflow_id, w.task_key FROM baton.tasks w
    WHERE w.name = p_name AND w.event_key = p_key AND w.status = 'waiting' AND NOT w.paused AND w.kind = 'event'
    ORDER BY w.created_at, w.workflow_id, w.task_key
    LIMIT 1
    FOR UPDATE SKIP LOCKED
  ) oldest
  WHERE t.workflow_id = oldest.workflow_id AND t.task_key = oldest.task_key;
  IF FOUND THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_event;
END
$$;

--
-- Name: read_stream(text, bigint, integer); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.read_stream(p_id text, p_from bigint DEFAULT 0, p_limit integer DEFAULT 1000) RETURNS TABLE(seq bigint, task_key text, attempt integer, frame jsonb, at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  SELECT f.seq, f.task_key, f.attempt, f.frame, f.at
  FROM baton.stream_frames f
  WHERE f.workflow_id = p_id AND f.seq > coalesce(p_from, 0)
  ORDER BY f.seq
  LIMIT least(greatest(coalesce(p_limit, 1000), 1), 10000)
$$;

--
-- Name: reclaim_expired(integer, integer); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.reclaim_expired(p_max_losses integer, p_limit integer DEFAULT 1000) RETURNS TABLE(reclaimed integer, failed integer)
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_ids text[];
  v_reclaimed integer := 0;
  v_failed integer := 0;
  v_errors jsonb;
BEGIN
  v_ids := ARRAY(
    SELECT DISTINCT t.workflow_id FROM baton.tasks t
    WHERE t.status = 'running' AND t.lease_expires_at < now()
    LIMIT p_limit);
  IF cardinality(v_ids) = 0 THEN
    RETURN QUERY SELECT 0, 0;
    RETURN;
  END IF;
  PERFORM 1 FROM baton.workflows w
  WHERE w.id = ANY (v_ids || ARRAY(SELECT p.parent_id FROM baton.workflows p WHERE p.id = ANY (v_ids) AND p.parent_id IS NOT NULL))
  ORDER BY w.id FOR UPDATE;

  WITH expired AS (
    SELECT t.workflow_id, t.task_key, t.claimed_by, t.epoch, t.begun AS ran, t.attempts AS attempt,
      CASE WHEN t.begun THEN t.attempts ELSE greatest(t.attempts - 1, 0) END AS attempts,
      t.max_attempts, t.lease_losses + t.begun::integer AS losses
    FROM baton.tasks t
    WHERE t.workflow_id = ANY (v_ids) AND t.status = 'running' AND t.lease_expires_at < now()
    FOR UPDATE
  ), changed AS (
    UPDATE baton.tasks t
    SET status = CASE WHEN e.ran AND (e.losses >= p_max_losses OR e.attempts >= e.max_attempts) THEN 'failed' ELSE 'ready' END,
        lease_losses = e.losses, attempts = e.attempts,
        last_error = jsonb_build_object('name', 'LeaseLostError', 'code', 'LEASE_LOST',
          'message', CASE WHEN e.ran
            THEN format('lease lost: worker %s stopped renewing its claim (attempt %s, lease lost %s time(s))', e.claimed_by, e.attempt, e.losses)
            ELSE format('lease lost: worker %s stopped renewing its claim before the attempt began (the attempt is given back; lease lost %s time(s))',
              e.claimed_by, e.losses) END,
          'worker', e.claimed_by, 'attempt', e.attempt, 'counted', e.ran),
        last_failed_worker = e.claimed_by,
        claimed_by = NULL, lease_expires_at = NULL, updated_at = now(),
        finished_at = CASE WHEN e.ran AND (e.losses >= p_max_losses OR e.attempts >= e.max_attempts) THEN now() END,
        ready_key = coalesce(t.ready_key, now() + t.priority * baton.aging_interval())
    FROM expired e
    WHERE t.workflow_id = e.workflow_id AND t.task_key = e.task_key
    RETURNING t.workflow_id, t.task_key, t.status, t.last_error, e.attempt, e.claimed_by, e.epoch, e.ran
  ), versions AS (
    UPDATE baton.workflows w
    SET version = w.version + n.cnt, updated_at = now()
    FROM (SELECT changed.workflow_id, count(*) AS cnt FROM changed GROUP BY changed.workflow_id) n
    WHERE w.id = n.workflow_id
    RETURNING w.id, w.version, n.cnt
  ), logged AS (
    INSERT INTO baton.history (workflow_id, version, kind, detail)
    SELECT c.workflow_id, v.version - v.cnt + row_number() OVER (PARTITION BY c.workflow_id ORDER BY c.task_key), 'lease_lost',
      jsonb_build_object('key', c.task_key, 'attempt', c.attempt, 'worker', c.claimed_by, 'epoch', c.epoch, 'error', c.last_error,
        'task', c.status, 'counted', c.ran)
    FROM changed c JOIN versions v ON v.id = c.workflow_id
    RETURNING 1
  )
  SELECT count(*) FILTER (WHERE c.status = 'ready'), count(*) FILTER (WHERE c.status = 'failed'),
    jsonb_object_agg(c.workflow_id, c.last_error || jsonb_build_object('step', c.task_key,
      'message', 'task "' || c.task_key || '" failed: ' || (c.last_error ->> 'message'))) FILTER (WHERE c.status = 'failed')
  INTO v_reclaimed, v_failed, v_errors
  FROM changed c;

  IF v_reclaimed > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  IF v_errors IS NOT NULL THEN
    PERFORM baton.fail_instances(v_errors);
  END IF;
  RETURN QUERY SELECT v_reclaimed, v_failed;
END
$$;

--
-- Name: request_compensation(text, jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.request_compensation(p_id text, p_error jsonb) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_w record;
BEGIN
  SELECT w.status, w.state, w.version, w.definition_hash, w.priority, w.tags INTO v_w FROM baton.workflows w WHERE w.id = p_id;
  IF NOT FOUND OR v_w.status NOT IN ('pending', 'running', 'paused') OR v_w.state ? 'sag'
     OR EXISTS (SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.kind = 'compensate'
                  AND t.status IN ('waiting', 'queued', 'ready', 'running')) THEN
    RETURN false;
  END IF;
  PERFORM baton.schedule_tasks(jsonb_build_array(jsonb_build_object('wf', p_id, 'key', '!@' || v_w.version, 'kind', 'compensate',
    'name', 'compensate', 'hash', v_w.definition_hash, 'input', p_error, 'priority', coalesce(v_w.priority, 0), 'tags', to_jsonb(v_w.tags),
    'maxAttempts', 1000, 'held', v_w.status = 'paused')));
  UPDATE baton.workflows w SET current_step = 'compensate', updated_at = now() WHERE w.id = p_id;
  PERFORM baton.after_finish(ARRAY[p_id]);
  RETURN true;
END
$$;

--
-- Name: resume_workflow(text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.resume_workflow(p_id text) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_status text;
  v_ids text[];
  v_more text[];
  v_ready integer;
BEGIN
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_status IN ('completed', 'failed', 'cancelled', 'compensated') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  IF v_status <> 'paused' THEN
    RETURN v_status;
  END IF;
  v_ids := ARRAY[p_id];
  v_more := v_ids;
  LOOP
    v_more := ARRAY(SELECT w.id FROM baton.workflows w WHERE w.parent_id = ANY (v_more) AND w.status = 'paused'
                    ORDER BY w.id FOR UPDATE);
    EXIT WHEN cardinality(v_more) = 0;
    v_ids := v_ids || v_more;
  END LOOP;
  DELETE FROM baton.signals s WHERE s.workflow_id = ANY (v_ids) AND s.kind = 'pause';
  WITH done AS (
    UPDATE baton.workflows w SET status = 'running', version = w.version + 1, updated_at = now()
    WHERE w.id = ANY (v_ids) AND w.status = 'paused'
    RETURNING w.id, w.version
  )
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  SELECT done.id, done.version, 'resumed', jsonb_build_object('status', 'running') FROM done;
  UPDATE baton.tasks t
  SET paused = false,
      status = CASE WHEN ready.yes THEN 'ready' ELSE 'waiting' END,
      ready_key = CASE WHEN ready.yes THEN least(coalesce(t.available_at, now()), now()) + t.priority * baton.aging_interval() END,
      updated_at = now()
  FROM baton.tasks src
  CROSS JOIN LATERAL (SELECT CASE
      -- A keyed wait: ready to compute its key (''), or when an event is published under it.
      WHEN src.kind = 'event' AND src.event_key IS NOT NULL THEN src.event_key = '' OR src.available_at <= now()
        OR EXISTS (SELECT 1 FROM baton.events e WHERE e.name = src.name AND e.key = src.event_key AND e.expires_at > now())
      WHEN src.kind = 'event' THEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = src.workflow_id AND e.name = src.name)
                                   OR src.available_at <= now()
      WHEN src.kind = 'child' THEN src.output IS NOT NULL
      ELSE src.available_at <= now()
    END AS yes) ready
  WHERE t.workflow_id = ANY (v_ids) AND t.paused AND t.workflow_id = src.workflow_id AND t.task_key = src.task_key;
  GET DIAGNOSTICS v_ready = ROW_COUNT;
  PERFORM pg_notify('baton_ready', '');
  RETURN v_status;
END
$$;

--
-- Name: retry_instance(text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.retry_instance(p_id text, p_via text DEFAULT NULL::text) RETURNS TABLE(steps text[], children text[])
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
  v_w record;
  v_child record;
  v_sub record;
  v_children text[] := '{}';
  v_steps text[];
  v_names text;
  v_version integer;
BEGIN
  SELECT w.status, w.error, w.version, w.state INTO v_w FROM baton.workflows w WHERE w.id = p_id;
  IF v_w.status = 'failed' AND NOT EXISTS (
    SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = v_w.error ->> 'step' AND t.status = 'failed') THEN
    RAISE EXCEPTION 'workflow instance "%" failed in the workflow itself, not in a step (%): there is no step to run again',
      p_id, coalesce(v_w.error ->> 'message', 'no error recorded') USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;

  -- Child steps to run again: lock their instances in id order (children sort after their parent).
  PERFORM 1 FROM baton.workflows c
  WHERE c.parent_id = p_id
    AND EXISTS (SELECT 1 FROM baton.tasks t WHERE t.workflow_id = p_id AND t.task_key = c.parent_key AND t.kind = 'child'
                  AND t.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, t.task_key))
    AND left(v_w.error ->> 'step', 1) IS DISTINCT FROM '!'
  ORDER BY c.id FOR UPDATE;
  FOR v_child IN
    SELECT t.task_key, c.id, c.status
    FROM baton.tasks t
    LEFT JOIN baton.workflows c ON c.id = t.workflow_id || '/' || t.task_key AND c.parent_id = t.workflow_id AND c.parent_key = t.task_key
    WHERE t.workflow_id = p_id AND t.kind = 'child' AND t.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, t.task_key)
      AND left(v_w.error ->> 'step', 1) IS DISTINCT FROM '!'
    ORDER BY c.id
  LOOP
    IF v_child.id IS NULL THEN
      RAISE EXCEPTION 'workflow instance "%" cannot be retried: its child instance "%/%" is gone', p_id, p_id, v_child.task_key
        USING ERRCODE = 'BTS01', DETAIL = v_w.status;
    END IF;
    IF v_child.status IN ('failed', 'cancelled') THEN
      SELECT * INTO v_sub FROM baton.retry_instance(v_child.id, p_id);
      v_children := v_children || v_child.id || v_sub.children;
    END IF;
  END LOOP;

  WITH reset AS (
    UPDATE baton.tasks t
    SET status = CASE
          WHEN t.kind IN ('task', 'branch') THEN 'ready'
          WHEN t.kind = 'event' AND t.event_key IS NOT NULL THEN 'ready'
          WHEN t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name) THEN 'ready'
          WHEN t.kind = 'child' AND c.status = 'completed' THEN 'ready'
          ELSE 'waiting'
        END,
        ready_key = CASE
          WHEN t.kind IN ('task', 'branch') OR (t.kind = 'event' AND t.event_key IS NOT NULL)
            OR (t.kind = 'event' AND EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = t.workflow_id AND e.name = t.name))
            OR (t.kind = 'child' AND c.status = 'completed')
          THEN now() + t.priority * baton.aging_interval()
        END,
        available_at = CASE t.kind
          WHEN 'sleep' THEN t.available_at
          -- (no time-out stays none: greatest() would turn the NULL into 0, a time-out at once)
          WHEN 'event' THEN CASE WHEN t.available_at IS NOT NULL THEN now() + greatest(t.available_at - t.created_at, interval '0') END
          WHEN 'child' THEN NULL
          ELSE now()
        END,
        output = CASE WHEN t.kind = 'child' AND c.status = 'completed'
          THEN jsonb_build_object('status', c.status, 'output', c.output, 'error', c.error) END,
        event_key = CASE WHEN t.event_key IS NOT NULL THEN '' END,
        attempts = 0, lease_losses = 0, paused = false, last_error = NULL,
        claimed_by = NULL, claimed_at = NULL, lease_expires_at = NULL,
        progress = NULL, progress_message = NULL, started_at = NULL, finished_at = NULL, updated_at = now()
    FROM baton.tasks o
    LEFT JOIN baton.workflows c ON o.kind = 'child' AND c.id = o.workflow_id || '/' || o.task_key
    WHERE o.workflow_id = p_id AND o.status IN ('failed', 'cancelled') AND NOT baton.join_settled(p_id, v_w.state, o.task_key)
      AND (left(v_w.error ->> 'step', 1) IS DISTINCT FROM '!' OR left(o.task_key, 1) = '!')
      AND t.workflow_id = o.workflow_id AND t.task_key = o.task_key
    RETURNING t.task_key, t.name
  )
  SELECT array_agg(r.task_key ORDER BY r.task_key), string_agg(DISTINCT r.name, ', ') INTO v_steps, v_names FROM reset r;
  IF v_steps IS NULL THEN
    RAISE EXCEPTION 'workflow instance "%" has no failed or cancelled step to run again', p_id USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;

  DELETE FROM baton.signals s WHERE s.workflow_id = p_id;
  UPDATE baton.workflows w
  SET status = 'running', error = NULL, output = NULL, finished_at = NULL, current_step = v_names,
      version = w.version + 1, updated_at = now()
  WHERE w.id = p_id
  RETURNING w.version INTO v_version;
  INSERT INTO baton.history (workflow_id, version, kind, detail)
  VALUES (p_id, v_version, 'retried', jsonb_strip_nulls(jsonb_build_object('status', 'running', 'was', v_w.status, 'error', v_w.error,
    'steps', to_jsonb(v_steps), 'children', CASE WHEN cardinality(v_children) > 0 THEN to_jsonb(v_children) END, 'via', p_via)));
  RETURN QUERY SELECT v_steps, v_children;
END
$$;

--
-- Name: retry_many(text[], text, timestamp with time zone, integer); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.retry_many(p_statuses text[], p_name text DEFAULT NULL::text, p_since timestamp with time zone DEFAULT NULL::timestamp with time zone, p_limit integer DEFAULT 1000) RETURNS TABLE(workflow_id text, was text, retried boolean, reason text)
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
  v_id text;
  v_status text;
  v_r record;
BEGIN
  IF p_statuses IS NULL OR cardinality(p_statuses) = 0
     OR EXISTS (SELECT 1 FROM unnest(p_statuses) s WHERE s IS NULL OR s NOT IN ('failed', 'cancelled')) THEN
    RAISE EXCEPTION 'statuses must be failed and/or cancelled (got %)', coalesce(array_to_string(p_statuses, ', ', 'null'), 'null')
      USING ERRCODE = 'BTV01';
  END IF;
  IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
    RAISE EXCEPTION 'limit must be a whole number from 1 to 10000 (got %)', coalesce(p_limit::text, 'null') USING ERRCODE = 'BTV01';
  END IF;
  FOR v_id, v_status IN
    SELECT c.id, c.status FROM (
      SELECT w.id, w.status FROM baton.workflows w
      WHERE w.status = ANY (p_statuses) AND w.parent_id IS NULL
        AND (p_name IS NULL OR w.name = p_name) AND (p_since IS NULL OR w.finished_at >= p_since)
      ORDER BY w.finished_at, w.id
      LIMIT p_limit) c
    ORDER BY c.id
  LOOP
    BEGIN
      SELECT * INTO v_r FROM baton.retry_workflow(v_id);
      RETURN QUERY SELECT v_id, v_r.was, true, NULL::text;
    EXCEPTION WHEN SQLSTATE 'BTS01' OR SQLSTATE 'BTN02' THEN
      RETURN QUERY SELECT v_id, v_status, false, SQLERRM;
    END;
  END LOOP;
END
$$;

--
-- Name: retry_workflow(text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.retry_workflow(p_id text) RETURNS TABLE(was text, steps text[], children text[])
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
  v_w record;
  v_r record;
BEGIN
  IF p_id IS NULL OR length(p_id) = 0 OR length(p_id) > 2000 OR p_id ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'id must be a non-empty string without control characters' USING ERRCODE = 'BTV01';
  END IF;
  SELECT w.status, w.parent_id, w.parent_key INTO v_w FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no workflow instance "%"', p_id USING ERRCODE = 'BTN02';
  END IF;
  IF v_w.status NOT IN ('failed', 'cancelled') THEN
    RAISE EXCEPTION 'workflow instance "%" is %: only a failed or cancelled instance can be retried', p_id, v_w.status
      USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;
  IF v_w.parent_id IS NOT NULL THEN
    RAISE EXCEPTION 'workflow instance "%" is the child of "%" (step %): retry "%", which retries it too', p_id, v_w.parent_id, v_w.parent_key, v_w.parent_id
      USING ERRCODE = 'BTS01', DETAIL = v_w.status;
  END IF;
  SELECT * INTO v_r FROM baton.retry_instance(p_id);
  PERFORM pg_notify('baton_ready', '');
  RETURN QUERY SELECT v_w.status::text, v_r.steps, v_r.children;
END
$$;

--
-- Name: schedule_tasks(jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.schedule_tasks(p_rows jsonb) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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
      tags text[], "maxAttempts" integer, "delayMs" bigint, "timeoutMs" bigint, "runAt" timestamptz, held boolean, "limitKey" text,
      keyed boolean, "from" text)
  ), decided AS (
    SELECT rows.*,
      CASE
        WHEN rows.is_held THEN 'waiting'
        WHEN rows.kind IN ('sleep', 'child') THEN 'waiting'
        WHEN rows.kind = 'event' AND rows.keyed THEN 'ready'
        WHEN rows.kind = 'event' THEN
          CASE WHEN EXISTS (SELECT 1 FROM baton.events e WHERE e.workflow_id = rows.wf AND e.name = rows.name) THEN 'ready' ELSE 'waiting' END
        WHEN rows.available_at > v_now THEN 'waiting'
        ELSE 'ready'
      END AS status
    FROM rows
  ), inserted AS (
    INSERT INTO baton.tasks (workflow_id, task_key, kind, name, definition_hash, status, paused, priority, tags, ready_key,
      available_at, max_attempts, input, limit_key, event_key, created_at, updated_at)
    SELECT d.wf, d.key, d.kind, d.name, d.hash, d.status, d.is_held, coalesce(d.priority, 0), coalesce(d.tags, '{}'),
      CASE WHEN d.status = 'ready' THEN least(coalesce(d.available_at, v_now), v_now) + coalesce(d.priority, 0) * baton.aging_interval() END,
      d.available_at, coalesce(d."maxAttempts", 1),
      CASE WHEN d."from" IS NULL THEN coalesce(d.input, 'null')
        ELSE coalesce((SELECT jsonb_build_object('input', coalesce(o.input, w.input), 'output', o.output)
                       FROM baton.tasks o JOIN baton.workflows w ON w.id = o.workflow_id
                       WHERE o.workflow_id = d.wf AND o.task_key = d."from"), 'null') END,
      d."limitKey", CASE WHEN d.kind = 'event' AND d.keyed THEN '' END, v_now, v_now
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

--
-- Name: send_event(text, text, jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.send_event(p_id text, p_name text, p_payload jsonb DEFAULT NULL::jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_status text;
  v_event bigint;
BEGIN
  IF p_id IS NULL OR length(p_id) = 0 OR length(p_id) > 2000 OR p_id ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'id must be a non-empty string without control characters' USING ERRCODE = 'BTV01';
  END IF;
  IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 128 OR p_name ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'event name must be 1-128 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || p_id, 0));
  SELECT w.status INTO v_status FROM baton.workflows w WHERE w.id = p_id FOR UPDATE;
  IF FOUND AND v_status IN ('completed', 'failed', 'cancelled', 'compensated') THEN
    RAISE EXCEPTION 'workflow instance "%" is already %; the event was not stored', p_id, v_status USING ERRCODE = 'BTS01', DETAIL = v_status;
  END IF;
  INSERT INTO baton.events (workflow_id, name, payload) VALUES (p_id, p_name, p_payload) RETURNING id INTO v_event;
  UPDATE baton.tasks t
  SET status = 'ready', ready_key = now() + t.priority * baton.aging_interval(), updated_at = now()
  WHERE t.workflow_id = p_id AND t.kind = 'event' AND t.name = p_name AND t.status = 'waiting' AND NOT t.paused
    AND t.event_key IS NULL;
  IF FOUND THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_event;
END
$$;

--
-- Name: settle_parents(text[]); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.settle_parents(p_ids text[]) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_count integer;
BEGIN
  UPDATE baton.tasks t
  SET status = CASE WHEN t.paused THEN 'waiting' ELSE 'ready' END,
      ready_key = CASE WHEN t.paused THEN NULL ELSE now() + t.priority * baton.aging_interval() END,
      output = jsonb_build_object('status', w.status, 'output', w.output, 'error', w.error),
      updated_at = now()
  FROM baton.workflows w
  WHERE w.id = ANY (p_ids) AND w.parent_id IS NOT NULL AND w.status IN ('completed', 'failed', 'cancelled', 'compensated')
    AND t.workflow_id = w.parent_id AND t.task_key = w.parent_key AND t.kind = 'child' AND t.status = 'waiting';
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM pg_notify('baton_ready', '');
  END IF;
  RETURN v_count;
END
$$;

--
-- Name: start_checks(text, text, integer, text[]); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.start_checks(p_name text, p_kind text, p_priority integer, p_tags text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE
    AS $$
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

--
-- Name: definitions; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.definitions (
    name text NOT NULL COLLATE pg_catalog."C",
    hash text NOT NULL,
    kind text NOT NULL,
    graph jsonb NOT NULL,
    plan jsonb NOT NULL,
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    CONSTRAINT definitions_kind_check CHECK ((kind = ANY (ARRAY['workflow'::text, 'task'::text])))
);

--
-- Name: start_definition(text, text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.start_definition(p_name text, p_kind text, p_hash text) RETURNS baton.definitions
    LANGUAGE plpgsql STABLE
    AS $$
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

--
-- Name: start_many(text, jsonb, text, integer, text[], text, text[], text, text, text, text[]); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.start_many(p_name text, p_inputs jsonb, p_kind text DEFAULT 'workflow'::text, p_priority integer DEFAULT NULL::integer, p_tags text[] DEFAULT NULL::text[], p_hash text DEFAULT NULL::text, p_ids text[] DEFAULT NULL::text[], p_on_conflict text DEFAULT 'fail'::text, p_traceparent text DEFAULT NULL::text, p_tracestate text DEFAULT NULL::text, p_limit_keys text[] DEFAULT NULL::text[]) RETURNS TABLE(workflow_id text, created boolean)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $_$
#variable_conflict use_column
DECLARE
  v_def baton.definitions%ROWTYPE;
  v_tags text[];
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
  v_seed text;
  v_base bigint;
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

  v_inputs := ARRAY(SELECT x.input FROM jsonb_array_elements(p_inputs) WITH ORDINALITY AS x(input, n) ORDER BY x.n);
  IF cardinality(v_inputs) = 0 THEN
    RETURN;
  END IF;
  -- Generated ids: one strong random UUID per call, and each input's id that UUID with its last 48
  -- bits moved by the input's number n times an odd constant (the golden ratio's share of 2^48,
  -- multiplied in 24-bit halves so that nothing overflows): a bijection, so ids are distinct within
  -- the call, and scattered, so that a batch's keys go into the indexes in no order (consecutive ids
  -- left the primary keys' pages half full: 25-34% larger). gen_random_uuid() per input cost 2.4 us
  -- each (PostgreSQL 15; with the sorts of three ordered aggregates, 5.3 of the 36 us a job's bulk
  -- start took). The ids are still version-4 UUIDs, and another call's collide with them only if its
  -- random UUID matches this one's first 74 random bits. They are not secrets.
  v_seed := gen_random_uuid()::text;
  v_base := ('x' || right(v_seed, 12))::bit(48)::bigint;
  v_ids := ARRAY(
    SELECT coalesce(p_ids[n], left(v_seed, 24)
      || lpad(to_hex((v_base + n::bigint * 12156747 + (((n::bigint * 10368889) & 16777215) << 24)) & 281474976710655), 12, '0'))
    FROM generate_series(1, cardinality(v_inputs)) n ORDER BY n);
  SELECT x.n, octet_length(x.input::text) AS size INTO v_big
  FROM unnest(v_inputs) WITH ORDINALITY AS x(input, n)
  WHERE octet_length(x.input::text) > v_limit
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'inputs[%] is % bytes, over the limit of %', v_big.n - 1, v_big.size, v_limit USING ERRCODE = 'BTV01';
  END IF;

  IF v_def.plan @? '$.steps[*] ? (@.kind == "child")' THEN
    RETURN QUERY
    SELECT s.workflow_id, s.created FROM unnest(p_ids, v_inputs) WITH ORDINALITY AS x(id, input, n)
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
    PERFORM pg_advisory_xact_lock(hashtextextended('baton:events:' || i, 0)) FROM unnest(p_ids) i WHERE i IS NOT NULL ORDER BY i;
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
$_$;

--
-- Name: start_workflow(text, jsonb, text, integer, text[], text, text, timestamp with time zone, text, text, text, boolean, text, text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.start_workflow(p_name text, p_input jsonb DEFAULT NULL::jsonb, p_id text DEFAULT NULL::text, p_priority integer DEFAULT NULL::integer, p_tags text[] DEFAULT NULL::text[], p_on_conflict text DEFAULT 'fail'::text, p_hash text DEFAULT NULL::text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_kind text DEFAULT 'workflow'::text, p_parent_id text DEFAULT NULL::text, p_parent_key text DEFAULT NULL::text, p_paused boolean DEFAULT false, p_traceparent text DEFAULT NULL::text, p_tracestate text DEFAULT NULL::text, p_limit_key text DEFAULT NULL::text) RETURNS TABLE(workflow_id text, created boolean)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $_$
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
$_$;

--
-- Name: started_checkpoint(text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.started_checkpoint(p_id text) RETURNS TABLE(workflow_id text, version integer, kind text, detail jsonb, at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  SELECT w.id, 1, 'started',
    jsonb_build_object('status', 'running', 'definition', w.definition_hash, 'state', d.plan -> 'state',
      'scheduled', (SELECT jsonb_agg(s ->> 'key') FROM jsonb_array_elements(d.plan -> 'steps') s),
      'priority', w.priority, 'tags', to_jsonb(w.tags), 'parent', w.parent_id),
    w.created_at
  FROM baton.workflows w
  JOIN baton.definitions d ON d.hash = w.definition_hash
  WHERE w.id = p_id
    AND NOT EXISTS (SELECT 1 FROM baton.history h WHERE h.workflow_id = w.id AND h.version = 1)
$$;

--
-- Name: task_result(text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.task_result(p_id text, p_key text) RETURNS TABLE(status text, output jsonb, error jsonb, attempts integer, finished_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  SELECT t.status,
    CASE WHEN t.finished_by IS NULL THEN t.output ELSE (SELECT w.output FROM baton.workflows w WHERE w.id = t.workflow_id) END,
    t.last_error, t.attempts, t.finished_at
  FROM baton.tasks t
  WHERE t.workflow_id = p_id AND t.task_key = p_key
$$;

--
-- Name: trace_context(text, text); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.trace_context(p_traceparent text, p_tracestate text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
BEGIN
  IF p_traceparent IS NULL THEN
    RAISE EXCEPTION 'tracestate was given without a traceparent' USING ERRCODE = 'BTV01';
  END IF;
  IF p_traceparent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' OR p_traceparent ~ '^ff-'
     OR p_traceparent ~ '^..-0{32}-' OR p_traceparent ~ '-0{16}-..$' THEN
    RAISE EXCEPTION 'traceparent must be a W3C traceparent, 00-<32 hex trace id>-<16 hex span id>-<2 hex flags> (got "%")',
      left(p_traceparent, 80) USING ERRCODE = 'BTV01';
  END IF;
  IF p_tracestate IS NOT NULL AND (length(p_tracestate) > 512 OR p_tracestate ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'tracestate must be at most 512 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  RETURN p_traceparent || coalesce(' ' || nullif(p_tracestate, ''), '');
END
$_$;

--
-- Name: write_stream(text, text, bigint, text, jsonb); Type: FUNCTION; Schema: baton; Owner: -
--

CREATE FUNCTION baton.write_stream(p_id text, p_key text, p_epoch bigint, p_worker text, p_frames jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_last bigint;
  v_count integer;
BEGIN
  IF jsonb_typeof(p_frames) IS DISTINCT FROM 'array' OR jsonb_array_length(p_frames) = 0 THEN
    RAISE EXCEPTION 'frames must be a non-empty JSON array' USING ERRCODE = 'BTV01';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('baton:stream:' || p_id, 0));
  SELECT coalesce(max(f.seq), 0) INTO v_last FROM baton.stream_frames f WHERE f.workflow_id = p_id;
  INSERT INTO baton.stream_frames (workflow_id, seq, task_key, attempt, frame)
  SELECT p_id, v_last + e.n, p_key, t.attempts, e.frame
  FROM baton.tasks t, jsonb_array_elements(p_frames) WITH ORDINALITY AS e(frame, n)
  WHERE t.workflow_id = p_id AND t.task_key = p_key AND t.epoch = p_epoch AND t.status = 'running' AND t.claimed_by = p_worker;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count = 0 THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify('baton_stream', p_id);
  RETURN v_last + v_count;
END
$$;

--
-- Name: __migrations; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.__migrations (
    id integer NOT NULL,
    hash text NOT NULL,
    created_at bigint
);

--
-- Name: __migrations_id_seq; Type: SEQUENCE; Schema: baton; Owner: -
--

CREATE SEQUENCE baton.__migrations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: __migrations_id_seq; Type: SEQUENCE OWNED BY; Schema: baton; Owner: -
--

ALTER SEQUENCE baton.__migrations_id_seq OWNED BY baton.__migrations.id;

--
-- Name: tasks; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.tasks (
    workflow_id text NOT NULL COLLATE pg_catalog."C",
    task_key text NOT NULL COLLATE pg_catalog."C",
    kind text NOT NULL,
    name text NOT NULL COLLATE pg_catalog."C",
    definition_hash text NOT NULL,
    status text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    ready_key timestamp with time zone,
    available_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 1 NOT NULL,
    lease_losses integer DEFAULT 0 NOT NULL,
    epoch bigint DEFAULT 0 NOT NULL,
    claimed_by text,
    claimed_at timestamp with time zone,
    lease_expires_at timestamp with time zone,
    input jsonb,
    output jsonb,
    last_error jsonb,
    last_failed_worker text,
    progress real,
    progress_message text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_by text,
    limit_key text,
    event_key text,
    begun boolean DEFAULT false NOT NULL,
    CONSTRAINT tasks_claim_check CHECK (((status <> 'running'::text) OR ((claimed_by IS NOT NULL) AND (lease_expires_at IS NOT NULL)))),
    CONSTRAINT tasks_kind_check CHECK ((kind = ANY (ARRAY['task'::text, 'sleep'::text, 'event'::text, 'child'::text, 'branch'::text, 'compensate'::text]))),
    CONSTRAINT tasks_ready_key_check CHECK (((status <> 'ready'::text) OR (ready_key IS NOT NULL))),
    CONSTRAINT tasks_status_check CHECK ((status = ANY (ARRAY['waiting'::text, 'queued'::text, 'ready'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text])))
);

--
-- Name: claims; Type: VIEW; Schema: baton; Owner: -
--

CREATE VIEW baton.claims AS
 SELECT tasks.workflow_id,
    tasks.task_key,
    tasks.claimed_by AS worker_id,
    tasks.epoch,
    tasks.claimed_at,
    tasks.lease_expires_at AS expires_at
   FROM baton.tasks
  WHERE (tasks.status = 'running'::text);

--
-- Name: epoch_seq; Type: SEQUENCE; Schema: baton; Owner: -
--

CREATE SEQUENCE baton.epoch_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: events; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.events (
    id bigint NOT NULL,
    workflow_id text COLLATE pg_catalog."C",
    name text NOT NULL COLLATE pg_catalog."C",
    payload jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    held_key text COLLATE pg_catalog."C",
    held_epoch bigint,
    held_until timestamp with time zone,
    key text,
    expires_at timestamp with time zone,
    held_workflow_id text COLLATE pg_catalog."C",
    CONSTRAINT events_address_check CHECK (((workflow_id IS NULL) <> (key IS NULL)))
);

--
-- Name: events_id_seq; Type: SEQUENCE; Schema: baton; Owner: -
--

ALTER TABLE baton.events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME baton.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: history; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.history (
    workflow_id text NOT NULL COLLATE pg_catalog."C",
    version integer NOT NULL,
    kind text NOT NULL,
    detail jsonb NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: rate_log; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.rate_log (
    name text NOT NULL COLLATE pg_catalog."C",
    key text NOT NULL,
    at timestamp with time zone NOT NULL,
    n bigint NOT NULL
);

--
-- Name: reconciler_ticks; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.reconciler_ticks (
    id bigint NOT NULL,
    worker_id text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone DEFAULT now() NOT NULL,
    reclaimed integer DEFAULT 0 NOT NULL,
    failed integer DEFAULT 0 NOT NULL,
    promoted integer DEFAULT 0 NOT NULL,
    pruned integer DEFAULT 0 NOT NULL
);

--
-- Name: reconciler_ticks_id_seq; Type: SEQUENCE; Schema: baton; Owner: -
--

ALTER TABLE baton.reconciler_ticks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME baton.reconciler_ticks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: schedules; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.schedules (
    name text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    catch_up text NOT NULL,
    kind text NOT NULL,
    workflow_name text NOT NULL,
    definition_hash text NOT NULL,
    input jsonb,
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_tick timestamp with time zone,
    last_run_id text,
    last_run_at timestamp with time zone,
    next_tick timestamp with time zone,
    CONSTRAINT schedules_catch_up_check CHECK ((catch_up = ANY (ARRAY['none'::text, 'latest'::text, 'all'::text]))),
    CONSTRAINT schedules_kind_check CHECK ((kind = ANY (ARRAY['workflow'::text, 'task'::text])))
);

--
-- Name: signals; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.signals (
    workflow_id text NOT NULL COLLATE pg_catalog."C",
    kind text NOT NULL,
    reason text,
    requested_by text,
    requested_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT signals_kind_check CHECK ((kind = ANY (ARRAY['cancel'::text, 'pause'::text])))
);

--
-- Name: stats; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.stats (
    key text NOT NULL,
    value bigint DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: stream_frames; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.stream_frames (
    workflow_id text NOT NULL COLLATE pg_catalog."C",
    seq bigint NOT NULL,
    task_key text NOT NULL COLLATE pg_catalog."C",
    attempt integer NOT NULL,
    frame jsonb,
    at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: tag_sets; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.tag_sets (
    tags text[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: task_limits; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.task_limits (
    name text NOT NULL COLLATE pg_catalog."C",
    concurrency integer,
    concurrency_keyed boolean DEFAULT false NOT NULL,
    rate integer,
    rate_period_ms integer,
    rate_keyed boolean DEFAULT false NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: waitpoint_uses; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.waitpoint_uses (
    nonce text NOT NULL,
    workflow_id text NOT NULL COLLATE pg_catalog."C",
    event text NOT NULL,
    used_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: workers; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.workers (
    id text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    concurrency integer NOT NULL,
    definitions text[] DEFAULT '{}'::text[] NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL,
    schedules text[] DEFAULT '{}'::text[] NOT NULL
);

--
-- Name: workflows; Type: TABLE; Schema: baton; Owner: -
--

CREATE TABLE baton.workflows (
    id text NOT NULL COLLATE pg_catalog."C",
    name text NOT NULL COLLATE pg_catalog."C",
    definition_hash text NOT NULL,
    status text NOT NULL,
    input jsonb,
    output jsonb,
    error jsonb,
    priority integer,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    parent_id text COLLATE pg_catalog."C",
    parent_key text COLLATE pg_catalog."C",
    state jsonb NOT NULL,
    current_step text,
    completed_task_count integer DEFAULT 0 NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    trace_context text,
    CONSTRAINT workflows_priority_check CHECK ((priority >= 0)),
    CONSTRAINT workflows_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'paused'::text, 'completed'::text, 'failed'::text, 'cancelled'::text, 'compensated'::text])))
)
WITH (fillfactor='50');

--
-- Name: __migrations id; Type: DEFAULT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.__migrations ALTER COLUMN id SET DEFAULT nextval('baton.__migrations_id_seq'::regclass);

--
-- Name: __migrations __migrations_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.__migrations
    ADD CONSTRAINT __migrations_pkey PRIMARY KEY (id);

--
-- Name: definitions definitions_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.definitions
    ADD CONSTRAINT definitions_pkey PRIMARY KEY (name, hash);

--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);

--
-- Name: history history_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.history
    ADD CONSTRAINT history_pkey PRIMARY KEY (workflow_id, version);

--
-- Name: reconciler_ticks reconciler_ticks_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.reconciler_ticks
    ADD CONSTRAINT reconciler_ticks_pkey PRIMARY KEY (id);

--
-- Name: schedules schedules_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (name);

--
-- Name: signals signals_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.signals
    ADD CONSTRAINT signals_pkey PRIMARY KEY (workflow_id, kind);

--
-- Name: stats stats_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.stats
    ADD CONSTRAINT stats_pkey PRIMARY KEY (key);

--
-- Name: stream_frames stream_frames_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.stream_frames
    ADD CONSTRAINT stream_frames_pkey PRIMARY KEY (workflow_id, seq);

--
-- Name: tag_sets tag_sets_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.tag_sets
    ADD CONSTRAINT tag_sets_pkey PRIMARY KEY (tags);

--
-- Name: task_limits task_limits_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.task_limits
    ADD CONSTRAINT task_limits_pkey PRIMARY KEY (name);

--
-- Name: tasks tasks_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (workflow_id, task_key);

--
-- Name: waitpoint_uses waitpoint_uses_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.waitpoint_uses
    ADD CONSTRAINT waitpoint_uses_pkey PRIMARY KEY (nonce);

--
-- Name: workers workers_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);

--
-- Name: workflows workflows_pkey; Type: CONSTRAINT; Schema: baton; Owner: -
--

ALTER TABLE ONLY baton.workflows
    ADD CONSTRAINT workflows_pkey PRIMARY KEY (id);

--
-- Name: events_created_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX events_created_idx ON baton.events USING btree (created_at);

--
-- Name: events_expires_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX events_expires_idx ON baton.events USING btree (expires_at) WHERE (expires_at IS NOT NULL);

--
-- Name: events_keyed_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX events_keyed_idx ON baton.events USING btree (name, key, id) WHERE (key IS NOT NULL);

--
-- Name: events_lookup_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX events_lookup_idx ON baton.events USING btree (workflow_id, name, id);

--
-- Name: rate_log_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX rate_log_idx ON baton.rate_log USING btree (name, key, at, n);

--
-- Name: reconciler_ticks_started_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX reconciler_ticks_started_idx ON baton.reconciler_ticks USING btree (started_at);

--
-- Name: tasks_admitted_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX tasks_admitted_idx ON baton.tasks USING btree (name, limit_key) WHERE ((limit_key IS NOT NULL) AND (status = ANY (ARRAY['ready'::text, 'running'::text])));

--
-- Name: tasks_due_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX tasks_due_idx ON baton.tasks USING btree (available_at) WHERE ((status = 'waiting'::text) AND (NOT paused) AND (available_at IS NOT NULL));

--
-- Name: tasks_keyed_wait_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX tasks_keyed_wait_idx ON baton.tasks USING btree (name, event_key, created_at) WHERE ((status = 'waiting'::text) AND (event_key IS NOT NULL));

--
-- Name: tasks_lease_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX tasks_lease_idx ON baton.tasks USING btree (lease_expires_at) WHERE (status = 'running'::text);

--
-- Name: tasks_queued_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX tasks_queued_idx ON baton.tasks USING btree (name, limit_key, ready_key) WHERE (status = 'queued'::text);

--
-- Name: tasks_queued_name_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX tasks_queued_name_idx ON baton.tasks USING btree (name, ready_key) WHERE (status = 'queued'::text);

--
-- Name: tasks_ready_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX tasks_ready_idx ON baton.tasks USING btree (tags, ready_key) WHERE (status = 'ready'::text);

--
-- Name: waitpoint_uses_workflow_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX waitpoint_uses_workflow_idx ON baton.waitpoint_uses USING btree (workflow_id);

--
-- Name: workflows_created_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX workflows_created_idx ON baton.workflows USING btree (created_at DESC NULLS LAST, id DESC NULLS LAST);

--
-- Name: workflows_name_created_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX workflows_name_created_idx ON baton.workflows USING btree (name, created_at DESC NULLS LAST, id DESC NULLS LAST);

--
-- Name: workflows_parent_idx; Type: INDEX; Schema: baton; Owner: -
--

CREATE INDEX workflows_parent_idx ON baton.workflows USING btree (parent_id) WHERE (parent_id IS NOT NULL);

--
-- Name: tasks tasks_limit_admit_insert; Type: TRIGGER; Schema: baton; Owner: -
--

CREATE CONSTRAINT TRIGGER tasks_limit_admit_insert AFTER INSERT ON baton.tasks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (((new.limit_key IS NOT NULL) AND (new.status = 'queued'::text))) EXECUTE FUNCTION baton.limit_admit();

--
-- Name: tasks tasks_limit_admit_update; Type: TRIGGER; Schema: baton; Owner: -
--

CREATE CONSTRAINT TRIGGER tasks_limit_admit_update AFTER UPDATE ON baton.tasks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (((new.limit_key IS NOT NULL) AND (((new.status = 'ready'::text) AND (old.status <> ALL (ARRAY['ready'::text, 'queued'::text]))) OR ((old.status = ANY (ARRAY['ready'::text, 'running'::text])) AND (new.status <> ALL (ARRAY['ready'::text, 'running'::text])))))) EXECUTE FUNCTION baton.limit_admit();

--
-- Name: tasks tasks_limit_insert; Type: TRIGGER; Schema: baton; Owner: -
--

CREATE TRIGGER tasks_limit_insert BEFORE INSERT ON baton.tasks FOR EACH ROW WHEN (((new.limit_key IS NOT NULL) AND (new.status = 'ready'::text))) EXECUTE FUNCTION baton.limit_enter();

--
-- Name: tasks tasks_limit_update; Type: TRIGGER; Schema: baton; Owner: -
--

CREATE TRIGGER tasks_limit_update AFTER UPDATE ON baton.tasks FOR EACH ROW WHEN (((new.limit_key IS NOT NULL) AND (((new.status = 'ready'::text) AND (old.status <> ALL (ARRAY['ready'::text, 'queued'::text]))) OR ((old.status = ANY (ARRAY['ready'::text, 'running'::text])) AND (new.status <> ALL (ARRAY['ready'::text, 'running'::text])))))) EXECUTE FUNCTION baton.limit_enter();

--
-- PostgreSQL database dump complete
--
