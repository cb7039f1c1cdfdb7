package openroutermappingprocessor

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// Issue 16.4: OpenInference's request/response model names and finish
// reason, reasoning parts, and llm.invocation_parameters.
func TestOpenInferenceKeys(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"openinference.span.kind":                                       "LLM",
		"llm.request.model_name":                                        "gpt-4o",
		"llm.response.model_name":                                       "gpt-4o-2024-08-06",
		"llm.finish_reason":                                             "stop",
		"llm.token_count.prompt":                                        int64(1000),
		"llm.token_count.completion":                                    int64(100),
		"llm.output_messages.0.message.role":                            "assistant",
		"llm.output_messages.0.message.contents.0.message_content.type": "reasoning",
		"llm.output_messages.0.message.contents.0.message_content.text": "The user wants a number.",
		"llm.output_messages.0.message.contents.1.message_content.type": "text",
		"llm.output_messages.0.message.contents.1.message_content.text": "42",
	})
	assert.Equal(t, "gpt-4o-2024-08-06", got[fallomattr.Model])
	assert.Equal(t, "gpt-4o", got[fallomattr.RequestedModel])
	assert.Equal(t, "stop", got[fallomattr.FinishReason])
	assert.Equal(t, "computed", got[fallomattr.CostSource], "a model, so a price")
	assert.InDelta(t, 1000*perM(2.5)+100*perM(10), got[fallomattr.TotalCostUSD], 1e-12)
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "42", "reasoning": "The user wants a number."}},
		messages(t, got, fallomattr.Completion), "the chain of thought is not the answer")

	// Only the request model: the model that served it is the requested one.
	req := mapOne(t, p, map[string]any{
		"openinference.span.kind": "LLM", "llm.request.model_name": "gpt-4o-mini",
		"llm.token_count.prompt": int64(10), "llm.token_count.completion": int64(5),
	})
	assert.Equal(t, "gpt-4o-mini", req[fallomattr.Model])
	assert.Equal(t, "computed", req[fallomattr.CostSource])

	// llm.invocation_parameters (JSON) names the requested model when no
	// key does.
	inv := mapOne(t, p, map[string]any{
		"openinference.span.kind":   "LLM",
		"llm.model_name":            "gpt-4o-mini-2024-07-18",
		"llm.invocation_parameters": `{"model": "gpt-4o-mini", "temperature": 0.2}`,
	})
	assert.Equal(t, "gpt-4o-mini", inv[fallomattr.RequestedModel])
	assert.Equal(t, "gpt-4o-mini-2024-07-18", inv[fallomattr.Model])
	assert.Equal(t, `{"model": "gpt-4o-mini", "temperature": 0.2}`, inv["llm.invocation_parameters"], "kept")
}

// Issue 16.5: Langfuse's OpenAI integration sends the raw OpenAI usage,
// inclusive, with nested details.
func TestLangfuseNestedUsageDetails(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"langfuse.observation.type":          "generation",
		"langfuse.observation.model.name":    "gpt-4o",
		"langfuse.observation.usage_details": `{"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306, "prompt_tokens_details": {"cached_tokens": 1200, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0}}`,
	})
	assert.Equal(t, tok(int64(2006), int64(300), int64(2306), int64(1200), nil, int64(64)), tokensOf(got))
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.InDelta(t, 806*perM(2.5)+1200*perM(1.25)+300*perM(10), got[fallomattr.TotalCostUSD], 1e-12, "cached tokens at the cache price")

	// OpenAI Responses API usage: input_tokens includes its cached details.
	resp := mapOne(t, p, map[string]any{
		"langfuse.observation.type":          "generation",
		"langfuse.observation.model.name":    "gpt-4o",
		"langfuse.observation.usage_details": `{"input_tokens": 500, "output_tokens": 50, "total_tokens": 550, "input_tokens_details": {"cached_tokens": 400}, "output_tokens_details": {"reasoning_tokens": 10}}`,
	})
	assert.Equal(t, tok(int64(500), int64(50), int64(550), int64(400), nil, int64(10)), tokensOf(resp))

	// Anthropic's raw usage: input_tokens leaves the cache out.
	anth := mapOne(t, p, map[string]any{
		"langfuse.observation.type":          "generation",
		"langfuse.observation.model.name":    "claude-sonnet-4-5",
		"langfuse.observation.usage_details": `{"input_tokens": 12, "output_tokens": 100, "cache_read_input_tokens": 6209, "cache_creation_input_tokens": 50}`,
	})
	assert.Equal(t, tok(int64(6271), int64(100), int64(6371), int64(6209), int64(50), nil), tokensOf(anth))

	// Langfuse's own keys stay exclusive parts.
	own := mapOne(t, p, map[string]any{
		"langfuse.observation.type":          "generation",
		"langfuse.observation.model.name":    "gpt-4o",
		"langfuse.observation.usage_details": `{"input": 100, "input_cached_tokens": 900, "output": 20, "output_reasoning_tokens": 10, "total": 1030}`,
	})
	assert.Equal(t, tok(int64(1000), int64(30), int64(1030), int64(900), nil, int64(10)), tokensOf(own))
}

