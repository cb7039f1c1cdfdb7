package openroutermappingprocessor

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// The fixtures below are TraceData bodies as the Fallom SDKs send them
// (FALLOM_SDK.md 2.2 and 2.3; the wrappers of the TypeScript SDK 0.2.28 and
// the Python SDK 0.2.7: fallom.raw.* are JSON strings, user attributes raw
// JSON, TS and PY timestamp forms).

// receiverForm is how a receiver keeps TraceData's top-level fields on the
// span. The contract between the receiver and this processor keeps the
// SDK's attributes as sent and says no more: the fallomsdk receiver keeps
// every other field as fallom.<field> and the status on the span, in scope
// "fallom-sdk" (receiver/fallomsdkreceiver tracedata.go); a receiver could
// as well keep the fields under their own names with the status as
// attributes. The processor maps both the same.
type receiverForm int

const (
	prefixedNames receiverForm = iota // the fallomsdk receiver's: fallom.session_id, fallom.kind, ...; status on the span
	ownNames                          // session_id, kind, status, ... as attributes
)

func (f receiverForm) String() string { return [...]string{"fallomsdk receiver form", "own names"}[f] }

// traceDataFields are TraceData's top-level fields that are neither ids,
// name nor times.
var traceDataFields = []string{
	"config_key", "session_id", "customer_id", "model", "kind", "status", "error_message", "duration_ms",
	"time_to_first_token_ms", "is_streaming", "metadata", "tags",
	"prompt_key", "prompt_version", "prompt_ab_test_key", "prompt_variant_index",
}

// traceDataSpan builds the span a receiver makes of one TraceData body.
func traceDataSpan(t testing.TB, body string, form receiverForm) ptrace.Traces {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var td map[string]any
	require.NoError(t, dec.Decode(&td))
	attrs := map[string]any{}
	if a, ok := td["attributes"].(map[string]any); ok {
		for k, v := range a {
			attrs[k] = rawJSON(v)
		}
	}
	out := ptrace.NewTraces()
	rs := out.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "fallom-sdk")
	ss := rs.ScopeSpans().AppendEmpty()
	span := ss.Spans().AppendEmpty()
	if form == prefixedNames {
		ss.Scope().SetName("fallom-sdk")
		if ck, ok := td["config_key"].(string); ok {
			rs.Resource().Attributes().PutStr("service.name", ck)
		}
		if td["kind"] == "llm" {
			span.SetKind(ptrace.SpanKindClient)
		} else {
			span.SetKind(ptrace.SpanKindInternal)
		}
	}
	for _, k := range traceDataFields {
		v, ok := td[k]
		if !ok {
			continue
		}
		switch {
		case form == ownNames:
			attrs[k] = rawJSON(v)
		case k == "status":
			if v == "ERROR" {
				span.Status().SetCode(ptrace.StatusCodeError)
			} else {
				span.Status().SetCode(ptrace.StatusCodeOk)
			}
		case k == "error_message":
			span.Status().SetMessage(v.(string))
		default:
			attrs["fallom."+k] = rawJSON(v)
		}
	}
	span.SetName(td["name"].(string))
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	_, err := hex.Decode(tid[:], []byte(td["trace_id"].(string)))
	require.NoError(t, err)
	_, err = hex.Decode(sid[:], []byte(td["span_id"].(string)))
	require.NoError(t, err)
	span.SetTraceID(tid)
	span.SetSpanID(sid)
	for _, ts := range []struct {
		key string
		set func(pcommon.Timestamp)
	}{{"start_time", span.SetStartTimestamp}, {"end_time", span.SetEndTimestamp}} {
		tm, err := time.Parse(time.RFC3339Nano, td[ts.key].(string)) // TS ...Z and PY ...+00:00 forms
		require.NoError(t, err)
		ts.set(pcommon.NewTimestampFromTime(tm))
	}
	require.NoError(t, span.Attributes().FromRaw(attrs))
	return out
}

// rawJSON turns decoded JSON numbers into int64 or float64, as a receiver
// decoding TraceData would.
func rawJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = rawJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = rawJSON(e)
		}
	}
	return v
}

// mapTraceData maps one TraceData body and returns the span.
func mapTraceData(t *testing.T, p *mappingProcessor, body string, form receiverForm) ptrace.Span {
	t.Helper()
	out, err := p.processTraces(authed, traceDataSpan(t, body, form))
	require.NoError(t, err)
	return spanAt(out, 0)
}

// canonical is what the exporter stores of a span beyond its ids and
// times: the canonical attributes, the flags and the status.
func canonical(sp ptrace.Span) map[string]any {
	got := map[string]any{"status": sp.Status().Code().String(), "status_message": sp.Status().Message()}
	keys := append([]string{
		fallomattr.ConfigKey, fallomattr.ConfigVersion, fallomattr.PromptKey, fallomattr.PromptVersion,
		fallomattr.PromptABTestKey, fallomattr.PromptVariantIndex, fallomattr.PriceSource,
		fallomattr.FlagTokensAdjusted, fallomattr.FlagTruncated, fallomattr.FlagContentDropped, fallomattr.FlagCostPartial,
	}, fallomattr.Columns...)
	for _, k := range keys {
		if v, ok := sp.Attributes().Get(k); ok {
			got[k] = v.AsRaw()
		}
	}
	return got
}

