-- v1: the spans table (DESIGN 2.5) and the sessions and customers views.
CREATE TABLE spans (
    project_id               text             NOT NULL,
    trace_id                 text             NOT NULL,
    span_id                  text             NOT NULL,
    parent_span_id           text,
    name                     text             NOT NULL,
    kind                     text             NOT NULL,
    status_code              text             NOT NULL,
    status_message           text,
    start_time_unix_nano     bigint           NOT NULL,
    end_time_unix_nano       bigint           NOT NULL,
    duration_ms              double precision NOT NULL,
    received_at_unix_nano    bigint           NOT NULL,
    is_generation            boolean          NOT NULL DEFAULT false,
    session_id               text,
    customer_id              text,
    model                    text,
    requested_model          text,
    provider                 text,
    operation                text,
    input_tokens             bigint,
    output_tokens            bigint,
    total_tokens             bigint,
    cached_input_tokens      bigint,
    cache_write_input_tokens bigint,
    reasoning_tokens         bigint,
    input_cost_usd           double precision,
    output_cost_usd          double precision,
    total_cost_usd           double precision,
    cost_source              text,
    finish_reason            text,
    time_to_first_token_ms   double precision,
    streamed                 boolean,
    prompt                   text,
    completion               text,
    source                   text,
    attributes               jsonb            NOT NULL DEFAULT '{}',
    resource_attributes      jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (project_id, trace_id, span_id)
);

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
       sum(input_tokens)::bigint                          AS input_tokens,
       sum(output_tokens)::bigint                         AS output_tokens,
       sum(total_cost_usd)                                AS total_cost_usd,
       min(start_time_unix_nano)                          AS first_seen_unix_nano,
       max(end_time_unix_nano)                            AS last_seen_unix_nano
FROM spans
WHERE is_generation AND session_id IS NOT NULL
GROUP BY project_id, session_id;

CREATE VIEW customers AS
SELECT project_id,
       customer_id,
       count(DISTINCT session_id)                         AS sessions,
       count(*)                                           AS generations,
       sum(input_tokens)::bigint                          AS input_tokens,
       sum(output_tokens)::bigint                         AS output_tokens,
       sum(total_cost_usd)                                AS total_cost_usd,
       min(start_time_unix_nano)                          AS first_seen_unix_nano,
       max(end_time_unix_nano)                            AS last_seen_unix_nano
FROM spans
WHERE is_generation AND customer_id IS NOT NULL
GROUP BY project_id, customer_id;
