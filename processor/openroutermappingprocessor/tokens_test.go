package openroutermappingprocessor

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// tokensOf returns the stored token columns of a mapped span (nil = NULL).
func tokensOf(got map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{fallomattr.InputTokens, fallomattr.OutputTokens, fallomattr.TotalTokens,
		fallomattr.CachedInputTokens, fallomattr.CacheWriteInputTokens, fallomattr.ReasoningTokens} {
		out[fallomattr.Column(k)] = got[k]
	}
	return out
}

func tok(in, out, total, cached, write, reasoning any) map[string]any {
	return map[string]any{
		"input_tokens": in, "output_tokens": out, "total_tokens": total,
		"cached_input_tokens": cached, "cache_write_input_tokens": write, "reasoning_tokens": reasoning,
	}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// vercelCall is the inner doStream span of the Vercel AI SDK, v5 key set
// (ai@5.0.0 packages/ai/src/generate-text/stream-text.ts: ai.usage.inputTokens,
// outputTokens, totalTokens, reasoningTokens, cachedInputTokens and the same
// figures as gen_ai.usage.input_tokens / output_tokens).
func vercelCall(provider, model string, usage map[string]any) map[string]any {
	attrs := map[string]any{
		"ai.operationId":    "ai.streamText.doStream",
		"ai.model.provider": provider,
		"gen_ai.system":     provider,
		"ai.model.id":       model,
	}
	for k, v := range usage {
		attrs[k] = v
		switch k {
		case "ai.usage.inputTokens":
			attrs["gen_ai.usage.input_tokens"] = v
		case "ai.usage.outputTokens":
			attrs["gen_ai.usage.output_tokens"] = v
		}
	}
	return attrs
}

// Issue 16.3: token semantics per dialect, version and provider.
func TestTokenSemanticsPerEmitter(t *testing.T) {
	p := newTestProcessor(t, nil)
	cases := []struct {
		name    string
		attrs   map[string]any
		want    map[string]any
		flagged []any // fallom.tokens_adjusted; nil = not flagged
	}{{
		// @ai-sdk/anthropic@2.0.0 anthropic-messages-language-model.ts:
		// inputTokens = usage.input_tokens (no cache), totalTokens = input +
		// output, cachedInputTokens = cache_read_input_tokens; cache writes
		// only in providerMetadata.anthropic.cacheCreationInputTokens.
		name: "vercel v5 anthropic, cache reads above input",
		attrs: vercelCall("anthropic.messages", "claude-sonnet-4-5", map[string]any{
			"ai.usage.inputTokens": int64(12), "ai.usage.cachedInputTokens": int64(6209),
			"ai.usage.outputTokens": int64(100), "ai.usage.totalTokens": int64(112),
		}),
		want:    tok(int64(6221), int64(100), int64(6321), int64(6209), nil, nil),
		flagged: []any{"input_excluded_cache", "total_recomputed"},
	}, {
		name: "vercel v5 anthropic, cache reads below input, cache write in provider metadata",
		attrs: vercelCall("anthropic.messages", "claude-sonnet-4-5", map[string]any{
			"ai.usage.inputTokens": int64(5000), "ai.usage.cachedInputTokens": int64(1000),
			"ai.usage.outputTokens": int64(300), "ai.usage.totalTokens": int64(5300),
			"ai.response.providerMetadata": `{"anthropic":{"usage":{"input_tokens":5000,"output_tokens":300,"cache_creation_input_tokens":200,"cache_read_input_tokens":1000},"cacheCreationInputTokens":200}}`,
		}),
		want:    tok(int64(6200), int64(300), int64(6500), int64(1000), int64(200), nil),
		flagged: []any{"input_excluded_cache", "total_recomputed"},
	}, {
		// @ai-sdk/amazon-bedrock@3.0.0 bedrock-chat-language-model.ts:
		// inputTokens = usage.inputTokens (Converse: no cache),
		// cachedInputTokens = cacheReadInputTokens.
		name: "vercel v5 bedrock",
		attrs: vercelCall("amazon-bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", map[string]any{
			"ai.usage.inputTokens": int64(40), "ai.usage.cachedInputTokens": int64(30),
			"ai.usage.outputTokens": int64(10), "ai.usage.totalTokens": int64(50),
		}),
		want:    tok(int64(70), int64(10), int64(80), int64(30), nil, nil),
		flagged: []any{"input_excluded_cache", "total_recomputed"},
	}, {
		// Vertex's Anthropic models go through the Anthropic converter.
		name: "vercel v5 vertex anthropic",
		attrs: vercelCall("vertex.anthropic.messages", "claude-sonnet-4-5@20250929", map[string]any{
			"ai.usage.inputTokens": int64(400), "ai.usage.cachedInputTokens": int64(100),
			"ai.usage.outputTokens": int64(10),
		}),
		want:    tok(int64(500), int64(10), int64(510), int64(100), nil, nil),
		flagged: []any{"input_excluded_cache"},
	}, {
		// @ai-sdk/openai@2.0.0: prompt_tokens includes cached_tokens.
		name: "vercel v5 openai",
		attrs: vercelCall("openai.responses", "gpt-4o", map[string]any{
			"ai.usage.inputTokens": int64(2000), "ai.usage.cachedInputTokens": int64(1500),
			"ai.usage.outputTokens": int64(300), "ai.usage.reasoningTokens": int64(100), "ai.usage.totalTokens": int64(2300),
		}),
		want: tok(int64(2000), int64(300), int64(2300), int64(1500), nil, int64(100)),
	}, {
		// @ai-sdk/google@2.0.0: outputTokens = candidatesTokenCount (no
		// thoughts), totalTokens = totalTokenCount (with thoughts).
		name: "vercel v5 google, reasoning below output",
		attrs: vercelCall("google.generative-ai", "gemini-2.5-flash", map[string]any{
			"ai.usage.inputTokens": int64(100), "ai.usage.outputTokens": int64(200),
			"ai.usage.reasoningTokens": int64(150), "ai.usage.totalTokens": int64(450),
		}),
		want:    tok(int64(100), int64(350), int64(450), nil, nil, int64(150)),
		flagged: []any{"output_excluded_reasoning"},
	}, {
		// ai@6.0.119+ (packages/ai/src/generate-text/stream-text.ts):
		// inputTokens is inputTokens.total, the details are sent beside it.
		name: "vercel v6 anthropic with token details",
		attrs: vercelCall("anthropic.messages", "claude-sonnet-4-5", map[string]any{
			"ai.usage.inputTokens": int64(6221), "ai.usage.inputTokenDetails.noCacheTokens": int64(12),
			"ai.usage.inputTokenDetails.cacheReadTokens": int64(6209), "ai.usage.cachedInputTokens": int64(6209),
			"ai.usage.outputTokens": int64(100), "ai.usage.totalTokens": int64(6321),
		}),
		want: tok(int64(6221), int64(100), int64(6321), int64(6209), nil, nil),
	}, {
		// ai@6.0.0-6.0.118 send v5's keys with v6's inclusive figures; the
		// raw usage in providerMetadata (input_tokens without cache) tells.
		name: "vercel early v6 anthropic, told by provider metadata",
		attrs: vercelCall("anthropic.messages", "claude-sonnet-4-5", map[string]any{
			"ai.usage.inputTokens": int64(6000), "ai.usage.cachedInputTokens": int64(1000),
			"ai.usage.outputTokens": int64(300), "ai.usage.totalTokens": int64(6300),
			"ai.response.providerMetadata": `{"anthropic":{"usage":{"input_tokens":5000,"output_tokens":300,"cache_read_input_tokens":1000},"cacheCreationInputTokens":null}}`,
		}),
		want: tok(int64(6000), int64(300), int64(6300), int64(1000), nil, nil),
	}, {
		name: "openrouter inclusive",
		attrs: map[string]any{
			"span.type": "generation", "gen_ai.request.model": "anthropic/claude-haiku-4.5",
			"gen_ai.usage.input_tokens": int64(2489), "gen_ai.usage.input_tokens.cached": int64(2048),
			"gen_ai.usage.output_tokens": int64(87), "gen_ai.usage.output_tokens.reasoning": int64(20), "gen_ai.usage.total_tokens": int64(2576),
		},
		want: tok(int64(2489), int64(87), int64(2576), int64(2048), nil, int64(20)),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mapOne(t, p, c.attrs)
			assert.Equal(t, c.want, tokensOf(got))
			if c.flagged == nil {
				assert.NotContains(t, got, fallomattr.FlagTokensAdjusted)
			} else {
				assert.Equal(t, c.flagged, got[fallomattr.FlagTokensAdjusted])
			}
			if cached, ok := got[fallomattr.CachedInputTokens].(int64); ok {
				assert.LessOrEqual(t, cached, got[fallomattr.InputTokens].(int64), "never cached > input")
			}
		})
	}
}

