package fallomconsoleextension

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/backend"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

// The experiments API and page on a real database holding
// storagetest.ExperimentFixture; every figure is compared with what the
// test computes from the fixture (storagetest.ExpectedArms sums the raw
// rows in Go; intervals and tests are computed here with gonum's
// distributions from those sums).

type experimentsEnv struct {
	apiEnv
	spans []storage.Span
	ev    storage.Events
}

func startExperiments(t *testing.T, st backend.Config) experimentsEnv {
	t.Helper()
	h, err := backend.Acquire(context.Background(), st, nil)
	require.NoError(t, err)
	spans, ev := storagetest.WriteExperimentFixture(t, h.Store())
	require.NoError(t, h.Release())
	return experimentsEnv{apiEnv: apiEnv{base: startConsole(t, st)}, spans: spans, ev: ev}
}

func TestExperimentsSQLite(t *testing.T) {
	runExperimentsTests(t, startExperiments(t, sqliteStorage(t)))
}

func TestExperimentsPostgres(t *testing.T) {
	runExperimentsTests(t, startExperiments(t, postgresStorage(t)))
}

func runExperimentsTests(t *testing.T, env experimentsEnv) {
	t.Run("Figures", func(t *testing.T) {
		for _, project := range []struct{ id, key string }{{"p1", keyP1}, {"p2", keyP2}} {
			var rep experimentsJSON
			getJSON(t, env.apiEnv, project.key, "/api/v1/experiments", &rep)
			checkReport(t, env, project.id, &rep)
		}
	})
	t.Run("Requests", func(t *testing.T) {
		require.Equal(t, http.StatusUnauthorized, get(t, env.apiEnv, "", "/api/v1/experiments").status)
		require.Equal(t, http.StatusForbidden, get(t, env.apiEnv, keyIngest, "/api/v1/experiments").status)
		a := get(t, env.apiEnv, keyP1, "/api/v1/experiments?model=x")
		require.Equal(t, http.StatusBadRequest, a.status)
		require.Contains(t, string(a.body), `unknown query parameter \"model\"`)
		a = get(t, env.apiEnv, keyP1, "/api/v1/experiments?from=yesterday")
		require.Equal(t, http.StatusBadRequest, a.status)
		// from: sessions first assigned from then on (model B's, not A's).
		var rep experimentsJSON
		getJSON(t, env.apiEnv, keyP1, "/api/v1/experiments?from="+url.QueryEscape(storagetest.Base.Add(20e9).Format("2006-01-02T15:04:05Z07:00")), &rep)
		for _, c := range rep.Configs {
			for _, v := range c.Variants {
				require.NotEqual(t, storagetest.ModelA, *v.Model, "a session assigned before from")
			}
		}
	})
	t.Run("Page", func(t *testing.T) { checkPage(t, env) })
}

func checkReport(t *testing.T, env experimentsEnv, project string, rep *experimentsJSON) {
	t.Helper()
	require.Equal(t, testName, rep.Test)
	require.Empty(t, rep.Warnings, "no weights known: no sample ratio check, no warning")

	// Model A/B: one table per (config, version), variants by model name
	// (no SDK file: the first in name order is the baseline).
	models := storagetest.ExpectedArms(env.spans, env.ev, project, "model")
	require.Len(t, rep.Configs, 2)
	var i int
	for _, c := range rep.Configs {
		require.Equal(t, "unknown", c.WeightsSource)
		require.Nil(t, c.SampleRatioMismatch)
		var total int64
		for _, a := range models {
			if a.Key == c.ConfigKey && a.Version == c.ConfigVersion {
				total += a.AssignedSessions
			}
		}
		var first *storage.Arm
		for _, v := range c.Variants {
			want := models[i]
			i++
			require.Equal(t, want.Key, c.ConfigKey)
			require.Equal(t, want.Version, c.ConfigVersion)
			require.Equal(t, want.Model, *v.Model)
			require.Nil(t, v.Weight)
			require.InDelta(t, float64(want.AssignedSessions)/float64(total), *v.AssignedShare, 1e-12)
			require.Equal(t, want.AssignedSessions, *v.AssignedSessions)
			checkFigures(t, fmt.Sprintf("%s config %s v%d %s", project, c.ConfigKey, c.ConfigVersion, want.Model), v.figuresJSON, &want, first)
			if first == nil {
				first = &models[i-1]
			}
		}
	}
	require.Equal(t, len(models), i)

	// Prompts: versions ascending, the version-less arm last.
	prompts := storagetest.ExpectedArms(env.spans, env.ev, project, "prompt")
	sort.SliceStable(prompts, func(a, b int) bool { return prompts[a].Version >= 0 && prompts[b].Version < 0 })
	require.Len(t, rep.Prompts, len(prompts))
	for j, p := range rep.Prompts {
		want := prompts[j]
		require.Equal(t, want.Key, p.PromptKey)
		if want.Version < 0 {
			require.Nil(t, p.PromptVersion)
		} else {
			require.Equal(t, want.Version, *p.PromptVersion)
		}
		require.Nil(t, p.AssignedSessions)
		checkFigures(t, fmt.Sprintf("%s prompt %s v%d", project, want.Key, want.Version), p.figuresJSON, &want, firstOf(prompts, j))
	}

	tests := storagetest.ExpectedArms(env.spans, env.ev, project, "test")
	require.Len(t, rep.PromptABTests, 1)
	tj := rep.PromptABTests[0]
	require.Equal(t, "onboarding-test", tj.PromptABTestKey)
	require.Len(t, tj.Variants, len(tests))
	for j, v := range tj.Variants {
		want := tests[j]
		require.Equal(t, want.Index, *v.PromptVariantIndex)
		checkFigures(t, fmt.Sprintf("%s test variant %d", project, want.Index), v.figuresJSON, &want, firstOf(tests, j))
	}
	require.Empty(t, rep.EvalRuns)
}