func jsonStr(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// traceData writes a TraceData body: the envelope fields given, the
// attributes (fallom.raw.* values given as Go values are JSON-encoded into
// strings, as the SDK does).
func traceData(fields map[string]any, attrs map[string]any) string {
	td := map[string]any{
		"config_key": "my-agent", "session_id": "session-123",
		"trace_id": "ccea8fb8215e569346c89a2c5dc9bb55", "span_id": "3696c77151ca725c",
		"name": "chat.completions.create", "kind": "llm",
		"start_time": "2026-11-26T11:00:00.000Z", "end_time": "2026-11-26T11:00:01.250Z",
		"duration_ms": 1250, "status": "OK",
	}
	for k, v := range fields {
		if v == nil {
			delete(td, k)
			continue
		}
		td[k] = v
	}
	a := map[string]any{"fallom.sdk_version": "2"}
	for k, v := range attrs {
		if _, isStr := v.(string); strings.HasPrefix(k, "fallom.raw.") && !isStr {
			v = jsonStr(v)
		}
		a[k] = v
	}
	td["attributes"] = a
	return jsonStr(td)
}

type sdkCase struct {
	name  string
	body  string
	check func(t *testing.T, got map[string]any, sp ptrace.Span)
}

var sdkCases = []sdkCase{
	{
		name: "TS OpenAI chat, usage with details, prompt context",
		body: traceData(map[string]any{
			"customer_id": "cust-1", "model": "gpt-4o-2024-08-06",
			"metadata": map[string]any{"env": "test", "n": 1}, "tags": []any{"t1"},
			"prompt_key": "onboarding", "prompt_version": 2,
		}, map[string]any{
			"fallom.method":      "chat.completions.create",
			"fallom.raw.request": map[string]any{"messages": []any{map[string]any{"role": "system", "content": "Sys v2 Ann"}, map[string]any{"role": "user", "content": "Hi"}}, "model": "gpt-4o"},
			"fallom.raw.response": map[string]any{"text": "hello", "finishReason": "stop", "responseId": "chatcmpl-1", "model": "gpt-4o-2024-08-06",
				"toolCalls": []any{map[string]any{"id": "call_1", "type": "function", "function": map[string]any{"name": "lookup", "arguments": `{"q":1}`}}}},
			"fallom.raw.usage": map[string]any{"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
				"prompt_tokens_details":     map[string]any{"cached_tokens": 1200, "audio_tokens": 0},
				"completion_tokens_details": map[string]any{"reasoning_tokens": 64, "audio_tokens": 0}},
			"fallom.raw.metadata": `{"id":"chatcmpl-1","choices":[{"message":"[content omitted]"}]}`,
			"fallom.raw.timings":  `{"requestStart":0,"requestEnd":1250,"responseEnd":1250,"totalDurationMs":1250}`,
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, "fallom", got[fallomattr.Source])
			assert.Equal(t, true, got[fallomattr.IsGeneration])
			assert.Equal(t, "session-123", got[fallomattr.SessionID])
			assert.Equal(t, "cust-1", got[fallomattr.CustomerID])
			assert.Equal(t, "my-agent", got[fallomattr.ConfigKey])
			assert.Equal(t, "onboarding", got[fallomattr.PromptKey])
			assert.Equal(t, int64(2), got[fallomattr.PromptVersion])
			assert.NotContains(t, got, fallomattr.PromptABTestKey)
			assert.Equal(t, "gpt-4o-2024-08-06", got[fallomattr.Model])
			assert.Equal(t, "gpt-4o", got[fallomattr.RequestedModel], "from the raw request")
			assert.Equal(t, "chat.completions.create", got[fallomattr.Operation])
			assert.Equal(t, "stop", got[fallomattr.FinishReason])
			assert.Equal(t, tok(int64(2006), int64(300), int64(2306), int64(1200), nil, int64(64)), tokensOf(got))
			assert.Equal(t, "computed", got[fallomattr.CostSource], "the SDK sends no cost")
			assert.InDelta(t, 806*perM(2.5)+1200*perM(1.25)+300*perM(10), got[fallomattr.TotalCostUSD], 1e-12)
			assert.Equal(t, []map[string]any{{"role": "system", "content": "Sys v2 Ann"}, {"role": "user", "content": "Hi"}}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "hello",
				"tool_calls": []any{map[string]any{"id": "call_1", "type": "function", "function": map[string]any{"name": "lookup", "arguments": `{"q":1}`}}}}},
				messagesOf(t, got[fallomattr.Completion]))
			assert.Equal(t, "Ok", got["status"])
		},
	},
	{
		name: "PY OpenAI chat, tool-call turn, prompt A/B variant 0, PY timestamps",
		body: traceData(map[string]any{
			"start_time": "2026-11-26T11:00:52.828000+00:00", "end_time": "2026-11-26T11:00:53+00:00",
			"model": "gpt-4o-mini-2024-07-18", "prompt_key": "onboarding", "prompt_version": 1,
			"prompt_ab_test_key": "onboarding-test", "prompt_variant_index": 0,
		}, map[string]any{
			"fallom.method":      "chat.completions.create",
			"fallom.raw.request": map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Weather in Paris?"}}, "model": "gpt-4o-mini", "tools": nil, "tool_choice": nil, "functions": nil, "function_call": nil},
			"fallom.raw.response": map[string]any{"text": nil, "finishReason": "tool_calls", "responseId": "chatcmpl-2", "model": "gpt-4o-mini-2024-07-18",
				"toolCalls": []any{map[string]any{"id": "call_9", "type": "function", "function": map[string]any{"name": "weather", "arguments": `{"city":"Paris"}`}}}},
			"fallom.raw.usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, "onboarding-test", got[fallomattr.PromptABTestKey])
			assert.Equal(t, int64(0), got[fallomattr.PromptVariantIndex], "variant 0 is a variant")
			assert.Equal(t, int64(1), got[fallomattr.PromptVersion])
			assert.Equal(t, tok(int64(10), int64(2), int64(12), nil, nil, nil), tokensOf(got))
			assert.InDelta(t, 10*perM(0.15)+2*perM(0.60), got[fallomattr.TotalCostUSD], 1e-15)
			assert.Equal(t, "tool_calls", got[fallomattr.FinishReason])
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": nil,
				"tool_calls": []any{map[string]any{"id": "call_9", "type": "function", "function": map[string]any{"name": "weather", "arguments": `{"city":"Paris"}`}}}}},
				messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "PY OpenAI Responses API",
		body: traceData(map[string]any{"name": "responses.create", "model": "gpt-4o-2024-08-06"}, map[string]any{
			"fallom.method":      "responses.create",
			"fallom.raw.request": map[string]any{"model": "gpt-4o", "input": "What is 2+2?", "instructions": "Be terse.", "tools": nil},
			"fallom.raw.response": map[string]any{"responseId": "resp_1", "model": "gpt-4o-2024-08-06", "status": "completed",
				"output": []any{
					map[string]any{"type": "message", "content": []any{map[string]any{"type": "text", "text": "4"}}},
					map[string]any{"type": "function_call", "name": "calc", "arguments": `{"e":"2+2"}`, "call_id": "fc_1"},
				}, "text": "4"},
			"fallom.raw.usage": map[string]any{"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, []map[string]any{{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 2+2?"}}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "4",
				"tool_calls": []any{map[string]any{"id": "fc_1", "type": "function", "function": map[string]any{"name": "calc", "arguments": `{"e":"2+2"}`}}}}},
				messagesOf(t, got[fallomattr.Completion]))
			assert.Equal(t, "responses.create", got[fallomattr.Operation])
			assert.Equal(t, tok(int64(20), int64(1), int64(21), nil, nil, nil), tokensOf(got))
		},
	},
	{
		name: "TS Anthropic, cache fields, thinking, tool use in the history",
		body: traceData(map[string]any{"name": "messages.create", "model": "claude-sonnet-4-5-20250929"}, map[string]any{
			"fallom.method": "messages.create",
			"fallom.raw.request": map[string]any{
				"system": []any{map[string]any{"type": "text", "text": "You are terse.", "cache_control": map[string]any{"type": "ephemeral"}}},
				"messages": []any{
					map[string]any{"role": "user", "content": "Weather?"},
					map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": map[string]any{"city": "Paris"}}}},
					map[string]any{"role": "user", "content": []any{map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}}},
				},
				"model": "claude-sonnet-4-5"},
			"fallom.raw.response": map[string]any{"text": "18C in Paris.", "finishReason": "end_turn", "responseId": "msg_1", "model": "claude-sonnet-4-5-20250929", "toolCalls": []any{},
				"content": []any{map[string]any{"type": "thinking", "thinking": "The tool said 18C.", "signature": "sig"}, map[string]any{"type": "text", "text": "18C in Paris."}}},
			"fallom.raw.usage": map[string]any{"input_tokens": 12, "output_tokens": 100, "cache_read_input_tokens": 6209, "cache_creation_input_tokens": 50,
				"cache_creation": map[string]any{"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 0}, "service_tier": "standard"},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(6271), int64(100), int64(6371), int64(6209), int64(50), nil), tokensOf(got), "input_tokens leaves the cache out")
			assert.Equal(t, []any{adjInputExcludedCache}, got[fallomattr.FlagTokensAdjusted])
			assert.InDelta(t, 12*perM(3)+6209*perM(0.30)+50*perM(3.75)+100*perM(15), got[fallomattr.TotalCostUSD], 1e-12)
			assert.Equal(t, "end_turn", got[fallomattr.FinishReason])
			assert.Equal(t, "claude-sonnet-4-5", got[fallomattr.RequestedModel])
			assert.Equal(t, []map[string]any{
				{"role": "system", "content": "You are terse."},
				{"role": "user", "content": "Weather?"},
				{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{"id": "toolu_1", "type": "function", "function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`}}}},
				{"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
			}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "18C in Paris.", "reasoning": "The tool said 18C."}}, messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "TS Anthropic, 1-hour cache writes priced apart",
		body: traceData(map[string]any{"name": "messages.create", "model": "claude-sonnet-4-5"}, map[string]any{
			"fallom.method": "messages.create",
			"fallom.raw.usage": map[string]any{"input_tokens": 10, "output_tokens": 10, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 3000,
				"cache_creation": map[string]any{"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(3010), int64(10), int64(3020), int64(0), int64(3000), nil), tokensOf(got))
			assert.InDelta(t, 10*perM(3)+1000*perM(3.75)+2000*perM(6)+10*perM(15), got[fallomattr.TotalCostUSD], 1e-12)
		},
	},
	{
		name: "TS Anthropic ERROR span (the SDK's toolUseBlocks defect)",
		body: traceData(map[string]any{"name": "messages.create", "model": "claude-sonnet-4-5", "status": "ERROR", "error_message": "toolUseBlocks is not defined"},
			map[string]any{"fallom.method": "messages.create"}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, true, got[fallomattr.IsGeneration], "a failed call is a generation")
			assert.Equal(t, "Error", got["status"])
			assert.Equal(t, "toolUseBlocks is not defined", got["status_message"])
			assert.Equal(t, "unknown", got[fallomattr.CostSource], "no usage: no cost, not 0")
			assert.NotContains(t, got, fallomattr.TotalCostUSD)
			assert.NotContains(t, got, fallomattr.InputTokens)
			assert.Equal(t, "claude-sonnet-4-5", got[fallomattr.Model])
		},
	},
	{
		name: "PY Anthropic (input and output only)",
		body: traceData(map[string]any{"name": "messages.create", "model": "claude-sonnet-4-5-20250929"}, map[string]any{
			"fallom.method":       "messages.create",
			"fallom.raw.request":  map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Hi"}}, "system": nil, "model": "claude-sonnet-4-5", "tools": nil, "tool_choice": nil},
			"fallom.raw.response": map[string]any{"text": "Hello", "finishReason": "end_turn", "responseId": "msg_2", "model": "claude-sonnet-4-5-20250929", "toolCalls": []any{}},
			"fallom.raw.usage":    map[string]any{"input_tokens": 20, "output_tokens": 5},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(20), int64(5), int64(25), nil, nil, nil), tokensOf(got))
			assert.NotContains(t, got, fallomattr.FlagTokensAdjusted)
			assert.Equal(t, []map[string]any{{"role": "user", "content": "Hi"}}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Hello"}}, messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "TS Google, camelCase usage with thoughts and cache, Gemini contents",
		body: traceData(map[string]any{"name": "generateContent", "model": "gemini-2.5-flash"}, map[string]any{
			"fallom.method": "generateContent",
			"fallom.raw.request": map[string]any{
				"systemInstruction": map[string]any{"parts": []any{map[string]any{"text": "Be nice."}}},
				"contents": []any{
					map[string]any{"role": "user", "parts": []any{map[string]any{"text": "Look x up"}}},
					map[string]any{"role": "model", "parts": []any{map[string]any{"functionCall": map[string]any{"name": "lookup", "args": map[string]any{"q": "x"}}}}},
					map[string]any{"role": "user", "parts": []any{map[string]any{"functionResponse": map[string]any{"name": "lookup", "response": map[string]any{"r": 1}}}}},
				}},
			"fallom.raw.response": map[string]any{"text": "Found it.", "finishReason": "STOP",
				"candidates": []any{map[string]any{"content": map[string]any{"role": "model", "parts": []any{map[string]any{"text": "Found it."}}}, "finishReason": "STOP"}}},
			"fallom.raw.usage": map[string]any{"promptTokenCount": 1000, "candidatesTokenCount": 40, "totalTokenCount": 1070, "cachedContentTokenCount": 600, "thoughtsTokenCount": 30},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(1000), int64(70), int64(1070), int64(600), nil, int64(30)), tokensOf(got), "candidates leave the thoughts out")
			assert.InDelta(t, 400*perM(0.30)+600*perM(0.075)+70*perM(2.50), got[fallomattr.TotalCostUSD], 1e-12)
			assert.Equal(t, "STOP", got[fallomattr.FinishReason])
			assert.Equal(t, []map[string]any{
				{"role": "system", "content": "Be nice."},
				{"role": "user", "content": "Look x up"},
				{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{"type": "function", "function": map[string]any{"name": "lookup", "arguments": `{"q":"x"}`}}}},
				{"role": "tool", "name": "lookup", "content": `{"r":1}`},
			}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Found it."}}, messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "TS Google, request as text and parts",
		body: traceData(map[string]any{"name": "generateContent", "model": "gemini-2.0-flash"}, map[string]any{
			"fallom.method":       "generateContent",
			"fallom.raw.request":  []any{"Describe this:", map[string]any{"inlineData": map[string]any{"mimeType": "image/png", "data": "iVBOR"}}},
			"fallom.raw.response": map[string]any{"text": "", "finishReason": "STOP", "toolCalls": []any{map[string]any{"name": "zoom", "arguments": map[string]any{"x": 1}}}},
			"fallom.raw.usage":    map[string]any{"promptTokenCount": 300, "candidatesTokenCount": 5, "totalTokenCount": 305},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, []map[string]any{{"role": "user", "content": []any{
				map[string]any{"type": "text", "text": "Describe this:"},
				map[string]any{"inlineData": map[string]any{"mimeType": "image/png", "data": "iVBOR"}},
			}}}, messagesOf(t, got[fallomattr.Prompt]), "one user message of two parts")
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": nil,
				"tool_calls": []any{map[string]any{"type": "function", "function": map[string]any{"name": "zoom", "arguments": `{"x":1}`}}}}},
				messagesOf(t, got[fallomattr.Completion]))
			assert.Equal(t, tok(int64(300), int64(5), int64(305), nil, nil, nil), tokensOf(got))
		},
	},
	{
		name: "PY Google, snake_case usage, request as text",
		body: traceData(map[string]any{"name": "generateContent", "model": "gemini-1.5-flash",
			"start_time": "2026-11-26T11:00:52+00:00", "end_time": "2026-11-26T11:00:53.5+00:00"}, map[string]any{
			"fallom.method":       "generateContent",
			"fallom.raw.request":  `"Tell me a joke"`,
			"fallom.raw.response": map[string]any{"text": "Why did...", "candidates": 1, "finishReason": "STOP"},
			"fallom.raw.usage":    map[string]any{"prompt_token_count": 8, "candidates_token_count": 40, "total_token_count": 48},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(8), int64(40), int64(48), nil, nil, nil), tokensOf(got))
			assert.InDelta(t, 8*perM(0.075)+40*perM(0.30), got[fallomattr.TotalCostUSD], 1e-15)
			assert.Equal(t, []map[string]any{{"role": "user", "content": "Tell me a joke"}}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Why did..."}}, messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "PY Google, snake_case thoughts and cache",
		body: traceData(map[string]any{"name": "generateContent", "model": "gemini-2.5-flash"}, map[string]any{
			"fallom.method":    "generateContent",
			"fallom.raw.usage": map[string]any{"prompt_token_count": 100, "candidates_token_count": 10, "total_token_count": 130, "cached_content_token_count": 50, "thoughts_token_count": 20},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(100), int64(30), int64(130), int64(50), nil, int64(20)), tokensOf(got))
		},
	},
	{
		name: "TS AI SDK v4 generateText, multi-step with tools, OpenAI provider metadata",
		body: traceData(map[string]any{"name": "generateText", "model": "gpt-4o-mini"}, map[string]any{
			"fallom.method": "generateText", "fallom.provider": "openai.chat", "fallom.ai_sdk_version": "4.3.16",
			"fallom.raw.request": map[string]any{"prompt": "Weather in Paris?", "system": "Be brief.", "model": "gpt-4o-mini", "tools": []any{"weather"}, "maxSteps": 3},
			"fallom.raw.response": map[string]any{"text": "18C.", "finishReason": "stop", "responseId": "r2", "modelId": "gpt-4o-mini-2024-07-18",
				"toolCalls": []any{}, "toolResults": []any{},
				"steps": []any{
					map[string]any{"stepType": "initial", "text": "", "finishReason": "tool-calls",
						"toolCalls":   []any{map[string]any{"toolCallId": "c1", "toolName": "weather", "args": map[string]any{"city": "Paris"}, "type": "tool-call"}},
						"toolResults": []any{map[string]any{"toolCallId": "c1", "toolName": "weather", "result": map[string]any{"t": 18}, "type": "tool-result"}},
						"usage":       map[string]any{"promptTokens": 30, "completionTokens": 6, "totalTokens": 36}},
					map[string]any{"stepType": "tool-result", "text": "18C.", "finishReason": "stop", "toolCalls": []any{}, "toolResults": []any{},
						"usage": map[string]any{"promptTokens": 20, "completionTokens": 4, "totalTokens": 24}},
				}},
			"fallom.raw.usage":            map[string]any{"promptTokens": 50, "completionTokens": 10, "totalTokens": 60},
			"fallom.raw.providerMetadata": map[string]any{"openai": map[string]any{"cachedPromptTokens": 20, "reasoningTokens": 0}},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(50), int64(10), int64(60), int64(20), nil, int64(0)), tokensOf(got), "OpenAI's promptTokens hold the cached ones")
			assert.InDelta(t, 30*perM(0.15)+20*perM(0.075)+10*perM(0.60), got[fallomattr.TotalCostUSD], 1e-15)
			assert.Equal(t, "openai.chat", got[fallomattr.Provider])
			assert.Equal(t, []map[string]any{{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{
				{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{"id": "c1", "type": "function", "function": map[string]any{"name": "weather", "arguments": `{"city":"Paris"}`}}}},
				{"role": "tool", "tool_call_id": "c1", "name": "weather", "content": `{"t":18}`},
				{"role": "assistant", "content": "18C."},
			}, messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "TS AI SDK v5 streamText, Anthropic provider (input leaves the cache out), TTFT",
		body: traceData(map[string]any{"name": "streamText", "model": "claude-sonnet-4-5", "time_to_first_token_ms": 412, "is_streaming": true}, map[string]any{
			"fallom.method": "streamText", "fallom.provider": "anthropic.messages", "fallom.is_streaming": true, "fallom.time_to_first_token_ms": 412,
			"fallom.raw.request":  map[string]any{"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "Hi"}}}}, "model": "claude-sonnet-4-5"},
			"fallom.raw.response": map[string]any{"text": "Hello!", "finishReason": "stop"},
			"fallom.raw.usage":    map[string]any{"inputTokens": 5000, "outputTokens": 100, "totalTokens": 5100, "cachedInputTokens": 1000},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(6000), int64(100), int64(6100), int64(1000), nil, nil), tokensOf(got))
			assert.Contains(t, got[fallomattr.FlagTokensAdjusted], adjInputExcludedCache)
			assert.InDelta(t, 412.0, got[fallomattr.TimeToFirstTokenMs], 1e-9)
			assert.Equal(t, true, got[fallomattr.Streamed])
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Hello!"}}, messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "TS AI SDK v5, OpenAI provider (input holds the cache)",
		body: traceData(map[string]any{"name": "generateText", "model": "gpt-4o"}, map[string]any{
			"fallom.method": "generateText", "fallom.provider": "openai.responses",
			"fallom.raw.usage": map[string]any{"inputTokens": 5000, "outputTokens": 100, "totalTokens": 5100, "cachedInputTokens": 1000, "reasoningTokens": 40},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(5000), int64(100), int64(5100), int64(1000), nil, int64(40)), tokensOf(got))
			assert.NotContains(t, got, fallomattr.FlagTokensAdjusted)
		},
	},
	{
		name: "TS AI SDK v6, details are witnesses (inclusive even with Anthropic)",
		body: traceData(map[string]any{"name": "generateText", "model": "claude-sonnet-4-5"}, map[string]any{
			"fallom.method": "generateText", "fallom.provider": "anthropic.messages",
			"fallom.raw.usage": map[string]any{
				"inputTokens": 6000, "inputTokenDetails": map[string]any{"noCacheTokens": 4000, "cacheReadTokens": 1500, "cacheWriteTokens": 500},
				"outputTokens": 130, "outputTokenDetails": map[string]any{"textTokens": 100, "reasoningTokens": 30},
				"totalTokens": 6130, "reasoningTokens": 30, "cachedInputTokens": 1500},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(6000), int64(130), int64(6130), int64(1500), int64(500), int64(30)), tokensOf(got))
			assert.NotContains(t, got, fallomattr.FlagTokensAdjusted)
			assert.InDelta(t, 4000*perM(3)+1500*perM(0.30)+500*perM(3.75)+130*perM(15), got[fallomattr.TotalCostUSD], 1e-12)
		},
	},
	{
		name: "TS AI SDK generateObject",
		body: traceData(map[string]any{"name": "generateObject", "model": "gpt-4o-mini"}, map[string]any{
			"fallom.method":       "generateObject",
			"fallom.raw.request":  map[string]any{"prompt": "A person", "model": "gpt-4o-mini", "schema": "provided"},
			"fallom.raw.response": map[string]any{"object": map[string]any{"name": "Ann"}, "finishReason": "stop", "responseId": "r3", "modelId": "gpt-4o-mini-2024-07-18"},
			"fallom.raw.usage":    map[string]any{"inputTokens": 10, "outputTokens": 8, "totalTokens": 18},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": `{"name":"Ann"}`}}, messagesOf(t, got[fallomattr.Completion]))
			assert.Equal(t, "gpt-4o-mini", got[fallomattr.Model], "TraceData's model wins over the response's")
		},
	},
	{
		name: "TS traceModel.doGenerate (usage only), TraceData without model",
		body: traceData(map[string]any{"name": "doGenerate", "model": nil}, map[string]any{
			"fallom.method":      "traceModel.doGenerate",
			"fallom.raw.usage":   map[string]any{"inputTokens": 7, "outputTokens": 3, "totalTokens": 10},
			"fallom.raw.request": map[string]any{"model": "gpt-4o-mini"},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, true, got[fallomattr.IsGeneration])
			assert.Equal(t, "gpt-4o-mini", got[fallomattr.Model], "the requested model, when nothing names the served one")
			assert.Equal(t, tok(int64(7), int64(3), int64(10), nil, nil, nil), tokensOf(got))
			assert.Equal(t, "computed", got[fallomattr.CostSource])
		},
	},
	{
		name: "TS traceModel.doGenerate on an ai@6 model (LanguageModelV3 usage: counts are objects)",
		body: traceData(map[string]any{"name": "doGenerate", "model": "claude-sonnet-4-5"}, map[string]any{
			"fallom.method": "traceModel.doGenerate",
			"fallom.raw.usage": map[string]any{
				"inputTokens":  map[string]any{"total": 6000, "noCache": 4000, "cacheRead": 1500, "cacheWrite": 500},
				"outputTokens": map[string]any{"total": 130, "text": 100, "reasoning": 30}},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, tok(int64(6000), int64(130), int64(6130), int64(1500), int64(500), int64(30)), tokensOf(got))
			assert.NotContains(t, got, fallomattr.FlagTokensAdjusted)
		},
	},
	{
		name: "content capture off: tokens, timing, experiment fields",
		body: traceData(map[string]any{"model": "gpt-4o", "prompt_key": "onboarding", "prompt_version": 3, "customer_id": "c9"}, map[string]any{
			"fallom.method":       "chat.completions.create",
			"fallom.raw.usage":    map[string]any{"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
			"fallom.raw.metadata": `{"id":"chatcmpl-3","choices":[{"message":"[content omitted]","finish_reason":"stop"}]}`,
			"fallom.raw.timings":  `{"requestStart":0,"requestEnd":1250,"responseEnd":1250,"totalDurationMs":1250}`,
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.NotContains(t, got, fallomattr.Prompt)
			assert.NotContains(t, got, fallomattr.Completion)
			assert.NotContains(t, got, fallomattr.FlagContentDropped)
			assert.Equal(t, tok(int64(100), int64(20), int64(120), nil, nil, nil), tokensOf(got))
			assert.InDelta(t, 100*perM(2.5)+20*perM(10), got[fallomattr.TotalCostUSD], 1e-12)
			assert.Equal(t, int64(3), got[fallomattr.PromptVersion])
			assert.Equal(t, "c9", got[fallomattr.CustomerID])
			assert.Equal(t, "Ok", got["status"])
			assert.Equal(t, `{"requestStart":0,"requestEnd":1250,"responseEnd":1250,"totalDurationMs":1250}`, sp.Attributes().AsRaw()["fallom.raw.timings"], "kept")
		},
	},
	{
		name: "TS manual span (session.span, kind retrieval): no generation",
		body: traceData(map[string]any{"name": "rag.retrieve", "kind": "retrieval", "model": nil}, map[string]any{
			"fallom.span_type": "manual", "rag.k": 5,
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, false, got[fallomattr.IsGeneration])
			assert.Equal(t, "fallom", got[fallomattr.Source])
			assert.NotContains(t, got, fallomattr.CostSource)
			assert.Equal(t, int64(5), sp.Attributes().AsRaw()["rag.k"], "user attributes kept as sent")
		},
	},
	{
		name: "TS Mastra agent wrapper (kind agent): an aggregate",
		body: traceData(map[string]any{"name": "agent.support.generate", "kind": "agent", "model": nil}, map[string]any{
			"fallom.method": "agent.generate", "fallom.agent_name": "support",
			"fallom.raw.request":  "How do I reset my password?",
			"fallom.raw.response": map[string]any{"text": "Go to settings.", "finishReason": "stop", "usage": map[string]any{"promptTokens": 40, "completionTokens": 8}},
		}),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, false, got[fallomattr.IsGeneration])
			assert.Equal(t, []map[string]any{{"role": "user", "content": "How do I reset my password?"}}, messagesOf(t, got[fallomattr.Prompt]))
			assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Go to settings."}}, messagesOf(t, got[fallomattr.Completion]))
		},
	},
	{
		name: "TS G-Eval judge trace (gen_ai.* keys, no fallom.* attribute but the envelope)",
		body: func() string {
			b := traceData(map[string]any{"name": "geval.coherence", "model": "openai/gpt-4o-mini", "config_key": "eval-worker", "session_id": "geval-1795000000000",
				"metadata": map[string]any{"metric": "coherence", "score": 0.8}, "tags": []any{"eval-worker", "geval", "coherence"}}, map[string]any{
				"geval.metric": "coherence", "geval.score": 0.8, "geval.reasoning": "fine",
				"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Judge this.", "gen_ai.completion.0.content": `{"score":0.8}`,
				"gen_ai.usage.prompt_tokens": 200, "gen_ai.usage.completion_tokens": 20,
			})
			return strings.Replace(b, `"fallom.sdk_version":"2",`, "", 1) // the judge trace carries none
		}(),
		check: func(t *testing.T, got map[string]any, sp ptrace.Span) {
			assert.Equal(t, "fallom", got[fallomattr.Source])
			assert.Equal(t, "eval-worker", got[fallomattr.ConfigKey])
			assert.Equal(t, true, got[fallomattr.IsGeneration])
			assert.Equal(t, tok(int64(200), int64(20), int64(220), nil, nil, nil), tokensOf(got))
			assert.InDelta(t, 200*perM(0.15)+20*perM(0.60), got[fallomattr.TotalCostUSD], 1e-15)
			assert.Equal(t, []map[string]any{{"role": "user", "content": "Judge this."}}, messagesOf(t, got[fallomattr.Prompt]))
		},
	},
}

// messagesOf decodes a normalized messages column.
func messagesOf(t *testing.T, v any) []map[string]any {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "not a string: %v", v)
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &out), s)
	return out
}

// Every TraceData fixture maps as its case says, whichever way the receiver
// keeps the top-level fields, and both ways store the same.
func TestFallomSDKTraceData(t *testing.T) {
	p := newTestProcessor(t, nil)
	for _, c := range sdkCases {
		t.Run(c.name, func(t *testing.T) {
			var stored [2]map[string]any
			for _, form := range []receiverForm{prefixedNames, ownNames} {
				t.Run(form.String(), func(t *testing.T) {
					sp := mapTraceData(t, p, c.body, form)
					got := canonical(sp)
					c.check(t, got, sp)
					for k := range sp.Attributes().All() {
						assert.False(t, strings.HasPrefix(k, "fallom.raw.request") || strings.HasPrefix(k, "fallom.raw.response"), "%s stored once, as fallom.prompt / fallom.completion", k)
					}
					stored[form] = got
				})
			}
			assert.Equal(t, stored[ownNames], stored[prefixedNames], "both receiver forms store the same")
		})
	}
}

// A mapped span maps the same again (two collectors in a chain).
func TestFallomSDKRemapIsStable(t *testing.T) {
	p := newTestProcessor(t, nil)
	for _, c := range sdkCases {
		for _, form := range []receiverForm{prefixedNames, ownNames} {
			once, err := p.processTraces(authed, traceDataSpan(t, c.body, form))
			require.NoError(t, err)
			first := canonical(spanAt(once, 0))
			twice, err := p.processTraces(authed, once)
			require.NoError(t, err)
			assert.Equal(t, first, canonical(spanAt(twice, 0)), "%s, %s", c.name, form)
		}
	}
}

// drop_content removes the raw request and response (and wrapTraced's input
// and output); tokens, cost, finish reason, timing and the experiment
// fields stay.
func TestFallomSDKDropContent(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.DropContent = true
	p := newTestProcessor(t, cfg)
	sp := mapTraceData(t, p, sdkCases[0].body, prefixedNames)
	got := sp.Attributes().AsRaw()
	for _, k := range []string{"fallom.raw.request", "fallom.raw.response", fallomattr.Prompt, fallomattr.Completion} {
		assert.NotContains(t, got, k)
	}
	assert.Equal(t, true, got[fallomattr.FlagContentDropped])
	assert.Equal(t, "stop", got[fallomattr.FinishReason], "not content: read before the removal")
	assert.Equal(t, "gpt-4o", got[fallomattr.RequestedModel])
	assert.Equal(t, int64(2306), got[fallomattr.TotalTokens])
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.Equal(t, "onboarding", got[fallomattr.PromptKey])
	assert.Contains(t, got, "fallom.raw.usage", "usage is not content")

	traced := mapTraceData(t, p, traceData(map[string]any{"name": "summarize", "kind": "custom", "model": nil}, map[string]any{
		"fallom.span_type": "manual", "input": map[string]any{"doc": "secret text"}, "output": "secret summary",
	}), ownNames).Attributes().AsRaw()
	assert.NotContains(t, traced, "input")
	assert.NotContains(t, traced, "output")

	kept := mapTraceData(t, newTestProcessor(t, nil), traceData(map[string]any{"name": "summarize", "kind": "custom", "model": nil}, map[string]any{
		"fallom.span_type": "manual", "input": map[string]any{"doc": "text"}, "output": "summary",
	}), ownNames).Attributes().AsRaw()
	assert.Equal(t, map[string]any{"doc": "text"}, kept["input"], "without drop_content: kept as sent")
	assert.Equal(t, "summary", kept["output"])
}

// The Mastra exporter's OTLP spans (FALLOM_SDK.md 2.5), with the receiver's
// X-Fallom-* headers applied as fallom.* attributes (header values are
// strings), and the legacy OTel-mode keys of the Python SDK <= 0.1.3.
func TestFallomSDKOTLPAndLegacyKeys(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"gen_ai.request.model": "gpt-4o", "gen_ai.usage.prompt_tokens": int64(3), "gen_ai.usage.completion_tokens": int64(2),
		"fallom.config_key": "my-agent", "fallom.session_id": "s1", "fallom.customer_id": "c1",
		"fallom.prompt_key": "onboarding", "fallom.prompt_version": "3",
		"fallom.prompt_ab_test_key": "onboarding-test", "fallom.prompt_variant_index": "1",
	})
	assert.Equal(t, "fallom", got[fallomattr.Source])
	assert.Equal(t, int64(3), got[fallomattr.PromptVersion], "a header's string, as an int")
	assert.Equal(t, int64(1), got[fallomattr.PromptVariantIndex])
	assert.Equal(t, "onboarding-test", got[fallomattr.PromptABTestKey])
	assert.Equal(t, "computed", got[fallomattr.CostSource])

	// Mastra runs the AI SDK: its spans carry ai.* keys, and the headers'
	// ids make them the fallom dialect; the AI SDK's token rules still
	// apply (ai@5 with Anthropic leaves the cache out; ai@6.0.119+ does not).
	mastraV5 := mapOne(t, p, map[string]any{
		"fallom.config_key": "mastra-app", "fallom.session_id": "s3",
		"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "claude-sonnet-4-5", "ai.model.provider": "anthropic.messages",
		"ai.usage.inputTokens": int64(5000), "ai.usage.cachedInputTokens": int64(1000), "ai.usage.outputTokens": int64(100),
	})
	assert.Equal(t, "fallom", mastraV5[fallomattr.Source])
	assert.Equal(t, true, mastraV5[fallomattr.IsGeneration])
	assert.Equal(t, int64(6000), mastraV5[fallomattr.InputTokens])
	mastraV6 := mapOne(t, p, map[string]any{
		"fallom.config_key": "mastra-app", "fallom.session_id": "s3",
		"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "claude-sonnet-4-5", "ai.model.provider": "anthropic.messages",
		"ai.usage.inputTokens": int64(6000), "ai.usage.inputTokenDetails.cacheReadTokens": int64(1000), "ai.usage.outputTokens": int64(100),
	})
	assert.Equal(t, int64(6000), mastraV6[fallomattr.InputTokens], "the ai@6.0.119+ marker: inclusive")
	outer := mapOne(t, p, map[string]any{
		"fallom.config_key": "mastra-app", "fallom.session_id": "s3", "ai.operationId": "ai.generateText", "ai.model.id": "gpt-4o",
		"ai.usage.promptTokens": int64(10), "ai.usage.completionTokens": int64(2),
	})
	assert.Equal(t, false, outer[fallomattr.IsGeneration], "the AI SDK's outer span aggregates its calls")

	// TS 0.1.x TraceData carried its own counts (FALLOM_SDK.md 5.3), kept
	// by the receiver as fallom.<field>.
	old := mapOne(t, p, map[string]any{
		"fallom.config_key": "app", "fallom.session_id": "s4", "fallom.kind": "llm", "fallom.model": "gpt-4o",
		"fallom.prompt_tokens": int64(100), "fallom.completion_tokens": int64(20), "fallom.total_tokens": int64(120),
	})
	assert.Equal(t, tok(int64(100), int64(20), int64(120), nil, nil, nil), tokensOf(old))
	assert.Equal(t, "computed", old[fallomattr.CostSource])

	legacy := mapOne(t, p, map[string]any{
		"fallom.config_key": "app", "fallom.session_id": "s2",
		"fallom.prompt_ab_test": "t1", "fallom.prompt_variant": int64(2),
	})
	assert.Equal(t, "t1", legacy[fallomattr.PromptABTestKey])
	assert.Equal(t, int64(2), legacy[fallomattr.PromptVariantIndex])

	// Junk in a canonical key is removed, not stored.
	junk := mapOne(t, p, map[string]any{"fallom.config_key": "app", "fallom.prompt_version": "v2", "fallom.config_version": -1})
	assert.NotContains(t, junk, fallomattr.PromptVersion)
	assert.NotContains(t, junk, fallomattr.ConfigVersion)

	// A set span status wins over TraceData's status attributes; an ERROR
	// without a message gets error_message.
	td := oneSpan(map[string]any{"fallom.sdk_version": "2", "status": "ERROR", "error_message": "boom"})
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Status().SetCode(ptrace.StatusCodeOk)
	out, err := p.processTraces(authed, td)
	require.NoError(t, err)
	assert.Equal(t, ptrace.StatusCodeOk, spanAt(out, 0).Status().Code())
	td = oneSpan(map[string]any{"fallom.sdk_version": "2", "error_message": "boom"})
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Status().SetCode(ptrace.StatusCodeError)
	out, err = p.processTraces(authed, td)
	require.NoError(t, err)
	assert.Equal(t, "boom", spanAt(out, 0).Status().Message())
	// Other dialects' status attributes are not TraceData's.
	td = oneSpan(map[string]any{"gen_ai.operation.name": "chat", "status": "ERROR"})
	out, err = p.processTraces(authed, td)
	require.NoError(t, err)
	assert.Equal(t, ptrace.StatusCodeUnset, spanAt(out, 0).Status().Code())
}

// jsonLookup finds members without decoding, as encoding/json would.
func TestJSONLookup(t *testing.T) {
	s := `{"a":{"b":[1,2],"c":"x\"y","n":null},"d":-1.5e3,"a2":{"b":1},"dup":1,"dup":2}`
	for path, want := range map[string]string{"a.b": "[1,2]", "a.c": `"x\"y"`, "d": "-1.5e3", "a2.b": "1", "dup": "2", "a.n": "null"} {
		got, ok := jsonLookup(s, path)
		assert.True(t, ok, path)
		assert.Equal(t, want, got, path)
	}
	for _, path := range []string{"x", "a.x", "d.x", "a.b.c"} {
		_, ok := jsonLookup(s, path)
		assert.False(t, ok, path)
	}
	_, ok := jsonLookup(`{"a":1`, "a")
	assert.False(t, ok, "not JSON")
}

// BenchmarkProcessFallomSDK: one TraceData span of the TS OpenAI wrapper
// (content, usage with details, prompt context), as the fallomsdk receiver
// makes it, through the factory and processorhelper.
func BenchmarkProcessFallomSDK(b *testing.B) {
	td := traceDataSpan(b, sdkCases[0].body, prefixedNames)
	proc, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	benchOnClones(b, td, func(t ptrace.Traces) {
		if err := proc.ConsumeTraces(authed, t); err != nil {
			b.Fatal(err)
		}
	})
}
