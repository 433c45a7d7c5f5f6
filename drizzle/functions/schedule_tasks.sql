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