// Issue 16.3, the guard: figures that cannot be inclusive are restored, for
// any emitter, and the span says so.
func TestTokenGuard(t *testing.T) {
	p := newTestProcessor(t, nil)
	semconv := map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "some-model"}
	cases := []struct {
		name    string
		attrs   map[string]any
		want    map[string]any
		flagged []any
	}{{
		name: "cache reads and writes above input",
		attrs: merge(semconv, map[string]any{
			"gen_ai.usage.input_tokens": int64(10), "gen_ai.usage.cache_read.input_tokens": int64(500),
			"gen_ai.usage.cache_creation.input_tokens": int64(40), "gen_ai.usage.output_tokens": int64(5),
		}),
		want:    tok(int64(550), int64(5), int64(555), int64(500), int64(40), nil),
		flagged: []any{"cache_exceeded_input"},
	}, {
		// Gemini-style: output 20 without 190 thinking tokens, total 310.
		name: "reasoning above output",
		attrs: merge(semconv, map[string]any{
			"gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(20),
			"gen_ai.usage.reasoning.output_tokens": int64(190), "gen_ai.usage.total_tokens": int64(310),
		}),
		want:    tok(int64(100), int64(210), int64(310), nil, nil, int64(190)),
		flagged: []any{"reasoning_exceeded_output"},
	}, {
		name: "total above input + output by the reasoning tokens",
		attrs: merge(semconv, map[string]any{
			"gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(200),
			"gen_ai.usage.reasoning.output_tokens": int64(150), "gen_ai.usage.total_tokens": int64(450),
		}),
		want:    tok(int64(100), int64(350), int64(450), nil, nil, int64(150)),
		flagged: []any{"output_excluded_reasoning"},
	}, {
		name: "total above input + output by the cache reads",
		attrs: merge(semconv, map[string]any{
			"gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(10),
			"gen_ai.usage.cache_read.input_tokens": int64(50), "gen_ai.usage.total_tokens": int64(160),
		}),
		want:    tok(int64(150), int64(10), int64(160), int64(50), nil, nil),
		flagged: []any{"input_excluded_cache"},
	}, {
		// A gap no part explains: the parts are kept and the span says so.
		name: "total above input + output, unexplained",
		attrs: merge(semconv, map[string]any{
			"gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(20), "gen_ai.usage.total_tokens": int64(500),
		}),
		want:    tok(int64(100), int64(20), int64(500), nil, nil, nil),
		flagged: []any{"total_exceeds_parts"},
	}, {
		name: "consistent figures are left alone",
		attrs: merge(semconv, map[string]any{
			"gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(20),
			"gen_ai.usage.cache_read.input_tokens": int64(100), "gen_ai.usage.reasoning.output_tokens": int64(20), "gen_ai.usage.total_tokens": int64(120),
		}),
		want: tok(int64(100), int64(20), int64(120), int64(100), nil, int64(20)),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mapOne(t, p, c.attrs)
			assert.Equal(t, c.want, tokensOf(got))
			if c.flagged == nil {
				assert.NotContains(t, got, fallomattr.FlagTokensAdjusted)
			} else {
				assert.Equal(t, c.flagged, got[fallomattr.FlagTokensAdjusted])
			}
		})
	}
}

// A span mapped twice keeps its inclusive figures: the semantics are not
// applied to the canonical keys again.
func TestTokenSemanticsIdempotent(t *testing.T) {
	p := newTestProcessor(t, nil)
	first := mapOne(t, p, vercelCall("anthropic.messages", "claude-sonnet-4-5", map[string]any{
		"ai.usage.inputTokens": int64(5000), "ai.usage.cachedInputTokens": int64(1000), "ai.usage.outputTokens": int64(300),
	}))
	second := mapOne(t, p, first)
	assert.Equal(t, tokensOf(first), tokensOf(second))
	assert.Equal(t, int64(6000), second[fallomattr.InputTokens])
}
