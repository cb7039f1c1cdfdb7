package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/pricing"
	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// nullInt is -1 for NULL.
func nullInt(v sql.NullInt64) int64 {
	if !v.Valid {
		return -1
	}
	return v.Int64
}

// The Fallom SDK fixtures are the receiver's (written from FALLOM_SDK.md:
// both SDKs' TraceData, both timestamp formats, capture off, Mastra OTLP).
func sdkFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "receiver", "fallomsdkreceiver", "testdata", name))
	require.NoError(t, err)
	return b
}

// sdkInstance is the shipped default config with an SDK file and keys of
// two projects.
type sdkInstance struct {
	*instance
	dir     string
	sdkFile string
	keyBeta string
}

func startSDK(t *testing.T) *sdkInstance {
	t.Helper()
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	keyAcme := collectortest.CreateKey(t, keysFile, "acme", "acme-sdk")
	keyBeta := collectortest.CreateKey(t, keysFile, "beta", "beta-sdk")
	sdkFile := filepath.Join(dir, "sdk.yaml")
	require.NoError(t, os.WriteFile(sdkFile, sdkFixture(t, "sdk.yaml"), 0o600))
	in := startDefaultIn(t, dir, keyAcme, "FALLOM_SDK_FILE="+sdkFile)
	return &sdkInstance{instance: in, dir: dir, sdkFile: sdkFile, keyBeta: keyBeta}
}

