package openroutermappingprocessor

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// goldenView is what the golden file pins for each span: every canonical
// attribute with its type, and the names of the other attributes that stay.
type goldenView struct {
	Name      string         `json:"name"`
	Canonical map[string]any `json:"canonical"`
	Kept      []string       `json:"kept"`
}

func viewOf(td ptrace.Traces) []goldenView {
	var out []goldenView
	for i := 0; i < td.SpanCount(); i++ {
		span := spanAt(td, i)
		v := goldenView{Name: span.Name(), Canonical: map[string]any{}}
		for k, val := range span.Attributes().All() {
			if strings.HasPrefix(k, fallomattr.Prefix) {
				v.Canonical[k] = map[string]any{val.Type().String(): val.AsRaw()}
			} else {
				v.Kept = append(v.Kept, k)
			}
		}
		sort.Strings(v.Kept)
		out = append(out, v)
	}
	return out
}

// TestGoldenOpenRouterDelivery maps a full OpenRouter delivery (root,
// "provider attempt 1: ..." and "generation" children, each in its own
// resourceSpans, intValue as bare numbers) and compares every canonical
// attribute, with its type, to testdata/openrouter-delivery.golden.json.
func TestGoldenOpenRouterDelivery(t *testing.T) {
	p := newTestProcessor(t, nil)
	td := loadTraces(t, "openrouter-delivery.json")
	out, err := p.processTraces(authed, td)
	require.NoError(t, err)
	require.Equal(t, 3, out.SpanCount())

	got, err := json.MarshalIndent(viewOf(out), "", "  ")
	require.NoError(t, err)
	golden := filepath.Join("testdata", "openrouter-delivery.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, append(got, '\n'), 0o600))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))

	// The rules the acceptance suite checks, spelled out.
	root := spanAt(out, 0).Attributes()
	str := func(k string) string { v, _ := root.Get(k); return v.Str() }
	assert.Equal(t, "weather-bot turn", spanAt(out, 0).Name(), "renamed root still recognized by span.type")
	isGen, _ := root.Get(fallomattr.IsGeneration)
	assert.True(t, isGen.Bool())
	assert.Equal(t, "sess-2026-11-abc", str(fallomattr.SessionID))
	assert.Equal(t, "cust_789", str(fallomattr.CustomerID))
	assert.Equal(t, "anthropic/claude-haiku-4.5", str(fallomattr.Model), "stored as reported")
	assert.Equal(t, "Amazon Bedrock", str(fallomattr.Provider), "serving provider, not the model author")
	assert.Equal(t, "tool_calls", str(fallomattr.FinishReason))
	assert.Equal(t, "reported", str(fallomattr.CostSource))
	assert.Equal(t, "openrouter", str(fallomattr.Source))
	total, _ := root.Get(fallomattr.TotalCostUSD)
	assert.Equal(t, 0.0010523, total.Double())
	in, _ := root.Get(fallomattr.InputTokens)
	assert.Equal(t, int64(2489), in.Int())
	ttft, _ := root.Get(fallomattr.TimeToFirstTokenMs)
	assert.Equal(t, 734.0, ttft.Double())
	streamed, _ := root.Get(fallomattr.Streamed)
	assert.True(t, streamed.Bool(), "from rawRequest.stream")

	var prompt []map[string]any
	require.NoError(t, json.Unmarshal([]byte(str(fallomattr.Prompt)), &prompt))
	require.Len(t, prompt, 5)
	assert.Equal(t, "system", prompt[0]["role"])
	assert.Equal(t, "call_a1", prompt[3]["tool_call_id"])
	var completion []map[string]any
	require.NoError(t, json.Unmarshal([]byte(str(fallomattr.Completion)), &completion))
	require.Len(t, completion, 1)
	assert.Equal(t, "assistant", completion[0]["role"])
	assert.Nil(t, completion[0]["content"])
	assert.Equal(t, "Need Porto weather; call the tool.", completion[0]["reasoning"])
	assert.Len(t, completion[0]["tool_calls"], 1)

	// Stored once: none of the six copies remains.
	for _, k := range []string{"gen_ai.prompt", "gen_ai.completion", "span.input", "span.output", "trace.input", "trace.output"} {
		_, ok := root.Get(k)
		assert.False(t, ok, k)
	}
	// Everything else is untouched.
	for _, k := range []string{"trace.metadata.openrouter.provider_slug", "span.metadata.feature", "gen_ai.response.id", "trace.metadata.provider_responses"} {
		_, ok := root.Get(k)
		assert.True(t, ok, k)
	}

	// Children: stored, never generations, never costed.
	for i := 1; i <= 2; i++ {
		attrs := spanAt(out, i).Attributes()
		g, _ := attrs.Get(fallomattr.IsGeneration)
		assert.False(t, g.Bool(), spanAt(out, i).Name())
		for _, k := range []string{fallomattr.CostSource, fallomattr.TotalCostUSD, fallomattr.InputTokens, fallomattr.Model} {
			_, ok := attrs.Get(k)
			assert.False(t, ok, "%s on %s", k, spanAt(out, i).Name())
		}
	}
}

// TestBenchFixtureMatchesOTTLCopy: the OTTL benchmark module keeps its own
// copy of the benchmark input; both sides must run on identical bytes.
func TestBenchFixtureMatchesOTTLCopy(t *testing.T) {
	ours, err := os.ReadFile(filepath.Join("testdata", benchFixture))
	require.NoError(t, err)
	theirs, err := os.ReadFile(filepath.Join("..", "..", "bench", "ottl", "testdata", benchFixture))
	require.NoError(t, err)
	assert.Equal(t, ours, theirs)
}
