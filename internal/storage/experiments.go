package storage

import (
	"cmp"
	"context"
	"sort"
	"strconv"
)

// ExperimentReader reads what the experiments analysis (DESIGN 6, GET
// /api/v1/experiments) compares: per arm of a model A/B config, of a
// prompt's versions and of a prompt A/B test, the figures of its
// generations and the per-session samples (count, mean, sum of squared
// deviations) of cost, tokens and every business metric. Every figure is
// aggregated in the database: no call reads spans one by one, and each
// returns a few rows per arm.
type ExperimentReader interface {
	// ModelArms groups the sessions assigned to each (config, version,
	// assigned model) with their generations: the spans of the session
	// that carry the config key (and the version, when the span has one).
	ModelArms(ctx context.Context, f ExperimentFilter) ([]Arm, error)
	// PromptArms groups the generations that carry a prompt key by key and
	// version (Version -1: the span had none).
	PromptArms(ctx context.Context, f ExperimentFilter) ([]Arm, error)
	// PromptTestArms groups the generations that carry a prompt A/B test
	// key by test and variant index (Index -1: the span had none).
	PromptTestArms(ctx context.Context, f ExperimentFilter) ([]Arm, error)
	// EvalRuns lists the project's eval runs, newest first, at most limit.
	EvalRuns(ctx context.Context, project string, limit int) ([]EvalRunRow, error)
}

// ExperimentFilter selects what the analysis reads. From (inclusive) and
// To (exclusive) bound, for model A/B, the time a session was first
// assigned (its generations are all counted); for prompts, the start time
// of the generations.
type ExperimentFilter struct {
	ProjectID string
	From, To  *int64
}

// MaxArms bounds the arms one call returns (the largest first), and
// MaxArmMetrics the (arm, metric name) samples.
const (
	MaxArms       = 500
	MaxArmMetrics = 5000
)

// ArmKey names one arm.
type ArmKey struct {
	// Key is the config key, prompt key or prompt A/B test key.
	Key string
	// Version is the config version or prompt version (-1 when the spans
	// had none); 0 for prompt A/B tests (the spans do not say which).
	Version int64
	// Model is the assigned model (model A/B only).
	Model string
	// Index is the prompt A/B variant index (-1 when the spans had none;
	// 0 for the other kinds).
	Index int64
}

// Sample summarizes per-session values: their number, mean and sum of
// squared deviations from the mean (computed in two passes, not from a
// sum of squares, so small costs keep their precision).
type Sample struct {
	N    int64
	Mean float64
	M2   float64
}

// Arm is what one arm of an experiment holds.
type Arm struct {
	ArmKey
	// AssignedSessions counts the sessions assigned to the arm (model A/B;
	// 0 for prompts, which have no assignment records).
	AssignedSessions int64
	// Sessions counts the sessions with at least one generation (for
	// prompts, a generation without a session counts as a session of its
	// own trace).
	Sessions               int64
	Generations            int64
	Errors                 int64
	UnknownCostGenerations int64
	InputTokens            int64
	OutputTokens           int64
	TotalCostUSD           float64
	// CostPerSession and TokensPerSession are over Sessions (unknown
	// costs count 0; see UnknownCostGenerations).
	CostPerSession   Sample
	TokensPerSession Sample
	// P50DurationMs and P95DurationMs are nearest-rank percentiles of the
	// generations' durations; nil without generations.
	P50DurationMs *float64
	P95DurationMs *float64
	// Metrics holds, per business metric name, a session's value (model
	// A/B: under the config key, else under no key; prompts: its mean
	// across keys) over the sessions that have one.
	Metrics map[string]Sample
}

// EvalRunRow is one listed eval run.
type EvalRunRow struct {
	RunID              string
	Name               *string
	Description        *string
	DatasetSize        *int64
	JudgeModel         *string
	Results            int64
	Scores             string // JSON {"metric": {"mean": m, "n": n}}
	ReceivedAtUnixNano int64
}

// armSource is one kind of experiment in SQL: gens selects its generation
// rows (columns k, v, arm, unit, cost, tin, tout, sc, ms) and values the
// business metric values of its sessions (columns k, v, arm, unit, nm, x).
type armSource struct {
	gens, values string
	// assigned counts the assigned sessions per arm (k, v, arm, n), or "".
	assigned string
}

