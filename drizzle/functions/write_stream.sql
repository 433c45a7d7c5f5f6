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
