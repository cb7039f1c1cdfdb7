package openroutermappingprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/pricing"
	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// runningProcessor is the processor as the collector runs it: built by the
// factory from a validated config, started, feeding a sink.
type runningProcessor struct {
	proc processor.Traces
	sink *consumertest.TracesSink
}

func startProcessor(t *testing.T, cfg *Config) *runningProcessor {
	t.Helper()
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.TracesSink)
	proc, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	rp := &runningProcessor{proc: proc, sink: sink}
	t.Cleanup(func() { _ = rp.proc.Shutdown(context.Background()) })
	return rp
}

// send maps one span and returns its attributes as they leave the processor.
func (rp *runningProcessor) send(t *testing.T, attrs map[string]any) map[string]any {
	t.Helper()
	rp.sink.Reset()
	require.NoError(t, rp.proc.ConsumeTraces(authed, oneSpan(attrs)))
	all := rp.sink.AllTraces()
	require.Len(t, all, 1)
	return spanAt(all[0], 0).Attributes().AsRaw()
}

// Issue 13 item 3: an imported price changes the computed cost of the next
// span once the collector has read the new file (it reads it at start:
// here, a new processor from the factory, as a restart builds it) and never
// a reported cost; the stored cost says which table priced it.
func TestImportedPricesCostTheNextSpan(t *testing.T) {
	miniCall := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
		"gen_ai.usage.input_tokens": int64(1000), "gen_ai.usage.output_tokens": int64(200),
	}
	reported := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
		"gen_ai.usage.input_tokens": int64(1000), "gen_ai.usage.output_tokens": int64(200), "gen_ai.usage.total_cost": 0.0042,
	}
	// Sonnet 4.5 through OpenRouter's usage keys: 6,000 cache-write tokens,
	// 4,000 of them kept 1 hour.
	sonnetCall := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "anthropic/claude-sonnet-4.5",
		"gen_ai.usage.input_tokens": int64(10000), "gen_ai.usage.output_tokens": int64(100),
		"gen_ai.usage.input_tokens.cached":         int64(2000),
		"gen_ai.usage.input_tokens.cache_write_5m": int64(2000),
		"gen_ai.usage.input_tokens.cache_write_1h": int64(4000),
	}
	opusCall := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-opus-4-6-20260205",
		"gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(10),
	}

	before := startProcessor(t, createDefaultConfig())
	got := before.send(t, miniCall)
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.InDelta(t, 1000*0.15e-6+200*0.60e-6, got[fallomattr.TotalCostUSD], 1e-15)
	assert.Equal(t, "builtin@2025-11-30", got[fallomattr.PriceSource])
	got = before.send(t, sonnetCall)
	assert.Equal(t, int64(6000), got[fallomattr.CacheWriteInputTokens])
	assert.InDelta(t, 2000*3e-6+2000*0.3e-6+2000*3.75e-6+4000*6e-6, got[fallomattr.InputCostUSD], 1e-12,
		"1-hour writes at $6/M, 5-minute ones at $3.75/M")
	got = before.send(t, opusCall)
	assert.Equal(t, "unknown", got[fallomattr.CostSource], "not in the built-in table")
	assert.NotContains(t, got, fallomattr.TotalCostUSD)
	assert.NotContains(t, got, fallomattr.PriceSource)

	// `fallomcol prices import` of an OpenRouter model list (the same
	// functions the command runs).
	list, err := os.ReadFile(filepath.Join("..", "..", "internal", "pricing", "testdata", "openrouter-models.json"))
	require.NoError(t, err)
	parsed, err := pricing.ParsePriceList(list)
	require.NoError(t, err)
	content, _, err := pricing.MergePriceList(nil, parsed, "openrouter@2026-12-02", false)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "prices.yaml")
	require.NoError(t, os.WriteFile(path, content, 0o644))

	// The running processor read its prices at start: unchanged.
	got = before.send(t, miniCall)
	assert.Equal(t, "builtin@2025-11-30", got[fallomattr.PriceSource])

	// Restarted with the file: the next span is costed from it.
	cfg := createDefaultConfig()
	cfg.PricingFile = path
	after := startProcessor(t, cfg)
	got = after.send(t, miniCall)
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.InDelta(t, 1000*0.2e-6, got[fallomattr.InputCostUSD], 1e-15)
	assert.InDelta(t, 200*0.8e-6, got[fallomattr.OutputCostUSD], 1e-15)
	assert.InDelta(t, 1000*0.2e-6+200*0.8e-6, got[fallomattr.TotalCostUSD], 1e-15)
	assert.Equal(t, "prices.yaml:openrouter@2026-12-02", got[fallomattr.PriceSource])
	got = after.send(t, opusCall)
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.InDelta(t, 100*5e-6+10*25e-6, got[fallomattr.TotalCostUSD], 1e-15)
	// OpenRouter lists only the 5-minute write price; the import adds
	// Anthropic's 1-hour one (2x input).
	got = after.send(t, sonnetCall)
	assert.InDelta(t, 2000*3e-6+2000*0.3e-6+2000*3.75e-6+4000*6e-6, got[fallomattr.InputCostUSD], 1e-12)
	assert.Equal(t, "prices.yaml:openrouter@2026-12-02", got[fallomattr.PriceSource])

	// A reported cost is never replaced, before or after, and carries no
	// price source (not even one the sender made up).
	for _, rp := range []*runningProcessor{before, after} {
		attrs := map[string]any{fallomattr.PriceSource: "forged", fallomattr.Model: "x"}
		for k, v := range reported {
			attrs[k] = v
		}
		got = rp.send(t, attrs)
		assert.Equal(t, "reported", got[fallomattr.CostSource])
		assert.Equal(t, 0.0042, got[fallomattr.TotalCostUSD])
		assert.NotContains(t, got, fallomattr.InputCostUSD)
		assert.NotContains(t, got, fallomattr.PriceSource)
	}

	// A span mapped twice (two collectors in a chain) keeps the first
	// collector's computed cost and its price source.
	got = after.send(t, miniCall)
	again := after.send(t, got)
	assert.Equal(t, "computed", again[fallomattr.CostSource])
	assert.Equal(t, got[fallomattr.TotalCostUSD], again[fallomattr.TotalCostUSD])
	assert.Equal(t, "prices.yaml:openrouter@2026-12-02", again[fallomattr.PriceSource])
}