// modelSource joins each assignment to the generations of its session that
// carry its config key (and its version when the span has one).
func (r *SQLReader) modelSource(q *query, f *ExperimentFilter) armSource {
	p := q.arg(f.ProjectID)
	where := "a.project_id = " + p
	if f.From != nil {
		where += " AND a.first_seen_unix_nano >= " + q.arg(*f.From)
	}
	if f.To != nil {
		where += " AND a.first_seen_unix_nano < " + q.arg(*f.To)
	}
	keys := "a.config_key AS k, a.config_version AS v, a.assigned_model AS arm, a.session_id AS unit"
	return armSource{
		gens: "SELECT " + keys + ", sp.total_cost_usd AS cost, sp.input_tokens AS tin, sp.output_tokens AS tout, " +
			"sp.status_code AS sc, sp.duration_ms AS ms FROM assignments a JOIN spans sp ON sp.project_id = " + p +
			" AND sp.config_key = a.config_key AND sp.session_id = a.session_id AND sp.is_generation = " + r.d.True +
			" AND (sp.config_version IS NULL OR sp.config_version = a.config_version) WHERE " + where,
		// A value posted under the config key wins over one posted without
		// a key (PY trace.span without config_key).
		values: "SELECT " + keys + ", m.name AS nm, m.value AS x FROM assignments a JOIN session_metrics m ON m.project_id = " + p +
			" AND m.session_id = a.session_id AND (m.config_key = a.config_key OR (m.config_key = '' AND NOT EXISTS (" +
			"SELECT 1 FROM session_metrics o WHERE o.project_id = m.project_id AND o.config_key = a.config_key" +
			" AND o.session_id = m.session_id AND o.name = m.name))) WHERE " + where,
		assigned: "SELECT a.config_key AS k, a.config_version AS v, a.assigned_model AS arm, count(*) AS n FROM assignments a WHERE " +
			where + " GROUP BY a.config_key, a.config_version, a.assigned_model",
	}
}

// promptSource groups generations by the value of key (and version, when
// not ""), with a session as the unit (a generation without one: its trace).
func (r *SQLReader) promptSource(q *query, f *ExperimentFilter, key, version, arm string) armSource {
	p := q.arg(f.ProjectID)
	where := "project_id = " + p + " AND is_generation = " + r.d.True + " AND " + key + " IS NOT NULL"
	if f.From != nil {
		where += " AND start_time_unix_nano >= " + q.arg(*f.From)
	}
	if f.To != nil {
		where += " AND start_time_unix_nano < " + q.arg(*f.To)
	}
	keys := key + " AS k, " + version + " AS v, " + arm + " AS arm, coalesce(session_id, 'trace:' || trace_id) AS unit"
	return armSource{
		gens: "SELECT " + keys + ", total_cost_usd AS cost, input_tokens AS tin, output_tokens AS tout, status_code AS sc, " +
			"duration_ms AS ms FROM spans WHERE " + where,
		// A session's value: its mean across the keys it was posted under.
		values: "SELECT u.k, u.v, u.arm, u.unit, m.name AS nm, avg(m.value) AS x FROM (SELECT DISTINCT " + keys +
			" FROM spans WHERE " + where + " AND session_id IS NOT NULL) u JOIN session_metrics m ON m.project_id = " +
			p + " AND m.session_id = u.unit GROUP BY u.k, u.v, u.arm, u.unit, m.name",
	}
}

// ModelArms implements ExperimentReader.
func (r *SQLReader) ModelArms(ctx context.Context, f ExperimentFilter) ([]Arm, error) {
	return r.arms(ctx, func(q *query) armSource { return r.modelSource(q, &f) }, modelKey)
}

// PromptArms implements ExperimentReader.
func (r *SQLReader) PromptArms(ctx context.Context, f ExperimentFilter) ([]Arm, error) {
	return r.arms(ctx, func(q *query) armSource {
		return r.promptSource(q, &f, "prompt_key", "coalesce(prompt_version, -1)", "''")
	}, promptKey)
}

// PromptTestArms implements ExperimentReader.
func (r *SQLReader) PromptTestArms(ctx context.Context, f ExperimentFilter) ([]Arm, error) {
	return r.arms(ctx, func(q *query) armSource {
		return r.promptSource(q, &f, "prompt_ab_test_key", "0", "CAST(coalesce(prompt_variant_index, -1) AS TEXT)")
	}, testKey)
}

