-- The claim: up to p_limit ready tasks, in aging order (ready_key), from the
-- tag sets this worker covers and the definitions it has, in one round trip.
-- Each claimed task gets a lease of p_ttl_ms and a new fencing epoch.
-- Which tasks, in which order, is baton.find_available_tasks (p_lock => true:
-- it locks candidates FOR UPDATE SKIP LOCKED as it scans), the definition of
-- the choice, soft bias and isolation included; a peek reads the same. The
-- common claim takes a shortcut of one statement (below) that makes the same
-- choice whenever neither the bias nor isolation nor an event is involved;
-- its scan repeats find_available_tasks' and must stay the same (the tests
-- that hold a peek and a claim to the same tasks fail otherwise).
-- Soft bias: when a candidate is a retry this worker last failed, as many
-- further candidates are locked, and the retry goes after them; alone, it is
-- still taken. Only then are more rows locked than claimed.
-- Isolation: a task whose leases were lost p_isolate_from times or more (one
-- more loss fails it: it may be what kills its workers) is claimed only into
-- one of p_isolated_slots (the worker passes 1 when it holds no such task,
-- else 0), so it never takes innocent tasks down with it again.
-- Lost leases and suspects: a suspect is a task whose last attempt lost its lease, or that lost
-- one ever. A worker that says when it begins a suspect (p_declares, as every worker since
-- migration 0040 does) marks it begun (src/store/claims.ts beginClaims) before running it; the claim
-- leaves such a task's `begun` false until then, and sets it true for every other task (it may run
-- at once, unannounced). `suspect` comes back as NOT begun: whether the worker must mark the task
-- before running it. What a lost lease costs depends on it (see reclaim_expired).
-- A task row whose input is NULL is a first step: its input is its instance's (stored once, there).
-- workflow_trace_context: the instance's stored trace context (null unless its start was traced),
-- read from the instance row the claim joins anyway.
-- Each row comes with its instance's snapshot (status, state, version), for
-- the optimistic commit, and for a waitForEvent step an event of its own:
-- the n-th wait claimed here for one (instance, name), in line order, gets
-- the n-th oldest free event, which is then held for that attempt (held_key,
-- held_epoch, held_until = its lease) until its commit deletes it. An event is
-- free when it is held by nobody, or by this very step (a lost or given-back
-- claim takes its event again), or its hold lapsed: past held_until and the
-- holding attempt no longer running. held_until is what a claim committed
-- after this statement's snapshot is seen by: a row it held is locked here
-- (FOR UPDATE SKIP LOCKED, never waiting), re-read at its newest version, and
-- its fresh held_until keeps it out even though the tasks read here predate
-- that claim. A wait that finds no free event gets none and re-waits.
-- A keyed wait (waitForEvent with `key`; tasks.event_key set) takes events published
-- under its name and key instead (baton.publish_event), the same way, among those not
-- past their expires_at; event_key comes back with it. One whose key is still ''
-- (not computed yet) gets no event but its instance's input as `input`: its worker
-- computes the key from it and commits the step back to waiting under that key.
DROP FUNCTION IF EXISTS baton.claim_tasks(text, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.claim_tasks(text, integer, text[], text[], integer, integer, integer, boolean);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.claim_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_declares boolean DEFAULT false)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text,
  suspect boolean)
LANGUAGE plpgsql
-- Key lookups only (see baton.commit): no sequential scan of a growing table, no JIT, and no hash or
-- merge join of the claimed rows with baton.tasks or baton.workflows: on a small table (a few hundred
-- rows, as on a new or quiet system) the planner otherwise joined through a full scan of tasks_pkey,
-- every claim reading every task (PostgreSQL 15, 500 tasks: 492 pages per claim of one, 20 without).
-- The event part joins the batch's own sets with each other and turns them back on.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
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
