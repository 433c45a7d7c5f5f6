-- The trace context a start stores (baton.workflows.trace_context): a W3C
-- traceparent, then a space and the tracestate if any. BTV01 when the
-- traceparent is not one (version, trace id, span id and flags in lower-case
-- hex), or the tracestate is over 512 characters or holds control characters.
-- Callers skip it when both are NULL (an untraced start calls nothing).
CREATE OR REPLACE FUNCTION baton.trace_context(p_traceparent text, p_tracestate text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_traceparent IS NULL THEN
    RAISE EXCEPTION 'tracestate was given without a traceparent' USING ERRCODE = 'BTV01';
  END IF;
  IF p_traceparent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' OR p_traceparent ~ '^ff-'
     OR p_traceparent ~ '^..-0{32}-' OR p_traceparent ~ '-0{16}-..$' THEN
    RAISE EXCEPTION 'traceparent must be a W3C traceparent, 00-<32 hex trace id>-<16 hex span id>-<2 hex flags> (got "%")',
      left(p_traceparent, 80) USING ERRCODE = 'BTV01';
  END IF;
  IF p_tracestate IS NOT NULL AND (length(p_tracestate) > 512 OR p_tracestate ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'tracestate must be at most 512 characters without control characters' USING ERRCODE = 'BTV01';
  END IF;
  RETURN p_traceparent || coalesce(' ' || nullif(p_tracestate, ''), '');
END
$$;