func modelKey(k string, v int64, arm string) ArmKey { return ArmKey{Key: k, Version: v, Model: arm} }
func promptKey(k string, v int64, _ string) ArmKey  { return ArmKey{Key: k, Version: v} }
func testKey(k string, _ int64, arm string) ArmKey {
	i, err := strconv.ParseInt(arm, 10, 64)
	if err != nil {
		i = -1
	}
	return ArmKey{Key: k, Index: i}
}

const armCols = "k, v, arm"

// arms runs the queries of one kind of experiment: the per-session
// samples, the duration percentiles, the metric samples and (model A/B)
// the assigned sessions, merged by arm.
func (r *SQLReader) arms(ctx context.Context, src func(*query) armSource, key func(string, int64, string) ArmKey) ([]Arm, error) {
	byKey := map[ArmKey]*Arm{}
	get := func(k ArmKey) *Arm {
		a := byKey[k]
		if a == nil {
			a = &Arm{ArmKey: k}
			byKey[k] = a
		}
		return a
	}
	limit := strconv.Itoa(MaxArms)

	// Per-session figures, then per arm: totals and two-pass samples.
	q := &query{d: &r.d}
	s := src(q)
	sql := "WITH g AS (" + s.gens + "), " +
		"s AS (SELECT " + armCols + ", unit, count(*) AS gens, sum(CASE WHEN sc = 'ERROR' THEN 1 ELSE 0 END) AS errs, " +
		"sum(CASE WHEN cost IS NULL THEN 1 ELSE 0 END) AS unknown, CAST(coalesce(sum(cost), 0) AS DOUBLE PRECISION) AS cost, " +
		"CAST(coalesce(sum(tin), 0) AS BIGINT) AS tin, CAST(coalesce(sum(tout), 0) AS BIGINT) AS tout FROM g GROUP BY " + armCols + ", unit), " +
		"m AS (SELECT " + armCols + ", count(*) AS n, CAST(avg(cost) AS DOUBLE PRECISION) AS mc, " +
		"CAST(avg(tin + tout) AS DOUBLE PRECISION) AS mt FROM s GROUP BY " + armCols + ") " +
		"SELECT m.k, m.v, m.arm, m.n, CAST(sum(s.gens) AS BIGINT), CAST(sum(s.errs) AS BIGINT), CAST(sum(s.unknown) AS BIGINT), " +
		"CAST(sum(s.tin) AS BIGINT), CAST(sum(s.tout) AS BIGINT), CAST(sum(s.cost) AS DOUBLE PRECISION), m.mc, " +
		"CAST(sum((s.cost - m.mc) * (s.cost - m.mc)) AS DOUBLE PRECISION), m.mt, " +
		"CAST(sum((s.tin + s.tout - m.mt) * (s.tin + s.tout - m.mt)) AS DOUBLE PRECISION) " +
		"FROM s JOIN m ON s.k = m.k AND s.v = m.v AND s.arm = m.arm GROUP BY m.k, m.v, m.arm, m.n, m.mc, m.mt " +
		"ORDER BY m.n DESC, m.k, m.v, m.arm LIMIT " + limit
	err := r.each(ctx, sql, q.args, func(scan func(...any) error) error {
		var k, arm string
		var v int64
		var x Arm
		if err := scan(&k, &v, &arm, &x.Sessions, &x.Generations, &x.Errors, &x.UnknownCostGenerations, &x.InputTokens,
			&x.OutputTokens, &x.TotalCostUSD, &x.CostPerSession.Mean, &x.CostPerSession.M2,
			&x.TokensPerSession.Mean, &x.TokensPerSession.M2); err != nil {
			return err
		}
		x.CostPerSession.N, x.TokensPerSession.N = x.Sessions, x.Sessions
		a := get(key(k, v, arm))
		x.ArmKey, x.AssignedSessions, x.Metrics = a.ArmKey, a.AssignedSessions, a.Metrics
		*a = x
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Duration percentiles (nearest rank): the database sorts each arm's
	// durations and returns the two ranks.
	q = &query{d: &r.d}
	s = src(q)
	sql = "WITH g AS (" + s.gens + "), " +
		"r AS (SELECT " + armCols + ", ms, row_number() OVER (PARTITION BY " + armCols + " ORDER BY ms) AS rn, " +
		"count(*) OVER (PARTITION BY " + armCols + ") AS n FROM g) " +
		"SELECT " + armCols + ", ms, rn, n FROM r WHERE rn = (50 * n + 99) / 100 OR rn = (95 * n + 99) / 100 LIMIT " + strconv.Itoa(4*MaxArms)
	err = r.each(ctx, sql, q.args, func(scan func(...any) error) error {
		var k, arm string
		var v, rn, n int64
		var ms float64
		if err := scan(&k, &v, &arm, &ms, &rn, &n); err != nil {
			return err
		}
		a := byKey[key(k, v, arm)]
		if a == nil {
			return nil // an arm beyond MaxArms
		}
		if rn == (50*n+99)/100 {
			a.P50DurationMs = &ms
		}
		if rn == (95*n+99)/100 {
			a.P95DurationMs = &ms
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Assigned sessions (model A/B): arms without generations appear too.
	q = &query{d: &r.d}
	if s = src(q); s.assigned != "" {
		err = r.each(ctx, s.assigned+" ORDER BY n DESC LIMIT "+limit, q.args, func(scan func(...any) error) error {
			var k, arm string
			var v, n int64
			if err := scan(&k, &v, &arm, &n); err != nil {
				return err
			}
			get(key(k, v, arm)).AssignedSessions = n
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	// Business metrics: per arm and name, a two-pass sample of the
	// sessions' values.
	q = &query{d: &r.d}
	s = src(q)
	sql = "WITH vals AS (" + s.values + "), " +
		"m AS (SELECT " + armCols + ", nm, count(*) AS n, CAST(avg(x) AS DOUBLE PRECISION) AS mx FROM vals GROUP BY " + armCols + ", nm) " +
		"SELECT m.k, m.v, m.arm, m.nm, m.n, m.mx, CAST(sum((vals.x - m.mx) * (vals.x - m.mx)) AS DOUBLE PRECISION) " +
		"FROM vals JOIN m ON vals.k = m.k AND vals.v = m.v AND vals.arm = m.arm AND vals.nm = m.nm GROUP BY m.k, m.v, m.arm, m.nm, m.n, m.mx " +
		"ORDER BY m.k, m.v, m.arm, m.nm LIMIT " + strconv.Itoa(MaxArmMetrics)
	err = r.each(ctx, sql, q.args, func(scan func(...any) error) error {
		var k, arm, name string
		var v int64
		var smp Sample
		if err := scan(&k, &v, &arm, &name, &smp.N, &smp.Mean, &smp.M2); err != nil {
			return err
		}
		a := byKey[key(k, v, arm)]
		if a == nil {
			if len(byKey) >= MaxArms {
				return nil
			}
			a = get(key(k, v, arm)) // metrics but no generation in range
		}
		if a.Metrics == nil {
			a.Metrics = map[string]Sample{}
		}
		a.Metrics[name] = smp
		return nil
	})
	if err != nil {
		return nil, err
	}

	out := make([]Arm, 0, len(byKey))
	for _, a := range byKey {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return armLess(out[i].ArmKey, out[j].ArmKey) })
	return out, nil
}

// armLess orders arms by key, version, then variant (model name or index).
func armLess(a, b ArmKey) bool {
	return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Index, b.Index),
		cmp.Compare(a.Model, b.Model)) < 0
}

// each runs a query and calls fn for each row with its scan function.
func (r *SQLReader) each(ctx context.Context, sql string, args []any, fn func(scan func(...any) error) error) error {
	rows, err := r.q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EvalRuns implements ExperimentReader.
func (r *SQLReader) EvalRuns(ctx context.Context, project string, limit int) ([]EvalRunRow, error) {
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	q := &query{d: &r.d}
	sql := "SELECT run_id, name, description, dataset_size, judge_model, results, scores, received_at_unix_nano FROM eval_runs" +
		" WHERE project_id = " + q.arg(project) + " ORDER BY received_at_unix_nano DESC, run_id LIMIT " + strconv.Itoa(limit)
	return collect(ctx, r.q, sql, q.args, func(e *EvalRunRow) []any {
		return []any{&e.RunID, &e.Name, &e.Description, &e.DatasetSize, &e.JudgeModel, &e.Results, &e.Scores, &e.ReceivedAtUnixNano}
	})
}

var _ ExperimentReader = (*SQLReader)(nil)