// Issue 16.6: other keys.
func TestOtherDialectKeys(t *testing.T) {
	p := newTestProcessor(t, nil)

	// OpenLLMetry names the end user llm.user.
	tl := mapOne(t, p, map[string]any{"llm.request.type": "chat", "gen_ai.request.model": "gpt-4o", "llm.user": "end-user-9"})
	assert.Equal(t, "end-user-9", tl[fallomattr.CustomerID])

	// Vercel with the OpenRouter provider: the cost OpenRouter reported in
	// providerMetadata wins over the price table.
	or := mapOne(t, p, map[string]any{
		"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "openai/gpt-4o", "ai.model.provider": "openrouter.chat",
		"ai.usage.inputTokens": int64(1000), "ai.usage.outputTokens": int64(100),
		"ai.response.providerMetadata": `{"openrouter":{"provider":"OpenAI","usage":{"promptTokens":1000,"promptTokensDetails":{"cachedTokens":200},"completionTokens":100,"totalTokens":1100,"cost":0.00321}}}`,
	})
	assert.Equal(t, "reported", or[fallomattr.CostSource])
	assert.Equal(t, 0.00321, or[fallomattr.TotalCostUSD])
	assert.Equal(t, int64(200), or[fallomattr.CachedInputTokens])

	// Anthropic's cache writes from providerMetadata reach the computed cost.
	an := mapOne(t, p, map[string]any{
		"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "claude-sonnet-4-5", "ai.model.provider": "anthropic.messages",
		"ai.usage.promptTokens": int64(100), "ai.usage.completionTokens": int64(10),
		"ai.response.providerMetadata": `{"anthropic":{"usage":{"input_tokens":100,"output_tokens":10,"cache_creation_input_tokens":2000},"cacheCreationInputTokens":2000}}`,
	})
	assert.Equal(t, int64(2000), an[fallomattr.CacheWriteInputTokens])
	assert.Equal(t, int64(2100), an[fallomattr.InputTokens])
	assert.InDelta(t, 100*perM(3)+2000*perM(3.75)+10*perM(15), an[fallomattr.TotalCostUSD], 1e-12)

	// *.doStream spans are streamed, doGenerate ones are not.
	st := mapOne(t, p, map[string]any{"ai.operationId": "ai.streamText.doStream", "ai.model.id": "gpt-4o"})
	assert.Equal(t, true, st[fallomattr.Streamed])
	gen := mapOne(t, p, map[string]any{"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "gpt-4o"})
	assert.Equal(t, false, gen[fallomattr.Streamed])

	// Langfuse completion_start_time gives the time to first token.
	start := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC) // oneSpan's start
	lf := mapOne(t, p, map[string]any{
		"langfuse.observation.type":                  "generation",
		"langfuse.observation.model.name":            "gpt-4o",
		"langfuse.observation.completion_start_time": `"` + start.Add(420*time.Millisecond).Format(time.RFC3339Nano) + `"`,
	})
	assert.InDelta(t, 420.0, lf[fallomattr.TimeToFirstTokenMs], 1e-6)
	lf2 := mapOne(t, p, map[string]any{
		"langfuse.observation.type":                  "generation",
		"langfuse.observation.completion_start_time": start.Add(1500 * time.Millisecond).Format("2006-01-02T15:04:05.000000-07:00"),
	})
	assert.InDelta(t, 1500.0, lf2[fallomattr.TimeToFirstTokenMs], 1e-6)
	before := mapOne(t, p, map[string]any{
		"langfuse.observation.type":                  "generation",
		"langfuse.observation.completion_start_time": start.Add(-time.Second).Format(time.RFC3339Nano),
	})
	assert.NotContains(t, before, fallomattr.TimeToFirstTokenMs, "a first token before the call started is not a time")

	// gen_ai.output.messages[].finish_reason is a fallback finish reason.
	fr := mapOne(t, p, map[string]any{
		"gen_ai.operation.name":  "chat",
		"gen_ai.output.messages": `[{"role":"assistant","parts":[{"type":"text","content":"ok"}],"finish_reason":"length"}]`,
	})
	assert.Equal(t, "length", fr[fallomattr.FinishReason])
}

// Issue 16.7: a partial reported cost still has a total.
func TestPartialReportedCost(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
		"llm.token_count.prompt": int64(1000), "llm.token_count.completion": int64(100),
		"llm.cost.prompt": 0.0025,
	})
	assert.Equal(t, "reported", got[fallomattr.CostSource])
	assert.Equal(t, 0.0025, got[fallomattr.InputCostUSD])
	assert.NotContains(t, got, fallomattr.OutputCostUSD)
	assert.Equal(t, 0.0025, got[fallomattr.TotalCostUSD], "the sum of the parts that exist")
	assert.Equal(t, []any{"output"}, got[fallomattr.FlagCostPartial])

	whole := mapOne(t, p, map[string]any{"llm.model_name": "gpt-4o", "llm.cost.prompt": 0.0025, "llm.cost.completion": 0.001})
	assert.InDelta(t, 0.0035, whole[fallomattr.TotalCostUSD], 1e-15)
	assert.NotContains(t, whole, fallomattr.FlagCostPartial)
	total := mapOne(t, p, map[string]any{"llm.model_name": "gpt-4o", "llm.cost.total": 0.01})
	assert.NotContains(t, total, fallomattr.FlagCostPartial, "a total is whole")
}