// sdkDo sends a request as the SDKs do (bearer key, JSON body); like them
// it looks at the status only where they do not read the answer.
func (in *sdkInstance) sdkDo(t *testing.T, method, path, key string, body []byte, header map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+in.sdk+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestFallomSDKTracesStored: both SDKs' TraceData and the Mastra
// exporter's OTLP/JSON, sent to the binary on its shipped config, land as
// rows of the key's project with session, customer, model, status and
// timing.
func TestFallomSDKTracesStored(t *testing.T) {
	in := startSDK(t)
	for _, f := range []string{"ts_openai.json", "py_anthropic.json", "py_capture_off.json", "ts_manual_span.json", "ts_stream_text.json"} {
		code, body := in.sdkDo(t, http.MethodPost, "/v1/traces", in.key, sdkFixture(t, f), nil)
		require.Equal(t, http.StatusOK, code, "%s: %s", f, body)
	}
	code, body := in.sdkDo(t, http.MethodPost, "/v1/traces", in.key, sdkFixture(t, "mastra_otlp.json"), map[string]string{
		"X-Fallom-Config-Key": "mastra-app", "X-Fallom-Session-Id": "mastra-session", "X-Fallom-Customer-Id": "user-456",
	})
	require.Equal(t, http.StatusOK, code, "%s", body)

	db := in.db(t)
	assert.Equal(t, 7, count(t, db, `SELECT count(*) FROM spans WHERE project_id = 'acme'`))
	assert.Equal(t, 7, count(t, db, `SELECT count(*) FROM spans`), "every row belongs to the key's project")
	assert.Equal(t, 7, count(t, db, `SELECT count(*) FROM spans WHERE source = 'fallom'`))

	type row struct {
		session, customer, model, kind, status, statusMsg, parent string
		start, end                                                int64
	}
	read := func(spanID string) row {
		var r row
		require.NoError(t, db.QueryRow(`SELECT coalesce(session_id,''), coalesce(customer_id,''), coalesce(model,''), kind,
			status_code, coalesce(status_message,''), coalesce(parent_span_id,''), start_time_unix_nano, end_time_unix_nano
			FROM spans WHERE span_id = ?`, spanID).Scan(&r.session, &r.customer, &r.model, &r.kind, &r.status, &r.statusMsg, &r.parent, &r.start, &r.end))
		return r
	}
	ms := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return tm.UnixNano()
	}

	ts := read("3696c77151ca725c")
	assert.Equal(t, row{session: "session-123", customer: "cust-1", model: "gpt-4o-2024", kind: "CLIENT", status: "OK",
		start: ms("2026-12-02T16:05:22.732Z"), end: ms("2026-12-02T16:05:22.732Z")}, ts)
	py := read("b7ad6b7169203331")
	assert.Equal(t, row{session: "user-123-convo-456", customer: "cust-9", model: "claude-3-5-sonnet-20241022", kind: "CLIENT", status: "OK",
		start: ms("2026-12-02T16:05:52.828Z"), end: ms("2026-12-02T16:05:54Z")}, py)
	off := read("00f067aa0ba902b7")
	assert.Equal(t, "ERROR", off.status)
	assert.Equal(t, "Rate limit exceeded", off.statusMsg)
	assert.Equal(t, "53995c3f42cd8ad8", off.parent)
	manual := read("eee19b7ec3c1b174")
	assert.Equal(t, "INTERNAL", manual.kind)
	assert.Equal(t, "session-123", manual.session)
	mastra := read("bbbbbbbbbbbbbbbb")
	assert.Equal(t, "CLIENT", mastra.kind, "the Mastra exporter's API kind 2")
	assert.Equal(t, "mastra-session", mastra.session)
	assert.Equal(t, "user-456", mastra.customer)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM spans WHERE span_id = 'bbbbbbbbbbbbbbbb' AND config_key = 'mastra-app'
		AND is_generation AND input_tokens = 3 AND cost_source = 'computed'`), "the headers' config key, Mastra's gen_ai.* usage")

	var ttft float64
	require.NoError(t, db.QueryRow(`SELECT time_to_first_token_ms FROM spans WHERE span_id = '1122334455667788'`).Scan(&ttft))
	assert.Equal(t, 320.0, ttft)

	// Tokens from each usage shape of fallom.raw.usage, the cost computed
	// from the built-in price table (the SDKs send none), checked here
	// against the table's per-token prices; the experiment columns.
	pricer := pricing.NewPricer(nil)
	for _, c := range []struct {
		spanID, model                   string
		in, out, total, cached          int64
		configKey, promptKey, abTestKey string
		promptVersion, variant          int64
	}{
		{"3696c77151ca725c", "gpt-4o-2024", 10, 2, 12, 0, "my-agent", "onboarding", "", 2, -1},
		{"b7ad6b7169203331", "claude-3-5-sonnet-20241022", 12, 5, 17, 0, "support-bot", "onboarding", "onboarding-test", 1, 0},
		{"00f067aa0ba902b7", "gpt-4o-mini", 7, 0, 7, 0, "support-bot", "", "", -1, -1},
		{"1122334455667788", "gpt-4o", 20, 30, 50, 4, "my-agent", "", "", -1, -1},
	} {
		var (
			isGen                  bool
			in, out, total, cached int64
			cost                   float64
			costSource, configKey  string
			promptKey, abKey       sql.NullString
			promptVersion, variant sql.NullInt64
		)
		require.NoError(t, db.QueryRow(`SELECT is_generation, input_tokens, output_tokens, total_tokens, coalesce(cached_input_tokens, 0),
			total_cost_usd, cost_source, config_key, prompt_key, prompt_version, prompt_ab_test_key, prompt_variant_index
			FROM spans WHERE span_id = ?`, c.spanID).Scan(&isGen, &in, &out, &total, &cached, &cost, &costSource, &configKey,
			&promptKey, &promptVersion, &abKey, &variant), c.spanID)
		assert.True(t, isGen, c.spanID)
		assert.Equal(t, [4]int64{c.in, c.out, c.total, c.cached}, [4]int64{in, out, total, cached}, c.spanID)
		price, ok := pricer.Lookup(c.model)
		require.True(t, ok, "%s is in the built-in price table", c.model)
		readPrice := price.Input
		if price.HasCacheRead {
			readPrice = price.CacheRead
		}
		want := float64(c.in-c.cached)*price.Input + float64(c.cached)*readPrice + float64(c.out)*price.Output
		assert.Equal(t, "computed", costSource, c.spanID)
		assert.InDelta(t, want, cost, want*1e-9, c.spanID)
		assert.Equal(t, c.configKey, configKey, c.spanID)
		assert.Equal(t, c.promptKey, promptKey.String, c.spanID)
		assert.Equal(t, c.abTestKey, abKey.String, c.spanID)
		assert.Equal(t, c.promptVersion, nullInt(promptVersion), c.spanID)
		assert.Equal(t, c.variant, nullInt(variant), c.spanID)
	}
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM spans WHERE span_id = 'eee19b7ec3c1b174' AND (is_generation OR total_cost_usd IS NOT NULL)`),
		"a manual span is no generation and has no cost")

	// The SDK's own attributes are kept.
	var attrs string
	require.NoError(t, db.QueryRow(`SELECT attributes FROM spans WHERE span_id = 'eee19b7ec3c1b174'`).Scan(&attrs))
	assert.Contains(t, attrs, `"rag.k":5`)
	assert.Contains(t, attrs, `"fallom.span_type":"manual"`)

	// A bad body: 400 naming the problem, nothing stored.
	bad := strings.Replace(string(sdkFixture(t, "ts_openai.json")), `"span_id":"3696c77151ca725c"`, `"span_id":"nothex!!nothex!!"`, 1)
	code, body = in.sdkDo(t, http.MethodPost, "/v1/traces", in.key, []byte(bad), nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, string(body), "span_id must be 16 hex digits")
	assert.Equal(t, 7, count(t, db, `SELECT count(*) FROM spans`))

	// Another project's key writes into its own project only.
	code, _ = in.sdkDo(t, http.MethodPost, "/v1/traces", in.keyBeta,
		[]byte(strings.Replace(string(sdkFixture(t, "ts_openai.json")), "3696c77151ca725c", "3696c77151ca725d", 1)), nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM spans WHERE project_id = 'beta'`))
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM spans WHERE project_id = 'beta' AND span_id = '3696c77151ca725c'`))
}

