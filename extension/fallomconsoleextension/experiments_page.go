package fallomconsoleextension

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/fallom/fallom-collector/internal/storage"
)

// The /experiments page: the report of GET /api/v1/experiments as tables,
// one per config version, prompt key and prompt A/B test. Cells are text
// made here (html/template escapes them), so stored keys, model names and
// metric names stay inert.

type experimentsBody struct {
	Test     string
	FromText string
	ToText   string
	Warnings []string
	Configs  []expTable
	Prompts  []expTable
	Tests    []expTable
	Runs     []expRun
	// ScoreNames are the eval score columns (those some run has).
	ScoreNames []string
	APIURL     string
}

func (experimentsBody) title() (string, string) { return "Experiments", "experiments" }

// expTable is one comparison: its arms, the first being the baseline.
type expTable struct {
	ID          string // element id (test hooks): config-<n>, prompt-<n>, test-<n>
	Title       string
	Weights     string // where the weights come from
	SRM         string // the sample ratio check, "" when not possible
	SRMWarn     bool
	MetricNames []string
	Rows        []expRow
}

type expRow struct {
	Label, Weight, Share, Assigned, Sessions, Generations, ErrorRate string
	Cost, CostPerSession, CostP, TokensPerSession, TokensP, P50, P95 string
	Metrics                                                          []expCell
}

type expCell struct{ Mean, P string }

type expRun struct {
	RunID, Name, Judge, Received string
	Results                      int64
	Scores                       []string // in ScoreNames order
}

