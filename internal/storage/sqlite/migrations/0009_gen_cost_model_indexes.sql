-- v9: the generations in cost order, and by model (issue 11.7).
--
-- A page of generations sorted by cost (the API's sort=-total_cost_usd,
-- the console's cost column) was chosen by sorting every generation of the
-- project from spans_gen_start: 120-160 ms at 330,000 generations. In this
-- index a page is the next rows of a range scan. The key is the list's
-- sort expression and tie-break exactly (coalesce(total_cost_usd, -1),
-- trace_id, span_id), so SQLite walks it in either direction; the start
-- time after them lets a time range be tested in the index.
CREATE INDEX spans_gen_cost ON spans (
    project_id, coalesce(total_cost_usd, -1), trace_id, span_id, start_time_unix_nano)
    WHERE is_generation = 1;

-- The distinct sessions and customers of one model's generations (the
-- summary filtered by model): through spans_gen_start they were counted
-- over every generation of the project, 140 ms at 330,000; here over that
-- model's alone. Keyed by model then start time, so a write appends to its
-- model's end of the index, as spans_gen_start does: keyed by model then
-- session (sessions in index order, 15 instead of 35 ms for the counts) it
-- dirtied a random page per generation and cost about 6% of ingest CPU. It
-- holds every column the summary's filters test, so a time range,
-- provider or status is tested in the index too.
CREATE INDEX spans_gen_model ON spans (
    project_id, model, start_time_unix_nano, session_id, customer_id, provider, status_code)
    WHERE is_generation = 1;
