package openroutermappingprocessor

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// One test per dialect. The fixtures are hand-written Go literals that mirror
// what each instrumentation really emits (key names, value types, JSON
// strings), including the wrong types seen in the wild.

func perM(v float64) float64 { return v / 1e6 }

// messages decodes a normalized messages attribute.
func messages(t *testing.T, got map[string]any, key string) []map[string]any {
	t.Helper()
	s, ok := got[key].(string)
	require.True(t, ok, "%s missing or not a string: %v", key, got[key])
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &out), s)
	return out
}

func assertGone(t *testing.T, got map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		assert.NotContains(t, got, k)
	}
}

func TestDialectOTelGenAICurrent(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"gen_ai.operation.name":                "chat",
		"gen_ai.provider.name":                 "openai",
		"gen_ai.request.model":                 "gpt-4o-mini",
		"gen_ai.response.model":                "gpt-4o-mini-2024-07-18",
		"gen_ai.conversation.id":               "conv_42",
		"gen_ai.usage.input_tokens":            int64(1200),
		"gen_ai.usage.output_tokens":           int64(80),
		"gen_ai.usage.cache_read.input_tokens": int64(1024),
		"gen_ai.usage.reasoning.output_tokens": int64(0),
		"gen_ai.request.stream":                true,
		"gen_ai.response.time_to_first_chunk":  0.35,
		"gen_ai.response.finish_reasons":       []any{"stop"},
		"gen_ai.system_instructions":           `[{"type":"text","content":"Be terse."}]`,
		"gen_ai.input.messages":                `[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]},{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"city":"Paris"}}]},{"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","response":"rainy, 57°F"}]}]`,
		"gen_ai.output.messages":               `[{"role":"assistant","parts":[{"type":"text","content":"Rainy, 57°F."}],"finish_reason":"stop"}]`,
	})
	assert.Equal(t, true, got[fallomattr.IsGeneration])
	assert.Equal(t, "otel_genai", got[fallomattr.Source])
	assert.Equal(t, "conv_42", got[fallomattr.SessionID])
	assert.Equal(t, "gpt-4o-mini-2024-07-18", got[fallomattr.Model], "served model, as reported")
	assert.Equal(t, "gpt-4o-mini", got[fallomattr.RequestedModel])
	assert.Equal(t, "openai", got[fallomattr.Provider])
	assert.Equal(t, int64(1280), got[fallomattr.TotalTokens], "derived: input + output")
	assert.Equal(t, int64(1024), got[fallomattr.CachedInputTokens])
	assert.Equal(t, true, got[fallomattr.Streamed])
	assert.InDelta(t, 350.0, got[fallomattr.TimeToFirstTokenMs], 1e-9, "semconv seconds -> ms")
	assert.Equal(t, "stop", got[fallomattr.FinishReason])
	assert.NotContains(t, got, fallomattr.CustomerID)

	// No cost on the span: computed from the built-in table, cached tokens
	// at the cache price and only once.
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	wantIn := 176*perM(0.15) + 1024*perM(0.075)
	assert.InDelta(t, wantIn, got[fallomattr.InputCostUSD], 1e-12)
	assert.InDelta(t, 80*perM(0.60), got[fallomattr.OutputCostUSD], 1e-12)
	assert.InDelta(t, wantIn+80*perM(0.60), got[fallomattr.TotalCostUSD], 1e-12)

	prompt := messages(t, got, fallomattr.Prompt)
	require.Len(t, prompt, 4)
	assert.Equal(t, map[string]any{"role": "system", "content": "Be terse."}, prompt[0])
	assert.Equal(t, map[string]any{"role": "user", "content": "Weather in Paris?"}, prompt[1])
	assert.Equal(t, []any{map[string]any{"id": "call_1", "type": "function",
		"function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`}}}, prompt[2]["tool_calls"])
	assert.Equal(t, map[string]any{"role": "tool", "tool_call_id": "call_1", "content": "rainy, 57°F"}, prompt[3])
	completion := messages(t, got, fallomattr.Completion)
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Rainy, 57°F."}}, completion)
	assertGone(t, got, "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
	assert.Contains(t, got, "gen_ai.usage.input_tokens", "non-content originals stay")
}

func TestDialectOTelGenAIDeprecated(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"gen_ai.system":                            "anthropic",
		"gen_ai.request.model":                     "claude-3-5-haiku-20241022",
		"gen_ai.usage.prompt_tokens":               "1500",  // int as string
		"gen_ai.usage.completion_tokens":           200.0,   // int as double
		"gen_ai.usage.cache_read_input_tokens":     " 1000", // padded string
		"gen_ai.usage.cache_creation_input_tokens": int64(100),
		"gen_ai.usage.reasoning_tokens":            int64(0),
		"gen_ai.response.finish_reason":            "end_turn",
		"gen_ai.is_streaming":                      "True",
		"gen_ai.prompt":                            "Tell me a joke.",
		"gen_ai.completion":                        "Why did the chicken...",
		"llm.request.type":                         "completion",
	})
	assert.Equal(t, true, got[fallomattr.IsGeneration])
	assert.Equal(t, "claude-3-5-haiku-20241022", got[fallomattr.Model], "request model when no response model")
	assert.Equal(t, "anthropic", got[fallomattr.Provider])
	assert.Equal(t, int64(1500), got[fallomattr.InputTokens])
	assert.Equal(t, int64(200), got[fallomattr.OutputTokens])
	assert.Equal(t, int64(1000), got[fallomattr.CachedInputTokens])
	assert.Equal(t, int64(100), got[fallomattr.CacheWriteInputTokens])
	assert.Equal(t, true, got[fallomattr.Streamed])
	assert.Equal(t, "end_turn", got[fallomattr.FinishReason])
	assert.Equal(t, "completion", got[fallomattr.Operation])
	// Anthropic prices: 400 plain input, 1000 cache read, 100 cache write.
	wantIn := 400*perM(0.80) + 1000*perM(0.08) + 100*perM(1)
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.InDelta(t, wantIn, got[fallomattr.InputCostUSD], 1e-12)
	assert.InDelta(t, 200*perM(4), got[fallomattr.OutputCostUSD], 1e-12)
	assert.Equal(t, []map[string]any{{"role": "user", "content": "Tell me a joke."}}, messages(t, got, fallomattr.Prompt))
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Why did the chicken..."}}, messages(t, got, fallomattr.Completion))
	assertGone(t, got, "gen_ai.prompt", "gen_ai.completion")
}

func TestDialectOpenInference(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"openinference.span.kind":    "LLM",
		"llm.model_name":             "gpt-4.1-mini-2025-04-14",
		"llm.provider":               "openai",
		"llm.system":                 "openai",
		"session.id":                 "phx-session",
		"user.id":                    "phx-user",
		"llm.token_count.prompt":     int64(300),
		"llm.token_count.completion": int64(40),
		"llm.token_count.total":      int64(340),
		"llm.token_count.prompt_details.cache_read":    int64(100),
		"llm.token_count.completion_details.reasoning": int64(12),
		"llm.cost.prompt":                                                         0.00012,
		"llm.cost.completion":                                                     0.000064,
		"llm.cost.total":                                                          0.000184,
		"llm.input_messages.0.message.role":                                       "system",
		"llm.input_messages.0.message.content":                                    "You are helpful.",
		"llm.input_messages.1.message.role":                                       "user",
		"llm.input_messages.1.message.contents.0.message_content.type":            "text",
		"llm.input_messages.1.message.contents.0.message_content.text":            "What is in this image?",
		"llm.input_messages.1.message.contents.1.message_content.type":            "image",
		"llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://example.com/cat.png",
		"llm.output_messages.0.message.role":                                      "assistant",
		"llm.output_messages.0.message.tool_calls.0.tool_call.id":                 "call_9",
		"llm.output_messages.0.message.tool_calls.0.tool_call.function.name":      "describe",
		"llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": `{"detail":"high"}`,
		"input.value":               `{"messages":[{"role":"user","content":"What is in this image?"}]}`,
		"input.mime_type":           "application/json",
		"output.value":              `{"choices":[]}`,
		"output.mime_type":          "application/json",
		"llm.invocation_parameters": `{"temperature":0}`,
	})
	assert.Equal(t, true, got[fallomattr.IsGeneration])
	assert.Equal(t, "openinference", got[fallomattr.Source])
	assert.Equal(t, "phx-session", got[fallomattr.SessionID])
	assert.Equal(t, "phx-user", got[fallomattr.CustomerID])
	assert.Equal(t, "gpt-4.1-mini-2025-04-14", got[fallomattr.Model])
	assert.NotContains(t, got, fallomattr.RequestedModel)
	assert.Equal(t, int64(12), got[fallomattr.ReasoningTokens])
	assert.Equal(t, "reported", got[fallomattr.CostSource])
	assert.Equal(t, 0.000184, got[fallomattr.TotalCostUSD])

	prompt := messages(t, got, fallomattr.Prompt)
	require.Len(t, prompt, 2, "flattened messages win over input.value")
	assert.Equal(t, map[string]any{"role": "system", "content": "You are helpful."}, prompt[0])
	assert.Equal(t, []any{
		map[string]any{"type": "text", "text": "What is in this image?"},
		map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://example.com/cat.png"}},
	}, prompt[1]["content"])
	completion := messages(t, got, fallomattr.Completion)
	require.Len(t, completion, 1)
	assert.Equal(t, []any{map[string]any{"id": "call_9", "type": "function",
		"function": map[string]any{"name": "describe", "arguments": `{"detail":"high"}`}}}, completion[0]["tool_calls"])
	assertGone(t, got, "llm.input_messages.0.message.role", "llm.output_messages.0.message.tool_calls.0.tool_call.id", "input.value", "output.value")
	assert.Contains(t, got, "input.mime_type")
	assert.Contains(t, got, "llm.invocation_parameters")

	// A CHAIN span around it is not a model call, even with a model name.
	chain := mapOne(t, p, map[string]any{"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o", "llm.token_count.prompt": int64(5)})
	assert.Equal(t, false, chain[fallomattr.IsGeneration])
	assert.NotContains(t, chain, fallomattr.CostSource)
}

