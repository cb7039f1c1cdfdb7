package e2e

import (
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// llmCall is the OTLP/JSON body of one GenAI semconv chat span.
func llmCall(t *testing.T, spanID byte, attrs map[string]any) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "prices-e2e")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("chat")
	span.SetTraceID(pcommon.TraceID{0xe2, 0xe, 1, spanID})
	span.SetSpanID(pcommon.SpanID{0xe2, spanID})
	now := time.Now()
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	require.NoError(t, span.Attributes().FromRaw(attrs))
	body, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return body
}

type storedCost struct {
	source, priceSource sql.NullString
	total               sql.NullFloat64
}

func costOf(t *testing.T, db *sql.DB, spanID byte) storedCost {
	t.Helper()
	var c storedCost
	sid := pcommon.SpanID{0xe2, spanID}
	require.NoError(t, db.QueryRow(`SELECT cost_source, total_cost_usd, json_extract(attributes, '$."fallom.price_source"')
		FROM spans WHERE span_id = ?`, sid.String()).Scan(&c.source, &c.total, &c.priceSource))
	return c
}

// Issue 13 item 3 on the user's path: `bin/fallomcol prices import` of an
// OpenRouter model list, then of LiteLLM's price file, each followed by a
// restart of the default config with FALLOM_PRICING_FILE: the next span is
// costed from the imported price and says so; reported costs and the rows
// stored before stay as they were.
func TestPricesImportCostsTheNextSpan(t *testing.T) {
	dir := t.TempDir()
	key := collectortest.CreateKey(t, filepath.Join(dir, "keys.yaml"), "acme", "e2e")
	auth := map[string]string{"Authorization": "Bearer " + key}
	pricesFile := filepath.Join(dir, "prices.yaml")
	root := collectortest.RepoRoot(t)
	fixture := func(name string) string { return filepath.Join(root, "internal", "pricing", "testdata", name) }

	miniCall := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
		"gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200,
	}
	reportedCall := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
		"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200, "gen_ai.usage.total_cost": 0.0042,
	}
	// 10,000 input tokens of which 2,000 cache reads, 100 output.
	geminiCall := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gemini-2.5-flash",
		"gen_ai.usage.input_tokens": 10000, "gen_ai.usage.cache_read.input_tokens": 2000, "gen_ai.usage.output_tokens": 100,
	}
	send := func(in *instance, spanID byte, attrs map[string]any) {
		t.Helper()
		code, body := in.post(t, llmCall(t, spanID, attrs), auth)
		require.Equal(t, http.StatusOK, code, body)
	}

	// 1. No pricing file: the built-in table.
	in := startDefaultIn(t, dir, key, "FALLOM_PRICING_FILE=")
	send(in, 1, miniCall)
	send(in, 2, reportedCall)
	send(in, 3, geminiCall)
	db := in.db(t)
	assertCost(t, costOf(t, db, 1), "computed", "builtin@2025-11-30", 1000*0.15e-6+200*0.60e-6)
	assertCost(t, costOf(t, db, 2), "reported", "", 0.0042)
	builtinGemini := 8000*0.30e-6 + 2000*0.075e-6 + 100*2.50e-6
	assert.InDelta(t, builtinGemini, costOf(t, db, 3).total.Float64, 1e-12)
	require.NoError(t, in.col.Stop())

	// 2. Import OpenRouter's model list with the built binary, restart.
	out, errOut, err := collectortest.Run(t, dir, nil, "prices", "import", fixture("openrouter-models.json"), "--out", pricesFile, "--as-of", "2026-12-02")
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "Imported 6 models from the openrouter list (openrouter@2026-12-02)")
	assert.Contains(t, out, "restart")
	in = startDefaultIn(t, dir, key, "FALLOM_PRICING_FILE="+pricesFile)
	send(in, 4, miniCall)
	send(in, 5, reportedCall)
	db = in.db(t)
	// The imported gpt-4o-mini price (0.20 / 0.80 per million) costs the
	// next span; a reported cost is never replaced; rows stored before keep
	// their cost.
	assertCost(t, costOf(t, db, 4), "computed", "prices.yaml:openrouter@2026-12-02", 1000*0.2e-6+200*0.8e-6)
	assertCost(t, costOf(t, db, 5), "reported", "", 0.0042)
	assertCost(t, costOf(t, db, 1), "computed", "builtin@2025-11-30", 1000*0.15e-6+200*0.60e-6)
	require.NoError(t, in.col.Stop())

	// 3. Import LiteLLM's price file into the same file (merged), restart.
	out, errOut, err = collectortest.Run(t, dir, nil, "prices", "import", fixture("litellm-prices.json"), "--out", pricesFile, "--as-of", "2026-12-02")
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "Imported 10 models from the litellm list (litellm@2026-12-02)")
	assert.Contains(t, out, "0 removed")
	in = startDefaultIn(t, dir, key, "FALLOM_PRICING_FILE="+pricesFile)
	send(in, 6, geminiCall)
	send(in, 7, miniCall)
	db = in.db(t)
	gemini := costOf(t, db, 6)
	assert.Equal(t, "prices.yaml:litellm@2026-12-02", gemini.priceSource.String)
	assert.InDelta(t, 8000*0.30e-6+2000*0.03e-6+100*2.50e-6, gemini.total.Float64, 1e-12, "LiteLLM's cached-input price")
	assert.NotEqual(t, builtinGemini, gemini.total.Float64)
	assert.Equal(t, "prices.yaml:openrouter@2026-12-02", costOf(t, db, 7).priceSource.String, "the OpenRouter import's entries stay")
	require.NoError(t, in.col.Stop())

	out, _, err = collectortest.Run(t, dir, nil, "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "prices")

	// A pricing file the collector would refuse stops it at start with the
	// model named, rather than costing with wrong prices.
	bad := filepath.Join(dir, "bad-prices.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("models:\n  gpt-4o-mini: {input: 0.00015, output: 0.0006}\n"), 0o600))
	_, errOut, err = collectortest.Run(t, dir, []string{"FALLOM_PRICING_FILE=" + bad, "FALLOM_KEYS_FILE=" + filepath.Join(dir, "keys.yaml")}, "validate")
	require.Error(t, err)
	assert.Contains(t, errOut, `model "gpt-4o-mini": input price 0.00015 USD per token is 1000x the built-in price`)
}

// assertCost checks a stored row's cost_source, price source (absent when
// priceSource is "") and total cost.
func assertCost(t *testing.T, got storedCost, source, priceSource string, total float64) {
	t.Helper()
	assert.Equal(t, sql.NullString{String: source, Valid: true}, got.source)
	assert.Equal(t, sql.NullString{String: priceSource, Valid: priceSource != ""}, got.priceSource)
	if assert.True(t, got.total.Valid) {
		assert.InDelta(t, total, got.total.Float64, 1e-15)
	}
}
