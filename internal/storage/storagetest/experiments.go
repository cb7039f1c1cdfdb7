package storagetest

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// The experiments fixture: two model A/B configs, prompt versions, a
// prompt A/B test, business metrics and an eval run in project p1, the
// same keys in p2 (which p1 must never see), and spans that must not be
// counted (no config key, another config version, not a generation).

// Models of the fixture's config "summarizer".
const (
	ModelA = "openai/gpt-4o-mini"
	ModelB = "anthropic/claude-haiku-4.5"
)

// ExperimentFixture returns the spans and events of the fixture.
func ExperimentFixture() ([]storage.Span, storage.Events) {
	var spans []storage.Span
	var ev storage.Events
	n := 0
	gen := func(project, session string, cost float64, tokens int64, ms float64, errored bool) *storage.Span {
		n++
		g := Generation(project, 10000+n)
		g.SessionID = ptr(session)
		g.CustomerID = nil
		g.Source = ptr("fallom")
		g.TotalCostUSD = ptr(cost)
		g.InputCostUSD, g.OutputCostUSD = ptr(cost/2), ptr(cost/2)
		g.InputTokens, g.OutputTokens = ptr(tokens), ptr(tokens/4)
		g.TotalTokens = ptr(tokens + tokens/4)
		g.DurationMs = ms
		g.EndTimeUnixNano = g.StartTimeUnixNano + int64(ms*1e6)
		if errored {
			g.StatusCode = "ERROR"
		}
		g.Attributes, g.ResourceAttributes = "{}", "{}"
		spans = append(spans, g)
		return &spans[len(spans)-1]
	}
	assign := func(project, config string, version int64, session, model string, sec int) {
		ev.Assignments = append(ev.Assignments, storage.Assignment{ProjectID: project, ConfigKey: config, ConfigVersion: version,
			SessionID: session, AssignedModel: model, ReceivedAtUnixNano: Base.Add(time.Duration(sec) * time.Second).UnixNano()})
	}
	metric := func(project, config, session, name string, v float64) {
		ev.Metrics = append(ev.Metrics, storage.SessionMetric{ProjectID: project, ConfigKey: config, SessionID: session, Name: name,
			Value: v, UpdatedAtUnixNano: Base.UnixNano()})
	}
	for _, project := range []string{"p1", "p2"} {
		scale := 1.0
		if project == "p2" {
			scale = 100 // p2's figures would show in p1's if they leaked
		}
		// Model A: 8 sessions, model B: 6 with generations + 2 without.
		for i := range 8 {
			sid := fmt.Sprintf("%s-a-%d", project, i)
			assign(project, "summarizer", 1, sid, ModelA, i)
			for j := range i%3 + 1 {
				g := gen(project, sid, scale*(0.001+0.0003*float64(i)+0.0001*float64(j)), int64(900+37*i+11*j), float64(400+90*i+30*j), i == 3 && j == 0)
				g.ConfigKey = ptr("summarizer")
			}
			metric(project, "summarizer", sid, "resolved", float64(i%2))
			metric(project, "summarizer", sid, "csat", scale*float64(3+i%3))
		}
		for i := range 8 {
			sid := fmt.Sprintf("%s-b-%d", project, i)
			assign(project, "summarizer", 1, sid, ModelB, 20+i)
			if i < 6 {
				for j := range 2 {
					g := gen(project, sid, scale*(0.0004+0.0001*float64(i*j)), int64(600+23*i+7*j), float64(250+40*i+25*j), i == 5 && j == 1)
					g.ConfigKey = ptr("summarizer")
				}
			}
			if i < 5 {
				metric(project, "summarizer", sid, "resolved", float64((i+1)%2))
			}
		}
		// Session a-0 is also in version 2 (a new config version): its
		// spans without a version count in both; a span of version 2
		// counts only there.
		assign(project, "summarizer", 2, project+"-a-0", ModelB, 40)
		v2 := gen(project, project+"-a-0", scale*0.005, 2000, 1500, false)
		v2.ConfigKey, v2.ConfigVersion = ptr("summarizer"), ptr(int64(2))
		// Not counted anywhere: a generation of an assigned session
		// without the config key; a non-generation span with it.
		gen(project, project+"-a-1", scale*0.5, 99999, 99999, true)
		child := Child(project, 10000+n)
		child.SessionID, child.ConfigKey = ptr(project+"-a-1"), ptr("summarizer")
		child.Attributes, child.ResourceAttributes = "{}", "{}"
		spans = append(spans, child)
		// A metric posted without a config key is used when there is no
		// keyed one; a keyed one wins over it.
		metric(project, "", project+"-b-5", "resolved", 1)
		metric(project, "", project+"-a-0", "resolved", 7)

		// Prompts: onboarding versions 1 and 2, two generations without a
		// session (each counts as its own trace's session), a version-less
		// one; a prompt A/B test with variants 0 and 1.
		for i := range 6 {
			sid := fmt.Sprintf("%s-p-%d", project, i)
			for j := range i%2 + 1 {
				g := gen(project, sid, scale*(0.002+0.0005*float64(i)+0.0002*float64(j)), int64(500+50*i), float64(300+70*i+10*j), false)
				g.PromptKey, g.PromptVersion = ptr("onboarding"), ptr(int64(1+i%2))
				g.PromptABTestKey, g.PromptVariantIndex = ptr("onboarding-test"), ptr(int64(i%2))
			}
			metric(project, "", sid, "csat", float64(2+i))
		}
		for i := range 2 {
			g := gen(project, "", scale*0.003, 700, float64(800+i), false)
			g.SessionID = nil
			g.PromptKey, g.PromptVersion = ptr("onboarding"), ptr(int64(2))
		}
		g := gen(project, project+"-p-0", scale*0.001, 100, 50, false)
		g.PromptKey = ptr("onboarding")
	}
	return spans, ev
}

