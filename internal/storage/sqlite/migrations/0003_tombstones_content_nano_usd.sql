-- v3: retention that stays exact and cheap, and money in integers.
--
-- span_tombstones: the key of every span retention deleted. A replay of
-- such a span is acknowledged but not stored or counted again, so
-- usage_daily = the stored generations + what retention removed, exactly.
CREATE TABLE span_tombstones (
    project_id            TEXT    NOT NULL,
    trace_id              TEXT    NOT NULL,
    span_id               TEXT    NOT NULL,
    deleted_at_unix_nano  INTEGER NOT NULL,
    PRIMARY KEY (project_id, trace_id, span_id)
) WITHOUT ROWID;

-- content_cleared: retention cleared prompt and completion; a replay keeps
-- them cleared (a replay cannot bring removed content back).
ALTER TABLE spans ADD COLUMN content_cleared INTEGER NOT NULL DEFAULT 0;

-- Rows that still hold content, by age: a content-retention pass walks only
-- rows it will clear, so a pass with nothing to do costs the same on a
-- table of 1M or 50M cleared rows.
CREATE INDEX spans_with_content ON spans (received_at_unix_nano)
    WHERE prompt IS NOT NULL OR completion IS NOT NULL;

-- usage_daily: costs as integer nano-USD (exact sums: no float residue such
-- as 2.78e-17 USD on a row whose generations were all removed). SQLite
-- cannot change a column's type: the table is rebuilt.
CREATE TABLE usage_daily_v3 (
    project_id                TEXT    NOT NULL,
    day                       TEXT    NOT NULL, -- YYYY-MM-DD, UTC day of the span start
    model                     TEXT    NOT NULL DEFAULT '',
    customer_id               TEXT    NOT NULL DEFAULT '',
    generations               INTEGER NOT NULL DEFAULT 0,
    errors                    INTEGER NOT NULL DEFAULT 0,
    unknown_cost_generations  INTEGER NOT NULL DEFAULT 0,
    input_tokens              INTEGER NOT NULL DEFAULT 0,
    output_tokens             INTEGER NOT NULL DEFAULT 0,
    total_tokens              INTEGER NOT NULL DEFAULT 0,
    cached_input_tokens       INTEGER NOT NULL DEFAULT 0,
    cache_write_input_tokens  INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens          INTEGER NOT NULL DEFAULT 0,
    input_cost_nano_usd       INTEGER NOT NULL DEFAULT 0,
    output_cost_nano_usd      INTEGER NOT NULL DEFAULT 0,
    total_cost_nano_usd       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, day, model, customer_id)
) WITHOUT ROWID;

INSERT INTO usage_daily_v3
SELECT project_id, day, model, customer_id,
       generations, errors, unknown_cost_generations,
       input_tokens, output_tokens, total_tokens,
       cached_input_tokens, cache_write_input_tokens, reasoning_tokens,
       CAST(round(input_cost_usd * 1e9) AS INTEGER),
       CAST(round(output_cost_usd * 1e9) AS INTEGER),
       CAST(round(total_cost_usd * 1e9) AS INTEGER)
FROM usage_daily;

DROP TABLE usage_daily;
ALTER TABLE usage_daily_v3 RENAME TO usage_daily;
