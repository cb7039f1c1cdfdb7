package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// The /experiments page in a real browser, on the built binary's default
// config, with data sent as the Fallom SDKs send it (the fallomsdk
// receiver: POST /sessions, /v1/traces, /spans) and the weights in the SDK
// file: the tables hold the API's figures, the test is named, the sample
// ratio check is shown, and hostile keys and metric names stay inert text.

const (
	modelA = "openai/gpt-4o-mini"
	modelB = "anthropic/claude-haiku-4.5"
)

type sdkEnv struct {
	base, sdk, key string
}

func startSDKConsole(t *testing.T) *sdkEnv {
	t.Helper()
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	e := &sdkEnv{key: collectortest.CreateKeyWithScopes(t, keysFile, "acme", "acme-sdk", "ingest,read")}
	sdkFile := filepath.Join(dir, "sdk.yaml")
	require.NoError(t, os.WriteFile(sdkFile, []byte(fmt.Sprintf(`projects:
  acme:
    configs:
      - key: summarizer
        versions:
          - version: 1
            variants: [{model: %s, weight: 50}, {model: %s, weight: 50}]
`, modelA, modelB)), 0o600))
	ep := collectortest.NewEndpoints(t)
	console := fmt.Sprintf("127.0.0.1:%d", collectortest.FreePort(t))
	sdk := fmt.Sprintf("127.0.0.1:%d", collectortest.FreePort(t))
	collectortest.Start(t, collectortest.Options{
		Args: []string{}, // the shipped default config
		Dir:  dir,
		Env: []string{
			"FALLOM_KEYS_FILE=" + keysFile,
			"FALLOM_DB=" + filepath.Join(dir, "fallom.db"),
			"FALLOM_SDK_FILE=" + sdkFile,
			"FALLOM_HTTP_ENDPOINT=" + ep.HTTP,
			"FALLOM_GRPC_ENDPOINT=" + ep.GRPC,
			"FALLOM_CONSOLE_ENDPOINT=" + console,
			"FALLOM_SDK_ENDPOINT=" + sdk,
			fmt.Sprintf("FALLOM_HEALTH_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
			fmt.Sprintf("FALLOM_METRICS_PORT=%d", collectortest.FreePort(t)),
		},
		WaitAddrs: []string{ep.HTTP, console, sdk},
	})
	e.base, e.sdk = "http://"+console, "http://"+sdk
	return e
}

// post sends one SDK request and requires a 2xx (the data is stored).
func (e *sdkEnv) post(t *testing.T, path string, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, e.sdk+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.True(t, resp.StatusCode/100 == 2, "POST %s: %d %s", path, resp.StatusCode, msg)
}

// generation is a TraceData of the TS SDK's OpenAI wrapper.
func generation(i int, config, session, model string, tokens int, ms int) map[string]any {
	start := time.Now().UTC().Add(-time.Hour).Add(time.Duration(i) * time.Second)
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, tokens, tokens/5, tokens+tokens/5)
	return map[string]any{
		"config_key": config, "session_id": session,
		"trace_id": fmt.Sprintf("%032x", 0xe0000+i), "span_id": fmt.Sprintf("%016x", 0xe000+i),
		"name": "chat.completions.create", "kind": "llm", "model": model,
		"start_time": start.Format("2006-01-02T15:04:05.000Z"), "end_time": start.Add(time.Duration(ms) * time.Millisecond).Format("2006-01-02T15:04:05.000Z"),
		"duration_ms": ms, "status": "OK",
		"attributes": map[string]any{"fallom.sdk_version": "2", "fallom.raw.usage": usage},
	}
}