// ExpectedArms computes, from the fixture itself (not through SQL), what
// the ExperimentReader must return for project and kind ("model",
// "prompt", "test").
func ExpectedArms(spans []storage.Span, ev storage.Events, project, kind string) []storage.Arm {
	type unitKey struct {
		arm  storage.ArmKey
		unit string
	}
	type unitSums struct {
		gens, errs, unknown, tin, tout int64
		cost                           float64
	}
	units := map[unitKey]*unitSums{}
	durations := map[storage.ArmKey][]float64{}
	arms := map[storage.ArmKey]*storage.Arm{}
	get := func(k storage.ArmKey) *storage.Arm {
		if arms[k] == nil {
			arms[k] = &storage.Arm{ArmKey: k}
		}
		return arms[k]
	}
	addGen := func(k storage.ArmKey, unit string, s *storage.Span) {
		u := units[unitKey{k, unit}]
		if u == nil {
			u = &unitSums{}
			units[unitKey{k, unit}] = u
		}
		u.gens++
		if s.StatusCode == "ERROR" {
			u.errs++
		}
		if s.TotalCostUSD == nil {
			u.unknown++
		} else {
			u.cost += *s.TotalCostUSD
		}
		u.tin += deref(s.InputTokens)
		u.tout += deref(s.OutputTokens)
		durations[k] = append(durations[k], s.DurationMs)
		get(k)
	}
	// Metric values per (arm, name): one per unit.
	values := map[storage.ArmKey]map[string][]float64{}
	addValue := func(k storage.ArmKey, name string, v float64) {
		if values[k] == nil {
			values[k] = map[string][]float64{}
		}
		values[k][name] = append(values[k][name], v)
		get(k)
	}
	switch kind {
	case "model":
		for _, a := range ev.Assignments {
			if a.ProjectID != project {
				continue
			}
			k := storage.ArmKey{Key: a.ConfigKey, Version: a.ConfigVersion, Model: a.AssignedModel}
			get(k).AssignedSessions++
			for i := range spans {
				s := &spans[i]
				if s.ProjectID == project && s.IsGeneration && deref(s.SessionID) == a.SessionID && deref(s.ConfigKey) == a.ConfigKey &&
					(s.ConfigVersion == nil || *s.ConfigVersion == a.ConfigVersion) {
					addGen(k, a.SessionID, s)
				}
			}
			byName := map[string]float64{}
			for _, m := range ev.Metrics {
				if m.ProjectID == project && m.SessionID == a.SessionID && m.ConfigKey == "" {
					byName[m.Name] = m.Value
				}
			}
			for _, m := range ev.Metrics {
				if m.ProjectID == project && m.SessionID == a.SessionID && m.ConfigKey == a.ConfigKey {
					byName[m.Name] = m.Value // the keyed value wins
				}
			}
			for name, v := range byName {
				addValue(k, name, v)
			}
		}
	default:
		seen := map[unitKey]bool{}
		for i := range spans {
			s := &spans[i]
			var k storage.ArmKey
			switch {
			case s.ProjectID != project || !s.IsGeneration:
				continue
			case kind == "prompt" && s.PromptKey != nil:
				k = storage.ArmKey{Key: *s.PromptKey, Version: -1}
				if s.PromptVersion != nil {
					k.Version = *s.PromptVersion
				}
			case kind == "test" && s.PromptABTestKey != nil:
				k = storage.ArmKey{Key: *s.PromptABTestKey, Index: -1}
				if s.PromptVariantIndex != nil {
					k.Index = *s.PromptVariantIndex
				}
			default:
				continue
			}
			unit := "trace:" + s.TraceID
			if s.SessionID != nil {
				unit = *s.SessionID
			}
			addGen(k, unit, s)
			if s.SessionID == nil || seen[unitKey{k, unit}] {
				continue
			}
			seen[unitKey{k, unit}] = true
			sums, counts := map[string]float64{}, map[string]float64{}
			for _, m := range ev.Metrics {
				if m.ProjectID == project && m.SessionID == unit {
					sums[m.Name] += m.Value
					counts[m.Name]++
				}
			}
			for name := range sums {
				addValue(k, name, sums[name]/counts[name])
			}
		}
	}
	costs, tokens := map[storage.ArmKey][]float64{}, map[storage.ArmKey][]float64{}
	for uk, u := range units {
		a := get(uk.arm)
		a.Sessions++
		a.Generations += u.gens
		a.Errors += u.errs
		a.UnknownCostGenerations += u.unknown
		a.InputTokens += u.tin
		a.OutputTokens += u.tout
		a.TotalCostUSD += u.cost
		costs[uk.arm] = append(costs[uk.arm], u.cost)
		tokens[uk.arm] = append(tokens[uk.arm], float64(u.tin+u.tout))
	}
	out := make([]storage.Arm, 0, len(arms))
	for k, a := range arms {
		a.CostPerSession, a.TokensPerSession = SampleOf(costs[k]), SampleOf(tokens[k])
		if d := durations[k]; len(d) > 0 {
			sort.Float64s(d)
			p50, p95 := NearestRank(d, 50), NearestRank(d, 95)
			a.P50DurationMs, a.P95DurationMs = &p50, &p95
		}
		for name, vs := range values[k] {
			if a.Metrics == nil {
				a.Metrics = map[string]storage.Sample{}
			}
			a.Metrics[name] = SampleOf(vs)
		}
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return armText(out[i].ArmKey) < armText(out[j].ArmKey) })
	return out
}

