package pricing

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var importNow = time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)

// importFile runs `prices import` on a fixture (or a file of the given
// content) into out, returning stdout and stderr.
func importFile(t *testing.T, in, out string, extra ...func(*importOptions)) (string, string, error) {
	t.Helper()
	o := importOptions{in: in, out: out, asOf: "2026-12-02", now: importNow}
	for _, f := range extra {
		f(&o)
	}
	var stdout, stderr bytes.Buffer
	err := runImport(strings.NewReader(""), &stdout, &stderr, o)
	return stdout.String(), stderr.String(), err
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestImportOpenRouterModelList(t *testing.T) {
	out := filepath.Join(t.TempDir(), "data", "prices.yaml")
	stdout, stderr, err := importFile(t, "testdata/openrouter-models.json", out)
	require.NoError(t, err, stderr)
	assert.Empty(t, stderr)
	assert.Contains(t, stdout, "Imported 6 models from the openrouter list (openrouter@2026-12-02)")
	assert.Contains(t, stdout, "Skipped 1: price decided per request (OpenRouter router, price -1) (openrouter/auto)")
	assert.Contains(t, stdout, "Note: 1 models with a per-request fee")
	assert.Contains(t, stdout, "Note: 2 Anthropic models given a 1-hour cache-write price of 2x input")
	assert.Contains(t, stdout, "restart it")

	// The file holds the list's decimal text as written, and loads.
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(data), "input: 0.0000002\n")
	assert.Contains(t, string(data), "cache_write: 0.00000375\n")
	assert.NotContains(t, string(data), "openrouter/auto")
	user, err := LoadFile(out)
	require.NoError(t, err)
	p := NewPricer(user)

	sonnet, ok := p.Lookup("anthropic/claude-sonnet-4.5")
	require.True(t, ok)
	assert.Equal(t, Price{Input: 3e-6, Output: 15e-6, CacheRead: 3e-7, CacheWrite: 3.75e-6, CacheWrite1h: 6e-6,
		HasCacheRead: true, HasCacheWrite: true, HasCacheWrite1h: true, Source: "prices.yaml:openrouter@2026-12-02"}, sonnet)
	opus, ok := p.Lookup("claude-opus-4-6-20260205") // Anthropic's name; not in the built-in table
	require.True(t, ok)
	assert.Equal(t, 5e-6, opus.Input)
	assert.Equal(t, 1e-5, opus.CacheWrite1h)
	mini, ok := p.Lookup("gpt-4o-mini-2024-07-18")
	require.True(t, ok)
	assert.Equal(t, 2e-7, mini.Input)
	assert.False(t, mini.HasCacheWrite)
	free, ok := p.Lookup("openai/gpt-oss-20b:free")
	require.True(t, ok)
	assert.Equal(t, 0.0, free.Input)
	assert.Equal(t, "prices.yaml:openrouter@2026-12-02", free.Source)
}

func TestImportLiteLLMPriceFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "prices.yaml")
	stdout, stderr, err := importFile(t, "testdata/litellm-prices.json", out)
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "Imported 10 models from the litellm list (litellm@2026-12-02)")
	assert.Contains(t, stdout, "Skipped 1: LiteLLM's sample_spec")
	assert.Contains(t, stdout, "Skipped 1: not a text-generation or embedding model (LiteLLM mode): image_generation (1024-x-1024/dall-e-2)")
	assert.Contains(t, stdout, "(LiteLLM mode): audio_transcription (whisper-1)")
	assert.Contains(t, stdout, "(LiteLLM mode): audio_speech (gpt-4o-mini-tts)")
	assert.Contains(t, stdout, "Skipped 1: no per-token input and output price (priced per image, second, character or request) (replicate/meta/llama-2-70b-chat)")
	assert.Contains(t, stdout, "Note: 1 models with long-context price tiers (priced at their base tier)")
	assert.Contains(t, stdout, "Note: 1 Anthropic models given a 1-hour cache-write price") // the jp. Bedrock profile

	user, err := LoadFile(out)
	require.NoError(t, err)
	p := NewPricer(user)
	for model, want := range map[string]Price{
		"claude-sonnet-4-5-20250929":                   {Input: 3e-6, Output: 1.5e-5, CacheRead: 3e-7, CacheWrite: 3.75e-6, CacheWrite1h: 6e-6},
		"jp.anthropic.claude-sonnet-4-5-20250929-v1:0": {Input: 3.3e-6, Output: 1.65e-5, CacheRead: 3.3e-7, CacheWrite: 4.125e-6, CacheWrite1h: 6.6e-6},
		"jp.amazon.nova-2-lite-v1:0":                   {Input: 3.3e-7, Output: 2.75e-6, CacheRead: 8.25e-8},
		"gemini-2.5-flash":                             {Input: 3e-7, Output: 2.5e-6, CacheRead: 3e-8},
		"gpt-5-pro":                                    {Input: 1.5e-5, Output: 1.2e-4},
		"text-embedding-3-small":                       {Input: 2e-8},
	} {
		got, ok := p.Lookup(model)
		require.True(t, ok, model)
		assert.Equal(t, want.Input, got.Input, model)
		assert.Equal(t, want.Output, got.Output, model)
		assert.Equal(t, want.CacheRead, got.CacheRead, model)
		assert.Equal(t, want.CacheWrite, got.CacheWrite, model)
		assert.InDelta(t, want.CacheWrite1h, got.CacheWrite1h, 1e-18, model)
		assert.Equal(t, "prices.yaml:litellm@2026-12-02", got.Source, model)
	}
	_, ok := p.user.Lookup("whisper-1")
	assert.False(t, ok, "audio models are not imported")
}

func TestImportMergesWithTheFile(t *testing.T) {
	out := writeTemp(t, "prices.yaml", `# Our negotiated prices: keep them.
models:
  openai/gpt-4o-mini:  # contract 2026-01
    input: 0.0000001
    output: 0.0000004
  acme/support-ft:
    input: 2e-7
    output: 2e-7
  old/model-gone:
    input: 1e-6
    output: 1e-6
    source: openrouter@2026-01-01
  deepseek-chat:
    input: 2.8e-07
    output: 4.2e-07
    source: litellm@2026-11-01
`)
	stdout, stderr, err := importFile(t, "testdata/openrouter-models.json", out)
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "5 added, 0 changed, 0 unchanged, 1 removed (gone from the list), 1 hand-written kept over the list (openai/gpt-4o-mini), 2 other entries kept")

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	text := string(data)
	assert.Contains(t, text, "# Our negotiated prices: keep them.", "comments stay")
	assert.Contains(t, text, "# contract 2026-01")
	assert.NotContains(t, text, "old/model-gone", "an earlier import's model the list no longer has is removed")
	user, err := LoadFile(out)
	require.NoError(t, err)
	mini, _ := user.Lookup("openai/gpt-4o-mini")
	assert.Equal(t, 1e-7, mini.Input, "a hand-written price wins over the list")
	_, ok := user.Lookup("acme/support-ft")
	assert.True(t, ok)
	ds, _ := user.Lookup("deepseek-chat")
	assert.Equal(t, "prices.yaml:litellm@2026-11-01", ds.Source, "another list's entries stay")

	// The same list again, with one price changed: only that entry changes.
	list, err := os.ReadFile("testdata/openrouter-models.json")
	require.NoError(t, err)
	changed := writeTemp(t, "models.json", strings.Replace(string(list), `"prompt": "0.000005",`, `"prompt": "0.0000045",`, 1))
	stdout, stderr, err = importFile(t, changed, out, func(o *importOptions) { o.asOf = "2026-12-09" })
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "0 added, 1 changed, 4 unchanged, 0 removed")
	user, err = LoadFile(out)
	require.NoError(t, err)
	opus, _ := user.Lookup("anthropic/claude-opus-4.6")
	assert.Equal(t, 4.5e-6, opus.Input)
	assert.Equal(t, "prices.yaml:openrouter@2026-12-09", opus.Source)

	// --replace writes the list alone.
	stdout, stderr, err = importFile(t, "testdata/litellm-prices.json", out, func(o *importOptions) { o.replace = true })
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "10 added, 0 changed, 0 unchanged, 0 removed")
	user, err = LoadFile(out)
	require.NoError(t, err)
	_, ok = user.Lookup("acme/support-ft")
	assert.False(t, ok)
	assert.Equal(t, 10, user.Len())
}

