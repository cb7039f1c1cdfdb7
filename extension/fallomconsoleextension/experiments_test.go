package fallomconsoleextension

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"testing"

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

// The page, logged in as p1: every table, the test named, figures of the
// API shown, no figure of p2.
func checkPage(t *testing.T, env experimentsEnv) {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(env.base+"/login", url.Values{"key": {keyP1}, "next": {"/experiments"}})
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
	html := string(page)
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
