package pricing

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func perM(v float64) float64 { return v / 1e6 }

func TestBuiltinLookupSpellings(t *testing.T) {
	p := NewPricer(nil)
	cases := []struct {
		model   string
		in, out float64 // per million
	}{
		{"openai/gpt-4o-mini", 0.15, 0.60},
		{"gpt-4o-mini", 0.15, 0.60},
		{"gpt-4o-mini-2024-07-18", 0.15, 0.60},
		{"GPT-4o-Mini-2024-07-18", 0.15, 0.60},
		{"gpt-4o-2024-08-06", 2.50, 10},
		{"azure/gpt-4o", 2.50, 10},
		{"openai/gpt-4.1-nano", 0.10, 0.40},
		{"o3-mini-2025-01-31", 1.10, 4.40},
		{"anthropic/claude-3.5-haiku", 0.80, 4},
		{"anthropic/claude-3.5-haiku:beta", 0.80, 4},
		{"claude-3-5-haiku-20241022", 0.80, 4},
		{"claude-3-5-haiku-latest", 0.80, 4},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", 0.80, 4},
		{"anthropic.claude-3-haiku-20240307-v1:0", 0.25, 1.25},
		{"claude-sonnet-4-5@20250929", 3, 15},
		{"claude-sonnet-4-5-20250929", 3, 15},
		{"anthropic/claude-haiku-4.5", 1, 5},
		{"claude-haiku-4-5-20251001", 1, 5},
		{"claude-opus-4-5-20251101", 5, 25},
		{"claude-opus-4-1-20250805", 15, 75},
		{"google/gemini-2.5-flash", 0.30, 2.50},
		{"gemini-2.5-flash-preview-05-20", 0.30, 2.50},
		{"models/gemini-2.0-flash-001", 0.10, 0.40},
		{"meta-llama/llama-3.3-70b-instruct", 0.13, 0.40},
		{"meta.llama3-1-8b-instruct-v1:0", 0.02, 0.05},
		{"mistral-large-2411", 2, 6},
		{"mistral-small-latest", 0.10, 0.30},
		{"deepseek-chat", 0.28, 0.42},
		{"deepseek-reasoner", 0.28, 0.42},
		{"deepseek/deepseek-v3.2-exp", 0.28, 0.42},
		{"deepseek/deepseek-r1", 0.55, 2.19},
		{"x-ai/grok-3-mini", 0.30, 0.50},
		{"grok-4-0709", 3, 15},
		{"openai/gpt-oss-20b:free", 0, 0},
	}
	for _, c := range cases {
		got, ok := p.Lookup(c.model)
		if assert.True(t, ok, c.model) {
			assert.InDelta(t, perM(c.in), got.Input, 1e-15, c.model)
			assert.InDelta(t, perM(c.out), got.Output, 1e-15, c.model)
		}
	}
}

func TestLookupDoesNotGuessAcrossVersions(t *testing.T) {
	p := NewPricer(nil)
	for _, m := range []string{"", "my-finetune", "claude-sonnet-9", "gpt-4o-mini-search-preview", "llama-2", "ft:gpt-4o-mini:acme::abc"} {
		_, ok := p.Lookup(m)
		assert.False(t, ok, m)
	}
	// "claude-sonnet-4-5" must not be shortened to "claude-sonnet-4": both
	// exist, the single-digit segment is a version, not a date.
	s45, _ := p.Lookup("claude-sonnet-4-5")
	opus41, _ := p.Lookup("claude-opus-4-1")
	opus4, _ := p.Lookup("claude-opus-4")
	assert.Equal(t, perM(3), s45.Input)
	assert.Equal(t, perM(15), opus41.Input)
	assert.Equal(t, perM(15), opus4.Input)
	opus45, _ := p.Lookup("claude-opus-4-5")
	assert.Equal(t, perM(5), opus45.Input)
}