func TestDialectTraceloop(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"llm.request.type":                            "chat",
		"gen_ai.system":                               "OpenAI",
		"gen_ai.request.model":                        "gpt-4o",
		"gen_ai.response.model":                       "gpt-4o-2024-08-06",
		"gen_ai.usage.prompt_tokens":                  int64(50),
		"gen_ai.usage.completion_tokens":              int64(20),
		"llm.usage.total_tokens":                      int64(70),
		"gen_ai.usage.cache_read_input_tokens":        int64(0),
		"llm.is_streaming":                            false,
		"traceloop.association.properties.session_id": "tl-sess",
		"traceloop.association.properties.user_id":    "tl-user",
		"gen_ai.prompt.0.role":                        "system",
		"gen_ai.prompt.0.content":                     "You are a poet.",
		"gen_ai.prompt.1.role":                        "user",
		"gen_ai.prompt.1.content":                     `[{"type":"text","text":"Write a haiku"}]`,
		"gen_ai.completion.0.role":                    "assistant",
		"gen_ai.completion.0.content":                 "Autumn moonlight...",
		"gen_ai.completion.0.finish_reason":           "stop",
		"gen_ai.completion.0.tool_calls.0.id":         "c1",
		"gen_ai.completion.0.tool_calls.0.name":       "save",
		"gen_ai.completion.0.tool_calls.0.arguments":  `{"x":1}`,
		"traceloop.entity.path":                       "poem",
	})
	assert.Equal(t, true, got[fallomattr.IsGeneration])
	assert.Equal(t, "traceloop", got[fallomattr.Source])
	assert.Equal(t, "tl-sess", got[fallomattr.SessionID])
	assert.Equal(t, "tl-user", got[fallomattr.CustomerID])
	assert.Equal(t, "gpt-4o-2024-08-06", got[fallomattr.Model])
	assert.Equal(t, int64(70), got[fallomattr.TotalTokens])
	assert.Equal(t, false, got[fallomattr.Streamed])
	assert.Equal(t, "stop", got[fallomattr.FinishReason], "from gen_ai.completion.0.finish_reason")
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.InDelta(t, 50*perM(2.5)+20*perM(10), got[fallomattr.TotalCostUSD], 1e-12)
	prompt := messages(t, got, fallomattr.Prompt)
	assert.Equal(t, []map[string]any{{"role": "system", "content": "You are a poet."}, {"role": "user", "content": "Write a haiku"}}, prompt)
	completion := messages(t, got, fallomattr.Completion)
	require.Len(t, completion, 1)
	assert.Equal(t, "Autumn moonlight...", completion[0]["content"])
	assert.Len(t, completion[0]["tool_calls"], 1)
	assertGone(t, got, "gen_ai.prompt.0.role", "gen_ai.prompt.1.content", "gen_ai.completion.0.tool_calls.0.arguments")
	assert.Contains(t, got, "gen_ai.completion.0.finish_reason", "not content: kept")

	wf := mapOne(t, p, map[string]any{"traceloop.span.kind": "workflow", "traceloop.entity.name": "poem", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.prompt_tokens": int64(50)})
	assert.Equal(t, false, wf[fallomattr.IsGeneration])
}

func TestDialectVercelAI(t *testing.T) {
	p := newTestProcessor(t, nil)
	// v3-v4 inner call span.
	v4 := mapOne(t, p, map[string]any{
		"operation.name":                  "ai.generateText.doGenerate my-fn",
		"ai.operationId":                  "ai.generateText.doGenerate",
		"ai.model.id":                     "gpt-4o-mini",
		"ai.model.provider":               "openai.chat",
		"ai.usage.promptTokens":           int64(50),
		"ai.usage.completionTokens":       int64(10),
		"ai.telemetry.metadata.sessionId": "v-sess",
		"ai.telemetry.metadata.userId":    "v-user",
		"ai.telemetry.functionId":         "my-fn",
		"ai.prompt.messages":              `[{"role":"system","content":"Be nice."},{"role":"user","content":[{"type":"text","text":"Hi"}]}]`,
		"ai.response.text":                "Hello!",
		"ai.response.finishReason":        "stop",
		"ai.response.model":               "gpt-4o-mini-2024-07-18",
		"gen_ai.system":                   "openai.chat",
		"gen_ai.request.model":            "gpt-4o-mini",
		"gen_ai.usage.input_tokens":       int64(50),
		"gen_ai.usage.output_tokens":      int64(10),
	})
	assert.Equal(t, true, v4[fallomattr.IsGeneration])
	assert.Equal(t, "vercel_ai", v4[fallomattr.Source])
	assert.Equal(t, "v-sess", v4[fallomattr.SessionID])
	assert.Equal(t, "v-user", v4[fallomattr.CustomerID])
	assert.Equal(t, "gpt-4o-mini-2024-07-18", v4[fallomattr.Model])
	assert.Equal(t, "stop", v4[fallomattr.FinishReason])
	assert.Equal(t, []map[string]any{{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}}, messages(t, v4, fallomattr.Prompt))
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Hello!"}}, messages(t, v4, fallomattr.Completion))
	assert.Equal(t, "computed", v4[fallomattr.CostSource])

	// The outer span aggregates the calls: stored, not a generation, not costed.
	outer := mapOne(t, p, map[string]any{
		"ai.operationId":            "ai.generateText",
		"ai.model.id":               "gpt-4o-mini",
		"ai.usage.promptTokens":     int64(50),
		"ai.usage.completionTokens": int64(10),
		"ai.prompt":                 `{"system":"Be nice.","prompt":"Hi"}`,
		"ai.response.text":          "Hello!",
	})
	assert.Equal(t, false, outer[fallomattr.IsGeneration])
	assert.NotContains(t, outer, fallomattr.CostSource)
	assert.NotContains(t, outer, fallomattr.TotalCostUSD)
	assert.Equal(t, []map[string]any{{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}}, messages(t, outer, fallomattr.Prompt))

	// v5+ streaming call with tool calls, cache and reasoning counts.
	v5 := mapOne(t, p, map[string]any{
		"ai.operationId":             "ai.streamText.doStream",
		"ai.model.id":                "claude-sonnet-4-5",
		"ai.model.provider":          "anthropic.messages",
		"ai.usage.inputTokens":       int64(2000),
		"ai.usage.outputTokens":      int64(300),
		"ai.usage.totalTokens":       int64(2300),
		"ai.usage.cachedInputTokens": int64(1500),
		"ai.usage.reasoningTokens":   int64(120),
		"ai.response.msToFirstChunk": 812.5,
		"ai.response.text":           "",
		"ai.response.toolCalls":      `[{"toolCallId":"t1","toolName":"search","input":{"q":"otel"}}]`,
		"ai.response.finishReason":   "tool-calls",
	})
	assert.Equal(t, true, v5[fallomattr.IsGeneration])
	assert.Equal(t, 812.5, v5[fallomattr.TimeToFirstTokenMs], "Vercel ms stay ms")
	assert.Equal(t, int64(120), v5[fallomattr.ReasoningTokens])
	completion := messages(t, v5, fallomattr.Completion)
	require.Len(t, completion, 1)
	assert.Nil(t, completion[0]["content"])
	assert.Contains(t, completion[0], "content")
	assert.Equal(t, []any{map[string]any{"id": "t1", "type": "function", "function": map[string]any{"name": "search", "arguments": `{"q":"otel"}`}}}, completion[0]["tool_calls"])
	// v5 with an Anthropic model passes Anthropic's input_tokens on: 2000
	// without the 1500 cache reads (issue 16.3).
	assert.Equal(t, int64(3500), v5[fallomattr.InputTokens])
	assert.Equal(t, int64(3800), v5[fallomattr.TotalTokens])
	wantIn := 2000*perM(3) + 1500*perM(0.30)
	assert.InDelta(t, wantIn+300*perM(15), v5[fallomattr.TotalCostUSD], 1e-12, "reasoning is inside output: priced once")
	assertGone(t, v5, "ai.response.toolCalls", "ai.response.text")

	// v7: semconv keys; the invoke_agent root carries aggregate usage.
	agent := mapOne(t, p, map[string]any{
		"gen_ai.operation.name":      "invoke_agent",
		"gen_ai.request.model":       "gpt-4o",
		"gen_ai.usage.input_tokens":  int64(900),
		"gen_ai.usage.output_tokens": int64(90),
	})
	assert.Equal(t, false, agent[fallomattr.IsGeneration])
	assert.NotContains(t, agent, fallomattr.TotalCostUSD)
}

func TestDialectLangfuse(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"langfuse.observation.type":          "generation",
		"langfuse.observation.model.name":    "gpt-4o",
		"langfuse.session.id":                "lf-sess",
		"langfuse.user.id":                   "lf-user",
		"langfuse.observation.usage_details": `{"input": 100, "input_cached_tokens": 900, "output": 20, "output_reasoning_tokens": 10, "total": 1030}`,
		"langfuse.observation.cost_details":  `{"input": 0.00025, "input_cached_tokens": 0.001125, "output": 0.0003, "total": 0.001675}`,
		"langfuse.observation.input":         `[{"role":"user","content":"Hi"}]`,
		"langfuse.observation.output":        `{"role":"assistant","content":"Hello"}`,
		"langfuse.observation.metadata.env":  "dev",
	})
	assert.Equal(t, true, got[fallomattr.IsGeneration])
	assert.Equal(t, "langfuse", got[fallomattr.Source])
	assert.Equal(t, "lf-sess", got[fallomattr.SessionID])
	assert.Equal(t, "lf-user", got[fallomattr.CustomerID])
	assert.Equal(t, "gpt-4o", got[fallomattr.Model])
	assert.Equal(t, int64(1000), got[fallomattr.InputTokens], "Langfuse details are exclusive: input + cached")
	assert.Equal(t, int64(900), got[fallomattr.CachedInputTokens])
	assert.Equal(t, int64(30), got[fallomattr.OutputTokens], "output + reasoning")
	assert.Equal(t, int64(10), got[fallomattr.ReasoningTokens])
	assert.Equal(t, int64(1030), got[fallomattr.TotalTokens])
	assert.Equal(t, "reported", got[fallomattr.CostSource])
	assert.InDelta(t, 0.001375, got[fallomattr.InputCostUSD], 1e-12)
	assert.InDelta(t, 0.0003, got[fallomattr.OutputCostUSD], 1e-12)
	assert.InDelta(t, 0.001675, got[fallomattr.TotalCostUSD], 1e-12)
	assert.Equal(t, []map[string]any{{"role": "user", "content": "Hi"}}, messages(t, got, fallomattr.Prompt))
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Hello"}}, messages(t, got, fallomattr.Completion))
	assert.Contains(t, got, "langfuse.observation.usage_details", "usage JSON is not content: kept")

	span := mapOne(t, p, map[string]any{"langfuse.observation.type": "span", "langfuse.observation.model.name": "gpt-4o", "langfuse.observation.usage_details": `{"input": 5}`})
	assert.Equal(t, false, span[fallomattr.IsGeneration])
}