func firstOf(arms []storage.Arm, j int) *storage.Arm {
	if j == 0 {
		return nil
	}
	return &arms[0]
}

// checkFigures compares one arm's figures with the expected arm, and its
// comparison with the expected first arm (nil: it is the first).
func checkFigures(t *testing.T, what string, got figuresJSON, want, first *storage.Arm) {
	t.Helper()
	require.Equal(t, want.Sessions, got.SessionsWithGenerations, what)
	require.Equal(t, want.Generations, got.Generations, what)
	require.Equal(t, want.Errors, got.Errors, what)
	require.Equal(t, want.InputTokens, got.InputTokens, what)
	require.Equal(t, want.OutputTokens, got.OutputTokens, what)
	require.InDelta(t, want.TotalCostUSD, got.TotalCostUSD, 1e-12, what)
	if want.Generations > 0 {
		require.InDelta(t, float64(want.Errors)/float64(want.Generations), *got.ErrorRate, 1e-12, what)
	}
	require.Equal(t, fmtp(want.P50DurationMs), fmtp(got.P50DurationMs), what)
	require.Equal(t, fmtp(want.P95DurationMs), fmtp(got.P95DurationMs), what)
	checkMean(t, what+" cost per session", got.CostPerSession, want.CostPerSession)
	checkMean(t, what+" tokens per session", got.TokensPerSession, want.TokensPerSession)
	require.Len(t, got.Metrics, len(want.Metrics), what)
	for name, s := range want.Metrics {
		checkMean(t, what+" metric "+name, got.Metrics[name], s)
	}
	if first == nil {
		require.Nil(t, got.VsFirst, what)
		return
	}
	require.NotNil(t, got.VsFirst, what)
	checkWelch(t, what+" cost", got.VsFirst.CostPerSession, first.CostPerSession, want.CostPerSession)
	checkWelch(t, what+" tokens", got.VsFirst.TokensPerSession, first.TokensPerSession, want.TokensPerSession)
	for name, s := range want.Metrics {
		if base, ok := first.Metrics[name]; ok {
			checkWelch(t, what+" metric "+name, got.VsFirst.Metrics[name], base, s)
		}
	}
}

func fmtp(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// checkMean: mean ± t(0.975, n-1) * sd / sqrt(n).
func checkMean(t *testing.T, what string, got meanJSON, want storage.Sample) {
	t.Helper()
	require.Equal(t, want.N, got.N, what)
	if want.N == 0 {
		require.Nil(t, got.Mean, what)
		return
	}
	require.InDelta(t, want.Mean, *got.Mean, 1e-9*math.Max(1, math.Abs(want.Mean)), what)
	if want.N < 2 {
		require.Nil(t, got.CILow, what)
		return
	}
	half := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(want.N - 1)}.Quantile(0.975) * math.Sqrt(want.M2/float64(want.N-1)/float64(want.N))
	require.InDelta(t, want.Mean-half, *got.CILow, 1e-9*math.Max(1, math.Abs(half)), what)
	require.InDelta(t, want.Mean+half, *got.CIHigh, 1e-9*math.Max(1, math.Abs(half)), what)
}

