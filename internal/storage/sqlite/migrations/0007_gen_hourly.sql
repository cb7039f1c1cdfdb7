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
    project_id               TEXT    NOT NULL,
    hour_unix_nano           INTEGER NOT NULL, -- start of the UTC hour of the span start
    model                    TEXT    NOT NULL DEFAULT '',
    provider                 TEXT    NOT NULL DEFAULT '',
    generations              INTEGER NOT NULL DEFAULT 0,
    errors                   INTEGER NOT NULL DEFAULT 0,
    known_cost_generations   INTEGER NOT NULL DEFAULT 0,
    input_tokens             INTEGER NOT NULL DEFAULT 0,
    output_tokens            INTEGER NOT NULL DEFAULT 0,
    total_cost_nano_usd      INTEGER NOT NULL DEFAULT 0,
    lat_00                   INTEGER NOT NULL DEFAULT 0,
    lat_01                   INTEGER NOT NULL DEFAULT 0,
    lat_02                   INTEGER NOT NULL DEFAULT 0,
    lat_03                   INTEGER NOT NULL DEFAULT 0,
    lat_04                   INTEGER NOT NULL DEFAULT 0,
    lat_05                   INTEGER NOT NULL DEFAULT 0,
    lat_06                   INTEGER NOT NULL DEFAULT 0,
    lat_07                   INTEGER NOT NULL DEFAULT 0,
    lat_08                   INTEGER NOT NULL DEFAULT 0,
    lat_09                   INTEGER NOT NULL DEFAULT 0,
    lat_10                   INTEGER NOT NULL DEFAULT 0,
    lat_11                   INTEGER NOT NULL DEFAULT 0,
    lat_12                   INTEGER NOT NULL DEFAULT 0,
    lat_13                   INTEGER NOT NULL DEFAULT 0,
    lat_14                   INTEGER NOT NULL DEFAULT 0,
    lat_15                   INTEGER NOT NULL DEFAULT 0,
    lat_16                   INTEGER NOT NULL DEFAULT 0,
    lat_17                   INTEGER NOT NULL DEFAULT 0,
    lat_18                   INTEGER NOT NULL DEFAULT 0,
    lat_19                   INTEGER NOT NULL DEFAULT 0,
    lat_20                   INTEGER NOT NULL DEFAULT 0,
    lat_21                   INTEGER NOT NULL DEFAULT 0,
    lat_22                   INTEGER NOT NULL DEFAULT 0,
    lat_23                   INTEGER NOT NULL DEFAULT 0,
    lat_24                   INTEGER NOT NULL DEFAULT 0,
    lat_25                   INTEGER NOT NULL DEFAULT 0,
    lat_26                   INTEGER NOT NULL DEFAULT 0,
    lat_27                   INTEGER NOT NULL DEFAULT 0,
    lat_28                   INTEGER NOT NULL DEFAULT 0,
    lat_29                   INTEGER NOT NULL DEFAULT 0,
    lat_30                   INTEGER NOT NULL DEFAULT 0,
    lat_31                   INTEGER NOT NULL DEFAULT 0,
    lat_32                   INTEGER NOT NULL DEFAULT 0,
    lat_33                   INTEGER NOT NULL DEFAULT 0,
    lat_34                   INTEGER NOT NULL DEFAULT 0,
    lat_35                   INTEGER NOT NULL DEFAULT 0,
    lat_36                   INTEGER NOT NULL DEFAULT 0,
    lat_37                   INTEGER NOT NULL DEFAULT 0,
    lat_38                   INTEGER NOT NULL DEFAULT 0,
    lat_39                   INTEGER NOT NULL DEFAULT 0,
    lat_40                   INTEGER NOT NULL DEFAULT 0,
    lat_41                   INTEGER NOT NULL DEFAULT 0,
    lat_42                   INTEGER NOT NULL DEFAULT 0,
    lat_43                   INTEGER NOT NULL DEFAULT 0,
    lat_44                   INTEGER NOT NULL DEFAULT 0,
    lat_45                   INTEGER NOT NULL DEFAULT 0,
    lat_46                   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, hour_unix_nano, model, provider)
) WITHOUT ROWID;

INSERT INTO gen_hourly
SELECT project_id, hour_unix_nano, model, provider,
       count(*),
       sum(CASE WHEN status_code = 'ERROR' THEN 1 ELSE 0 END),
       sum(CASE WHEN total_cost_usd IS NOT NULL THEN 1 ELSE 0 END),
       coalesce(sum(input_tokens), 0),
       coalesce(sum(output_tokens), 0),
       coalesce(sum(CAST(round(total_cost_usd * 1e9) AS INTEGER)), 0),
       sum(CASE WHEN bucket = 0 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 1 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 2 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 3 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 4 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 5 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 6 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 7 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 8 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 9 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 10 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 11 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 12 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 13 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 14 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 15 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 16 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 17 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 18 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 19 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 20 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 21 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 22 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 23 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 24 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 25 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 26 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 27 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 28 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 29 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 30 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 31 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 32 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 33 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 34 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 35 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 36 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 37 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 38 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 39 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 40 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 41 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 42 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 43 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 44 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 45 THEN 1 ELSE 0 END),
       sum(CASE WHEN bucket = 46 THEN 1 ELSE 0 END)
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
      WHERE is_generation = 1) g
GROUP BY 1, 2, 3, 4;
