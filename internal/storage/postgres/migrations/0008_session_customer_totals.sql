-- v8: per-session and per-customer totals (issue 11.7).
--
-- The sessions and customers lists, the summary's session and customer
-- counts and the usage by customer aggregated every generation of the
-- project on each read (115-580 ms at 1M spans). These tables hold the
-- sessions and customers views' rows, kept by the write path in the write
-- transaction (deltas for added generations; a changed or removed
-- generation recomputes its rows from the spans) and by retention, so a
-- list is a page of an index.
--
-- The views' NULL semantics are kept: a sum of tokens or costs is NULL when
-- no generation of the group has the value, so each sum has the count of
-- generations that had it (*_known). Costs are integer nano-USD (exact sums,
-- as in usage_daily).
CREATE TABLE session_totals (
    project_id            text    NOT NULL,
    session_id            text    NOT NULL,
    customer_id           text,   -- the largest customer id of the session's generations
    generations           bigint NOT NULL DEFAULT 0,
    errors                bigint NOT NULL DEFAULT 0,
    input_tokens          bigint NOT NULL DEFAULT 0,
    input_tokens_known    bigint NOT NULL DEFAULT 0,
    output_tokens         bigint NOT NULL DEFAULT 0,
    output_tokens_known   bigint NOT NULL DEFAULT 0,
    total_cost_nano_usd   bigint NOT NULL DEFAULT 0,
    total_cost_known      bigint NOT NULL DEFAULT 0,
    first_seen_unix_nano  bigint NOT NULL,
    last_seen_unix_nano   bigint NOT NULL,
    PRIMARY KEY (project_id, session_id)
);

-- The lists' default sort (last seen, newest first) and the time range
-- (active in range: first seen before To, last seen at or after From).
CREATE INDEX session_totals_last_seen ON session_totals (project_id, last_seen_unix_nano);

CREATE TABLE customer_totals (
    project_id            text    NOT NULL,
    customer_id           text    NOT NULL,
    sessions              bigint NOT NULL DEFAULT 0,
    generations           bigint NOT NULL DEFAULT 0,
    errors                bigint NOT NULL DEFAULT 0,
    input_tokens          bigint NOT NULL DEFAULT 0,
    input_tokens_known    bigint NOT NULL DEFAULT 0,
    output_tokens         bigint NOT NULL DEFAULT 0,
    output_tokens_known   bigint NOT NULL DEFAULT 0,
    total_cost_nano_usd   bigint NOT NULL DEFAULT 0,
    total_cost_known      bigint NOT NULL DEFAULT 0,
    first_seen_unix_nano  bigint NOT NULL,
    last_seen_unix_nano   bigint NOT NULL,
    PRIMARY KEY (project_id, customer_id)
);

CREATE INDEX customer_totals_last_seen ON customer_totals (project_id, last_seen_unix_nano);

-- The distinct sessions of each customer, so customer_totals.sessions stays
-- the view's count(DISTINCT session_id) exactly: a write inserts the pairs
-- of its generations (ON CONFLICT DO NOTHING) and adds the ones that were
-- new. A pair is one primary-key probe per generation, mostly finding the
-- pair already there.
CREATE TABLE customer_sessions (
    project_id            text NOT NULL,
    customer_id           text NOT NULL,
    session_id            text NOT NULL,
    PRIMARY KEY (project_id, customer_id, session_id)
);

INSERT INTO session_totals
SELECT project_id, session_id, max(customer_id), count(*),
       count(*) FILTER (WHERE status_code = 'ERROR'),
       coalesce(sum(input_tokens), 0)::bigint, count(input_tokens),
       coalesce(sum(output_tokens), 0)::bigint, count(output_tokens),
       coalesce(sum((CASE WHEN total_cost_usd * 1e9 - trunc(total_cost_usd * 1e9) IN (0.5, -0.5)
                             THEN trunc(total_cost_usd * 1e9) + sign(total_cost_usd * 1e9)
                             ELSE round(total_cost_usd * 1e9) END)::bigint), 0)::bigint, count(total_cost_usd),
       min(start_time_unix_nano), max(end_time_unix_nano)
FROM spans WHERE is_generation AND session_id IS NOT NULL
GROUP BY project_id, session_id;

INSERT INTO customer_sessions
SELECT DISTINCT project_id, customer_id, session_id FROM spans
WHERE is_generation AND customer_id IS NOT NULL AND session_id IS NOT NULL;

INSERT INTO customer_totals
SELECT project_id, customer_id, count(DISTINCT session_id), count(*),
       count(*) FILTER (WHERE status_code = 'ERROR'),
       coalesce(sum(input_tokens), 0)::bigint, count(input_tokens),
       coalesce(sum(output_tokens), 0)::bigint, count(output_tokens),
       coalesce(sum((CASE WHEN total_cost_usd * 1e9 - trunc(total_cost_usd * 1e9) IN (0.5, -0.5)
                             THEN trunc(total_cost_usd * 1e9) + sign(total_cost_usd * 1e9)
                             ELSE round(total_cost_usd * 1e9) END)::bigint), 0)::bigint, count(total_cost_usd),
       min(start_time_unix_nano), max(end_time_unix_nano)
FROM spans WHERE is_generation AND customer_id IS NOT NULL
GROUP BY project_id, customer_id;

-- The v5 covering indexes of the session and customer aggregates are no
-- longer read by the lists: slimmer ones (cheaper to keep on every write)
-- still serve a session's or a customer's generations in start order (the
-- session page, ?session_id= and ?customer_id= lists and aggregates, the
-- lists' filters and the totals' recompute), the few rows fetched from the
-- table.
DROP INDEX spans_gen_session;
CREATE INDEX spans_gen_session ON spans (project_id, session_id, start_time_unix_nano)
    WHERE is_generation AND session_id IS NOT NULL;
DROP INDEX spans_gen_customer;
CREATE INDEX spans_gen_customer ON spans (project_id, customer_id, start_time_unix_nano)
    WHERE is_generation AND customer_id IS NOT NULL;

-- The generations without a session or customer: the NULL group of a whole
-- project's usage by session or by customer, whose other groups are read
-- from the totals. Covering, and as small as such generations are few.
CREATE INDEX spans_gen_no_session ON spans (project_id)
    INCLUDE (status_code, input_tokens, output_tokens, total_cost_usd)
    WHERE is_generation AND session_id IS NULL;
CREATE INDEX spans_gen_no_customer ON spans (project_id)
    INCLUDE (status_code, input_tokens, output_tokens, total_cost_usd)
    WHERE is_generation AND customer_id IS NULL;