// checkWelch: t = (mb - ma) / sqrt(va/na + vb/nb), Welch-Satterthwaite df,
// p = 2 P(T > |t|).
func checkWelch(t *testing.T, what string, got *welchJSON, a, b storage.Sample) {
	t.Helper()
	if a.N < 2 || b.N < 2 {
		require.Nil(t, got, what)
		return
	}
	qa, qb := a.M2/float64(a.N-1)/float64(a.N), b.M2/float64(b.N-1)/float64(b.N)
	if qa+qb == 0 {
		require.Nil(t, got, what)
		return
	}
	tv := (b.Mean - a.Mean) / math.Sqrt(qa+qb)
	df := (qa + qb) * (qa + qb) / (qa*qa/float64(a.N-1) + qb*qb/float64(b.N-1))
	p := 2 * (1 - distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.CDF(math.Abs(tv)))
	require.NotNil(t, got, what)
	require.InDelta(t, tv, got.T, 1e-6*math.Max(1, math.Abs(tv)), what)
	require.InDelta(t, df, got.DF, 1e-6*df, what)
	require.InDelta(t, p, got.P, 1e-9, what)
}

// experimentsPage logs in as p1 and returns the /experiments page.
func experimentsPage(t *testing.T, base string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(base+"/login", url.Values{"key": {keyP1}, "next": {"/experiments"}})
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
	return string(page)
}

// The page, logged in as p1: every table, the test named, figures of the
// API shown, no figure of p2.
func checkPage(t *testing.T, env experimentsEnv) {
	html := experimentsPage(t, env.base)
	for _, want := range []string{
		`id="test-name"`, "Welch&#39;s t test", `id="config-0"`, `id="config-1"`, `id="prompt-0"`, `id="test-0"`,
		"Config &#34;summarizer&#34; · version 1", storagetest.ModelA, storagetest.ModelB, "version 2", "variant 1",
		"resolved per session", "csat per session", "configured weights unknown", `id="no-runs"`,
	} {
		require.Contains(t, html, want)
	}
	var rep experimentsJSON
	getJSON(t, env.apiEnv, keyP1, "/api/v1/experiments", &rep)
	v := rep.Configs[0].Variants[1]
	require.Contains(t, html, meanText(v.CostPerSession, true))
	require.Contains(t, html, welchText(v.VsFirst.CostPerSession))
	require.True(t, strings.Count(html, `class="variant"`) >= 3+3+2)
}

// sdkFileYAML configures p1's experiments: summarizer v1 at 80/20 (A
// first), skewed v1 at 50/50, the prompt A/B test at 50/50.
func sdkFileYAML(aWeight int) string {
	return fmt.Sprintf(`projects:
  p1:
    configs:
      - key: summarizer
        versions:
          - version: 1
            variants: [{model: %q, weight: %d}, {model: %q, weight: %d}]
      - key: skewed
        versions:
          - version: 1
            variants: [{model: m-a, weight: 50}, {model: m-b, weight: 50}]
    prompts:
      - key: onboarding
        versions:
          - {version: 1, system_prompt: "You help.", user_template: "Hi"}
          - {version: 2, system_prompt: "You help more.", user_template: "Hi"}
    prompt_ab_tests:
      - key: onboarding-test
        versions:
          - version: 1
            variants: [{prompt_key: onboarding, prompt_version: 1, weight: 50}, {prompt_key: onboarding, prompt_version: 2, weight: 50}]
`, storagetest.ModelA, aWeight, storagetest.ModelB, 100-aWeight)
}

