-- What a worker may take next, in order: the one definition of the claim's choice. baton.claim_tasks
-- takes its rows from here (p_lock => true); a dashboard or a test peeks with it (p_lock => false).
-- Candidates: ready tasks of the tag sets this worker covers (baton.tag_sets, s.tags <@ p_tags) and
-- of the definitions it has (p_hashes; NULL: any definition, for a peek by someone who does not know
-- a worker's definitions), in aging order (ready_key).
-- Soft bias: when a candidate is a retry p_worker last failed, as many further candidates are looked
-- at, and the retry goes after them; alone, it is still taken. (p_worker NULL: nobody's retries.)
-- Isolation: a task whose leases were lost p_isolate_from times or more (one more loss fails it: it
-- may be what kills its workers) is taken only into one of p_isolated_slots (a worker passes 1 when
-- it holds no such task, else 0).
-- Returns at most p_limit rows in the order the worker takes them: its own failed retries last, else
-- by ready_key. Due timers not promoted yet are not among them (the claim promotes them first).
-- Each row comes with its step's kind and its row's address (ctid): with p_lock => true that is the
-- version this transaction locked, which nobody else can change before it ends, so the claim
-- updates it by address, with no second descent of tasks_pkey, and knows beforehand whether it took
-- a waitForEvent step. A peek's addresses may be stale at once: read them only under the lock.
--
-- p_lock => false (the default) only reads: no row is locked, so a peek, however often, never makes
-- a claim skip a task; a claim running at the same time may take the rows it returned.
-- p_lock => true (the claim) locks each candidate FOR UPDATE SKIP LOCKED as the scan reaches it: rows
-- other claimers hold are passed over and the scan goes on until it has enough, so workers claiming
-- at once neither wait for nor under-claim each other. The locks last until the caller's transaction
-- ends, also on the candidates not returned (the soft bias's extra rows, isolated ones over the
-- slots): only then are more rows locked than returned.
-- Why one plpgsql function with a flag: a locking clause cannot be a parameter, locking after a
-- non-locking scan would under-claim (other workers take the scanned rows meanwhile), and dynamic SQL
-- would be planned on every claim. So the candidate query is written twice, with and without
-- FOR UPDATE SKIP LOCKED, side by side below; test/find-available.test.ts fails unless the two are
-- the same text but for that clause. The soft bias's second pass runs the same query again with the
-- limit raised by the number of such retries (rows it locked before are its own: not skipped).
-- Cost (PostgreSQL 15, old and new claim side by side, backend CPU per call): the nested call costs
-- the claim about 15 us, won back by aggregating without sorting (the arrays only carry the rows; the
-- order is made at the end): a claim of 1 0.503 -> 0.502 ms, of 24 1.416 -> 1.402, of 100 5.50 -> 5.34.
-- The SET clauses cost nothing measurable; they keep a direct peek on the claim's plans.
DROP FUNCTION IF EXISTS baton.find_available_tasks(text, integer, text[], text[], integer, integer, boolean);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION baton.find_available_tasks(p_worker text, p_limit integer, p_tags text[], p_hashes text[],
  p_isolate_from integer DEFAULT 2147483647, p_isolated_slots integer DEFAULT 0, p_lock boolean DEFAULT false)
RETURNS TABLE (workflow_id text, task_key text, ready_key timestamptz, kind text, row_address tid)
LANGUAGE plpgsql
ROWS 100
-- Key lookups only (see baton.commit): no sequential scan of a growing table, no JIT.
SET enable_seqscan = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_wf text[];
  v_key text[];
  v_rk timestamptz[];
  v_kind text[];
  v_tid tid[];
  v_mine boolean[];
  v_iso boolean[];
  v_n bigint := p_limit;
  v_bias integer;
BEGIN
  IF coalesce(p_limit, 0) <= 0 THEN
    RETURN;
  END IF;
  LOOP
    IF p_lock THEN
      SELECT array_agg(c.workflow_id), array_agg(c.task_key), array_agg(c.ready_key), array_agg(c.kind), array_agg(c.ctid),
             array_agg(coalesce(c.last_failed_worker = p_worker, false)), array_agg(c.lease_losses >= p_isolate_from),
             count(*) FILTER (WHERE c.last_failed_worker = p_worker)
      INTO v_wf, v_key, v_rk, v_kind, v_tid, v_mine, v_iso, v_bias
      FROM (
        SELECT c.* FROM baton.tag_sets s
        CROSS JOIN LATERAL (
          SELECT t.workflow_id, t.task_key, t.ready_key, t.kind, t.ctid, t.last_failed_worker, t.lease_losses
          FROM baton.tasks t
          WHERE t.status = 'ready' AND t.tags = s.tags AND (p_hashes IS NULL OR t.definition_hash = ANY (p_hashes))
            AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
          ORDER BY t.ready_key
          LIMIT v_n
          FOR UPDATE SKIP LOCKED
        ) c
        WHERE s.tags <@ p_tags
        ORDER BY c.ready_key
        LIMIT v_n
      ) c;
    ELSE
      SELECT array_agg(c.workflow_id), array_agg(c.task_key), array_agg(c.ready_key), array_agg(c.kind), array_agg(c.ctid),
             array_agg(coalesce(c.last_failed_worker = p_worker, false)), array_agg(c.lease_losses >= p_isolate_from),
             count(*) FILTER (WHERE c.last_failed_worker = p_worker)
      INTO v_wf, v_key, v_rk, v_kind, v_tid, v_mine, v_iso, v_bias
      FROM (
        SELECT c.* FROM baton.tag_sets s
        CROSS JOIN LATERAL (
          SELECT t.workflow_id, t.task_key, t.ready_key, t.kind, t.ctid, t.last_failed_worker, t.lease_losses
          FROM baton.tasks t
          WHERE t.status = 'ready' AND t.tags = s.tags AND (p_hashes IS NULL OR t.definition_hash = ANY (p_hashes))
            AND (p_isolated_slots > 0 OR t.lease_losses < p_isolate_from)
          ORDER BY t.ready_key
          LIMIT v_n
        ) c
        WHERE s.tags <@ p_tags
        ORDER BY c.ready_key
        LIMIT v_n
      ) c;
    END IF;
    -- Soft bias: once, as many further candidates as there are retries this worker failed.
    EXIT WHEN v_bias = 0 OR v_n > p_limit;
    v_n := p_limit + v_bias;
  END LOOP;
  IF v_wf IS NULL THEN
    RETURN;
  END IF;

  -- The arrays hold the candidates row by row (element i of each is one row), in no particular
  -- order: the order is made here.
  RETURN QUERY
  WITH ranked AS (
    SELECT u.*, row_number() OVER (PARTITION BY u.iso ORDER BY u.mine, u.rk) AS nth
    FROM unnest(v_wf, v_key, v_rk, v_kind, v_tid, v_mine, v_iso) AS u(wf, key, rk, kind, tid, mine, iso)
  )
  SELECT r.wf, r.key, r.rk, r.kind, r.tid FROM ranked r
  WHERE NOT r.iso OR r.nth <= p_isolated_slots
  ORDER BY r.mine, r.rk
  LIMIT p_limit;
END
$$;