// Issue 13.1: current-semconv cache writes, and the other additions of the
// registry audit.
func TestSemconvRegistryAdditions(t *testing.T) {
	p := newTestProcessor(t, nil)
	// A real capture of current OTel GenAI instrumentation of Anthropic.
	got := mapOne(t, p, map[string]any{
		"gen_ai.operation.name":                 "chat",
		"gen_ai.provider.name":                  "anthropic",
		"gen_ai.request.model":                  "claude-sonnet-4-5",
		"gen_ai.usage.input_tokens":             int64(3000),
		"gen_ai.usage.cache_read.input_tokens":  int64(1000),
		"gen_ai.usage.cache_write.input_tokens": int64(1500),
		"gen_ai.usage.output_tokens":            int64(200),
		"gen_ai.prompt.name":                    "support-triage",
	})
	assert.Equal(t, int64(1500), got[fallomattr.CacheWriteInputTokens])
	wantIn := 500*perM(3) + 1000*perM(0.30) + 1500*perM(3.75)
	assert.InDelta(t, wantIn, got[fallomattr.InputCostUSD], 1e-12, "the cache-write price")
	assert.Equal(t, "otel_genai", got[fallomattr.Source], "gen_ai.prompt.name is not a flattened OpenLLMetry prompt")
	assert.Equal(t, "support-triage", got["gen_ai.prompt.name"], "not content: kept")

	// The operations that are not model calls, though the span carries a
	// model and usage (which alone would make it one): aggregates and tools.
	for _, op := range []string{"retrieval", "plan", "invoke_workflow", "invoke_agent", "create_agent", "execute_tool"} {
		got := mapOne(t, p, map[string]any{"gen_ai.operation.name": op, "gen_ai.request.model": "gpt-4o",
			"gen_ai.usage.input_tokens": int64(5), "gen_ai.usage.output_tokens": int64(5)})
		assert.Equal(t, false, got[fallomattr.IsGeneration], op)
	}
}

