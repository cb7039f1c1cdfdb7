-- v6: retention of the Fallom SDK tables (0005 is the console's).
--
-- content_days clears eval_runs.body (the eval inputs and outputs) to '';
-- eval_runs_with_body holds only the runs that still have one, so a content
-- pass with nothing to do reads an empty index, as spans_with_content does.
-- span_days deletes by these times across projects: without these indexes
-- each pass would scan every row of the table.
CREATE INDEX eval_runs_with_body ON eval_runs (received_at_unix_nano) WHERE body <> '';
CREATE INDEX eval_runs_received ON eval_runs (received_at_unix_nano);
CREATE INDEX assignment_calls_received ON assignment_calls (received_at_unix_nano);
CREATE INDEX session_metrics_updated ON session_metrics (updated_at_unix_nano);
CREATE INDEX assignments_last_seen ON assignments (last_seen_unix_nano);