func TestCostNeverCountsCachedOrReasoningTwice(t *testing.T) {
	price := Price{Input: 3e-6, Output: 15e-6, CacheRead: 0.3e-6, CacheWrite: 3.75e-6, HasCacheRead: true, HasCacheWrite: true}
	// 10000 input of which 6000 cache read and 1000 cache write; 500 output
	// of which 200 reasoning (reasoning is inside output, priced once).
	in, out := price.Cost(Usage{Input: 10000, Output: 500, CachedInput: 6000, CacheWriteInput: 1000})
	assert.InDelta(t, 3000*3e-6+6000*0.3e-6+1000*3.75e-6, in, 1e-12)
	assert.InDelta(t, 500*15e-6, out, 1e-12)

	// No cache prices: cached tokens cost the input price, never zero and
	// never twice.
	plain := Price{Input: 1e-6, Output: 2e-6}
	in, _ = plain.Cost(Usage{Input: 100, CachedInput: 40})
	assert.InDelta(t, 100*1e-6, in, 1e-15)

	// Inconsistent counts (cached > input) never go negative.
	in, out = price.Cost(Usage{Input: 10, CachedInput: 50, Output: -3})
	assert.GreaterOrEqual(t, in, 0.0)
	assert.Equal(t, 0.0, out)
}