func TestImportRefusesNonsenseAndNamesTheModel(t *testing.T) {
	out := writeTemp(t, "prices.yaml", "models:\n  acme/ft: {input: 1e-6, output: 1e-6}\n")
	before, err := os.ReadFile(out)
	require.NoError(t, err)
	cases := map[string]string{
		`{"data":[{"id":"a/neg","pricing":{"prompt":"-0.000001","completion":"0.000002"}}]}`:                                                              `model "a/neg": input price -0.000001: is negative`,
		`{"data":[{"id":"a/nan","pricing":{"prompt":"NaN","completion":"0.000002"}}]}`:                                                                    `model "a/nan": prompt price "NaN": not a number`,
		`{"data":[{"id":"a/inf","pricing":{"prompt":"1e999","completion":"0.000002"}}]}`:                                                                  `model "a/inf": input price 1e999: is not a finite float64`,
		`{"data":[{"id":"a/word","pricing":{"prompt":"free","completion":"0"}}]}`:                                                                         `model "a/word": prompt price "free": not a number`,
		`{"x": {"input_cost_per_token": "abc", "output_cost_per_token": 1e-6}}`:                                                                           `model "x": input_cost_per_token "abc": not a number`,
		`{"x": {"input_cost_per_token": -1e-6, "output_cost_per_token": 1e-6}}`:                                                                           `model "x": input price -1e-6: is negative`,
		`{"ok": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}, "y": {"input_cost_per_token": 1e-6, "output_cost_per_token": "Infinity"}}`: `model "y": output_cost_per_token "Infinity": not a number`,
	}
	for list, want := range cases {
		_, _, err := importFile(t, writeTemp(t, "list.json", list), out)
		if assert.Error(t, err, list) {
			assert.Contains(t, err.Error(), want, list)
			assert.Contains(t, err.Error(), "nothing was written", list)
		}
		after, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after), "the pricing file is untouched: %s", list)
	}

	// Prices that fail the per-token sanity guard are left out and named,
	// the rest is imported: the real lists carry such mistakes (LiteLLM's
	// wandb/* entries list per-million prices as per-token ones).
	list := writeTemp(t, "list.json", `{
		"wandb/zai-org/GLM-4.5": {"input_cost_per_token": 0.055, "output_cost_per_token": 0.2, "litellm_provider": "wandb", "mode": "chat"},
		"gpt-4o-mini": {"input_cost_per_token": 0.00015, "output_cost_per_token": 0.0006, "litellm_provider": "openai", "mode": "chat"},
		"gpt-5.2": {"input_cost_per_token": 1.75e-06, "output_cost_per_token": 1.4e-05, "litellm_provider": "openai", "mode": "chat"}}`)
	stdout, stderr, err := importFile(t, list, out)
	require.NoError(t, err)
	assert.Contains(t, stderr, `left out: model "gpt-4o-mini": input price 0.00015 USD per token is 1000x the built-in price of this model (1.5e-07): prices are per token, not per 1K tokens`)
	assert.Contains(t, stderr, `left out: model "wandb/zai-org/GLM-4.5": input price 0.055 USD per token is implausibly high`)
	assert.Contains(t, stdout, "Imported 1 models")
	assert.Contains(t, stdout, "Left out 2 models whose prices fail the per-token sanity guard")
	user, err := LoadFile(out)
	require.NoError(t, err)
	_, ok := user.Lookup("gpt-4o-mini")
	assert.False(t, ok)
	_, ok = user.Lookup("gpt-5.2")
	assert.True(t, ok)

	// --skip-invalid imports the others and names what it left out.
	list = writeTemp(t, "list.json", `{"data":[{"id":"a/neg","pricing":{"prompt":"-5","completion":"0"}},
		{"id":"a/ok","pricing":{"prompt":"0.000001","completion":"0.000002"}}]}`)
	stdout, stderr, err = importFile(t, list, out, func(o *importOptions) { o.skipInvalid = true })
	require.NoError(t, err)
	assert.Contains(t, stderr, `skipped: model "a/neg": input price -5: is negative`)
	assert.Contains(t, stdout, "1 added")

	// Not a price list at all.
	for _, doc := range []string{`[1,2]`, `{"models": {}}`, `not json`, `{"data": []}`} {
		_, _, err := importFile(t, writeTemp(t, "list.json", doc), out)
		assert.Error(t, err, doc)
	}
	// A pricing file with errors is not overwritten by an import.
	broken := writeTemp(t, "prices.yaml", "models:\n  a: {input: 5, output: 1e-6}\n")
	_, _, err = importFile(t, "testdata/openrouter-models.json", broken)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fix them first")
}

