package fallomsdkreceiver

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"gonum.org/v1/gonum/stat/distuv"
)

// The shapes below are what the SDKs' parsers read (FALLOM_SDK.md 3-5),
// decoded loosely (map[string]any) the way JavaScript and Python see them.

func decodeLoose(t *testing.T, e *env, path, key string) map[string]any {
	t.Helper()
	var out map[string]any
	e.getJSON(t, path, key, &out)
	return out
}

func list(t *testing.T, m map[string]any, field string) []map[string]any {
	t.Helper()
	raw, ok := m[field].([]any)
	require.True(t, ok, "%s is not a list in %v", field, m)
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = r.(map[string]any)
	}
	return out
}

// latest applies the SDKs' cache rule: for each key, the last element
// listed is current.
func latest(items []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, it := range items {
		out[it["key"].(string)] = it
	}
	return out
}

func TestServedConfigs(t *testing.T) {
	e := start(t, envOptions{})
	configs := list(t, decodeLoose(t, e, "/configs", keyAcme), "configs")
	require.Len(t, configs, 2, "every version, ascending")
	assert.Equal(t, float64(1), configs[0]["version"])
	cur := latest(configs)["my-agent"]
	assert.Equal(t, float64(2), cur["version"], "the last listed is current")
	assert.Equal(t, []any{
		map[string]any{"model": "gpt-4o", "weight": float64(80)},
		map[string]any{"model": "claude-3-5-sonnet", "weight": float64(20)},
	}, cur["variants"])
	assert.Equal(t, map[string]any{
		"enabled":           true,
		"individualTargets": []any{map[string]any{"field": "customerId", "value": "vip-1", "variantIndex": float64(1)}},
		"rules": []any{map[string]any{
			"conditions":   []any{map[string]any{"field": "plan", "operator": "in", "value": []any{"enterprise", "biz"}}},
			"variantIndex": float64(1),
		}},
	}, cur["targeting"])
	_, hasTargeting := configs[0]["targeting"]
	assert.False(t, hasTargeting, "no targeting configured: none sent")

	// The version route answers a bare config, non-2xx when absent.
	bare := decodeLoose(t, e, "/configs/my-agent/version/1", keyAcme)
	assert.Equal(t, map[string]any{"key": "my-agent", "version": float64(1),
		"variants": []any{map[string]any{"model": "gpt-4o-mini", "weight": float64(100)}}}, bare)
	assert.Equal(t, http.StatusNotFound, e.get(t, "/configs/my-agent/version/9", keyAcme).code)
	assert.Equal(t, http.StatusNotFound, e.get(t, "/configs/nope/version/1", keyAcme).code)
	assert.Equal(t, http.StatusBadRequest, e.get(t, "/configs/my-agent/version/x", keyAcme).code)
}

func TestServedPrompts(t *testing.T) {
	e := start(t, envOptions{})
	prompts := list(t, decodeLoose(t, e, "/prompts", keyAcme), "prompts")
	require.Len(t, prompts, 2)
	for _, p := range prompts {
		// Strings, never null or absent: PY indexes them, TS calls .replace.
		for _, f := range []string{"key", "system_prompt", "user_template"} {
			_, isString := p[f].(string)
			assert.True(t, isString, "%s of %v", f, p)
		}
	}
	cur := latest(prompts)["onboarding"]
	assert.Equal(t, float64(2), cur["version"])
	assert.Equal(t, "Sys v2 {{user_name}}", cur["system_prompt"])
	assert.Equal(t, "", cur["user_template"])

	tests := list(t, decodeLoose(t, e, "/prompt-ab-tests", keyAcme), "prompt_ab_tests")
	require.Len(t, tests, 1)
	assert.Equal(t, map[string]any{"key": "onboarding-test", "version": float64(3), "variants": []any{
		map[string]any{"prompt_key": "onboarding", "prompt_version": float64(1), "weight": float64(50)},
		map[string]any{"prompt_key": "onboarding", "prompt_version": nil, "weight": float64(50)},
	}}, tests[0], "prompt_version null means the prompt's current version")
}

func TestServedDatasets(t *testing.T) {
	e := start(t, envOptions{})
	want := map[string]any{
		"dataset": map[string]any{"key": "golden", "name": "Golden set"},
		"version": map[string]any{"version": float64(4)},
		"entries": []any{map[string]any{"input": "What is 2+2?", "output": "4", "systemMessage": "Be brief", "metadata": map[string]any{"topic": "math"}}},
	}
	assert.Equal(t, want, decodeLoose(t, e, "/api/datasets/golden", keyAcme))
	assert.Equal(t, want, decodeLoose(t, e, "/api/datasets/golden?include_entries=true&version=4", keyAcme))
	v1 := decodeLoose(t, e, "/api/datasets/golden?version=1", keyAcme)
	assert.Equal(t, []any{map[string]any{"input": "q1", "output": "a1", "systemMessage": "", "metadata": map[string]any{}}}, v1["entries"])
	assert.Equal(t, http.StatusNotFound, e.get(t, "/api/datasets/golden?version=2", keyAcme).code)
	assert.Equal(t, http.StatusNotFound, e.get(t, "/api/datasets/missing", keyAcme).code)
}

