package pricing

import "sync"

// builtinRow is one model of the built-in table. Prices are USD per million
// tokens as the providers publish them (converted to per token when the table
// is built); a zero cache price means "not listed" (falls back to input, and
// a 1-hour write to the cache-write price).
type builtinRow struct {
	slug         string   // OpenRouter slug, e.g. "openai/gpt-4o-mini"
	aliases      []string // other names the provider or hosts use
	in, out      float64  // USD per 1M tokens
	cacheRead    float64  // USD per 1M cached (cache read) input tokens
	cacheWrite   float64  // USD per 1M cache-write input tokens (Anthropic: 5-minute lifetime)
	cacheWrite1h float64  // USD per 1M cache-write input tokens kept 1 hour
	// geoPremium multiplies every price on Bedrock's geographic cross-region
	// profiles (us., eu., apac., jp., au.): AWS charges 10% more there than
	// on global. profiles for the Claude 4.5 generation. 0 = no premium.
	geoPremium float64
	source     string // where the prices were read (see the src constants)
}

// BuiltinAsOf is the date of the built-in list prices: the prices in force
// on that day (see each row's source). They go stale, which is why a cost
// reported on the span always wins and a pricing file (`fallomcol prices
// import`) overrides this table.
const BuiltinAsOf = "2025-11-30"

// BuiltinSource is the price source of every built-in price.
const BuiltinSource = "builtin@" + BuiltinAsOf

// Where the prices come from. "recorded" rows were written down from the
// provider's pricing page for the 2025-11-30 table and not re-checked since;
// "checked" rows were compared on 2026-12-02 with LiteLLM's machine-readable
// price list (model_prices_and_context_window.json, a July 2026 copy) and the
// provider's page, and hold the price in force on 2025-11-30.
const (
	srcOpenAIRecorded    = "openai.com/api/pricing, recorded 2025-11-30"
	srcOpenAIChecked     = "openai.com/api/pricing, checked 2026-12-02 against LiteLLM"
	srcAnthropicRecorded = "anthropic.com/pricing (1h writes: 2x input, 5m writes: 1.25x, reads: 0.1x), recorded 2025-11-30"
	srcAnthropicChecked  = "anthropic.com/pricing (1h writes: 2x input, 5m writes: 1.25x, reads: 0.1x), checked 2026-12-02 against LiteLLM; Bedrock geo premium: aws.amazon.com/bedrock/pricing"
	srcGoogleRecorded    = "ai.google.dev/pricing (prompts up to 200k tokens), recorded 2025-11-30"
	srcMetaHosts         = "typical price of the hosts listed on OpenRouter (Meta sells no API; hosts differ), recorded 2025-11-30"
	srcMistralRecorded   = "mistral.ai/pricing (La Plateforme), recorded 2025-11-30"
	srcDeepSeekChecked   = "api-docs.deepseek.com/quick_start/pricing: DeepSeek-V3.2 since 2025-09-29 (cache hit = cache read), checked 2026-12-02 against LiteLLM"
	srcDeepSeekR1Legacy  = "DeepSeek's own R1 price until 2025-09-05 (the API now serves V3.2); R1 is sold by other hosts at their own prices"
	srcXAIRecorded       = "docs.x.ai/docs/models, recorded 2025-11-30"
)

