package fallomconsoleextension

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"

	"github.com/fallom/fallom-collector/internal/abtest"
	"github.com/fallom/fallom-collector/internal/storage"
)

// The experiments analysis (DESIGN 6, issue 12 item 4): model A/B configs,
// prompt versions and prompt A/B tests compared variant by variant, and the
// eval runs the SDK uploaded. The database aggregates (storage
// .ExperimentReader: a few rows per variant); this file turns the
// aggregates into intervals and tests (internal/abtest, gonum).

// testName names the comparison on the page and in the API.
const testName = "two-sided Welch's t test of each variant against the first (unequal variances, Welch-Satterthwaite df)"

// maxEvalRuns bounds the eval runs listed.
const maxEvalRuns = 100

// weightSource gives the configured weights of a variant, when the
// console knows the SDK file. Without one, weights are unknown: the report
// shows each variant's observed share of the assigned sessions instead,
// and no sample ratio check is possible (the configured split is what it
// checks against).
type weightSource interface {
	// ConfigWeights returns the models of a config version in the file's
	// order and their weights (percent).
	ConfigWeights(project, key string, version int64) (models []string, weights []float64, ok bool)
	// PromptTestWeights returns the weights of a prompt A/B test's current
	// version, by variant index.
	PromptTestWeights(project, key string) (weights []float64, ok bool)
}

type experimentsJSON struct {
	Test          string           `json:"test"`
	Confidence    float64          `json:"confidence"`
	SRMAlpha      float64          `json:"srm_alpha"`
	Configs       []configJSON     `json:"configs"`
	Prompts       []promptJSON     `json:"prompts"`
	PromptABTests []promptTestJSON `json:"prompt_ab_tests"`
	EvalRuns      []evalRunJSON    `json:"eval_runs"`
	Warnings      []string         `json:"warnings"`
}

type configJSON struct {
	ConfigKey     string `json:"config_key"`
	ConfigVersion int64  `json:"config_version"`
	// WeightsSource is "sdk_file" (configured weights) or "unknown".
	WeightsSource       string        `json:"weights_source"`
	SampleRatioMismatch *srmJSON      `json:"sample_ratio_mismatch"`
	Variants            []variantJSON `json:"variants"`
}

type promptJSON struct {
	PromptKey     string `json:"prompt_key"`
	PromptVersion *int64 `json:"prompt_version"` // null: spans without a version
	figuresJSON
}

type promptTestJSON struct {
	PromptABTestKey     string        `json:"prompt_ab_test_key"`
	WeightsSource       string        `json:"weights_source"`
	SampleRatioMismatch *srmJSON      `json:"sample_ratio_mismatch"`
	Variants            []variantJSON `json:"variants"`
}

// variantJSON is one arm of a model A/B config (Model) or of a prompt A/B
// test (PromptVariantIndex).
type variantJSON struct {
	Model              *string  `json:"model,omitempty"`
	PromptVariantIndex *int64   `json:"prompt_variant_index,omitempty"`
	Weight             *float64 `json:"weight"`
	// AssignedShare is the variant's share of the assigned sessions (or,
	// for prompt tests, of the sessions with generations).
	AssignedShare *float64 `json:"assigned_share"`
	figuresJSON
}

// figuresJSON are the figures of one arm.
type figuresJSON struct {
	AssignedSessions        *int64              `json:"assigned_sessions,omitempty"`
	SessionsWithGenerations int64               `json:"sessions_with_generations"`
	Generations             int64               `json:"generations"`
	Errors                  int64               `json:"errors"`
	ErrorRate               *float64            `json:"error_rate"`
	InputTokens             int64               `json:"input_tokens"`
	OutputTokens            int64               `json:"output_tokens"`
	TotalCostUSD            float64             `json:"total_cost_usd"`
	UnknownCostGenerations  int64               `json:"unknown_cost_generations"`
	CostPerSession          meanJSON            `json:"cost_per_session_usd"`
	TokensPerSession        meanJSON            `json:"tokens_per_session"`
	P50DurationMs           *float64            `json:"p50_duration_ms"`
	P95DurationMs           *float64            `json:"p95_duration_ms"`
	Metrics                 map[string]meanJSON `json:"metrics"`
	// VsFirst compares this arm with the first arm of its group (absent
	// on the first).
	VsFirst *comparisonJSON `json:"vs_first,omitempty"`
}

// meanJSON is a per-session mean with its confidence interval (null below
// two sessions).
type meanJSON struct {
	N      int64    `json:"n"`
	Mean   *float64 `json:"mean"`
	CILow  *float64 `json:"ci95_low"`
	CIHigh *float64 `json:"ci95_high"`
}

