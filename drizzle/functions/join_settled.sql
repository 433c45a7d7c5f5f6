-- Whether the step at p_key of instance p_id (whose state is p_state) lies in a
-- branch that a fired join no longer waits for (src/workflow/join.ts): under a
-- parallel step whose join fired (a checkpoint lists it in detail.joined),
-- except a straggler still awaited (rest 'finish': the step's frame is still in
-- the state, marked fired, and the branch is neither among those that completed
-- nor among those that failed). Retrying an instance leaves such steps alone: a
-- branch a join cancelled stays cancelled.
CREATE OR REPLACE FUNCTION baton.join_settled(p_id text, p_state jsonb, p_key text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1
    FROM baton.history h
    CROSS JOIN LATERAL jsonb_array_elements_text(h.detail -> 'joined') j(key)
    CROSS JOIN LATERAL (
      SELECT p_state -> 'par' -> j.key AS frame,
             to_jsonb(substr(split_part(substr(p_key, length(j.key) + 2), '/', 1), 2)::integer) AS branch
    ) f
    WHERE h.workflow_id = p_id AND h.detail ? 'joined'
      AND left(p_key, length(j.key) + 1) = j.key || '/'
      AND (f.frame IS NULL OR NOT coalesce((f.frame ->> 'fired')::boolean, false)
           OR f.frame -> 'ok' @> f.branch OR f.frame -> 'bad' @> f.branch))
$$;