// Project isolation: a key is served its own project's configs, prompts,
// tests and datasets, and nothing of another project's, on any route.
func TestProjectIsolation(t *testing.T) {
	e := start(t, envOptions{})
	for _, c := range []struct {
		key, own, other string
	}{{keyAcme, "my-agent", "beta-only"}, {keyBeta, "beta-only", "my-agent"}} {
		configs := latest(list(t, decodeLoose(t, e, "/configs", c.key), "configs"))
		assert.Contains(t, configs, c.own)
		assert.NotContains(t, configs, c.other)
		assert.Equal(t, http.StatusNotFound, e.get(t, "/configs/"+c.other+"/version/1", c.key).code)
	}
	betaPrompts := e.get(t, "/prompts", keyBeta)
	assert.Contains(t, string(betaPrompts.body), "beta secret")
	assert.NotContains(t, string(betaPrompts.body), "onboarding")
	assert.NotContains(t, string(e.get(t, "/prompts", keyAcme).body), "beta secret")
	assert.Equal(t, `{"prompt_ab_tests":[]}`, string(e.get(t, "/prompt-ab-tests", keyBeta).body))
	assert.Equal(t, http.StatusNotFound, e.get(t, "/api/datasets/golden", keyBeta).code)
}

// sdkBucket is the SDKs' sticky hash, written here from FALLOM_SDK.md 3.3:
// the first four bytes of MD5(session id), big-endian, modulo 1,000,000.
func sdkBucket(sessionID string) uint32 {
	sum := md5.Sum([]byte(sessionID))
	return binary.BigEndian.Uint32(sum[:4]) % 1_000_000
}

// sdkPick walks served variants as the SDK does: cumulative weight*10000,
// the first whose bound exceeds the bucket, else the last.
func sdkPick(variants []any, sessionID string) int {
	b := float64(sdkBucket(sessionID))
	cum := 0.0
	for i, v := range variants {
		cum += v.(map[string]any)["weight"].(float64) * 10000
		if b < cum {
			return i
		}
	}
	return len(variants) - 1
}

func TestBucketVectors(t *testing.T) {
	for id, want := range map[string]uint32{
		"session-123": 5516, "user-123-convo-456": 910222, "session-0": 890292, "abc": 5272, "ü-session": 52195,
	} {
		assert.Equal(t, want, sdkBucket(id), id)
	}
}

// The weights as served split sessions the way the SDK will: the vectors
// of FALLOM_SDK.md 3.3 land on the documented variants, and over many
// sessions each variant's share agrees with its weight (a two-sided
// binomial test at alpha 1e-6, on a fixed set of ids, so it cannot flake).
func TestServedWeightsSplitSessions(t *testing.T) {
	e := start(t, envOptions{})
	cur := latest(list(t, decodeLoose(t, e, "/configs", keyAcme), "configs"))["my-agent"]
	variants := cur["variants"].([]any)
	assert.Equal(t, 0, sdkPick(variants, "session-123"), "bucket 5516 < 800000: gpt-4o")
	assert.Equal(t, 1, sdkPick(variants, "user-123-convo-456"), "bucket 910222 >= 800000: claude")
	assert.Equal(t, 1, sdkPick(variants, "session-0"))

	abtest := latest(list(t, decodeLoose(t, e, "/prompt-ab-tests", keyAcme), "prompt_ab_tests"))["onboarding-test"]
	abVariants := abtest["variants"].([]any)
	assert.Equal(t, 0, sdkPick(abVariants, "abc"), "bucket 5272 < 500000")
	assert.Equal(t, 1, sdkPick(abVariants, "user-123-convo-456"))

	const n = 20000
	for _, c := range []struct {
		variants []any
	}{{variants}, {abVariants}} {
		counts := make([]int, len(c.variants))
		for i := range n {
			counts[sdkPick(c.variants, fmt.Sprintf("sess-%d", i))]++
		}
		for i, v := range c.variants {
			p := v.(map[string]any)["weight"].(float64) / 100
			b := distuv.Binomial{N: n, P: p}
			k := float64(counts[i])
			pValue := 2 * math.Min(b.CDF(k), 1-b.CDF(k-1))
			assert.Greater(t, pValue, 1e-6, "variant %d: %d of %d sessions for weight %v", i, counts[i], n, p)
		}
	}
}