func TestDialectFallomSDK(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"fallom.session_id":          "f-sess",
		"fallom.customer_id":         "f-cust",
		"fallom.config_key":          "support-bot",
		"session.id":                 "ignored-lower-precedence",
		"gen_ai.system":              "openai",
		"gen_ai.request.model":       "gpt-4o-mini",
		"gen_ai.usage.input_tokens":  int64(10),
		"gen_ai.usage.output_tokens": int64(5),
		"gen_ai.operation.name":      "chat",
	})
	assert.Equal(t, "fallom", got[fallomattr.Source])
	assert.Equal(t, "f-sess", got[fallomattr.SessionID])
	assert.Equal(t, "f-cust", got[fallomattr.CustomerID])
	assert.Equal(t, "support-bot", got["fallom.config_key"])
	assert.Equal(t, true, got[fallomattr.IsGeneration])
}

func TestDialectLiteLLM(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"gen_ai.system":                     "openai",
		"gen_ai.request.model":              "gpt-4o-mini",
		"gen_ai.response.model":             "gpt-4o-mini-2024-07-18",
		"gen_ai.usage.prompt_tokens":        int64(12),
		"gen_ai.usage.completion_tokens":    int64(7),
		"gen_ai.cost.total_cost":            "0.0000060", // cost as string
		"gen_ai.cost.input_cost":            1.8e-06,
		"gen_ai.cost.output_cost":           4.2e-06,
		"llm.is_streaming":                  "False", // Python bool as string
		"metadata.user_api_key_end_user_id": "end-user-7",
		"gen_ai.prompt.0.role":              "user",
		"gen_ai.prompt.0.content":           "ping",
		"gen_ai.completion.0.role":          "assistant",
		"gen_ai.completion.0.content":       "pong",
		"gen_ai.response.finish_reasons":    `["stop"]`,
	})
	assert.Equal(t, true, got[fallomattr.IsGeneration], "model and usage, no marker")
	assert.Equal(t, "end-user-7", got[fallomattr.CustomerID])
	assert.Equal(t, false, got[fallomattr.Streamed])
	assert.Equal(t, "reported", got[fallomattr.CostSource])
	assert.Equal(t, 0.000006, got[fallomattr.TotalCostUSD])
	assert.Equal(t, "stop", got[fallomattr.FinishReason], "JSON array in a string")
	assert.Equal(t, []map[string]any{{"role": "user", "content": "ping"}}, messages(t, got, fallomattr.Prompt))
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "pong"}}, messages(t, got, fallomattr.Completion))
}