// With the SDK file: configured weights, variants in the file's order,
// the sample ratio check (a mismatch warned about), and an edit of the
// file picked up while running.
func TestExperimentsWeightsFromSDKFile(t *testing.T) {
	st := sqliteStorage(t)
	h, err := backend.Acquire(context.Background(), st, nil)
	require.NoError(t, err)
	spans, ev := storagetest.WriteExperimentFixture(t, h.Store())
	// skewed: 150 sessions on m-a, 50 on m-b against 50/50.
	var skew storage.Events
	for i := range 200 {
		model := "m-a"
		if i >= 150 {
			model = "m-b"
		}
		skew.Assignments = append(skew.Assignments, storage.Assignment{ProjectID: "p1", ConfigKey: "skewed", ConfigVersion: 1,
			SessionID: fmt.Sprintf("skew-%d", i), AssignedModel: model, ReceivedAtUnixNano: storagetest.Base.UnixNano() + int64(i)})
	}
	_, err = h.Store().(storage.EventWriter).WriteEvents(context.Background(), skew)
	require.NoError(t, err)
	require.NoError(t, h.Release())
	sdkFile := filepath.Join(t.TempDir(), "sdk.yaml")
	require.NoError(t, os.WriteFile(sdkFile, []byte(sdkFileYAML(80)), 0o600))
	env := experimentsEnv{apiEnv: apiEnv{base: startConsoleWith(t, st, func(c *Config) { c.SDKFile = sdkFile })}, spans: spans, ev: ev}

	var rep experimentsJSON
	getJSON(t, env.apiEnv, keyP1, "/api/v1/experiments", &rep)
	byName := map[string]configJSON{}
	for _, c := range rep.Configs {
		byName[fmt.Sprintf("%s/%d", c.ConfigKey, c.ConfigVersion)] = c
	}
	models := storagetest.ExpectedArms(spans, ev, "p1", "model")
	arm := func(version int64, model string) *storage.Arm {
		for i := range models {
			if models[i].Key == "summarizer" && models[i].Version == version && models[i].Model == model {
				return &models[i]
			}
		}
		t.Fatalf("no expected arm %d %s", version, model)
		return nil
	}

	s1 := byName["summarizer/1"]
	require.Equal(t, "sdk_file", s1.WeightsSource)
	require.Len(t, s1.Variants, 2)
	require.Equal(t, storagetest.ModelA, *s1.Variants[0].Model, "the file's first variant is the baseline")
	require.Equal(t, 80.0, *s1.Variants[0].Weight)
	require.Equal(t, 20.0, *s1.Variants[1].Weight)
	checkFigures(t, "A", s1.Variants[0].figuresJSON, arm(1, storagetest.ModelA), nil)
	checkFigures(t, "B against A", s1.Variants[1].figuresJSON, arm(1, storagetest.ModelB), arm(1, storagetest.ModelA))
	// 8 and 8 assigned against 80/20: expected 12.8 and 3.2,
	// chi² = 4.8²/12.8 + 4.8²/3.2 = 9, df 1, p = erfc(sqrt(9/2)) ≈ 0.0027.
	m := s1.SampleRatioMismatch
	require.NotNil(t, m)
	require.Equal(t, []int64{8, 8}, m.Observed)
	require.InDeltaSlice(t, []float64{12.8, 3.2}, m.Expected, 1e-9)
	require.InDelta(t, 9.0, *m.ChiSquare, 1e-9)
	require.Equal(t, 1, m.DF)
	require.InDelta(t, math.Erfc(math.Sqrt(4.5)), m.P, 1e-12)
	require.False(t, m.Mismatch)

	// 150/50 against 50/50: chi² = 2 * 50²/100 = 50, p = erfc(5): a mismatch.
	sk := byName["skewed/1"]
	require.NotNil(t, sk.SampleRatioMismatch)
	require.InDelta(t, 50.0, *sk.SampleRatioMismatch.ChiSquare, 1e-9)
	require.InDelta(t, math.Erfc(5), sk.SampleRatioMismatch.P, 1e-15)
	require.True(t, sk.SampleRatioMismatch.Mismatch)
	require.Len(t, rep.Warnings, 1)
	require.Contains(t, rep.Warnings[0], `config "skewed" version 1`)

	// Version 2 is not in the file: weights unknown.
	require.Equal(t, "unknown", byName["summarizer/2"].WeightsSource)
	require.Nil(t, byName["summarizer/2"].SampleRatioMismatch)

	// The prompt test: 3 and 3 sessions against 50/50.
	require.Len(t, rep.PromptABTests, 1)
	pt := rep.PromptABTests[0]
	require.Equal(t, "sdk_file", pt.WeightsSource)
	require.Equal(t, []int64{3, 3}, pt.SampleRatioMismatch.Observed)
	require.InDelta(t, 0.0, *pt.SampleRatioMismatch.ChiSquare, 1e-12)
	require.InDelta(t, 1.0, pt.SampleRatioMismatch.P, 1e-12)

	html := experimentsPage(t, env.base)
	require.Contains(t, html, `class="warning srm-warning"`)
	require.Contains(t, html, "SAMPLE RATIO MISMATCH")
	require.Contains(t, html, "χ² = 9.00, df = 1, p = 0.0027 — assignment follows the weights")
	require.Contains(t, html, "weights from the SDK file")

	// An edit of the file (50/50) is picked up while running.
	require.NoError(t, os.WriteFile(sdkFile, []byte(sdkFileYAML(50)), 0o600))
	deadline := time.Now().Add(90 * time.Second)
	for {
		var again experimentsJSON
		getJSON(t, env.apiEnv, keyP1, "/api/v1/experiments", &again)
		var w float64
		for _, c := range again.Configs {
			if c.ConfigKey == "summarizer" && c.ConfigVersion == 1 {
				w = *c.Variants[0].Weight
			}
		}
		if w == 50 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the edited SDK file was not picked up (weight %v)", w)
		time.Sleep(200 * time.Millisecond)
	}
}