// SampleOf summarizes values as storage.Sample (two passes).
func SampleOf(values []float64) storage.Sample {
	s := storage.Sample{N: int64(len(values))}
	if len(values) == 0 {
		return s
	}
	for _, v := range values {
		s.Mean += v
	}
	s.Mean /= float64(len(values))
	for _, v := range values {
		s.M2 += (v - s.Mean) * (v - s.Mean)
	}
	return s
}

// NearestRank is the p-th percentile of sorted values: the value at rank
// ceil(p/100 * n).
func NearestRank(sorted []float64, p int) float64 {
	r := int(math.Ceil(float64(p) / 100 * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func armText(k storage.ArmKey) string {
	return fmt.Sprintf("%s|%08d|%s|%08d", k.Key, k.Version+1, k.Model, k.Index+1)
}

// ArmText prints an arm with every figure, for comparisons in tests.
func ArmText(a storage.Arm) string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 9, 64) }
	s := fmt.Sprintf("%s assigned=%d sessions=%d gens=%d errs=%d unknown=%d in=%d out=%d cost=%s cps=(%d %s %s) tps=(%d %s %s) p50=%s p95=%s",
		armText(a.ArmKey), a.AssignedSessions, a.Sessions, a.Generations, a.Errors, a.UnknownCostGenerations, a.InputTokens, a.OutputTokens,
		f(a.TotalCostUSD), a.CostPerSession.N, f(a.CostPerSession.Mean), f(a.CostPerSession.M2),
		a.TokensPerSession.N, f(a.TokensPerSession.Mean), f(a.TokensPerSession.M2), fmtp(a.P50DurationMs), fmtp(a.P95DurationMs))
	names := make([]string, 0, len(a.Metrics))
	for n := range a.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := a.Metrics[n]
		s += fmt.Sprintf(" %s=(%d %s %s)", n, m.N, f(m.Mean), f(m.M2))
	}
	return s
}