func TestUserFileOverridesBuiltin(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
models:
  openai/gpt-4o-mini:
    input: 0.000001
    output: 0.000002
    cache_read: 0.0000005
  acme/my-finetune:
    input: 2e-6
    output: 4e-6
    cache_write: 0
`), 0o600))
	user, err := LoadFile(path)
	require.NoError(t, err)
	p := NewPricer(user)

	got, ok := p.Lookup("gpt-4o-mini-2024-07-18") // dated provider name hits the user's slug entry
	require.True(t, ok)
	assert.Equal(t, 1e-6, got.Input)
	assert.Equal(t, 2e-6, got.Output)
	assert.True(t, got.HasCacheRead)
	assert.False(t, got.HasCacheWrite)

	got, ok = p.Lookup("my-finetune")
	require.True(t, ok)
	assert.Equal(t, 2e-6, got.Input)
	assert.True(t, got.HasCacheWrite)
	assert.Equal(t, 0.0, got.CacheWrite)

	// Models the user did not price still come from the built-in table.
	got, ok = p.Lookup("openai/gpt-4o")
	require.True(t, ok)
	assert.Equal(t, perM(2.5), got.Input)
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"":           "no models",
		"models: {}": "no models",
		"modles: {a: {input: 1e-6, output: 1e-6}}":                     "field modles not found",
		"models: {a: {input: 1e-6}}":                                   `model "a": input and output prices are required`,
		"models: {a: {input: -1e-6, output: 1e-6}}":                    "must be a non-negative number",
		"models: {a: {input: 0.15, output: 0.6}}":                      "not per million or per 1K tokens",
		"models: {a: {input: 1e-6, output: 1e-6, cache_write_1h: -1}}": "cache_write_1h price -1 must be a non-negative number",
		"models: {a: {input: 1e-6, output: 1e-6, source: \"x\ty\"}}":   "source must be printable text",
		"models: {a: {input: abc, output: 1e-6}}":                      "not a valid pricing file",
		"models: {a: {input: 1e-6, output: .nan}}":                     "must be a non-negative number",
		"models: [1, 2]": "not a valid pricing file",
		"models: {a: {input: 1e-6, output: 1e-6, x}}": "not a valid pricing file",
	}
	for doc, want := range cases {
		_, err := Parse([]byte(doc))
		if assert.Error(t, err, doc) {
			assert.Contains(t, err.Error(), want, doc)
		}
	}
	_, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "pricing file:"))
}

func TestBuiltinTableIsSane(t *testing.T) {
	b := Builtin()
	assert.Greater(t, b.Len(), 60)
	for _, r := range builtinRows {
		p, ok := b.Lookup(r.slug)
		require.True(t, ok, r.slug)
		require.NoError(t, validPrice(p), r.slug)
		assert.False(t, math.IsNaN(p.Input))
		if p.HasCacheRead {
			assert.Less(t, p.CacheRead, p.Input, "cache reads are discounted: %s", r.slug)
		}
		for _, a := range r.aliases {
			ap, ok := b.Lookup(a)
			require.True(t, ok, a)
			assert.Equal(t, p, ap, a)
		}
	}
}

func TestPricerMemoIsBounded(t *testing.T) {
	p := NewPricer(nil)
	for i := 0; i < maxMemo+100; i++ {
		p.Lookup("junk-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune(i)))
	}
	assert.LessOrEqual(t, len(p.memo), maxMemo)
}

// Issue 16 item 9: the rows and spellings the built-in table got wrong.
func TestBuiltinPricesOfIssue16(t *testing.T) {
	p := NewPricer(nil)
	cases := []struct {
		model                     string
		in, out, read, write, w1h float64 // per million; 0 = not listed
	}{
		// GPT-4 Turbo previews are turbo-priced, not gpt-4.
		{"gpt-4-1106-preview", 10, 30, 0, 0, 0},
		{"gpt-4-0125-preview", 10, 30, 0, 0, 0},
		{"openai/gpt-4-turbo-preview", 10, 30, 0, 0, 0},
		{"gpt-4-turbo-2024-04-09", 10, 30, 0, 0, 0},
		{"gpt-4-0613", 30, 60, 0, 0, 0},
		// The first gpt-4o snapshot and the ChatGPT model cost 2x gpt-4o.
		{"gpt-4o-2024-05-13", 5, 15, 0, 0, 0},
		{"openai/gpt-4o-2024-05-13", 5, 15, 0, 0, 0},
		{"chatgpt-4o-latest", 5, 15, 0, 0, 0},
		{"openai/chatgpt-4o-latest", 5, 15, 0, 0, 0},
		{"gpt-4o-2024-08-06", 2.5, 10, 1.25, 0, 0},
		// Anthropic: 1-hour cache writes at 2x input beside 5-minute ones.
		{"claude-sonnet-4-5-20250929", 3, 15, 0.30, 3.75, 6},
		{"anthropic/claude-opus-4.5", 5, 25, 0.50, 6.25, 10},
		{"claude-3-haiku-20240307", 0.25, 1.25, 0.03, 0.30, 0.50},
		// Bedrock: jp. and au. profiles are known; the geographic profiles
		// of the 4.5 generation cost 10% more than global. ones.
		{"jp.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.3, 16.5, 0.33, 4.125, 6.6},
		{"au.anthropic.claude-haiku-4-5-20251001-v1:0", 1.1, 5.5, 0.11, 1.375, 2.2},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.3, 16.5, 0.33, 4.125, 6.6},
		{"eu.anthropic.claude-opus-4-5-20251101-v1:0", 5.5, 27.5, 0.55, 6.875, 11},
		{"global.anthropic.claude-sonnet-4-5-20250929-v1:0", 3, 15, 0.30, 3.75, 6},
		{"anthropic.claude-sonnet-4-5-20250929-v1:0", 3, 15, 0.30, 3.75, 6},
		{"apac.anthropic.claude-sonnet-4-20250514-v1:0", 3, 15, 0.30, 3.75, 6},
		{"jp.anthropic.claude-3-5-haiku-20241022-v1:0", 0.80, 4, 0.08, 1, 1.6},
		// DeepSeek: V3.2 at one price for both API names.
		{"deepseek-chat", 0.28, 0.42, 0.028, 0, 0},
		{"deepseek-reasoner", 0.28, 0.42, 0.028, 0, 0},
	}
	for _, c := range cases {
		got, ok := p.Lookup(c.model)
		if !assert.True(t, ok, c.model) {
			continue
		}
		assert.InDelta(t, perM(c.in), got.Input, 1e-15, c.model)
		assert.InDelta(t, perM(c.out), got.Output, 1e-15, c.model)
		assert.Equal(t, c.read != 0, got.HasCacheRead, c.model)
		assert.InDelta(t, perM(c.read), got.CacheRead, 1e-15, c.model)
		assert.Equal(t, c.write != 0, got.HasCacheWrite, c.model)
		assert.InDelta(t, perM(c.write), got.CacheWrite, 1e-15, c.model)
		assert.Equal(t, c.w1h != 0, got.HasCacheWrite1h, c.model)
		assert.InDelta(t, perM(c.w1h), got.CacheWrite1h, 1e-15, c.model)
		assert.Equal(t, "builtin@2025-11-30", got.Source, c.model)
	}
}

// A Sonnet 4.5 call writing 10,000 tokens to the 1-hour cache costs $6/M for
// them, not the 5-minute $3.75/M.
func TestOneHourCacheWritesArePricedApart(t *testing.T) {
	price, ok := NewPricer(nil).Lookup("claude-sonnet-4-5")
	require.True(t, ok)
	u := Usage{Input: 20000, Output: 1000, CachedInput: 5000, CacheWriteInput: 12000, CacheWrite1hInput: 10000}
	in, out := price.Cost(u)
	assert.InDelta(t, 3000*3e-6+5000*0.3e-6+2000*3.75e-6+10000*6e-6, in, 1e-12)
	assert.InDelta(t, 1000*15e-6, out, 1e-12)

	// Without a 1-hour price, 1-hour writes cost the cache-write price.
	fiveMinOnly := Price{Input: 3e-6, Output: 15e-6, CacheWrite: 3.75e-6, HasCacheWrite: true}
	in, _ = fiveMinOnly.Cost(u)
	assert.InDelta(t, 3000*3e-6+5000*3e-6+12000*3.75e-6, in, 1e-12)

	// A 1-hour count above the cache writes (inconsistent input) never
	// prices a token twice.
	in, _ = price.Cost(Usage{Input: 100, CacheWriteInput: 10, CacheWrite1hInput: 50})
	assert.InDelta(t, 90*3e-6+10*6e-6, in, 1e-15)
}

// The sanity guard: per-1K prices typed as per-token are refused, with the
// model named, whether they are above the per-token ceiling (dear models)
// or far above the built-in price of the same model (cheap ones).
func TestParseRefusesPerThousandPrices(t *testing.T) {
	for doc, want := range map[string]string{
		// gpt-4o at $2.50 / $10 per million = 0.0025 / 0.01 per 1K.
		"models: {openai/gpt-4o: {input: 0.0025, output: 0.01}}": `model "openai/gpt-4o": input price 0.0025 USD per token is implausibly high`,
		// gpt-4o-mini at $0.15 / $0.60 per million = 0.00015 / 0.0006 per 1K:
		// under the ceiling, 1000x the built-in price.
		"models: {gpt-4o-mini-2024-07-18: {input: 0.00015, output: 0.0006}}":  `model "gpt-4o-mini-2024-07-18": input price 0.00015 USD per token is 1000x the built-in price of this model`,
		"models: {claude-3-haiku-20240307: {input: 2.5e-7, output: 0.00125}}": `output price 0.00125 USD per token is implausibly high`,
		"models: {deepseek-chat: {input: 0.00028, output: 4.2e-7}}":           `input price 0.00028 USD per token is 1000x the built-in price`,
	} {
		_, err := Parse([]byte(doc))
		if assert.Error(t, err, doc) {
			assert.Contains(t, err.Error(), want, doc)
			assert.Contains(t, err.Error(), "per 1K tokens", doc)
		}
	}
	// The dearest real prices pass: o1-pro ($150 / $600 per million), and
	// a user price a few times the built-in one (a host's markup).
	_, err := Parse([]byte("models:\n  o1-pro: {input: 0.00015, output: 0.0006}\n  gpt-4o-mini: {input: 4.5e-7, output: 1.8e-6}\n"))
	assert.NoError(t, err)
}

// Issue 16.9, the holes of the per-1K guard: cache prices of known models
// (the 100x check covered input and output only), cache prices out of line
// with the model's own input price, and unknown models priced above the
// dearest model known.
func TestParseRefusesImplausibleCacheAndUnknownPrices(t *testing.T) {
	for doc, want := range map[string]string{
		// gpt-4o-mini's cache read at $0.075/M typed per 1K.
		"models: {gpt-4o-mini: {input: 1.5e-7, output: 6e-7, cache_read: 0.000075}}": `model "gpt-4o-mini": cache_read price 7.5e-05 USD per token is 1000x the built-in price of this model`,
		// Sonnet 4.5's 1-hour write at $6/M typed per 1K.
		"models: {claude-sonnet-4-5: {input: 3e-6, output: 1.5e-5, cache_write_1h: 0.0006}}": `model "claude-sonnet-4-5": cache_write_1h price 0.0006 USD per token is 100x the built-in price of this model`,
		"models: {claude-sonnet-4-5: {input: 3e-6, output: 1.5e-5, cache_write: 0.00375}}":   `model "claude-sonnet-4-5": cache_write price 0.00375 USD per token is implausibly high`,
		// Cache prices against the model's own input price, known or not.
		"models: {acme/m: {input: 1e-6, output: 2e-6, cache_read: 2e-6}}":     `model "acme/m": cache_read price 2e-06 USD per token is above its input price 1e-06`,
		"models: {acme/m: {input: 1e-6, output: 2e-6, cache_write: 3e-6}}":    `model "acme/m": cache_write price 3e-06 USD per token is 3x its input price 1e-06`,
		"models: {acme/m: {input: 1e-6, output: 2e-6, cache_write_1h: 1e-5}}": `model "acme/m": cache_write_1h price 1e-05 USD per token is 10x its input price 1e-06`,
		"models: {acme/free: {input: 0, output: 0, cache_read: 1e-7}}":        `model "acme/free": cache_read price 1e-07 USD per token is above its input price 0`,
		// An unknown model under $1/M priced per 1K: above the dearest known.
		"models: {acme/cheap-ft: {input: 0.0002, output: 0.0008}}": `model "acme/cheap-ft": input price 0.0002 USD per token is above the dearest known input price`,
		"models: {acme/cheap-ft: {input: 1e-7, output: 0.0008}}":   `model "acme/cheap-ft": output price 0.0008 USD per token is above the dearest known output price`,
	} {
		_, err := Parse([]byte(doc))
		if assert.Error(t, err, doc) {
			assert.Contains(t, err.Error(), want, doc)
		}
	}
	// Real cache prices pass: Anthropic's (5m 1.25x, 1h 2x, read 0.1x),
	// OpenAI's discounted reads, a cache write at the input price, and
	// o1-pro, the dearest list price known.
	_, err := Parse([]byte(`models:
  claude-sonnet-4-5: {input: 3e-6, output: 1.5e-5, cache_read: 3e-7, cache_write: 3.75e-6, cache_write_1h: 6e-6}
  gpt-4o-mini: {input: 1.5e-7, output: 6e-7, cache_read: 7.5e-8}
  acme/m: {input: 1e-6, output: 2e-6, cache_read: 1e-6, cache_write: 1e-6}
  o1-pro: {input: 0.00015, output: 0.0006}
`))
	assert.NoError(t, err)
}

func TestPricesRecordTheirSource(t *testing.T) {
	for _, r := range builtinRows {
		assert.NotEmpty(t, r.source, "row %s says where its prices come from", r.slug)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "team-prices.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
models:
  acme/ft-1: {input: 1e-6, output: 2e-6}
  openai/gpt-4o: {input: 2e-6, output: 8e-6, source: openrouter@2026-12-01}
`), 0o600))
	mtime := time.Date(2026, 10, 3, 23, 30, 0, 0, time.UTC)
	require.NoError(t, os.Chtimes(path, mtime, mtime))
	user, err := LoadFile(path)
	require.NoError(t, err)
	p := NewPricer(user)
	for model, want := range map[string]string{
		"acme/ft-1":           "team-prices.yaml@2026-10-03",
		"gpt-4o-2024-11-20":   "team-prices.yaml:openrouter@2026-12-01",
		"claude-haiku-4-5":    "builtin@2025-11-30",
		"openai/gpt-oss:free": FreeVariantSource,
	} {
		got, ok := p.Lookup(model)
		require.True(t, ok, model)
		assert.Equal(t, want, got.Source, model)
	}
}
