-- v4: the Fallom SDK backend (DESIGN 2.5 and 6).
--
-- Experiment fields of spans. ADD COLUMN of a nullable column without a
-- default only changes the schema: no row of a large table is rewritten.
-- config_version is a column too (the SDK rarely sends it on traces, but
-- when the processor has it the analysis matches it exactly).
ALTER TABLE spans ADD COLUMN config_key TEXT;
ALTER TABLE spans ADD COLUMN config_version INTEGER;
ALTER TABLE spans ADD COLUMN prompt_key TEXT;
ALTER TABLE spans ADD COLUMN prompt_version INTEGER;
ALTER TABLE spans ADD COLUMN prompt_ab_test_key TEXT;
ALTER TABLE spans ADD COLUMN prompt_variant_index INTEGER;

-- The experiments analysis joins a config's assigned sessions to their
-- spans, and groups spans by prompt and by prompt A/B variant. Partial
-- indexes: spans without these fields (every non-SDK span) are not in them.
CREATE INDEX spans_project_config_session ON spans (project_id, config_key, session_id)
    WHERE config_key IS NOT NULL;
CREATE INDEX spans_project_prompt ON spans (project_id, prompt_key, prompt_version)
    WHERE prompt_key IS NOT NULL;
CREATE INDEX spans_project_prompt_ab ON spans (project_id, prompt_ab_test_key, prompt_variant_index)
    WHERE prompt_ab_test_key IS NOT NULL;

-- Model A/B assignments (POST /sessions): one row per project, config,
-- version and session. calls counts the SDK's lookups (it posts one per
-- get(), never deduplicated); assigned_model and customer_id are those of
-- the latest lookup.
CREATE TABLE assignments (
    project_id            TEXT    NOT NULL,
    config_key            TEXT    NOT NULL,
    config_version        INTEGER NOT NULL,
    session_id            TEXT    NOT NULL,
    assigned_model        TEXT    NOT NULL,
    customer_id           TEXT,
    first_seen_unix_nano  INTEGER NOT NULL,
    last_seen_unix_nano   INTEGER NOT NULL,
    calls                 INTEGER NOT NULL,
    PRIMARY KEY (project_id, config_key, config_version, session_id)
) WITHOUT ROWID;

-- One row per counted lookup, keyed by the time the receiver took it in:
-- a redelivered record (a retry, a persistent-queue replay) finds its row
-- and is not counted again.
CREATE TABLE assignment_calls (
    project_id             TEXT    NOT NULL,
    config_key             TEXT    NOT NULL,
    config_version         INTEGER NOT NULL,
    session_id             TEXT    NOT NULL,
    received_at_unix_nano  INTEGER NOT NULL,
    PRIMARY KEY (project_id, config_key, config_version, session_id, received_at_unix_nano)
) WITHOUT ROWID;

-- Business metrics (POST /spans): the latest value by the time it was
-- received wins, whatever order the writes arrive in. config_key is ''
-- when the SDK sent none.
CREATE TABLE session_metrics (
    project_id            TEXT    NOT NULL,
    config_key            TEXT    NOT NULL DEFAULT '',
    session_id            TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    value                 REAL    NOT NULL,
    updated_at_unix_nano  INTEGER NOT NULL,
    PRIMARY KEY (project_id, config_key, session_id, name)
) WITHOUT ROWID;
CREATE INDEX session_metrics_session ON session_metrics (project_id, session_id);

-- Eval runs (POST /api/sdk-evals). body is the request as sent; scores is
-- {"metric": {"mean": m, "n": n}} over the results that scored it,
-- computed when stored so listing runs reads no result.
CREATE TABLE eval_runs (
    project_id             TEXT    NOT NULL,
    run_id                 TEXT    NOT NULL,
    name                   TEXT,
    description            TEXT,
    dataset_size           INTEGER,
    judge_model            TEXT,
    results                INTEGER NOT NULL,
    scores                 TEXT    NOT NULL DEFAULT '{}',
    body                   TEXT    NOT NULL,
    received_at_unix_nano  INTEGER NOT NULL,
    PRIMARY KEY (project_id, run_id)
);
CREATE INDEX eval_runs_project_received ON eval_runs (project_id, received_at_unix_nano);
