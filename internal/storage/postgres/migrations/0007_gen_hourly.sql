-- v7: gen_hourly, the console's hourly rollup of the generations (issue 11.7).
--
-- The console's summary, usage and overview charts read every generation
-- in their range: 333k rows for 30 days at 1M spans, up to seconds per
-- page. gen_hourly holds the same sums per UTC hour, model and provider, so
-- a range costs one row per hour and model instead of one per generation;
-- the partial hours at a range's edges are still read from the spans.
--
-- Unlike usage_daily, it follows retention: it always equals the aggregate
-- of the stored generations (the exporter adds what a write changes in the
-- write's transaction, retention subtracts what it deletes in its own), so
-- the console answers the same from it as from the spans. Costs are integer
-- nano-USD (exact sums) with the count of generations of known cost (the
-- API's cost is null when none is known). lat_NN count the generations per
-- latency bucket of storage.LatencyBoundsMs (bucket i: below bound i and
-- not below bound i-1; lat_46: the rest, unknown durations included).
-- model and provider are '' when NULL (primary key columns).
--
-- An upgraded database is backfilled from the generations it holds.
CREATE TABLE gen_hourly (
    project_id               text    NOT NULL,
    hour_unix_nano           bigint  NOT NULL, -- start of the UTC hour of the span start
    model                    text    NOT NULL DEFAULT '',
    provider                 text    NOT NULL DEFAULT '',
    generations              bigint  NOT NULL DEFAULT 0,
    errors                   bigint  NOT NULL DEFAULT 0,
    known_cost_generations   bigint  NOT NULL DEFAULT 0,
    input_tokens             bigint  NOT NULL DEFAULT 0,
    output_tokens            bigint  NOT NULL DEFAULT 0,
    total_cost_nano_usd      bigint  NOT NULL DEFAULT 0,
    lat_00                   bigint  NOT NULL DEFAULT 0,
    lat_01                   bigint  NOT NULL DEFAULT 0,
    lat_02                   bigint  NOT NULL DEFAULT 0,
    lat_03                   bigint  NOT NULL DEFAULT 0,
    lat_04                   bigint  NOT NULL DEFAULT 0,
    lat_05                   bigint  NOT NULL DEFAULT 0,
    lat_06                   bigint  NOT NULL DEFAULT 0,
    lat_07                   bigint  NOT NULL DEFAULT 0,
    lat_08                   bigint  NOT NULL DEFAULT 0,
    lat_09                   bigint  NOT NULL DEFAULT 0,
    lat_10                   bigint  NOT NULL DEFAULT 0,
    lat_11                   bigint  NOT NULL DEFAULT 0,
    lat_12                   bigint  NOT NULL DEFAULT 0,
    lat_13                   bigint  NOT NULL DEFAULT 0,
    lat_14                   bigint  NOT NULL DEFAULT 0,
    lat_15                   bigint  NOT NULL DEFAULT 0,
    lat_16                   bigint  NOT NULL DEFAULT 0,
    lat_17                   bigint  NOT NULL DEFAULT 0,
    lat_18                   bigint  NOT NULL DEFAULT 0,
    lat_19                   bigint  NOT NULL DEFAULT 0,
    lat_20                   bigint  NOT NULL DEFAULT 0,
    lat_21                   bigint  NOT NULL DEFAULT 0,
    lat_22                   bigint  NOT NULL DEFAULT 0,
    lat_23                   bigint  NOT NULL DEFAULT 0,
    lat_24                   bigint  NOT NULL DEFAULT 0,
    lat_25                   bigint  NOT NULL DEFAULT 0,
    lat_26                   bigint  NOT NULL DEFAULT 0,
    lat_27                   bigint  NOT NULL DEFAULT 0,
    lat_28                   bigint  NOT NULL DEFAULT 0,
    lat_29                   bigint  NOT NULL DEFAULT 0,
    lat_30                   bigint  NOT NULL DEFAULT 0,
    lat_31                   bigint  NOT NULL DEFAULT 0,
    lat_32                   bigint  NOT NULL DEFAULT 0,
    lat_33                   bigint  NOT NULL DEFAULT 0,
    lat_34                   bigint  NOT NULL DEFAULT 0,
    lat_35                   bigint  NOT NULL DEFAULT 0,
    lat_36                   bigint  NOT NULL DEFAULT 0,
    lat_37                   bigint  NOT NULL DEFAULT 0,
    lat_38                   bigint  NOT NULL DEFAULT 0,
    lat_39                   bigint  NOT NULL DEFAULT 0,
    lat_40                   bigint  NOT NULL DEFAULT 0,
    lat_41                   bigint  NOT NULL DEFAULT 0,
    lat_42                   bigint  NOT NULL DEFAULT 0,
    lat_43                   bigint  NOT NULL DEFAULT 0,
    lat_44                   bigint  NOT NULL DEFAULT 0,
    lat_45                   bigint  NOT NULL DEFAULT 0,
    lat_46                   bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, hour_unix_nano, model, provider)
);

INSERT INTO gen_hourly
SELECT project_id, hour_unix_nano, model, provider,
       count(*),
       count(*) FILTER (WHERE status_code = 'ERROR'),
       count(total_cost_usd),
       coalesce(sum(input_tokens), 0)::bigint,
       coalesce(sum(output_tokens), 0)::bigint,
       coalesce(sum(round(total_cost_usd * 1e9)::bigint), 0),
       count(*) FILTER (WHERE bucket = 0),
       count(*) FILTER (WHERE bucket = 1),
       count(*) FILTER (WHERE bucket = 2),
       count(*) FILTER (WHERE bucket = 3),
       count(*) FILTER (WHERE bucket = 4),
       count(*) FILTER (WHERE bucket = 5),
       count(*) FILTER (WHERE bucket = 6),
       count(*) FILTER (WHERE bucket = 7),
       count(*) FILTER (WHERE bucket = 8),
       count(*) FILTER (WHERE bucket = 9),
       count(*) FILTER (WHERE bucket = 10),
       count(*) FILTER (WHERE bucket = 11),
       count(*) FILTER (WHERE bucket = 12),
       count(*) FILTER (WHERE bucket = 13),
       count(*) FILTER (WHERE bucket = 14),
       count(*) FILTER (WHERE bucket = 15),
       count(*) FILTER (WHERE bucket = 16),
       count(*) FILTER (WHERE bucket = 17),
       count(*) FILTER (WHERE bucket = 18),
       count(*) FILTER (WHERE bucket = 19),
       count(*) FILTER (WHERE bucket = 20),
       count(*) FILTER (WHERE bucket = 21),
       count(*) FILTER (WHERE bucket = 22),
       count(*) FILTER (WHERE bucket = 23),
       count(*) FILTER (WHERE bucket = 24),
       count(*) FILTER (WHERE bucket = 25),
       count(*) FILTER (WHERE bucket = 26),
       count(*) FILTER (WHERE bucket = 27),
       count(*) FILTER (WHERE bucket = 28),
       count(*) FILTER (WHERE bucket = 29),
       count(*) FILTER (WHERE bucket = 30),
       count(*) FILTER (WHERE bucket = 31),
       count(*) FILTER (WHERE bucket = 32),
       count(*) FILTER (WHERE bucket = 33),
       count(*) FILTER (WHERE bucket = 34),
       count(*) FILTER (WHERE bucket = 35),
       count(*) FILTER (WHERE bucket = 36),
       count(*) FILTER (WHERE bucket = 37),
       count(*) FILTER (WHERE bucket = 38),
       count(*) FILTER (WHERE bucket = 39),
       count(*) FILTER (WHERE bucket = 40),
       count(*) FILTER (WHERE bucket = 41),
       count(*) FILTER (WHERE bucket = 42),
       count(*) FILTER (WHERE bucket = 43),
       count(*) FILTER (WHERE bucket = 44),
       count(*) FILTER (WHERE bucket = 45),
       count(*) FILTER (WHERE bucket = 46)
FROM (SELECT project_id,
             start_time_unix_nano - ((start_time_unix_nano % 3600000000000) + 3600000000000) % 3600000000000 AS hour_unix_nano,
             coalesce(model, '') AS model,
             coalesce(provider, '') AS provider,
             status_code, input_tokens, output_tokens, total_cost_usd,
             CASE
               WHEN duration_ms < 4 THEN 0
               WHEN duration_ms < 5.04 THEN 1
               WHEN duration_ms < 6.35 THEN 2
               WHEN duration_ms < 8 THEN 3
               WHEN duration_ms < 10.079 THEN 4
               WHEN duration_ms < 12.699 THEN 5
               WHEN duration_ms < 16 THEN 6
               WHEN duration_ms < 20.159 THEN 7
               WHEN duration_ms < 25.398 THEN 8
               WHEN duration_ms < 32 THEN 9
               WHEN duration_ms < 40.317 THEN 10
               WHEN duration_ms < 50.797 THEN 11
               WHEN duration_ms < 64 THEN 12
               WHEN duration_ms < 80.635 THEN 13
               WHEN duration_ms < 101.594 THEN 14
               WHEN duration_ms < 128 THEN 15
               WHEN duration_ms < 161.27 THEN 16
               WHEN duration_ms < 203.187 THEN 17
               WHEN duration_ms < 256 THEN 18
               WHEN duration_ms < 322.54 THEN 19
               WHEN duration_ms < 406.375 THEN 20
               WHEN duration_ms < 512 THEN 21
               WHEN duration_ms < 645.08 THEN 22
               WHEN duration_ms < 812.749 THEN 23
               WHEN duration_ms < 1024 THEN 24
               WHEN duration_ms < 1290.159 THEN 25
               WHEN duration_ms < 1625.499 THEN 26
               WHEN duration_ms < 2048 THEN 27
               WHEN duration_ms < 2580.318 THEN 28
               WHEN duration_ms < 3250.997 THEN 29
               WHEN duration_ms < 4096 THEN 30
               WHEN duration_ms < 5160.637 THEN 31
               WHEN duration_ms < 6501.995 THEN 32
               WHEN duration_ms < 8192 THEN 33
               WHEN duration_ms < 10321.273 THEN 34
               WHEN duration_ms < 13003.989 THEN 35
               WHEN duration_ms < 16384 THEN 36
               WHEN duration_ms < 20642.546 THEN 37
               WHEN duration_ms < 26007.979 THEN 38
               WHEN duration_ms < 32768 THEN 39
               WHEN duration_ms < 41285.093 THEN 40
               WHEN duration_ms < 52015.958 THEN 41
               WHEN duration_ms < 65536 THEN 42
               WHEN duration_ms < 82570.186 THEN 43
               WHEN duration_ms < 104031.915 THEN 44
               WHEN duration_ms < 131072 THEN 45
               ELSE 46 END AS bucket
      FROM spans
      WHERE is_generation) g
GROUP BY 1, 2, 3, 4;