type comparisonJSON struct {
	CostPerSession   *welchJSON            `json:"cost_per_session_usd"`
	TokensPerSession *welchJSON            `json:"tokens_per_session"`
	Metrics          map[string]*welchJSON `json:"metrics"`
}

// welchJSON is one test; null when either side has fewer than two
// sessions or neither has any spread.
type welchJSON struct {
	Diff float64 `json:"diff"`
	T    float64 `json:"t"`
	DF   float64 `json:"df"`
	P    float64 `json:"p"`
}

type srmJSON struct {
	// Observed are the assigned sessions per variant, Expected what the
	// weights make of their total.
	Observed  []int64   `json:"observed"`
	Expected  []float64 `json:"expected"`
	ChiSquare *float64  `json:"chi_square"` // null: a variant of weight 0 got sessions
	DF        int       `json:"df"`
	P         float64   `json:"p"`
	Mismatch  bool      `json:"mismatch"`
}

type evalRunJSON struct {
	RunID              string                       `json:"run_id"`
	Name               *string                      `json:"name"`
	Description        *string                      `json:"description"`
	DatasetSize        *int64                       `json:"dataset_size"`
	JudgeModel         *string                      `json:"judge_model"`
	Results            int64                        `json:"results"`
	Scores             map[string]storage.EvalScore `json:"scores"`
	ReceivedAtUnixNano int64                        `json:"received_at_unix_nano,string"`
}

// experimentReader is the database's experiments side.
func (c *console) experimentReader() (storage.ExperimentReader, error) {
	er, ok := c.reader.(storage.ExperimentReader)
	if !ok {
		return nil, errors.New("fallomconsole: this storage cannot read experiments")
	}
	return er, nil
}

func (c *console) apiExperiments(w http.ResponseWriter, r *http.Request, p principal) error {
	u := r.URL.Query()
	for name, vals := range u {
		if name != "from" && name != "to" {
			return badRequestf("unknown query parameter %q (experiments take from and to)", name)
		}
		if len(vals) > 1 {
			return badRequestf("query parameter %q is given %d times", name, len(vals))
		}
	}
	f := storage.ExperimentFilter{ProjectID: p.projectID}
	var err error
	if f.From, _, err = parseTime(u, "from"); err != nil {
		return err
	}
	if f.To, _, err = parseTime(u, "to"); err != nil {
		return err
	}
	rep, err := c.experiments(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, rep)
}

// experiments builds the report of one project.
func (c *console) experiments(ctx context.Context, f storage.ExperimentFilter) (*experimentsJSON, error) {
	er, err := c.experimentReader()
	if err != nil {
		return nil, err
	}
	rep := &experimentsJSON{Test: testName, Confidence: abtest.Confidence, SRMAlpha: abtest.SRMAlpha,
		Configs: []configJSON{}, Prompts: []promptJSON{}, PromptABTests: []promptTestJSON{}, EvalRuns: []evalRunJSON{}, Warnings: []string{}}
	models, err := er.ModelArms(ctx, f)
	if err != nil {
		return nil, err
	}
	prompts, err := er.PromptArms(ctx, f)
	if err != nil {
		return nil, err
	}
	tests, err := er.PromptTestArms(ctx, f)
	if err != nil {
		return nil, err
	}
	runs, err := er.EvalRuns(ctx, f.ProjectID, maxEvalRuns)
	if err != nil {
		return nil, err
	}
	for _, g := range groupArms(models, func(a *storage.Arm) [2]any { return [2]any{a.Key, a.Version} }) {
		rep.Configs = append(rep.Configs, c.configReport(f.ProjectID, g))
	}
	for _, g := range groupArms(prompts, func(a *storage.Arm) [2]any { return [2]any{a.Key, nil} }) {
		ordered := unknownLast(g, func(a *storage.Arm) bool { return a.Version < 0 })
		var first *storage.Arm
		for i := range ordered {
			a := &ordered[i]
			pj := promptJSON{PromptKey: a.Key, figuresJSON: figures(a, first, false)}
			if a.Version >= 0 {
				v := a.Version
				pj.PromptVersion = &v
			}
			rep.Prompts = append(rep.Prompts, pj)
			if first == nil {
				first = a
			}
		}
	}
	for _, g := range groupArms(tests, func(a *storage.Arm) [2]any { return [2]any{a.Key, nil} }) {
		rep.PromptABTests = append(rep.PromptABTests, c.promptTestReport(f.ProjectID, g))
	}
	for i := range runs {
		rep.EvalRuns = append(rep.EvalRuns, evalRunOf(&runs[i]))
	}
	for _, cfg := range rep.Configs {
		if m := cfg.SampleRatioMismatch; m != nil && m.Mismatch {
			rep.Warnings = append(rep.Warnings, "sample ratio mismatch in config "+strconv.Quote(cfg.ConfigKey)+" version "+
				strconv.FormatInt(cfg.ConfigVersion, 10)+": the assigned sessions do not follow the configured weights (p = "+
				strconv.FormatFloat(m.P, 'g', 3, 64)+"); its comparisons cannot be trusted")
		}
	}
	for _, t := range rep.PromptABTests {
		if m := t.SampleRatioMismatch; m != nil && m.Mismatch {
			rep.Warnings = append(rep.Warnings, "sample ratio mismatch in prompt A/B test "+strconv.Quote(t.PromptABTestKey)+
				": the sessions do not follow the configured weights (p = "+strconv.FormatFloat(m.P, 'g', 3, 64)+")")
		}
	}
	return rep, nil
}