// Issue 16.9b: Anthropic's raw usage splits its cache writes by lifetime
// (cache_creation.ephemeral_5m/1h_input_tokens); 1-hour writes cost 2x input,
// not the 5-minute 1.25x. Read where the raw usage arrives: Vercel's
// providerMetadata and Langfuse's usage details.
func TestAnthropicOneHourCacheWritesPriced(t *testing.T) {
	p := newTestProcessor(t, nil)
	// Sonnet 4.5: input $3/M, 5-minute writes $3.75/M, 1-hour writes $6/M.
	wantIn := 100*perM(3) + 500*perM(3.75) + 1500*perM(6)
	usage := `{"input_tokens":100,"output_tokens":10,"cache_read_input_tokens":0,"cache_creation_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":500,"ephemeral_1h_input_tokens":1500}}`

	vercel := mapOne(t, p, map[string]any{
		"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "claude-sonnet-4-5", "ai.model.provider": "anthropic.messages",
		"ai.usage.inputTokens": int64(100), "ai.usage.outputTokens": int64(10),
		"ai.response.providerMetadata": `{"anthropic":{"usage":` + usage + `,"cacheCreationInputTokens":2000}}`,
	})
	assert.Equal(t, int64(2000), vercel[fallomattr.CacheWriteInputTokens])
	assert.Equal(t, int64(2100), vercel[fallomattr.InputTokens])
	assert.InDelta(t, wantIn, vercel[fallomattr.InputCostUSD], 1e-12, "Vercel: 1-hour writes at the 1-hour price")

	lf := mapOne(t, p, map[string]any{
		"langfuse.observation.type":          "generation",
		"langfuse.observation.model.name":    "claude-sonnet-4-5",
		"langfuse.observation.usage_details": usage,
	})
	assert.Equal(t, int64(2000), lf[fallomattr.CacheWriteInputTokens])
	assert.Equal(t, int64(2100), lf[fallomattr.InputTokens])
	assert.InDelta(t, wantIn, lf[fallomattr.InputCostUSD], 1e-12, "Langfuse: 1-hour writes at the 1-hour price")

}

func TestEventsKeepFinishReasonWithDropContent(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.DropContent = true
	out, err := newTestProcessor(t, cfg).processTraces(authed, detailsEventSpan(t, nil))
	require.NoError(t, err)
	assert.Equal(t, "stop", spanAt(out, 0).Attributes().AsRaw()[fallomattr.FinishReason], "not content")
}

// Issue 16.8: values that break the contract downstream.
func TestRobustness(t *testing.T) {
	p := newTestProcessor(t, nil)
	huge := mapOne(t, p, map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
		"gen_ai.usage.input_tokens": int64(5e18), "gen_ai.usage.output_tokens": int64(5e18),
		"gen_ai.usage.cache_read.input_tokens": 5e18,
		"gen_ai.response.time_to_first_chunk":  1e306, // seconds: +Inf ms
		"gen_ai.usage.input_cost":              1e308,
		"gen_ai.usage.output_cost":             1e308, // their sum is +Inf
	})
	for _, k := range []string{fallomattr.InputTokens, fallomattr.OutputTokens, fallomattr.TotalTokens, fallomattr.CachedInputTokens} {
		n, ok := huge[k].(int64)
		require.True(t, ok, k)
		assert.Positive(t, n, k)
		assert.Equal(t, int64(1<<40), n, "%s: capped at 2^40 (storage.MaxTokenCount), not wrapped", k)
	}
	assert.NotContains(t, huge, fallomattr.TimeToFirstTokenMs)
	assert.NotContains(t, huge, fallomattr.TotalCostUSD, "+Inf is no cost")
	assert.Equal(t, 1e308, huge[fallomattr.InputCostUSD])

	// Content normalized by slicing the original text, and other strings,
	// come out valid UTF-8 (a gRPC exporter downstream refuses the batch
	// otherwise).
	bad := mapOne(t, p, map[string]any{
		"span.type":            "generation",
		"gen_ai.request.model": "gpt-\xff4o",
		"gen_ai.prompt":        "{\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9 \xff\"}]}",
		"gen_ai.completion":    "{\"completion\":\"ok \xc3\",\"reasoning\":null,\"toolCalls\":[]}",
		"session.id":           "s\xff",
	})
	for _, k := range []string{fallomattr.Prompt, fallomattr.Completion, fallomattr.Model, fallomattr.RequestedModel, fallomattr.SessionID} {
		s, ok := bad[k].(string)
		require.True(t, ok, k)
		assert.True(t, utf8.ValidString(s), "%s = %q", k, s)
	}
	assert.Contains(t, bad[fallomattr.Prompt], "caf\ufffd \ufffd")
	fixed := mapOne(t, p, map[string]any{"fallom.prompt": "[{\"role\":\"user\",\"content\":\"\xff\"}]"})
	assert.True(t, utf8.ValidString(fixed[fallomattr.Prompt].(string)))
}
