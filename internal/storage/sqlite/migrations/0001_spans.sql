-- v1: the spans table (DESIGN 2.5) and the sessions and customers views.
CREATE TABLE spans (
    project_id               TEXT    NOT NULL,
    trace_id                 TEXT    NOT NULL,
    span_id                  TEXT    NOT NULL,
    parent_span_id           TEXT,
    name                     TEXT    NOT NULL,
    kind                     TEXT    NOT NULL,
    status_code              TEXT    NOT NULL,
    status_message           TEXT,
    start_time_unix_nano     INTEGER NOT NULL,
    end_time_unix_nano       INTEGER NOT NULL,
    duration_ms              REAL    NOT NULL,
    received_at_unix_nano    INTEGER NOT NULL,
    is_generation            INTEGER NOT NULL DEFAULT 0,
    session_id               TEXT,
    customer_id              TEXT,
    model                    TEXT,
    requested_model          TEXT,
    provider                 TEXT,
    operation                TEXT,
    input_tokens             INTEGER,
    output_tokens            INTEGER,
    total_tokens             INTEGER,
    cached_input_tokens      INTEGER,
    cache_write_input_tokens INTEGER,
    reasoning_tokens         INTEGER,
    input_cost_usd           REAL,
    output_cost_usd          REAL,
    total_cost_usd           REAL,
    cost_source              TEXT,
    finish_reason            TEXT,
    time_to_first_token_ms   REAL,
    streamed                 INTEGER,
    prompt                   TEXT,
    completion               TEXT,
    source                   TEXT,
    attributes               TEXT    NOT NULL DEFAULT '{}',
    resource_attributes      TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (project_id, trace_id, span_id)
);
-- A rowid table (not WITHOUT ROWID): rows carry multi-KB prompts, which
-- SQLite keeps better out of the primary-key b-tree.

CREATE INDEX spans_project_start ON spans (project_id, start_time_unix_nano);
CREATE INDEX spans_project_session ON spans (project_id, session_id) WHERE session_id IS NOT NULL;
CREATE INDEX spans_project_customer ON spans (project_id, customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX spans_received_at ON spans (received_at_unix_nano);

CREATE VIEW sessions AS
SELECT project_id,
       session_id,
       max(customer_id)                                   AS customer_id,
       count(*)                                           AS generations,
       count(*) FILTER (WHERE status_code = 'ERROR')      AS errors,
       sum(input_tokens)                                  AS input_tokens,
       sum(output_tokens)                                 AS output_tokens,
       sum(total_cost_usd)                                AS total_cost_usd,
       min(start_time_unix_nano)                          AS first_seen_unix_nano,
       max(end_time_unix_nano)                            AS last_seen_unix_nano
FROM spans
WHERE is_generation = 1 AND session_id IS NOT NULL
GROUP BY project_id, session_id;

CREATE VIEW customers AS
SELECT project_id,
       customer_id,
       count(DISTINCT session_id)                         AS sessions,
       count(*)                                           AS generations,
       sum(input_tokens)                                  AS input_tokens,
       sum(output_tokens)                                 AS output_tokens,
       sum(total_cost_usd)                                AS total_cost_usd,
       min(start_time_unix_nano)                          AS first_seen_unix_nano,
       max(end_time_unix_nano)                            AS last_seen_unix_nano
FROM spans
WHERE is_generation = 1 AND customer_id IS NOT NULL
GROUP BY project_id, customer_id;