// groupArms splits arms (sorted by key, version, variant) into runs with
// the same group key.
func groupArms(arms []storage.Arm, key func(*storage.Arm) [2]any) [][]storage.Arm {
	var out [][]storage.Arm
	for i := range arms {
		if i == 0 || key(&arms[i]) != key(&arms[i-1]) {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], arms[i])
	}
	return out
}

// unknownLast moves the arms whose version or index is unknown to the end
// (the first arm is the one the others are compared with).
func unknownLast(arms []storage.Arm, unknown func(*storage.Arm) bool) []storage.Arm {
	out := make([]storage.Arm, 0, len(arms))
	var tail []storage.Arm
	for i := range arms {
		if unknown(&arms[i]) {
			tail = append(tail, arms[i])
		} else {
			out = append(out, arms[i])
		}
	}
	return append(out, tail...)
}

// configReport compares the models of one config version. With the SDK
// file, variants follow its order (the first is the baseline), models it
// does not list come after with weight 0; without it, by model name.
func (c *console) configReport(project string, arms []storage.Arm) configJSON {
	cj := configJSON{ConfigKey: arms[0].Key, ConfigVersion: arms[0].Version, WeightsSource: "unknown", Variants: []variantJSON{}}
	var weights map[string]float64
	if c.weights != nil {
		if models, ws, ok := c.weights.ConfigWeights(project, cj.ConfigKey, cj.ConfigVersion); ok {
			cj.WeightsSource = "sdk_file"
			weights = map[string]float64{}
			rank := map[string]int{}
			for i, m := range models {
				weights[m] += ws[i]
				if _, seen := rank[m]; !seen {
					rank[m] = i
				}
			}
			// Configured variants without any assignment still get a row.
			for m := range rank {
				if !slices.ContainsFunc(arms, func(a storage.Arm) bool { return a.Model == m }) {
					arms = append(arms, storage.Arm{ArmKey: storage.ArmKey{Key: cj.ConfigKey, Version: cj.ConfigVersion, Model: m}})
				}
			}
			sort.SliceStable(arms, func(i, j int) bool {
				ri, iok := rank[arms[i].Model]
				rj, jok := rank[arms[j].Model]
				if iok != jok {
					return iok
				}
				if iok {
					return ri < rj
				}
				return arms[i].Model < arms[j].Model
			})
		}
	}
	var total int64
	for i := range arms {
		total += arms[i].AssignedSessions
	}
	observed := make([]int64, len(arms))
	ws := make([]float64, len(arms))
	for i := range arms {
		a := &arms[i]
		v := variantJSON{Model: &a.Model, figuresJSON: figures(a, &arms[0], true), AssignedShare: share(a.AssignedSessions, total)}
		if weights != nil {
			w := weights[a.Model]
			v.Weight = &w
			ws[i] = w
		}
		observed[i] = a.AssignedSessions
		cj.Variants = append(cj.Variants, v)
	}
	if weights != nil {
		cj.SampleRatioMismatch = srm(observed, ws)
	}
	return cj
}