func TestDialectLogfirePydanticAI(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"gen_ai.operation.name":      "chat",
		"gen_ai.system":              "openai",
		"gen_ai.request.model":       "gpt-4o",
		"gen_ai.response.model":      "gpt-4o-2024-08-06",
		"gen_ai.usage.input_tokens":  int64(64),
		"gen_ai.usage.output_tokens": int64(16),
		"operation.cost":             0.00032,
		"gen_ai.conversation.id":     "pyd-conv",
		"gen_ai.input.messages":      `[{"role":"system","parts":[{"type":"text","content":"Be concise."}]},{"role":"user","parts":[{"type":"text","content":"Capital of France?"}]}]`,
		"gen_ai.output.messages":     `[{"role":"assistant","parts":[{"type":"thinking","content":"Easy."},{"type":"text","content":"Paris."}],"finish_reason":"stop"}]`,
		"logfire.msg":                "chat gpt-4o",
		"logfire.span_type":          "span",
	})
	assert.Equal(t, true, got[fallomattr.IsGeneration])
	assert.Equal(t, "otel_genai", got[fallomattr.Source])
	assert.Equal(t, "pyd-conv", got[fallomattr.SessionID])
	assert.Equal(t, "reported", got[fallomattr.CostSource])
	assert.Equal(t, 0.00032, got[fallomattr.TotalCostUSD])
	assert.NotContains(t, got, fallomattr.InputCostUSD, "only what is known")
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Paris.", "reasoning": "Easy."}}, messages(t, got, fallomattr.Completion))
	assert.Equal(t, "chat gpt-4o", got["logfire.msg"])
}

