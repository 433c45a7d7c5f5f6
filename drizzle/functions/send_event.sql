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
