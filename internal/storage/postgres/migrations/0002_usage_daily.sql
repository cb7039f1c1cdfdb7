-- v2: usage_daily, the per-day rollup of generation spans. The exporter keeps
-- it in the same transaction as the spans (adding only what a write changed),
-- so it survives span retention. An upgraded v1 database is backfilled from
-- the spans it already holds.
CREATE TABLE usage_daily (
    project_id                text             NOT NULL,
    day                       date             NOT NULL, -- UTC day of the span start
    model                     text             NOT NULL DEFAULT '',
    customer_id               text             NOT NULL DEFAULT '',
    generations               bigint           NOT NULL DEFAULT 0,
    errors                    bigint           NOT NULL DEFAULT 0,
    unknown_cost_generations  bigint           NOT NULL DEFAULT 0,
    input_tokens              bigint           NOT NULL DEFAULT 0,
    output_tokens             bigint           NOT NULL DEFAULT 0,
    total_tokens              bigint           NOT NULL DEFAULT 0,
    cached_input_tokens       bigint           NOT NULL DEFAULT 0,
    cache_write_input_tokens  bigint           NOT NULL DEFAULT 0,
    reasoning_tokens          bigint           NOT NULL DEFAULT 0,
    input_cost_usd            double precision NOT NULL DEFAULT 0,
    output_cost_usd           double precision NOT NULL DEFAULT 0,
    total_cost_usd            double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, day, model, customer_id)
);

INSERT INTO usage_daily
SELECT project_id,
       (to_timestamp(start_time_unix_nano / 1000000000) AT TIME ZONE 'UTC')::date,
       coalesce(model, ''),
       coalesce(customer_id, ''),
       count(*),
       count(*) FILTER (WHERE status_code = 'ERROR'),
       count(*) FILTER (WHERE total_cost_usd IS NULL),
       coalesce(sum(input_tokens), 0),
       coalesce(sum(output_tokens), 0),
       coalesce(sum(total_tokens), 0),
       coalesce(sum(cached_input_tokens), 0),
       coalesce(sum(cache_write_input_tokens), 0),
       coalesce(sum(reasoning_tokens), 0),
       coalesce(sum(input_cost_usd), 0),
       coalesce(sum(output_cost_usd), 0),
       coalesce(sum(total_cost_usd), 0)
FROM spans
WHERE is_generation
GROUP BY 1, 2, 3, 4;
