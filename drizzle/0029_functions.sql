-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.
-- function: after_finish
-- After instances finished (completed, failed, cancelled or compensated) in the
-- caller's transaction: close their open tasks, cancel what their failed steps
-- left running in child instances, hand outcomes to parents, and tell waiters.
-- An instance among p_ids still running began to compensate: its forward work
-- is closed the same way, its compensations ('!' keys) are kept, and workers
-- are told at once to stop its running forward tasks (baton_cancel, '!<id>').
CREATE OR REPLACE FUNCTION baton.after_finish(p_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: cancel_workflow
-- Cancel an instance and its running descendants, atomically against a
-- racing completion (both take the instance row lock). Returns the status it had.
-- Cancelling a cancelled instance changes nothing and returns 'cancelled'
-- (see resume_workflow for the rule); cancelling a completed, failed or
-- compensated one is an error.
-- p_compensate: instead of ending it now, close its forward work and let it
-- compensate its completed steps (baton.request_compensation); it ends
-- compensated (or cancelled, with nothing to compensate). Asking again while
-- it compensates changes nothing.
DROP FUNCTION IF EXISTS baton.cancel_workflow(text, text, text);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.cancel_workflow(p_id text, p_reason text DEFAULT NULL, p_requested_by text DEFAULT NULL,
  p_compensate boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: fail_instances
-- Instances failed by something outside the state machine (a task whose
-- leases were lost too often). p_errors is a jsonb object: id -> error.
-- Compensation (src/workflow/compensate.ts) is kept as the machine keeps it:
-- an instance with completed steps to compensate compensates instead of
-- failing (baton.request_compensation), and one whose compensation failed
-- fails with both errors (CompensationFailedError).
CREATE OR REPLACE FUNCTION baton.fail_instances(p_errors jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: pause_workflow
-- Pause an instance and its running descendants: running tasks finish, no
-- other task of theirs is claimed (ready ones are held) until resume.
-- NOTIFY baton_paused with their ids (or '*').
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
--> statement-breakpoint
-- function: resume_workflow
-- Resume a paused instance and its paused descendants: what was held runs.
-- Returns the status it had. The rule for repeated control actions (pause,
-- resume, cancel): a repeat, or asking for what already holds, succeeds and
-- changes nothing (resuming a running instance returns 'running'); asking
-- what contradicts the instance's state is an error (resuming a finished one).
CREATE OR REPLACE FUNCTION baton.resume_workflow(p_id text) RETURNS text
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: retry_instance
-- Make one failed or cancelled instance run again from where it stopped (the
-- work of retry_workflow; the caller holds the instance's row lock and has
-- checked its status). Its failed and cancelled steps become runnable again
-- with fresh attempts; completed steps keep their outputs, and the control
-- state (open parallel frames) is kept as it was, since the steps reset here
-- are exactly the ones it still waits for. Task rows keep their input: a
-- first step's is NULL (the claim hands it the instance's input).
--   task, branch  ready now
--   sleep         waiting until its original wake-up time (at once if passed)
--   event         waiting with a fresh timeout of the same length (ready if
--                 one is buffered); a keyed wait is ready, to compute its key
--                 again (the key function may have been what failed)
--   child         its failed or cancelled child instance is retried too (this
--                 function, recursively); a completed child hands its output
--                 again (ready); a gone child makes the retry an error
-- Steps in branches that a fired join no longer waits for stay as they are
-- (baton.join_settled): what an any-of or quorum join cancelled is not run again.
-- An instance whose compensation failed (its error's step is the compensation,
-- '!<key>') runs that compensation again and goes on compensating: only its
-- compensation steps are reset, not the forward step that failed.
-- A failed instance whose error names no failed step (a branch, loop or
-- definition error after a completed step) has nothing to run again: BTS01.
-- Records a 'retried' checkpoint; p_via names the parent whose retry this is.
-- Returns the step keys reset and the descendants retried with it.
CREATE OR REPLACE FUNCTION baton.retry_instance(p_id text, p_via text DEFAULT NULL)
RETURNS TABLE (steps text[], children text[])
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: schedule_tasks
-- Insert scheduled steps as task rows and start child instances.
-- p_rows: [{wf, key, kind, name, hash, input, priority, tags, maxAttempts,
--           delayMs, timeoutMs, runAt, held, limitKey, from, child: {name, hash, priority, tags, traceparent, tracestate, limitKey}}]
-- from: a compensation's step (src/workflow/compensate.ts): its input becomes {input, output} of that
-- step's task row (a first step's input is its instance's), read here so the state carries no payloads.
-- limitKey: for a task with limits, the key they count under ('' for the task as a whole; the worker
-- computed it), else null; a child's is its first steps' (see start_workflow).
-- keyed: a keyed waitForEvent step: it starts ready with event_key '' (its worker computes the key
-- from the instance's input, see claim_tasks), whatever is buffered.
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
--> statement-breakpoint
-- function: request_compensation
-- Make an unfinished instance compensate (src/workflow/compensate.ts): its
-- forward work is closed (open tasks cancelled, child instances cancelled, as
-- for a failure) and a `compensate` step keyed '!@<version>' is scheduled,
-- whose output (p_error) the state machine takes as the cause: it schedules
-- the compensations of the completed steps, latest first, or, with none,
-- ends the instance cancelled (p_error's code CANCELLED) or failed. The caller
-- holds the instance's row lock. Returns false, changing nothing, when the
-- instance is finished, already compensating, or already asked to.
-- after: schedule_tasks, after_finish
CREATE OR REPLACE FUNCTION baton.request_compensation(p_id text, p_error jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: send_event
-- Send an event to an instance: buffered FIFO by (instance, name); a
-- waitForEvent step waiting for it becomes ready. An instance that does not
-- exist yet keeps the event (it may arrive before the start). A keyed wait
-- (event_key set) takes only published events (baton.publish_event), not these.
CREATE OR REPLACE FUNCTION baton.send_event(p_id text, p_name text, p_payload jsonb DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: complete_waitpoint
-- after: send_event
-- Complete a wait with a waitpoint token's claims, already verified by the caller: the HMAC secret
-- is not in the database (client.completeWaitpoint verifies the signature and expiry, then calls
-- this). Delivers p_payload as event p_name to instance p_id, as baton.send_event does (a waiting
-- step takes it; before the wait starts, it is buffered for it), once per nonce, and only while the
-- wait is open. Refusals write nothing and raise SQLSTATE BTW01 with DETAIL the reason:
--   expired  p_expires_at has passed (by the database's clock);
--   reused   this nonce completed a wait before;
--   closed   the instance has ended, or a wait for p_name completed after the token was issued
--            (p_issued_at): the wait it was made for is over.
-- An unknown instance is BTN02. Completions of one instance serialise on send_event's advisory
-- lock, so of two concurrent completions of one token exactly one delivers.
CREATE OR REPLACE FUNCTION baton.complete_waitpoint(
  p_id text, p_name text, p_nonce text, p_issued_at timestamptz, p_expires_at timestamptz, p_payload jsonb DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: settle_parents
-- Finished child instances hand their outcome to the parent's child step,
-- which becomes ready (or stays held while the parent is paused).
CREATE OR REPLACE FUNCTION baton.settle_parents(p_ids text[]) RETURNS integer
LANGUAGE plpgsql AS $$
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
