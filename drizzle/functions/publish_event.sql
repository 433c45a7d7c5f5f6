-- Publish a keyed event: p_name and p_key address whichever instance waits for
-- them (waitForEvent(name, { key })), not an instance id. The event is
-- buffered, FIFO by (name, key), until a keyed wait consumes it, for at most
-- p_retention_ms (NULL: 7 days); after that it is never delivered, and the
-- reconciler deletes it. Each event is consumed by exactly one wait: the claim
-- hands the oldest free one to a claimed wait and holds it for that attempt,
-- whose commit deletes it (see claim_tasks, commit).
-- One waiter is woken per event: the oldest still waiting on (name, key), by
-- when its wait began. The advisory lock on (name, key) pairs with the commit
-- of a re-wait (baton.commit), which takes it before it looks for a buffered
-- event: either the commit sees this event, or this sees the waiting step.
-- Returns the event's id.
CREATE OR REPLACE FUNCTION baton.publish_event(p_name text, p_key text, p_payload jsonb DEFAULT NULL, p_retention_ms bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
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