func TestExperimentsInBrowser(t *testing.T) {
	e := startSDKConsole(t)
	hostileConfig := payloads[1] // <img src=x onerror="...">
	hostileMetric := payloads[0]
	n := 0
	for i := range 12 {
		model := modelA
		if i%2 == 1 {
			model = modelB
		}
		session := fmt.Sprintf("sess-%d", i)
		e.post(t, "/sessions", map[string]any{"config_key": "summarizer", "config_version": 1, "session_id": session, "assigned_model": model})
		for j := range 1 + i%3 {
			n++
			e.post(t, "/v1/traces", generation(n, "summarizer", session, model, 400+40*i+10*j, 300+25*i+5*j))
		}
		e.post(t, "/spans", map[string]any{"config_key": "summarizer", "session_id": session,
			"data": map[string]any{"resolved": i % 2, hostileMetric: float64(i) / 4}})
	}
	// A config whose key is hostile text, with a session and a call.
	e.post(t, "/sessions", map[string]any{"config_key": hostileConfig, "config_version": 1, "session_id": "sess-x", "assigned_model": payloads[2]})
	n++
	e.post(t, "/v1/traces", generation(n, hostileConfig, "sess-x", modelA, 500, 400))

	// An eval upload (FALLOM_SDK.md 5.1, as the Python SDK sends it).
	e.post(t, "/api/sdk-evals", map[string]any{"name": "nightly", "description": nil, "dataset_size": 2, "judge_model": "openai/gpt-4o-mini",
		"results": []map[string]any{
			{"input": "q1", "model": modelA, "output": "a", "answer_relevancy": 0.9, "hallucination": nil, "latency_ms": 12},
			{"input": "q2", "model": modelA, "output": "b", "answer_relevancy": 0.5, "hallucination": 0.25, "latency_ms": 20},
		}})

	// The API's figures (tested against independent computations in the
	// console's package tests) are what the page must show.
	var rep struct {
		Configs []struct {
			ConfigKey           string `json:"config_key"`
			WeightsSource       string `json:"weights_source"`
			SampleRatioMismatch *struct {
				P float64 `json:"p"`
			} `json:"sample_ratio_mismatch"`
			Variants []struct {
				Model            string  `json:"model"`
				AssignedSessions int64   `json:"assigned_sessions"`
				Generations      int64   `json:"generations"`
				TotalCostUSD     float64 `json:"total_cost_usd"`
				CostPerSession   struct {
					Mean *float64 `json:"mean"`
				} `json:"cost_per_session_usd"`
				Metrics map[string]struct {
					N int64 `json:"n"`
				} `json:"metrics"`
			} `json:"variants"`
		} `json:"configs"`
	}
	req, err := http.NewRequest(http.MethodGet, e.base+"/api/v1/experiments", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	resp.Body.Close()
	var summarizer = -1
	for i, c := range rep.Configs {
		if c.ConfigKey == "summarizer" {
			summarizer = i
		}
	}
	require.GreaterOrEqual(t, summarizer, 0, "%+v", rep)
	cfg := rep.Configs[summarizer]
	require.Equal(t, "sdk_file", cfg.WeightsSource)
	require.Len(t, cfg.Variants, 2)
	require.Equal(t, modelA, cfg.Variants[0].Model)
	require.Equal(t, int64(6), cfg.Variants[0].AssignedSessions)
	require.Equal(t, int64(1+3+2+1+3+2), cfg.Variants[0].Generations) // sessions 0, 2, 4, 6, 8, 10
	require.Equal(t, int64(6), cfg.Variants[1].Metrics["resolved"].N)
	require.NotNil(t, cfg.SampleRatioMismatch)
	require.InDelta(t, 1.0, cfg.SampleRatioMismatch.P, 1e-9, "6 and 6 against 50/50")

	ctx := browser(t)
	(&env{base: e.base}).login(t, ctx, e.key)
	(&env{base: e.base}).open(t, ctx, "/experiments", "#test-name")
	require.Contains(t, text(t, ctx, "#test-name"), "Welch's t test")
	sel := fmt.Sprintf("#config-%d", summarizer)
	tableText := text(t, ctx, sel)
	for _, want := range []string{"Config \"summarizer\" · version 1", "weights from the SDK file", "Sample ratio check (chi-square)",
		"p = 1 — assignment follows the weights", modelA, modelB, "50%", "resolved per session", hostileMetric + " per session"} {
		require.Contains(t, tableText, want)
	}
	require.Equal(t, 2, count(t, ctx, sel+" tr.variant"))
	// The first variant's cost per session, as the page shows it.
	shown := number(t, text(t, ctx, sel+" tr.variant td.cost-per-session"))
	require.InDelta(t, *cfg.Variants[0].CostPerSession.Mean, shown, math.Max(1e-4, 1e-3**cfg.Variants[0].CostPerSession.Mean))
	// Hostile keys and names are text, and nothing ran.
	body := eval[string](t, ctx, `document.querySelector("main").innerText`)
	require.Contains(t, body, "<img src=x onerror=") // the key, quoted in the table's title
	require.Contains(t, body, payloads[2])
	inert(t, ctx, "/experiments")
	// The eval run with its scores: the mean of each metric over the
	// results that scored it.
	runs := text(t, ctx, "#eval-runs")
	for _, want := range []string{"nightly", "openai/gpt-4o-mini", "answer_relevancy", "0.700 (n=2)", "hallucination", "0.250 (n=1)"} {
		require.True(t, strings.Contains(runs, want), "eval runs table %q lacks %q", runs, want)
	}
}
