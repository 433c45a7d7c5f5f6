-- A worker's own claim commits without waiting for its WAL flush (synchronous_commit off for that
-- transaction only). Measured on PostgreSQL 15 here: a one-task claim 0.87 -> 0.50 ms round trip.
-- Safe because of fencing: if the server crashes before the claim reaches disk, the task is simply
-- ready again with its old epoch, and the worker's later commit (which is durable) is refused for
-- not holding the claim; the task runs again, as after any lost lease. Commits stay synchronous, and
-- a claim riding along a commit (baton.commit calls claim_tasks) is as durable as that commit.
DROP FUNCTION IF EXISTS baton.claim_tasks_async_commit(text, integer, text[], text[], integer, integer, integer);
--> statement-breakpoint
DROP FUNCTION IF EXISTS baton.claim_tasks_async_commit(text, integer, text[], text[], integer, integer, integer, boolean);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.claim_tasks_async_commit(p_worker text, p_limit integer, p_tags text[], p_hashes text[], p_ttl_ms integer,
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_declares boolean DEFAULT false)
RETURNS TABLE (workflow_id text, task_key text, kind text, name text, definition_hash text, epoch bigint, attempts integer,
  max_attempts integer, lease_losses integer, input jsonb, output jsonb, available_at timestamptz, lease_expires_at timestamptz,
  workflow_name text, workflow_status text, workflow_state jsonb, workflow_version integer, workflow_priority integer,
  workflow_tags text[], workflow_parent text, event_id bigint, event_payload jsonb, workflow_trace_context text, event_key text,
  suspect boolean)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY SELECT * FROM baton.claim_tasks(p_worker, p_limit, p_tags, p_hashes, p_ttl_ms, p_isolate_from, p_isolated_slots, p_declares);
END
$$;