// promptTestReport compares the variants of one prompt A/B test by index;
// its sessions with generations stand for the assigned sessions (the SDK
// records no prompt assignment).
func (c *console) promptTestReport(project string, arms []storage.Arm) promptTestJSON {
	arms = unknownLast(arms, func(a *storage.Arm) bool { return a.Index < 0 })
	tj := promptTestJSON{PromptABTestKey: arms[0].Key, WeightsSource: "unknown", Variants: []variantJSON{}}
	var weights []float64
	if c.weights != nil {
		if ws, ok := c.weights.PromptTestWeights(project, tj.PromptABTestKey); ok {
			tj.WeightsSource, weights = "sdk_file", ws
		}
	}
	var total int64
	for i := range arms {
		total += arms[i].Sessions
	}
	observed := make([]int64, 0, len(arms))
	ws := make([]float64, 0, len(arms))
	for i := range arms {
		a := &arms[i]
		idx := a.Index
		v := variantJSON{PromptVariantIndex: &idx, figuresJSON: figures(a, &arms[0], false), AssignedShare: share(a.Sessions, total)}
		if weights != nil {
			w := 0.0
			if idx >= 0 && idx < int64(len(weights)) {
				w = weights[idx]
			}
			v.Weight = &w
			ws = append(ws, w)
		}
		observed = append(observed, a.Sessions)
		tj.Variants = append(tj.Variants, v)
	}
	if weights != nil {
		// Configured variants nobody reached count as observed zeros.
		for i := range weights {
			if !slices.ContainsFunc(arms, func(a storage.Arm) bool { return a.Index == int64(i) }) {
				observed, ws = append(observed, 0), append(ws, weights[i])
			}
		}
		tj.SampleRatioMismatch = srm(observed, ws)
	}
	return tj
}

func share(n, total int64) *float64 {
	if total == 0 {
		return nil
	}
	s := float64(n) / float64(total)
	return &s
}

func srm(observed []int64, weights []float64) *srmJSON {
	r, ok := abtest.SampleRatio(observed, weights)
	if !ok {
		return nil
	}
	out := &srmJSON{Observed: observed, Expected: r.Expected, DF: r.DF, P: r.P, Mismatch: r.Mismatch}
	if !math.IsInf(r.ChiSquare, 0) {
		x := r.ChiSquare
		out.ChiSquare = &x
	}
	return out
}

// figures are the figures of arm a, compared with first (nil, or a
// itself: no comparison). assigned says whether the arm has assignment
// records (model A/B).
func figures(a, first *storage.Arm, assigned bool) figuresJSON {
	f := figuresJSON{
		SessionsWithGenerations: a.Sessions, Generations: a.Generations, Errors: a.Errors,
		InputTokens: a.InputTokens, OutputTokens: a.OutputTokens, TotalCostUSD: a.TotalCostUSD,
		UnknownCostGenerations: a.UnknownCostGenerations,
		CostPerSession:         mean(a.CostPerSession), TokensPerSession: mean(a.TokensPerSession),
		P50DurationMs: a.P50DurationMs, P95DurationMs: a.P95DurationMs, Metrics: map[string]meanJSON{},
	}
	if assigned {
		n := a.AssignedSessions
		f.AssignedSessions = &n
	}
	if a.Generations > 0 {
		r := float64(a.Errors) / float64(a.Generations)
		f.ErrorRate = &r
	}
	for name, s := range a.Metrics {
		f.Metrics[name] = mean(s)
	}
	if first == nil || first == a {
		return f
	}
	cmp := &comparisonJSON{
		CostPerSession:   welch(first.CostPerSession, a.CostPerSession),
		TokensPerSession: welch(first.TokensPerSession, a.TokensPerSession),
		Metrics:          map[string]*welchJSON{},
	}
	for name, s := range a.Metrics {
		if base, ok := first.Metrics[name]; ok {
			cmp.Metrics[name] = welch(base, s)
		}
	}
	f.VsFirst = cmp
	return f
}

func mean(s storage.Sample) meanJSON {
	m := meanJSON{N: s.N}
	if s.N == 0 {
		return m
	}
	mu := s.Mean
	m.Mean = &mu
	if lo, hi, ok := abtest.MeanCI(abtest.Sample(s)); ok && !math.IsNaN(lo) && !math.IsNaN(hi) {
		m.CILow, m.CIHigh = &lo, &hi
	}
	return m
}

func welch(a, b storage.Sample) *welchJSON {
	r, ok := abtest.Welch(abtest.Sample(a), abtest.Sample(b))
	if !ok || math.IsNaN(r.P) || math.IsInf(r.T, 0) {
		return nil
	}
	return &welchJSON{Diff: r.Diff, T: r.T, DF: r.DF, P: r.P}
}

func evalRunOf(r *storage.EvalRunRow) evalRunJSON {
	out := evalRunJSON{RunID: r.RunID, Name: r.Name, Description: r.Description, DatasetSize: r.DatasetSize,
		JudgeModel: r.JudgeModel, Results: r.Results, ReceivedAtUnixNano: r.ReceivedAtUnixNano}
	if err := json.Unmarshal([]byte(r.Scores), &out.Scores); err != nil || out.Scores == nil {
		out.Scores = map[string]storage.EvalScore{}
	}
	return out
}