// TestFallomSDKServedRoutes: the SDK file is served to each key's project
// only, in the SDKs' shapes, and an edit is served without a restart; an
// invalid edit keeps the last good file.
func TestFallomSDKServedRoutes(t *testing.T) {
	in := startSDK(t)
	getJSON := func(path, key string) (int, map[string]any) {
		code, body := in.sdkDo(t, http.MethodGet, path, key, nil, nil)
		var out map[string]any
		if code == http.StatusOK {
			require.NoError(t, json.Unmarshal(body, &out), "%s", body)
		}
		return code, out
	}
	keysOf := func(m map[string]any, field string) []string {
		var out []string
		for _, it := range m[field].([]any) {
			out = append(out, fmt.Sprint(it.(map[string]any)["key"]))
		}
		return out
	}

	code, configs := getJSON("/configs", in.key)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"my-agent", "my-agent"}, keysOf(configs, "configs"))
	_, betaConfigs := getJSON("/configs", in.keyBeta)
	assert.Equal(t, []string{"beta-only"}, keysOf(betaConfigs, "configs"))
	code, bare := getJSON("/configs/my-agent/version/1", in.key)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "my-agent", bare["key"])
	code, _ = getJSON("/configs/my-agent/version/1", in.keyBeta)
	assert.Equal(t, http.StatusNotFound, code, "another project's config")
	_, prompts := getJSON("/prompts", in.key)
	assert.Equal(t, []string{"onboarding", "onboarding"}, keysOf(prompts, "prompts"))
	_, betaPrompts := getJSON("/prompts", in.keyBeta)
	assert.Equal(t, []string{"beta-prompt"}, keysOf(betaPrompts, "prompts"))
	_, tests := getJSON("/prompt-ab-tests", in.key)
	assert.Equal(t, []string{"onboarding-test"}, keysOf(tests, "prompt_ab_tests"))
	code, ds := getJSON("/api/datasets/golden?include_entries=true", in.key)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]any{"version": float64(4)}, ds["version"])
	code, _ = getJSON("/api/datasets/golden", in.keyBeta)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = in.sdkDo(t, http.MethodGet, "/prompts", "flm_unknownKeyOfNoProjectAtAll_0000000", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, code)

	orig, err := os.ReadFile(in.sdkFile)
	require.NoError(t, err)
	edited := strings.Replace(string(orig), `system_prompt: "beta secret"`, `system_prompt: "beta v2"`, 1)
	require.NoError(t, os.WriteFile(in.sdkFile, []byte(edited), 0o600))
	betaSystem := func() string {
		_, p := getJSON("/prompts", in.keyBeta)
		return fmt.Sprint(p["prompts"].([]any)[0].(map[string]any)["system_prompt"])
	}
	require.Eventually(t, func() bool { return betaSystem() == "beta v2" }, 2*time.Minute, 100*time.Millisecond)

	broken := strings.Replace(edited, "versions: [{version: 1, variants: [{model: m-b, weight: 100}]}]", "versions: [{version: 1, variants: [{model: m-b, weight: 10}]}]", 1)
	require.NoError(t, os.WriteFile(in.sdkFile, []byte(broken), 0o600))
	require.Eventually(t, func() bool {
		return strings.Contains(in.col.Logs(), `project \"beta\", config \"beta-only\", version 1: variant weights add up to 10`)
	}, 2*time.Minute, 100*time.Millisecond, "the refusal is logged with the reason")
	assert.Equal(t, "beta v2", betaSystem(), "the last good file stays in force")
}

