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