// sameArms compares arms up to float rounding (sums in another order).
func sameArms(got, want []storage.Arm) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ArmKey != w.ArmKey || g.AssignedSessions != w.AssignedSessions || g.Sessions != w.Sessions || g.Generations != w.Generations ||
			g.Errors != w.Errors || g.UnknownCostGenerations != w.UnknownCostGenerations || g.InputTokens != w.InputTokens ||
			g.OutputTokens != w.OutputTokens || !closeTo(g.TotalCostUSD, w.TotalCostUSD) ||
			!sameSample(g.CostPerSession, w.CostPerSession) || !sameSample(g.TokensPerSession, w.TokensPerSession) ||
			fmtp(g.P50DurationMs) != fmtp(w.P50DurationMs) || fmtp(g.P95DurationMs) != fmtp(w.P95DurationMs) ||
			len(g.Metrics) != len(w.Metrics) {
			return false
		}
		for n, m := range w.Metrics {
			if !sameSample(g.Metrics[n], m) {
				return false
			}
		}
	}
	return true
}

func closeTo(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func sameSample(a, b storage.Sample) bool {
	return a.N == b.N && closeTo(a.Mean, b.Mean) && closeTo(a.M2, b.M2)
}

// WriteExperimentFixture stores the fixture in s.
func WriteExperimentFixture(t *testing.T, s storage.Store) ([]storage.Span, storage.Events) {
	t.Helper()
	spans, ev := ExperimentFixture()
	if _, err := s.WriteSpans(context.Background(), spans); err != nil {
		t.Fatalf("WriteSpans: %v", err)
	}
	if _, err := events(t, s).WriteEvents(context.Background(), ev); err != nil {
		t.Fatalf("WriteEvents: %v", err)
	}
	return spans, ev
}

// RunExperiments checks the ExperimentReader of a backend against the
// figures computed from the fixture.
func RunExperiments(t *testing.T, b Backend) {
	s, _ := b.New(t)
	spans, ev := WriteExperimentFixture(t, s)
	r, ok := s.(storage.ExperimentReader)
	if !ok {
		t.Fatalf("%T is not a storage.ExperimentReader", s)
	}
	ctx := context.Background()
	for _, kind := range []string{"model", "prompt", "test"} {
		t.Run(kind, func(t *testing.T) {
			read := map[string]func(context.Context, storage.ExperimentFilter) ([]storage.Arm, error){
				"model": r.ModelArms, "prompt": r.PromptArms, "test": r.PromptTestArms}[kind]
			got, err := read(ctx, storage.ExperimentFilter{ProjectID: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			want := ExpectedArms(spans, ev, "p1", kind)
			// model: A v1, B v1, B v2; prompt: versions 1, 2 and none;
			// test: variants 0 and 1.
			if n := map[string]int{"model": 3, "prompt": 3, "test": 2}[kind]; len(want) != n {
				t.Fatalf("the fixture has %d %s arms, want %d", len(want), kind, n)
			}
			sort.Slice(got, func(i, j int) bool { return armText(got[i].ArmKey) < armText(got[j].ArmKey) })
			if !sameArms(got, want) {
				t.Errorf("%s arms differ", kind)
				for _, a := range got {
					t.Logf(" got %s", ArmText(a))
				}
				for _, a := range want {
					t.Logf("want %s", ArmText(a))
				}
			}
			// A project with no experiment has no arm.
			if none, err := read(ctx, storage.ExperimentFilter{ProjectID: "p3"}); err != nil || len(none) != 0 {
				t.Fatalf("p3: %d arms, %v", len(none), err)
			}
		})
	}
	// The time filter of model A/B selects sessions by first assignment.
	from := Base.Add(20 * time.Second).UnixNano()
	got, err := r.ModelArms(ctx, storage.ExperimentFilter{ProjectID: "p1", From: &from})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range got {
		if a.Model == ModelA && a.Version == 1 {
			t.Fatalf("sessions of model A were all assigned before the from time, got %s", ArmText(a))
		}
	}
	runs, err := r.EvalRuns(ctx, "p1", 10)
	if err != nil || len(runs) != 0 {
		t.Fatalf("eval runs before any: %v %v", runs, err)
	}
	writeEvents(t, s, storage.Events{EvalRuns: []storage.EvalRun{EvalRun(t, "p1", "run-1", 1), EvalRun(t, "p1", "run-2", 2), EvalRun(t, "p2", "run-3", 3)}})
	runs, err = r.EvalRuns(ctx, "p1", 10)
	if err != nil || len(runs) != 2 || runs[0].RunID != "run-2" || runs[1].RunID != "run-1" || runs[0].Results != 2 ||
		fmtp(runs[0].Name) != "My run" || runs[0].Scores != EvalRun(t, "p1", "x", 0).Scores {
		t.Fatalf("eval runs: %+v %v", runs, err)
	}
}