func (c *console) pageExperiments(r *http.Request, p principal) (string, any, error) {
	u := r.URL.Query()
	f := storage.ExperimentFilter{ProjectID: p.projectID}
	body := experimentsBody{Test: testName, APIURL: "/api/v1/experiments"}
	var err error
	if f.From, body.FromText, err = parseTime(u, "from"); err != nil {
		return "", nil, err
	}
	if f.To, body.ToText, err = parseTime(u, "to"); err != nil {
		return "", nil, err
	}
	rep, err := c.experiments(r.Context(), f)
	if err != nil {
		return "", nil, err
	}
	body.Warnings = rep.Warnings
	for i, cfg := range rep.Configs {
		t := expTable{ID: "config-" + strconv.Itoa(i), Title: "Config " + strconv.Quote(cfg.ConfigKey) + " · version " +
			strconv.FormatInt(cfg.ConfigVersion, 10), Weights: weightsNote(cfg.WeightsSource)}
		t.SRM, t.SRMWarn = srmText(cfg.SampleRatioMismatch)
		t.MetricNames = metricNames(cfg.Variants)
		for _, v := range cfg.Variants {
			t.Rows = append(t.Rows, expRowOf(deref(v.Model), &v, t.MetricNames))
		}
		body.Configs = append(body.Configs, t)
	}
	// One table per prompt key, its versions as rows.
	type promptGroup struct {
		key    string
		labels []string
		vs     []variantJSON
	}
	var groups []promptGroup
	for _, pr := range rep.Prompts {
		if len(groups) == 0 || groups[len(groups)-1].key != pr.PromptKey {
			groups = append(groups, promptGroup{key: pr.PromptKey})
		}
		g := &groups[len(groups)-1]
		label := "version ?"
		if pr.PromptVersion != nil {
			label = "version " + strconv.FormatInt(*pr.PromptVersion, 10)
		}
		g.labels, g.vs = append(g.labels, label), append(g.vs, variantJSON{figuresJSON: pr.figuresJSON})
	}
	for i, g := range groups {
		t := expTable{ID: "prompt-" + strconv.Itoa(i), Title: "Prompt " + strconv.Quote(g.key), MetricNames: metricNames(g.vs)}
		for j := range g.vs {
			t.Rows = append(t.Rows, expRowOf(g.labels[j], &g.vs[j], t.MetricNames))
		}
		body.Prompts = append(body.Prompts, t)
	}
	for i, tst := range rep.PromptABTests {
		t := expTable{ID: "test-" + strconv.Itoa(i), Title: "Prompt A/B test " + strconv.Quote(tst.PromptABTestKey),
			Weights: weightsNote(tst.WeightsSource)}
		t.SRM, t.SRMWarn = srmText(tst.SampleRatioMismatch)
		t.MetricNames = metricNames(tst.Variants)
		for _, v := range tst.Variants {
			label := "variant ?"
			if v.PromptVariantIndex != nil && *v.PromptVariantIndex >= 0 {
				label = "variant " + strconv.FormatInt(*v.PromptVariantIndex, 10)
			}
			t.Rows = append(t.Rows, expRowOf(label, &v, t.MetricNames))
		}
		body.Tests = append(body.Tests, t)
	}
	names := map[string]bool{}
	for _, run := range rep.EvalRuns {
		for n := range run.Scores {
			names[n] = true
		}
	}
	for _, n := range storage.EvalScoreMetrics {
		if names[n] {
			body.ScoreNames = append(body.ScoreNames, n)
		}
	}
	for _, run := range rep.EvalRuns {
		er := expRun{RunID: run.RunID, Name: deref(run.Name), Judge: deref(run.JudgeModel), Received: fmtTime(run.ReceivedAtUnixNano),
			Results: run.Results}
		for _, n := range body.ScoreNames {
			if s, ok := run.Scores[n]; ok {
				er.Scores = append(er.Scores, strconv.FormatFloat(s.Mean, 'f', 3, 64)+" (n="+strconv.FormatInt(s.N, 10)+")")
			} else {
				er.Scores = append(er.Scores, "—")
			}
		}
		body.Runs = append(body.Runs, er)
	}
	return "experiments", body, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func weightsNote(source string) string {
	if source == "sdk_file" {
		return "weights from the SDK file"
	}
	return "configured weights unknown (no SDK file): shares are observed, no sample ratio check"
}

func srmText(m *srmJSON) (string, bool) {
	if m == nil {
		return "", false
	}
	chi := "∞"
	if m.ChiSquare != nil {
		chi = strconv.FormatFloat(*m.ChiSquare, 'f', 2, 64)
	}
	verdict := "assignment follows the weights"
	if m.Mismatch {
		verdict = "SAMPLE RATIO MISMATCH: the assigned sessions do not follow the weights; the comparison cannot be trusted"
	}
	return "Sample ratio check (chi-square): χ² = " + chi + ", df = " + strconv.Itoa(m.DF) + ", p = " + fmtP(m.P) + " — " + verdict +
		" (warning below p = 0.001)", m.Mismatch
}

// metricNames is the sorted union of the variants' metric names.
func metricNames(vs []variantJSON) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		for n := range v.Metrics {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

func expRowOf(label string, v *variantJSON, metrics []string) expRow {
	r := expRow{Label: label, Weight: "—", Share: "—", Assigned: "—",
		Sessions: fmtInt(v.SessionsWithGenerations), Generations: fmtInt(v.Generations),
		Cost: fmtCost(&v.TotalCostUSD), CostPerSession: meanText(v.CostPerSession, true),
		TokensPerSession: meanText(v.TokensPerSession, false), P50: fmtMsPtr(v.P50DurationMs), P95: fmtMsPtr(v.P95DurationMs),
		ErrorRate: "—", CostP: "baseline", TokensP: "baseline"}
	if v.Weight != nil {
		r.Weight = strconv.FormatFloat(*v.Weight, 'f', -1, 64) + "%"
	}
	if v.AssignedShare != nil {
		r.Share = strconv.FormatFloat(100**v.AssignedShare, 'f', 1, 64) + "%"
	}
	if v.AssignedSessions != nil {
		r.Assigned = fmtInt(*v.AssignedSessions)
	}
	if v.ErrorRate != nil {
		r.ErrorRate = strconv.FormatFloat(100**v.ErrorRate, 'f', 1, 64) + "%"
	}
	if v.VsFirst != nil {
		r.CostP, r.TokensP = welchText(v.VsFirst.CostPerSession), welchText(v.VsFirst.TokensPerSession)
	}
	for _, n := range metrics {
		m, ok := v.Metrics[n]
		cell := expCell{Mean: "—", P: ""}
		if ok {
			cell.Mean = meanText(m, false)
			cell.P = "baseline"
			if v.VsFirst != nil {
				cell.P = welchText(v.VsFirst.Metrics[n])
			}
		}
		r.Metrics = append(r.Metrics, cell)
	}
	return r
}

// meanText is "mean [low, high]" (n sessions).
func meanText(m meanJSON, money bool) string {
	if m.Mean == nil {
		return "—"
	}
	f := func(x float64) string {
		if money {
			return fmtCost(&x)
		}
		return strconv.FormatFloat(x, 'g', 4, 64)
	}
	s := f(*m.Mean)
	if m.CILow != nil && m.CIHigh != nil {
		s += " [" + f(*m.CILow) + ", " + f(*m.CIHigh) + "]"
	}
	return s + " (n=" + strconv.FormatInt(m.N, 10) + ")"
}

func welchText(w *welchJSON) string {
	if w == nil {
		return "n/a"
	}
	return "p = " + fmtP(w.P) + " (t = " + strconv.FormatFloat(w.T, 'f', 2, 64) + ", df = " + strconv.FormatFloat(w.DF, 'f', 1, 64) + ")"
}

func fmtP(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(p, 'f', 4, 64), "0"), ".")
}
