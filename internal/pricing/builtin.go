package pricing

import "sync"

// builtinRow is one model of the built-in table. Prices are USD per million
// tokens as the providers publish them (converted to per token when the table
// is built); a zero cache price means "not listed" (falls back to input).
type builtinRow struct {
	slug       string   // OpenRouter slug, e.g. "openai/gpt-4o-mini"
	aliases    []string // other names the provider or hosts use
	in, out    float64  // USD per 1M tokens
	cacheRead  float64  // USD per 1M cached (cache read) input tokens
	cacheWrite float64  // USD per 1M cache-write input tokens
}

// BuiltinAsOf is the date of the built-in list prices. See the README for
// where they come from; they go stale, which is why a cost reported on the
// span always wins and a pricing file overrides this table.
const BuiltinAsOf = "2025-11-30"

// Anthropic prices cache writes at 1.25x input (5-minute TTL) and cache reads
// at 0.1x input. OpenAI and Google price cached input at a discount and do
// not charge cache writes separately (left at the input price). DeepSeek's
// cache-hit price is its cache read price.
var builtinRows = []builtinRow{
	// OpenAI (openai.com/api/pricing).
	{slug: "openai/gpt-5", in: 1.25, out: 10, cacheRead: 0.125},
	{slug: "openai/gpt-5-mini", in: 0.25, out: 2, cacheRead: 0.025},
	{slug: "openai/gpt-5-nano", in: 0.05, out: 0.40, cacheRead: 0.005},
	{slug: "openai/gpt-4.1", in: 2, out: 8, cacheRead: 0.50},
	{slug: "openai/gpt-4.1-mini", in: 0.40, out: 1.60, cacheRead: 0.10},
	{slug: "openai/gpt-4.1-nano", in: 0.10, out: 0.40, cacheRead: 0.025},
	{slug: "openai/gpt-4o", aliases: []string{"chatgpt-4o"}, in: 2.50, out: 10, cacheRead: 1.25},
	{slug: "openai/gpt-4o-mini", in: 0.15, out: 0.60, cacheRead: 0.075},
	{slug: "openai/o1", in: 15, out: 60, cacheRead: 7.50},
	{slug: "openai/o1-mini", in: 1.10, out: 4.40, cacheRead: 0.55},
	{slug: "openai/o3", in: 2, out: 8, cacheRead: 0.50},
	{slug: "openai/o3-mini", in: 1.10, out: 4.40, cacheRead: 0.55},
	{slug: "openai/o4-mini", in: 1.10, out: 4.40, cacheRead: 0.275},
	{slug: "openai/gpt-4-turbo", in: 10, out: 30},
	{slug: "openai/gpt-4", in: 30, out: 60},
	{slug: "openai/gpt-3.5-turbo", in: 0.50, out: 1.50},
	{slug: "openai/text-embedding-3-small", in: 0.02},
	{slug: "openai/text-embedding-3-large", in: 0.13},
	{slug: "openai/text-embedding-ada-002", in: 0.10},

	// Anthropic (anthropic.com/pricing). OpenRouter slugs use dots
	// (claude-3.5-haiku), Anthropic's API ids use dashes (claude-3-5-haiku).
	{slug: "anthropic/claude-opus-4.5", aliases: []string{"claude-opus-4-5"}, in: 5, out: 25, cacheRead: 0.50, cacheWrite: 6.25},
	{slug: "anthropic/claude-opus-4.1", aliases: []string{"claude-opus-4-1"}, in: 15, out: 75, cacheRead: 1.50, cacheWrite: 18.75},
	{slug: "anthropic/claude-opus-4", aliases: []string{"claude-opus-4-0"}, in: 15, out: 75, cacheRead: 1.50, cacheWrite: 18.75},
	{slug: "anthropic/claude-sonnet-4.5", aliases: []string{"claude-sonnet-4-5"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75},
	{slug: "anthropic/claude-sonnet-4", aliases: []string{"claude-sonnet-4-0"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75},
	{slug: "anthropic/claude-3.7-sonnet", aliases: []string{"claude-3-7-sonnet"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75},
	{slug: "anthropic/claude-3.5-sonnet", aliases: []string{"claude-3-5-sonnet"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75},
	{slug: "anthropic/claude-haiku-4.5", aliases: []string{"claude-haiku-4-5"}, in: 1, out: 5, cacheRead: 0.10, cacheWrite: 1.25},
	{slug: "anthropic/claude-3.5-haiku", aliases: []string{"claude-3-5-haiku"}, in: 0.80, out: 4, cacheRead: 0.08, cacheWrite: 1},
	{slug: "anthropic/claude-3-haiku", in: 0.25, out: 1.25, cacheRead: 0.03, cacheWrite: 0.30},
	{slug: "anthropic/claude-3-opus", in: 15, out: 75, cacheRead: 1.50, cacheWrite: 18.75},

	// Google Gemini API (ai.google.dev/pricing), prompts up to 200k tokens
	// (128k for 1.5); longer prompts cost more: use a pricing file if you
	// send them.
	{slug: "google/gemini-2.5-pro", in: 1.25, out: 10, cacheRead: 0.31},
	{slug: "google/gemini-2.5-flash", in: 0.30, out: 2.50, cacheRead: 0.075},
	{slug: "google/gemini-2.5-flash-lite", in: 0.10, out: 0.40, cacheRead: 0.025},
	{slug: "google/gemini-2.0-flash", aliases: []string{"google/gemini-2.0-flash-001"}, in: 0.10, out: 0.40, cacheRead: 0.025},
	{slug: "google/gemini-2.0-flash-lite", aliases: []string{"google/gemini-2.0-flash-lite-001"}, in: 0.075, out: 0.30},
	{slug: "google/gemini-1.5-pro", in: 1.25, out: 5},
	{slug: "google/gemini-1.5-flash", in: 0.075, out: 0.30},

	// Meta Llama: Meta sells no API; these are typical prices of the hosts
	// listed on OpenRouter (they differ by host).
	{slug: "meta-llama/llama-4-maverick", aliases: []string{"llama-4-maverick-17b-128e-instruct"}, in: 0.15, out: 0.60},
	{slug: "meta-llama/llama-4-scout", aliases: []string{"llama-4-scout-17b-16e-instruct"}, in: 0.08, out: 0.30},
	{slug: "meta-llama/llama-3.3-70b-instruct", aliases: []string{"llama3.3-70b", "llama-3.3-70b", "llama3-3-70b-instruct"}, in: 0.13, out: 0.40},
	{slug: "meta-llama/llama-3.1-405b-instruct", aliases: []string{"llama3.1-405b", "llama-3.1-405b", "llama3-1-405b-instruct"}, in: 0.80, out: 0.80},
	{slug: "meta-llama/llama-3.1-70b-instruct", aliases: []string{"llama3.1-70b", "llama-3.1-70b", "llama3-1-70b-instruct"}, in: 0.10, out: 0.28},
	{slug: "meta-llama/llama-3.1-8b-instruct", aliases: []string{"llama3.1-8b", "llama-3.1-8b", "llama3-1-8b-instruct"}, in: 0.02, out: 0.05},

	// Mistral (mistral.ai/pricing, La Plateforme).
	{slug: "mistralai/mistral-large", aliases: []string{"mistral-large"}, in: 2, out: 6},
	{slug: "mistralai/mistral-medium-3", aliases: []string{"mistral-medium"}, in: 0.40, out: 2},
	{slug: "mistralai/mistral-small", aliases: []string{"mistral-small", "mistralai/mistral-small-3.1-24b-instruct", "mistralai/mistral-small-3.2-24b-instruct"}, in: 0.10, out: 0.30},
	{slug: "mistralai/codestral", aliases: []string{"codestral"}, in: 0.30, out: 0.90},
	{slug: "mistralai/mistral-nemo", aliases: []string{"open-mistral-nemo"}, in: 0.15, out: 0.15},
	{slug: "mistralai/ministral-8b", in: 0.10, out: 0.10},
	{slug: "mistralai/ministral-3b", in: 0.04, out: 0.04},
	{slug: "mistralai/pixtral-large", aliases: []string{"pixtral-large"}, in: 2, out: 6},

	// DeepSeek (api-docs.deepseek.com, standard-hour prices of V3 and R1;
	// cache hit = cache read).
	{slug: "deepseek/deepseek-chat", aliases: []string{"deepseek/deepseek-chat-v3", "deepseek-v3"}, in: 0.27, out: 1.10, cacheRead: 0.07},
	{slug: "deepseek/deepseek-r1", aliases: []string{"deepseek-reasoner"}, in: 0.55, out: 2.19, cacheRead: 0.14},

	// xAI (docs.x.ai/docs/models).
	{slug: "x-ai/grok-4", in: 3, out: 15, cacheRead: 0.75},
	{slug: "x-ai/grok-3", in: 3, out: 15, cacheRead: 0.75},
	{slug: "x-ai/grok-3-mini", in: 0.30, out: 0.50, cacheRead: 0.075},
	{slug: "x-ai/grok-2", in: 2, out: 10},
	{slug: "x-ai/grok-code-fast-1", in: 0.20, out: 1.50, cacheRead: 0.02},
}

var (
	builtinOnce  sync.Once
	builtinTable *Table
)

// Builtin returns the built-in price table (built once, read-only).
func Builtin() *Table {
	builtinOnce.Do(func() {
		t := newTable()
		for _, r := range builtinRows {
			p := Price{Input: r.in / 1e6, Output: r.out / 1e6}
			if r.cacheRead > 0 {
				p.CacheRead, p.HasCacheRead = r.cacheRead/1e6, true
			}
			if r.cacheWrite > 0 {
				p.CacheWrite, p.HasCacheWrite = r.cacheWrite/1e6, true
			}
			t.add(r.slug, p)
			for _, a := range r.aliases {
				t.add(a, p)
			}
		}
		builtinTable = t
	})
	return builtinTable
}
