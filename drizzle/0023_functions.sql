-- Written by `npm run sql:generate` from drizzle/functions/: edit those files, not this one.
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
  IF v_status IN ('completed', 'failed', 'cancelled') THEN
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
-- function: delete_instances
-- Delete instances with everything that belongs to them (there are no foreign
-- keys: their per-row triggers cost the hot path too much).
CREATE OR REPLACE FUNCTION baton.delete_instances(p_ids text[]) RETURNS integer
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: write_stream
-- Append frames to an instance's output stream for a running attempt (ctx.stream.write; the worker
-- batches them), under the attempt's fence: only while the task row is running, claimed by
-- p_worker, with epoch p_epoch. Returns the last frame's seq, or NULL when the fence refused the
-- write (the lease was lost, or the attempt already ended): nothing is written then.
-- seq counts per instance from 1. It is handed out under a per-instance advisory lock held until
-- commit, so frames commit in seq order and a reader's cursor (seq > from) never passes one that
-- commits later. The fence is checked after that lock is taken, in the inserting statement; no row
-- lock is taken on the task (it would make the worker's lease renewal, which skips locked rows,
-- miss the task while a stream is busy). NOTIFY baton_stream with the instance id wakes tails.
CREATE OR REPLACE FUNCTION baton.write_stream(p_id text, p_key text, p_epoch bigint, p_worker text, p_frames jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
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
--> statement-breakpoint
-- function: read_stream
-- An instance's output stream from a cursor: the frames with seq > p_from, oldest first, at most
-- p_limit (1 to 10000). Pass the last seq read back as p_from to go on.
CREATE OR REPLACE FUNCTION baton.read_stream(p_id text, p_from bigint DEFAULT 0, p_limit integer DEFAULT 1000)
RETURNS TABLE (seq bigint, task_key text, attempt integer, frame jsonb, at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT f.seq, f.task_key, f.attempt, f.frame, f.at
  FROM baton.stream_frames f
  WHERE f.workflow_id = p_id AND f.seq > coalesce(p_from, 0)
  ORDER BY f.seq
  LIMIT least(greatest(coalesce(p_limit, 1000), 1), 10000)
$$;
--> statement-breakpoint
-- function: task_result
-- One task's status and result, by instance id and task key, without loading the instance or its
-- other tasks (one primary-key lookup). No row when there is no such task. A one-task job that
-- completed quietly keeps its output once, on its instance (finished_by set, see
-- baton.finished_checkpoint): it is read from there. Kept after the instance finished, until
-- retention deletes the instance.
CREATE OR REPLACE FUNCTION baton.task_result(p_id text, p_key text)
RETURNS TABLE (status text, output jsonb, error jsonb, attempts integer, finished_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT t.status,
    CASE WHEN t.finished_by IS NULL THEN t.output ELSE (SELECT w.output FROM baton.workflows w WHERE w.id = t.workflow_id) END,
    t.last_error, t.attempts, t.finished_at
  FROM baton.tasks t
  WHERE t.workflow_id = p_id AND t.task_key = p_key
$$;