// Deprecated semconv content as span events (opentelemetry-instrumentation-
// openai-v2 before gen_ai.input.messages, older Logfire).
func TestDialectOTelGenAIEvents(t *testing.T) {
	build := func() ptrace.Traces {
		td := oneSpan(map[string]any{
			"gen_ai.operation.name":      "chat",
			"gen_ai.system":              "openai",
			"gen_ai.request.model":       "gpt-4o-mini",
			"gen_ai.usage.input_tokens":  int64(20),
			"gen_ai.usage.output_tokens": int64(5),
		})
		events := spanAt(td, 0).Events()
		add := func(name string, attrs map[string]any) {
			ev := events.AppendEmpty()
			ev.SetName(name)
			require.NoError(t, ev.Attributes().FromRaw(attrs))
		}
		add("gen_ai.system.message", map[string]any{"gen_ai.system": "openai", "content": "Be brief."})
		add("gen_ai.user.message", map[string]any{"gen_ai.system": "openai", "content": "Weather?"})
		add("gen_ai.assistant.message", map[string]any{"gen_ai.system": "openai", "tool_calls": []any{map[string]any{"id": "c1", "type": "function", "function": map[string]any{"name": "w", "arguments": "{}"}}}})
		add("gen_ai.tool.message", map[string]any{"gen_ai.system": "openai", "id": "c1", "content": "sunny"})
		add("gen_ai.choice", map[string]any{"gen_ai.system": "openai", "index": int64(0), "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": "Sunny."}})
		return td
	}
	p := newTestProcessor(t, nil)
	out, err := p.processTraces(authed, build())
	require.NoError(t, err)
	got := spanAt(out, 0).Attributes().AsRaw()
	prompt := messages(t, got, fallomattr.Prompt)
	require.Len(t, prompt, 4)
	assert.Equal(t, map[string]any{"role": "system", "content": "Be brief."}, prompt[0])
	assert.Equal(t, map[string]any{"role": "tool", "tool_call_id": "c1", "content": "sunny"}, prompt[3])
	assert.Len(t, prompt[2]["tool_calls"], 1)
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Sunny."}}, messages(t, got, fallomattr.Completion))
	// Stored once: the events lose their content, keep the rest.
	for i := 0; i < spanAt(out, 0).Events().Len(); i++ {
		attrs := spanAt(out, 0).Events().At(i).Attributes().AsRaw()
		assert.NotContains(t, attrs, "content")
		assert.NotContains(t, attrs, "message")
		assert.Equal(t, "openai", attrs["gen_ai.system"])
	}

	cfg := createDefaultConfig()
	cfg.KeepOriginalContent = true
	out, err = newTestProcessor(t, cfg).processTraces(authed, build())
	require.NoError(t, err)
	assert.Contains(t, spanAt(out, 0).Events().At(1).Attributes().AsRaw(), "content")
	assert.Contains(t, spanAt(out, 0).Attributes().AsRaw(), fallomattr.Prompt)
}
