-- The optimistic commit of a batch of finished attempts (the worker's hot
-- path, one round trip). The worker ran the state machine on the snapshots it
-- was given at claim time; here, under the instances' row locks, each instance
-- is applied only if
--   * its version is still the one the worker computed from, and
--   * every attempt of it still holds its claim (the fence: same worker, same
--     epoch, still running), and every event it consumes is still there and
--     held by that attempt (see claim_tasks).
-- Otherwise nothing of that instance is written and its current snapshot is
-- returned ('conflict'); the worker recomputes and commits again. An attempt
-- whose event is gone is also named ('event_gone'): the worker recomputes it
-- as a re-wait, so it cannot conflict again for that event. Attempts
-- that fail the fence are refused for good ('refused') and counted, except an
-- attempt this worker already committed ('duplicate': the retry of a commit
-- whose reply was lost with its connection). Applied instances are not
-- reported: no row back means everything was applied.
--
-- Parameters are sets of JSON objects with named fields, so that no two of
-- them can be swapped silently (src/store/commit.ts builds them):
--   p_items, one per attempt: {wf, key, epoch, status, paused, output, error, delayMs, eventId, eventKey, quiet}
--     status: the task's new status (completed, failed, ready, waiting; cancelled: a join or a failed
--       branch committed in the same batch just before it cancelled its step);
--     quiet: the attempt completed a one-task job, whose checkpoint is not stored (the worker sends no
--       history row for it, and null as the task's output: it is the instance's): the task row keeps
--       the committing worker in finished_by, from which baton.finished_checkpoint derives the row;
--     delayMs: for a retry, available again after this many ms (null: keep);
--     eventId: the id of the event a waitForEvent step consumed;
--     eventKey: a keyed waitForEvent step's key, computed by its worker (its re-wait stores it on the row).
--     A re-wait (a waitForEvent step that got no event: status waiting, no error) is made ready
--     instead when a free event of its name is buffered now: one sent while it ran woke nobody.
--     A keyed re-wait looks for a free published event of its name and key, under the advisory lock
--     baton.publish_event takes for them (so that either it sees the event or the publish sees it waiting).
--   p_instances, one per instance: {id, parent, version, status, state, bump, done, output, error, step, finished, after, cancel}
--     parent: its parent instance's id (locked too, before it: ids sort parents first), or null;
--     cancel: absent, or activation keys whose open work ends cancelled (see cancel_steps);
--     after: the instance finished and needs after_finish (failed, or has a parent).
--   p_history, one per checkpoint: {wf, version, kind, detail}
--     version: the version the row records (the worker counts from the instance's version).
--   p_schedule: steps to insert as task rows (see schedule_tasks).
--   p_claim: null, or the worker's next claim riding along:
--     {limit, tags, hashes, ttlMs, isolateFrom, isolatedSlots, declares} (see claim_tasks).
--
-- Every statement here looks rows up by key, so sequential scans are off: with
-- a few hundred keys against a growing table the planner would otherwise pick
-- a hash join over a sequential scan of baton.workflows (measured on PG 15:
-- 6-9 ms per commit at 10,000 instances, growing with the table). On the fast
-- path hash and merge joins are off too: on a small table (a few hundred rows,
-- a new or quiet system) they made each commit a full scan of workflows_pkey
-- (PostgreSQL 15, 500 jobs: 250 pages for one instance, 5 by key). After it they
-- are on again (between the batch's own sets, on the slow path and in the
-- functions called below, hash joins are the right choice). Plans
-- are generic: plpgsql otherwise re-plans a statement at every call when its
-- custom plans look cheaper than the generic one, which the unknown sizes of
-- JSON sets make it believe (see insert_first_steps).
DROP FUNCTION IF EXISTS baton.commit(text, text[], text[], bigint[], text[], boolean[], jsonb[], jsonb[], bigint[], bigint[], text[],
  integer[], text[], jsonb[], integer[], integer[], jsonb[], jsonb[], text[], boolean[], boolean[], text[], integer[], text[], jsonb[],
  jsonb, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.commit(text, jsonb, jsonb, jsonb, jsonb, jsonb);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.commit(p_worker text, p_items jsonb, p_instances jsonb, p_history jsonb, p_schedule jsonb,
  p_claim jsonb DEFAULT NULL)
RETURNS TABLE (result text, workflow_id text, task_key text, status text, state jsonb, version integer, task json)
LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
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
