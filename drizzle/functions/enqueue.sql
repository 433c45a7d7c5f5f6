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