// Anthropic prices cache writes at 1.25x input for a 5-minute lifetime and
// 2x input for 1 hour, and cache reads at 0.1x input. OpenAI and Google
// price cached input at a discount and do not charge cache writes separately
// (left at the input price). DeepSeek's cache-hit price is its cache read
// price.
var builtinRows = []builtinRow{
	// OpenAI.
	{slug: "openai/gpt-5", in: 1.25, out: 10, cacheRead: 0.125, source: srcOpenAIChecked},
	{slug: "openai/gpt-5-mini", in: 0.25, out: 2, cacheRead: 0.025, source: srcOpenAIChecked},
	{slug: "openai/gpt-5-nano", in: 0.05, out: 0.40, cacheRead: 0.005, source: srcOpenAIChecked},
	{slug: "openai/gpt-4.1", in: 2, out: 8, cacheRead: 0.50, source: srcOpenAIChecked},
	{slug: "openai/gpt-4.1-mini", in: 0.40, out: 1.60, cacheRead: 0.10, source: srcOpenAIChecked},
	{slug: "openai/gpt-4.1-nano", in: 0.10, out: 0.40, cacheRead: 0.025, source: srcOpenAIChecked},
	{slug: "openai/gpt-4o", in: 2.50, out: 10, cacheRead: 1.25, source: srcOpenAIChecked},
	// The first gpt-4o snapshot and the ChatGPT model cost twice gpt-4o;
	// without these rows the date stripping would price them as gpt-4o.
	{slug: "openai/gpt-4o-2024-05-13", in: 5, out: 15, source: srcOpenAIChecked},
	{slug: "openai/chatgpt-4o-latest", aliases: []string{"chatgpt-4o"}, in: 5, out: 15, source: srcOpenAIRecorded},
	{slug: "openai/gpt-4o-mini", in: 0.15, out: 0.60, cacheRead: 0.075, source: srcOpenAIChecked},
	{slug: "openai/o1", in: 15, out: 60, cacheRead: 7.50, source: srcOpenAIChecked},
	{slug: "openai/o1-mini", in: 1.10, out: 4.40, cacheRead: 0.55, source: srcOpenAIRecorded},
	{slug: "openai/o3", in: 2, out: 8, cacheRead: 0.50, source: srcOpenAIChecked},
	{slug: "openai/o3-mini", in: 1.10, out: 4.40, cacheRead: 0.55, source: srcOpenAIChecked},
	{slug: "openai/o4-mini", in: 1.10, out: 4.40, cacheRead: 0.275, source: srcOpenAIChecked},
	// The GPT-4 Turbo previews are turbo-priced; without these aliases the
	// suffix stripping would price gpt-4-1106-preview as gpt-4.
	{slug: "openai/gpt-4-turbo", aliases: []string{"gpt-4-turbo-preview", "gpt-4-1106-preview", "gpt-4-0125-preview", "gpt-4-vision-preview", "gpt-4-1106-vision-preview"}, in: 10, out: 30, source: srcOpenAIChecked},
	{slug: "openai/gpt-4", in: 30, out: 60, source: srcOpenAIChecked},
	{slug: "openai/gpt-3.5-turbo", in: 0.50, out: 1.50, source: srcOpenAIChecked},
	{slug: "openai/text-embedding-3-small", in: 0.02, source: srcOpenAIRecorded},
	{slug: "openai/text-embedding-3-large", in: 0.13, source: srcOpenAIRecorded},
	{slug: "openai/text-embedding-ada-002", in: 0.10, source: srcOpenAIRecorded},

	// Anthropic. OpenRouter slugs use dots (claude-3.5-haiku), Anthropic's
	// API ids use dashes (claude-3-5-haiku).
	{slug: "anthropic/claude-opus-4.5", aliases: []string{"claude-opus-4-5"}, in: 5, out: 25, cacheRead: 0.50, cacheWrite: 6.25, cacheWrite1h: 10, geoPremium: 1.1, source: srcAnthropicChecked},
	{slug: "anthropic/claude-opus-4.1", aliases: []string{"claude-opus-4-1"}, in: 15, out: 75, cacheRead: 1.50, cacheWrite: 18.75, cacheWrite1h: 30, source: srcAnthropicChecked},
	{slug: "anthropic/claude-opus-4", aliases: []string{"claude-opus-4-0"}, in: 15, out: 75, cacheRead: 1.50, cacheWrite: 18.75, cacheWrite1h: 30, source: srcAnthropicChecked},
	{slug: "anthropic/claude-sonnet-4.5", aliases: []string{"claude-sonnet-4-5"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75, cacheWrite1h: 6, geoPremium: 1.1, source: srcAnthropicChecked},
	{slug: "anthropic/claude-sonnet-4", aliases: []string{"claude-sonnet-4-0"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75, cacheWrite1h: 6, source: srcAnthropicChecked},
	{slug: "anthropic/claude-3.7-sonnet", aliases: []string{"claude-3-7-sonnet"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75, cacheWrite1h: 6, source: srcAnthropicChecked},
	{slug: "anthropic/claude-3.5-sonnet", aliases: []string{"claude-3-5-sonnet"}, in: 3, out: 15, cacheRead: 0.30, cacheWrite: 3.75, cacheWrite1h: 6, source: srcAnthropicRecorded},
	{slug: "anthropic/claude-haiku-4.5", aliases: []string{"claude-haiku-4-5"}, in: 1, out: 5, cacheRead: 0.10, cacheWrite: 1.25, cacheWrite1h: 2, geoPremium: 1.1, source: srcAnthropicChecked},
	{slug: "anthropic/claude-3.5-haiku", aliases: []string{"claude-3-5-haiku"}, in: 0.80, out: 4, cacheRead: 0.08, cacheWrite: 1, cacheWrite1h: 1.6, source: srcAnthropicRecorded},
	{slug: "anthropic/claude-3-haiku", in: 0.25, out: 1.25, cacheRead: 0.03, cacheWrite: 0.30, cacheWrite1h: 0.50, source: srcAnthropicRecorded},
	{slug: "anthropic/claude-3-opus", in: 15, out: 75, cacheRead: 1.50, cacheWrite: 18.75, cacheWrite1h: 30, source: srcAnthropicRecorded},

	// Google Gemini API, prompts up to 200k tokens (128k for 1.5); longer
	// prompts cost more: use a pricing file if you send them.
	{slug: "google/gemini-2.5-pro", in: 1.25, out: 10, cacheRead: 0.31, source: srcGoogleRecorded},
	{slug: "google/gemini-2.5-flash", in: 0.30, out: 2.50, cacheRead: 0.075, source: srcGoogleRecorded},
	{slug: "google/gemini-2.5-flash-lite", in: 0.10, out: 0.40, cacheRead: 0.025, source: srcGoogleRecorded},
	{slug: "google/gemini-2.0-flash", aliases: []string{"google/gemini-2.0-flash-001"}, in: 0.10, out: 0.40, cacheRead: 0.025, source: srcGoogleRecorded},
	{slug: "google/gemini-2.0-flash-lite", aliases: []string{"google/gemini-2.0-flash-lite-001"}, in: 0.075, out: 0.30, source: srcGoogleRecorded},
	{slug: "google/gemini-1.5-pro", in: 1.25, out: 5, source: srcGoogleRecorded},
	{slug: "google/gemini-1.5-flash", in: 0.075, out: 0.30, source: srcGoogleRecorded},

	// Meta Llama.
	{slug: "meta-llama/llama-4-maverick", aliases: []string{"llama-4-maverick-17b-128e-instruct"}, in: 0.15, out: 0.60, source: srcMetaHosts},
	{slug: "meta-llama/llama-4-scout", aliases: []string{"llama-4-scout-17b-16e-instruct"}, in: 0.08, out: 0.30, source: srcMetaHosts},
	{slug: "meta-llama/llama-3.3-70b-instruct", aliases: []string{"llama3.3-70b", "llama-3.3-70b", "llama3-3-70b-instruct"}, in: 0.13, out: 0.40, source: srcMetaHosts},
	{slug: "meta-llama/llama-3.1-405b-instruct", aliases: []string{"llama3.1-405b", "llama-3.1-405b", "llama3-1-405b-instruct"}, in: 0.80, out: 0.80, source: srcMetaHosts},
	{slug: "meta-llama/llama-3.1-70b-instruct", aliases: []string{"llama3.1-70b", "llama-3.1-70b", "llama3-1-70b-instruct"}, in: 0.10, out: 0.28, source: srcMetaHosts},
	{slug: "meta-llama/llama-3.1-8b-instruct", aliases: []string{"llama3.1-8b", "llama-3.1-8b", "llama3-1-8b-instruct"}, in: 0.02, out: 0.05, source: srcMetaHosts},

	// Mistral.
	{slug: "mistralai/mistral-large", aliases: []string{"mistral-large"}, in: 2, out: 6, source: srcMistralRecorded},
	{slug: "mistralai/mistral-medium-3", aliases: []string{"mistral-medium"}, in: 0.40, out: 2, source: srcMistralRecorded},
	{slug: "mistralai/mistral-small", aliases: []string{"mistral-small", "mistralai/mistral-small-3.1-24b-instruct", "mistralai/mistral-small-3.2-24b-instruct"}, in: 0.10, out: 0.30, source: srcMistralRecorded},
	{slug: "mistralai/codestral", aliases: []string{"codestral"}, in: 0.30, out: 0.90, source: srcMistralRecorded},
	{slug: "mistralai/mistral-nemo", aliases: []string{"open-mistral-nemo"}, in: 0.15, out: 0.15, source: srcMistralRecorded},
	{slug: "mistralai/ministral-8b", in: 0.10, out: 0.10, source: srcMistralRecorded},
	{slug: "mistralai/ministral-3b", in: 0.04, out: 0.04, source: srcMistralRecorded},
	{slug: "mistralai/pixtral-large", aliases: []string{"pixtral-large"}, in: 2, out: 6, source: srcMistralRecorded},

	// DeepSeek. The API's deepseek-chat and deepseek-reasoner are both
	// DeepSeek-V3.2 (non-thinking and thinking) at one price; the 2025 list
	// prices of V3 (0.27/1.10) and R1 (0.55/2.19) ended on 2025-09-05.
	// "deepseek/deepseek-chat" (OpenRouter's V3 slug) falls to this row by
	// its bare name; OpenRouter reports its own cost for it anyway.
	{slug: "deepseek/deepseek-v3.2", aliases: []string{"deepseek-chat", "deepseek-reasoner", "deepseek/deepseek-v3.2-exp", "deepseek-v3.2-exp"}, in: 0.28, out: 0.42, cacheRead: 0.028, source: srcDeepSeekChecked},
	{slug: "deepseek/deepseek-r1", in: 0.55, out: 2.19, cacheRead: 0.14, source: srcDeepSeekR1Legacy},

	// xAI.
	{slug: "x-ai/grok-4", in: 3, out: 15, cacheRead: 0.75, source: srcXAIRecorded},
	{slug: "x-ai/grok-3", in: 3, out: 15, cacheRead: 0.75, source: srcXAIRecorded},
	{slug: "x-ai/grok-3-mini", in: 0.30, out: 0.50, cacheRead: 0.075, source: srcXAIRecorded},
	{slug: "x-ai/grok-2", in: 2, out: 10, source: srcXAIRecorded},
	{slug: "x-ai/grok-code-fast-1", in: 0.20, out: 1.50, cacheRead: 0.02, source: srcXAIRecorded},
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
			p := r.price(1)
			t.add(r.slug, p)
			for _, a := range r.aliases {
				t.add(a, p)
			}
			if r.geoPremium > 0 {
				// Names as forEachCandidate forms them for a Bedrock id
				// on a geographic profile: "jp.claude-sonnet-4-5".
				geo := r.price(r.geoPremium)
				for _, region := range geoRegions {
					t.add(region+lastSegment(r.slug), geo)
					for _, a := range r.aliases {
						t.add(region+lastSegment(a), geo)
					}
				}
			}
		}
		builtinTable = t
	})
	return builtinTable
}

// price converts the row's per-million prices to per-token ones, times
// factor.
func (r builtinRow) price(factor float64) Price {
	perToken := func(perMillion float64) float64 { return perMillion * factor / 1e6 }
	p := Price{Input: perToken(r.in), Output: perToken(r.out), Source: BuiltinSource}
	if r.cacheRead > 0 {
		p.CacheRead, p.HasCacheRead = perToken(r.cacheRead), true
	}
	if r.cacheWrite > 0 {
		p.CacheWrite, p.HasCacheWrite = perToken(r.cacheWrite), true
	}
	if r.cacheWrite1h > 0 {
		p.CacheWrite1h, p.HasCacheWrite1h = perToken(r.cacheWrite1h), true
	}
	return p
}