// TestSDKValidateCommand: `fallomcol sdk validate` for prompts kept in git.
func TestSDKValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "sdk.yaml")
	require.NoError(t, os.WriteFile(good, sdkFixture(t, "sdk.yaml"), 0o600))
	out, errOut, err := collectortest.Run(t, dir, nil, "sdk", "validate", good)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "valid: 2 projects, 2 configs, 2 prompts, 1 prompt A/B tests, 1 datasets")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(sdkFixture(t, "sdk.yaml")), "prompt_version: 1, weight: 50", "prompt_version: 9, weight: 50", 1)), 0o600))
	_, errOut, err = collectortest.Run(t, dir, nil, "sdk", "validate", bad)
	require.Error(t, err)
	assert.Contains(t, errOut, `project "acme", prompt A/B test "onboarding-test", version 3: variants[0]: prompt "onboarding" has no version 9`)
}

// TestFallomSDKEventsStored: assignments, business metrics and eval runs,
// sent as the SDKs send them, are stored for the key's project once the
// answer is 2xx: assignments once per session and config version (each
// lookup counted), the latest metric value winning, an eval run under the
// run_id it was answered with.
func TestFallomSDKEventsStored(t *testing.T) {
	in := startSDK(t)
	post := func(path, key, body string) (int, []byte) {
		return in.sdkDo(t, http.MethodPost, path, key, []byte(body), nil)
	}
	assignment := `{"config_key":"my-agent","config_version":2,"session_id":"session-123","assigned_model":"gpt-4o"}`
	for range 3 { // the SDK posts on every models.get(), never deduplicated
		code, body := post("/sessions", in.key, assignment)
		require.Equal(t, http.StatusOK, code, "%s", body)
	}
	code, body := post("/sessions", in.key, `{"config_key":"my-agent","config_version":2,"session_id":"user-123-convo-456","assigned_model":"claude-3-5-sonnet","customer_id":"vip-1"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, _ = post("/sessions", in.keyBeta, assignment)
	require.Equal(t, http.StatusOK, code)

	code, _ = post("/spans", in.key, `{"config_key":"my-agent","session_id":"session-123","data":{"outlier_score":0.8,"converted":false}}`)
	require.Equal(t, http.StatusOK, code)
	code, _ = post("/spans", in.key, `{"config_key":"my-agent","session_id":"session-123","data":{"converted":true}}`)
	require.Equal(t, http.StatusOK, code)

	code, body = post("/api/sdk-evals", in.key, `{"name":"My run","description":null,"dataset_size":1,"judge_model":"openai/gpt-4o-mini",
		"results":[{"input":"q","model":"m","output":"a","is_production":false,"answer_relevancy":0.9,"hallucination":null,"latency_ms":12}]}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var run struct {
		RunID string `json:"run_id"`
	}
	require.NoError(t, json.Unmarshal(body, &run))
	require.NotEmpty(t, run.RunID)

	// Bad input: 400 naming the problem, nothing stored.
	code, body = post("/spans", in.key, `{"session_id":"session-123","data":{"converted":1,"label":"vip"}}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, string(body), "data.label must be a number or a boolean")
	code, body = post("/sessions", in.key, `{"config_key":"my-agent","config_version":2,"assigned_model":"gpt-4o"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, string(body), "session_id is required")

	db := in.db(t)
	var model string
	var calls int
	require.NoError(t, db.QueryRow(`SELECT assigned_model, calls FROM assignments
		WHERE project_id = 'acme' AND config_key = 'my-agent' AND config_version = 2 AND session_id = 'session-123'`).Scan(&model, &calls))
	assert.Equal(t, "gpt-4o", model)
	assert.Equal(t, 3, calls)
	assert.Equal(t, 2, count(t, db, `SELECT count(*) FROM assignments WHERE project_id = 'acme'`))
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM assignments WHERE project_id = 'acme' AND customer_id = 'vip-1'`))
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM assignments WHERE project_id = 'beta'`))

	metrics := map[string]float64{}
	rows, err := db.Query(`SELECT name, value FROM session_metrics WHERE project_id = 'acme' AND config_key = 'my-agent' AND session_id = 'session-123'`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		var v float64
		require.NoError(t, rows.Scan(&n, &v))
		metrics[n] = v
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]float64{"outlier_score": 0.8, "converted": 1}, metrics, "the latest value wins")

	var name, stored string
	require.NoError(t, db.QueryRow(`SELECT name, body FROM eval_runs WHERE project_id = 'acme' AND run_id = ?`, run.RunID).Scan(&name, &stored))
	assert.Equal(t, "My run", name)
	assert.Contains(t, stored, `"answer_relevancy":0.9`)
}