// Decimal strings never lose precision silently: the file keeps the list's
// digits, and a price a float64 cannot hold is reported with the value the
// costs use.
func TestImportReportsPrecisionLoss(t *testing.T) {
	out := filepath.Join(t.TempDir(), "prices.yaml")
	list := writeTemp(t, "list.json", `{"data":[{"id":"a/long","pricing":{"prompt":"0.00000012345678901234567","completion":"0.0000004"}}]}`)
	_, stderr, err := importFile(t, list, out)
	require.NoError(t, err)
	assert.Contains(t, stderr, `warning: model "a/long": input price 0.00000012345678901234567 has more digits than a float64 holds: costs use 1.2345678901234566e-07`)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(data), "input: 0.00000012345678901234567\n")
	user, err := LoadFile(out)
	require.NoError(t, err)
	p, _ := user.Lookup("a/long")
	assert.Equal(t, 1.2345678901234566e-07, p.Input)
}

func TestImportFromStdinAndDates(t *testing.T) {
	list, err := os.ReadFile("testdata/openrouter-models.json")
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "prices.yaml")
	var stdout, stderr bytes.Buffer
	err = runImport(bytes.NewReader(list), &stdout, &stderr, importOptions{in: "-", out: out, now: importNow})
	require.NoError(t, err, stderr.String())
	assert.Contains(t, stdout.String(), "(openrouter@2026-12-02)", "stdin: today's date")

	// A file: its modification date.
	file := writeTemp(t, "models.json", string(list))
	mtime := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	require.NoError(t, os.Chtimes(file, mtime, mtime))
	stdout.Reset()
	err = runImport(nil, &stdout, &stderr, importOptions{in: file, out: out, now: importNow})
	require.NoError(t, err)
	assert.Contains(t, stdout.String(), "(openrouter@2026-11-20)")

	err = runImport(nil, &stdout, &stderr, importOptions{in: file, out: out, asOf: "yesterday", now: importNow})
	assert.ErrorContains(t, err, `--as-of "yesterday"`)
	err = runImport(nil, &stdout, &stderr, importOptions{in: filepath.Join(t.TempDir(), "missing.json"), out: out, now: importNow})
	assert.Error(t, err)
}

func TestImportCommandDefaults(t *testing.T) {
	t.Setenv(EnvPricingFile, "")
	imp, _, err := NewCommand().Find([]string{"import"})
	require.NoError(t, err)
	assert.Equal(t, DefaultPricingFile, imp.Flags().Lookup("out").DefValue)
	t.Setenv(EnvPricingFile, "/etc/fallom/prices.yaml")
	imp, _, err = NewCommand().Find([]string{"import"})
	require.NoError(t, err)
	assert.Equal(t, "/etc/fallom/prices.yaml", imp.Flags().Lookup("out").DefValue)
}