// Hot reload: an edit is served without a restart; an invalid edit keeps
// the last good file and logs why; the fixed file is served again.
func TestSDKFileHotReload(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := start(t, envOptions{logger: zap.New(core), mutate: func(c *Config) { c.SDKFileReloadInterval = 200 * time.Millisecond }})
	orig, err := os.ReadFile(e.sdkFile)
	require.NoError(t, err)

	edited := strings.Replace(string(orig), "{model: gpt-4o, weight: 80}, {model: claude-3-5-sonnet, weight: 20}",
		"{model: gpt-4o, weight: 50}, {model: claude-3-5-sonnet, weight: 50}", 1)
	require.NoError(t, os.WriteFile(e.sdkFile, []byte(edited), 0o600))
	weightOfFirst := func() float64 {
		var out struct {
			Configs []struct {
				Key      string `json:"key"`
				Version  int    `json:"version"`
				Variants []struct {
					Weight float64 `json:"weight"`
				} `json:"variants"`
			} `json:"configs"`
		}
		require.NoError(t, json.Unmarshal(e.get(t, "/configs", keyAcme).body, &out))
		return out.Configs[len(out.Configs)-1].Variants[0].Weight
	}
	require.Eventually(t, func() bool { return weightOfFirst() == 50 }, 60*time.Second, 50*time.Millisecond)

	broken := strings.Replace(edited, "weight: 50}, {model: claude-3-5-sonnet, weight: 50}", "weight: 50}, {model: claude-3-5-sonnet, weight: 70}", 1)
	require.NoError(t, os.WriteFile(e.sdkFile, []byte(broken), 0o600))
	require.Eventually(t, func() bool { return logs.FilterMessageSnippet("SDK file refused").Len() > 0 }, 60*time.Second, 50*time.Millisecond)
	refusal := logs.FilterMessageSnippet("SDK file refused").All()[0]
	assert.Contains(t, fmt.Sprint(refusal.ContextMap()["error"]), `project "acme", config "my-agent", version 2: variant weights add up to 120`)
	assert.Equal(t, float64(50), weightOfFirst(), "the last good file stays in force")
	st := e.host.lastStatus()
	require.NotNil(t, st)
	assert.Equal(t, componentstatus.StatusRecoverableError, st.Status(), "the refusal shows in the component status")
	assert.Contains(t, st.Err().Error(), "variant weights add up to 120")

	require.NoError(t, os.WriteFile(e.sdkFile, orig, 0o600))
	require.Eventually(t, func() bool { return weightOfFirst() == 80 }, 60*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return e.host.lastStatus().Status() == componentstatus.StatusOK }, 60*time.Second, 50*time.Millisecond)
}

// An SDK file that is invalid at start stops the receiver from starting,
// with the problem named; a missing one serves nothing until it appears.
func TestSDKFileAtStart(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/sdk.yaml"
	e := start(t, envOptions{sdkFile: path, mutate: func(c *Config) { c.SDKFileReloadInterval = 200 * time.Millisecond }})
	assert.Equal(t, `{"configs":[]}`, string(e.get(t, "/configs", keyAcme).body))
	require.NoError(t, os.WriteFile(path, fixture(t, "sdk.yaml"), 0o600))
	require.Eventually(t, func() bool {
		return strings.Contains(string(e.get(t, "/configs", keyAcme).body), "my-agent")
	}, 60*time.Second, 50*time.Millisecond)

	bad := dir + "/bad.yaml"
	require.NoError(t, os.WriteFile(bad, []byte("projects:\n  acme:\n    prompts:\n      - key: p\n        versions: [{version: 2}, {version: 1, system_prompt: x}]\n"), 0o600))
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.SDKFile = bad
	r, err := newReceiver(cfg, receivertestSettings(f))
	require.NoError(t, err)
	err = r.Start(t.Context(), &testHost{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `project "acme", prompt "p", version 2: has neither system_prompt nor user_template`)
	assert.Contains(t, err.Error(), `project "acme", prompt "p", version 1: versions must be listed in ascending order`)
}

// Without auth there is no project: reads fail closed unless
// default_project_id names one.
func TestNoAuthProject(t *testing.T) {
	closed := start(t, envOptions{noAuth: true})
	a := closed.get(t, "/prompts", "")
	assert.Equal(t, http.StatusUnauthorized, a.code)
	assert.Contains(t, a.errorText(t), "no authenticated project")
	assert.Equal(t, http.StatusUnauthorized, closed.get(t, "/configs/my-agent/version/1", "").code)
	assert.Equal(t, http.StatusUnauthorized, closed.get(t, "/api/datasets/golden", "").code)

	single := start(t, envOptions{noAuth: true, mutate: func(c *Config) { c.DefaultProjectID = "beta" }})
	a = single.get(t, "/prompts", "")
	require.Equal(t, http.StatusOK, a.code)
	assert.Contains(t, string(a.body), "beta secret")
}
