-- v9: the generations in cost order, and by model (issue 11.7).
--
-- A page of generations sorted by cost (the API's sort=-total_cost_usd,
-- the console's cost column) was chosen by sorting every generation of the
-- project: 630 ms at 330,000 generations. In this index a page is the next
-- rows of a range scan. The key is the list's sort expression and
-- tie-break exactly (coalesce(total_cost_usd, -1), trace_id, span_id), so
-- the planner walks it in either direction; the start time is included so
-- a time range is tested in the index.
CREATE INDEX spans_gen_cost ON spans (project_id, (coalesce(total_cost_usd, -1)), trace_id, span_id)
    INCLUDE (start_time_unix_nano)
    WHERE is_generation;

-- The distinct sessions and customers of one model's generations (the
-- summary filtered by model): counted over that model's generations alone
-- instead of over every generation of the project. Keyed by model then
-- start time, so a write appends to its model's end of the index (keyed by
-- session it would dirty a random page per generation), and a time range
-- is a range of it. It holds every column the summary's filters test
-- (index-only).
CREATE INDEX spans_gen_model ON spans (project_id, model, start_time_unix_nano)
    INCLUDE (session_id, customer_id, provider, status_code)
    WHERE is_generation;

-- The sessions in cost order: the overview's top sessions and a sessions
-- page sorted by cost. Without it every session of the project is read and
-- sorted (20-80 ms at 50,000 sessions, the slowest read of the overview);
-- here a page is the first entries in range. The key is the list's sort
-- expression exactly as the reader writes it (the view's cost column,
-- NULL when no generation had a cost, coalesced to -1), then its
-- tie-break. Costs change with every generation of a session, as its last
-- seen already does, so the updates were not HOT before and one more index
-- entry is what this costs a write. SQLite reads session_totals in key
-- order instead (10 ms at 50,000 sessions) and has no such index.
CREATE INDEX session_totals_cost ON session_totals (project_id,
    (coalesce(CASE WHEN total_cost_known > 0 THEN CAST(total_cost_nano_usd AS DOUBLE PRECISION) / 1e9 END, -1)), session_id);
