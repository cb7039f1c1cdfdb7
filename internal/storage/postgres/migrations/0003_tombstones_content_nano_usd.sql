-- v3: retention that stays exact and cheap, and money in integers.
--
-- span_tombstones: the key of every span retention deleted. A replay of
-- such a span is acknowledged but not stored or counted again, so
-- usage_daily = the stored generations + what retention removed, exactly.
CREATE TABLE span_tombstones (
    project_id            text   NOT NULL,
    trace_id              text   NOT NULL,
    span_id               text   NOT NULL,
    deleted_at_unix_nano  bigint NOT NULL,
    PRIMARY KEY (project_id, trace_id, span_id)
);

-- content_cleared: retention cleared prompt and completion; a replay keeps
-- them cleared (a replay cannot bring removed content back). A constant
-- default: no table rewrite.
ALTER TABLE spans ADD COLUMN content_cleared boolean NOT NULL DEFAULT false;

-- Rows that still hold content, by age: a content-retention pass walks only
-- rows it will clear, so a pass with nothing to do costs the same on a
-- table of 1M or 50M cleared rows (it was a sequential scan).
CREATE INDEX spans_with_content ON spans (received_at_unix_nano)
    WHERE prompt IS NOT NULL OR completion IS NOT NULL;

-- usage_daily: costs as integer nano-USD (exact sums: no float residue such
-- as 2.78e-17 USD on a row whose generations were all removed).
ALTER TABLE usage_daily
    ALTER COLUMN input_cost_usd DROP DEFAULT,
    ALTER COLUMN output_cost_usd DROP DEFAULT,
    ALTER COLUMN total_cost_usd DROP DEFAULT,
    ALTER COLUMN input_cost_usd TYPE bigint USING round(input_cost_usd * 1e9)::bigint,
    ALTER COLUMN output_cost_usd TYPE bigint USING round(output_cost_usd * 1e9)::bigint,
    ALTER COLUMN total_cost_usd TYPE bigint USING round(total_cost_usd * 1e9)::bigint,
    ALTER COLUMN input_cost_usd SET DEFAULT 0,
    ALTER COLUMN output_cost_usd SET DEFAULT 0,
    ALTER COLUMN total_cost_usd SET DEFAULT 0;
ALTER TABLE usage_daily RENAME COLUMN input_cost_usd TO input_cost_nano_usd;
ALTER TABLE usage_daily RENAME COLUMN output_cost_usd TO output_cost_nano_usd;
ALTER TABLE usage_daily RENAME COLUMN total_cost_usd TO total_cost_nano_usd;
