-- v5: covering indexes for the console and the query API (issue 11.7).
--
-- The console's aggregates (summary, usage, the overview's series, the
-- sessions and customers lists) read a few small columns of every
-- generation in range. These indexes hold every column those reads use, so
-- they are answered by index-only scans instead of visiting rows that carry
-- multi-KB prompts; only generations are in them.
CREATE INDEX spans_gen_start ON spans (project_id, start_time_unix_nano)
    INCLUDE (model, provider, customer_id, session_id, status_code, duration_ms, input_tokens, output_tokens,
             total_tokens, total_cost_usd, time_to_first_token_ms, trace_id, span_id)
    WHERE is_generation;

-- The sessions and customers views, grouped in index order. They replace
-- the v1 session and customer indexes (which also held non-generation
-- spans, which no read asks for by session or customer).
DROP INDEX spans_project_session;
CREATE INDEX spans_gen_session ON spans (project_id, session_id, start_time_unix_nano)
    INCLUDE (end_time_unix_nano, customer_id, status_code, input_tokens, output_tokens, total_cost_usd)
    WHERE is_generation AND session_id IS NOT NULL;

DROP INDEX spans_project_customer;
CREATE INDEX spans_gen_customer ON spans (project_id, customer_id, session_id)
    INCLUDE (start_time_unix_nano, end_time_unix_nano, input_tokens, output_tokens, total_cost_usd)
    WHERE is_generation AND customer_id IS NOT NULL;
