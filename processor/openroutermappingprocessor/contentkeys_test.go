package openroutermappingprocessor

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// contentFixture is one span as a dialect sends it. Every value that is
// content (prompts, completions, tool arguments and results, documents,
// queries, template variables...) contains a marker SECRET-<id>; no other
// value does. The tests below know nothing of the content table: they judge
// the processor by the markers alone.
type contentFixture struct {
	name   string
	attrs  map[string]any
	events []fixtureEvent
	// messages are the prefixes of flattened messages: their role, type and
	// tool-name keys are parts of the content without a marker of their own
	// (finish reasons excepted).
	messages []string
}

// isContent is the fixture's own verdict on an attribute.
func (f contentFixture) isContent(k string, v any) bool {
	if markerRE.MatchString(textOfValue(v)) {
		return true
	}
	for _, p := range f.messages {
		if strings.HasPrefix(k, p) && !strings.HasSuffix(k, ".finish_reason") {
			return true
		}
	}
	return false
}

type fixtureEvent struct {
	name  string
	attrs map[string]any
}

var contentFixtures = []contentFixture{
	{name: "openrouter", attrs: map[string]any{
		"span.type":                 "generation",
		"gen_ai.request.model":      "openai/gpt-4o",
		"gen_ai.usage.input_tokens": int64(20), "gen_ai.usage.output_tokens": int64(5),
		"gen_ai.prompt":     `{"messages":[{"role":"user","content":"SECRET-or-prompt"}]}`,
		"gen_ai.completion": `{"completion":"SECRET-or-answer","reasoning":"SECRET-or-think","toolCalls":[],"rawRequest":{"model":"openai/gpt-4o","stream":false,"messages":[{"role":"user","content":"SECRET-or-prompt"}]}}`,
		"span.input":        `{"messages":[{"role":"user","content":"SECRET-or-prompt"}]}`,
		"span.output":       `{"completion":"SECRET-or-answer","reasoning":"SECRET-or-think","toolCalls":[]}`,
		"trace.input":       `{"messages":[{"role":"user","content":"SECRET-or-prompt"}]}`,
		"trace.output":      `{"completion":"SECRET-or-answer","reasoning":"SECRET-or-think","toolCalls":[]}`,
		"trace.metadata.openrouter.provider_name": "OpenAI",
		"user.id": "u1", "session.id": "s1",
	}},
	{name: "otel_genai chat", attrs: map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
		"gen_ai.system_instructions": `[{"type":"text","content":"SECRET-sem-sys"}]`,
		"gen_ai.input.messages":      `[{"role":"user","parts":[{"type":"text","content":"SECRET-sem-user"}]}]`,
		"gen_ai.output.messages":     `[{"role":"assistant","parts":[{"type":"text","content":"SECRET-sem-answer"}],"finish_reason":"stop"}]`,
	}},
	{name: "otel_genai execute_tool", attrs: map[string]any{
		"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.id": "call_1",
		"gen_ai.tool.call.arguments": `{"city":"SECRET-sem-args"}`,
		"gen_ai.tool.call.result":    `{"temp":"SECRET-sem-result"}`,
	}},
	{name: "otel_genai retrieval", attrs: map[string]any{
		"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb-1",
		"gen_ai.retrieval.query.text": "SECRET-sem-query",
		"gen_ai.retrieval.documents":  `[{"id":"doc_1","score":0.9,"content":"SECRET-sem-doc"}]`,
	}},
	{name: "otel_genai details event", attrs: map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-haiku-4-5",
	}, events: []fixtureEvent{{name: "gen_ai.client.inference.operation.details", attrs: map[string]any{
		"gen_ai.operation.name":      "chat",
		"gen_ai.system_instructions": []any{map[string]any{"type": "text", "content": "SECRET-ev-sys"}},
		"gen_ai.input.messages":      []any{map[string]any{"role": "user", "parts": []any{map[string]any{"type": "text", "content": "SECRET-ev-user"}}}},
		"gen_ai.output.messages":     []any{map[string]any{"role": "assistant", "parts": []any{map[string]any{"type": "text", "content": "SECRET-ev-answer"}}}},
	}}}},
	{name: "otel_genai deprecated events", attrs: map[string]any{
		"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
	}, events: []fixtureEvent{
		{name: "gen_ai.system.message", attrs: map[string]any{"gen_ai.system": "openai", "content": "SECRET-dep-sys"}},
		{name: "gen_ai.user.message", attrs: map[string]any{"gen_ai.system": "openai", "content": "SECRET-dep-user"}},
		{name: "gen_ai.choice", attrs: map[string]any{"gen_ai.system": "openai", "index": int64(0), "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": "SECRET-dep-answer"}}},
		// Content keys of other dialects on an event of any name.
		{name: "tool", attrs: map[string]any{"gen_ai.tool.call.arguments": `{"q":"SECRET-ev-args"}`, "ai.toolCall.result": "SECRET-ev-result", "tool.name": "search"}},
	}},
	{name: "openinference chat", attrs: map[string]any{
		"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai",
		"llm.input_messages.0.message.role":                             "user",
		"llm.input_messages.0.message.content":                          "SECRET-oi-user",
		"llm.output_messages.0.message.role":                            "assistant",
		"llm.output_messages.0.message.contents.0.message_content.type": "text",
		"llm.output_messages.0.message.contents.0.message_content.text": "SECRET-oi-answer",
		"input.value":                   `{"messages":[{"role":"user","content":"SECRET-oi-user"}]}`,
		"input.mime_type":               "application/json",
		"output.value":                  "SECRET-oi-answer",
		"llm.prompt_template.template":  "Answer {SECRET-oi-template}",
		"llm.prompt_template.variables": `{"q":"SECRET-oi-vars"}`,
		"llm.prompt_template.version":   "v3",
		"llm.function_call":             `{"name":"f","arguments":"{\"x\":\"SECRET-oi-fcall\"}"}`,
	}, messages: []string{"llm.input_messages.", "llm.output_messages."}},
	{name: "openinference completions", attrs: map[string]any{
		"openinference.span.kind": "LLM", "llm.model_name": "gpt-3.5-turbo-instruct",
		"llm.prompts.0.prompt.text":     "SECRET-oi-completion-prompt",
		"llm.choices.0.completion.text": "SECRET-oi-completion-text",
		"llm.token_count.prompt":        int64(4),
		"llm.token_count.completion":    int64(9),
		"llm.invocation_parameters":     `{"model":"gpt-3.5-turbo-instruct","max_tokens":16}`,
	}},
	{name: "openinference retriever", attrs: map[string]any{
		"openinference.span.kind":                      "RETRIEVER",
		"input.value":                                  "SECRET-oi-retr-query",
		"retrieval.documents.0.document.id":            "d1",
		"retrieval.documents.0.document.score":         0.8,
		"retrieval.documents.0.document.content":       "SECRET-oi-doc0",
		"retrieval.documents.1.document.content":       "SECRET-oi-doc1",
		"reranker.query":                               "SECRET-oi-rerank-query",
		"reranker.input_documents.0.document.content":  "SECRET-oi-rerank-in",
		"reranker.output_documents.0.document.content": "SECRET-oi-rerank-out",
		"embedding.embeddings.0.embedding.text":        "SECRET-oi-embed",
		"embedding.model_name":                         "text-embedding-3-small",
	}},
	{name: "traceloop", attrs: map[string]any{
		"llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
		"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "SECRET-tl-user",
		"gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "SECRET-tl-answer",
		"gen_ai.completion.0.finish_reason":           "stop",
		"gen_ai.completion.0.tool_calls.0.name":       "save",
		"gen_ai.completion.0.tool_calls.0.arguments":  `{"x":"SECRET-tl-args"}`,
		"traceloop.association.properties.session_id": "tl-s",
	}, messages: []string{"gen_ai.prompt.", "gen_ai.completion."}},
	{name: "traceloop task", attrs: map[string]any{
		"traceloop.span.kind": "task", "traceloop.entity.name": "summarize",
		"traceloop.entity.input":  `{"args":["SECRET-tl-task-in"]}`,
		"traceloop.entity.output": `"SECRET-tl-task-out"`,
	}},
	{name: "vercel call", attrs: map[string]any{
		"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "gpt-4o", "ai.model.provider": "openai.chat",
		"ai.prompt.messages":    `[{"role":"user","content":[{"type":"text","text":"SECRET-v-user"}]}]`,
		"ai.prompt.tools":       []any{`{"type":"function","name":"lookup","description":"SECRET-v-tooldef"}`},
		"ai.prompt.toolChoice":  `{"type":"auto"}`,
		"ai.response.text":      "SECRET-v-answer",
		"ai.response.toolCalls": `[{"toolCallId":"t1","toolName":"lookup","input":"{\"q\":\"SECRET-v-tc\"}"}]`,
		"ai.usage.promptTokens": int64(3), "ai.usage.completionTokens": int64(4),
	}},
	{name: "vercel outer", attrs: map[string]any{
		"ai.operationId": "ai.generateText", "ai.model.id": "gpt-4o",
		"ai.prompt":        `{"system":"SECRET-v-outer-sys","prompt":"SECRET-v-outer-user"}`,
		"ai.response.text": "SECRET-v-outer-answer",
	}},
	{name: "vercel tool", attrs: map[string]any{
		"ai.operationId": "ai.toolCall", "ai.toolCall.name": "lookup", "ai.toolCall.id": "t1",
		"ai.toolCall.args":   `{"q":"SECRET-v-args"}`,
		"ai.toolCall.result": `{"a":"SECRET-v-result"}`,
	}},
	{name: "vercel embed", attrs: map[string]any{
		"ai.operationId": "ai.embed.doEmbed", "ai.model.id": "text-embedding-3-small",
		"ai.value": "SECRET-v-embed", "ai.values": []any{"SECRET-v-embed1", "SECRET-v-embed2"},
		"ai.usage.tokens": int64(4),
	}},
	{name: "langfuse", attrs: map[string]any{
		"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
		"langfuse.observation.input":          `[{"role":"user","content":"SECRET-lf-user"}]`,
		"langfuse.observation.output":         `{"role":"assistant","content":"SECRET-lf-answer"}`,
		"langfuse.trace.input":                `{"question":"SECRET-lf-trace-in"}`,
		"langfuse.trace.output":               `"SECRET-lf-trace-out"`,
		"langfuse.observation.metadata.input": "SECRET-lf-meta-in",
		"langfuse.session.id":                 "lf-s",
	}},
	{name: "litellm", attrs: map[string]any{
		"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
		"gen_ai.usage.prompt_tokens": int64(12), "gen_ai.usage.completion_tokens": int64(7),
		"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "SECRET-ll-user",
		"gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "SECRET-ll-answer",
	}, messages: []string{"gen_ai.prompt.", "gen_ai.completion."}},
	{name: "fallom sdk openai", attrs: map[string]any{
		"config_key": "my-agent", "session_id": "s1", "kind": "llm", "model": "gpt-4o",
		"fallom.sdk_version": "2", "fallom.method": "chat.completions.create",
		"fallom.raw.request":  `{"messages":[{"role":"system","content":"SECRET-fs-sys"},{"role":"user","content":"SECRET-fs-user"}],"model":"gpt-4o"}`,
		"fallom.raw.response": `{"text":"SECRET-fs-answer","finishReason":"stop","responseId":"chatcmpl-1","model":"gpt-4o","toolCalls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":\"SECRET-fs-args\"}"}}]}`,
		"fallom.raw.usage":    `{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}`,
		"fallom.raw.metadata": `{"id":"chatcmpl-1","choices":[{"message":"[content omitted]"}]}`,
	}},
	{name: "fallom sdk ai-sdk steps", attrs: map[string]any{
		"config_key": "my-agent", "session_id": "s1", "kind": "llm", "model": "gpt-4o",
		"fallom.sdk_version": "2", "fallom.method": "generateText",
		"fallom.raw.request":  `{"prompt":"SECRET-fs-prompt","system":"SECRET-fs-system","model":"gpt-4o","tools":["weather"],"maxSteps":2}`,
		"fallom.raw.response": `{"text":"SECRET-fs-final","finishReason":"stop","toolCalls":[],"toolResults":[],"steps":[{"text":"","toolCalls":[{"toolCallId":"c1","toolName":"weather","args":{"city":"SECRET-fs-city"}}],"toolResults":[{"toolCallId":"c1","toolName":"weather","result":"SECRET-fs-result"}]},{"text":"SECRET-fs-final","toolCalls":[],"toolResults":[]}]}`,
		"fallom.raw.usage":    `{"promptTokens":10,"completionTokens":2,"totalTokens":12}`,
	}},
	{name: "fallom sdk wrapTraced", attrs: map[string]any{
		"config_key": "my-agent", "session_id": "s1", "kind": "custom",
		"fallom.sdk_version": "2", "fallom.span_type": "manual",
		"input": map[string]any{"doc": "SECRET-fs-in"}, "output": "SECRET-fs-out", "rag.k": int64(5),
	}},
}

// Issue 16.1: sources of one role whose content differs. A lower-ranked
// source is removed only when it holds nothing beyond the stored messages;
// one carrying other content (a different message, tools, parameters) stays
// as sent.
var differingContentFixtures = []contentFixture{
	{name: "openinference differing sources", attrs: map[string]any{
		"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
		"llm.input_messages.0.message.role":     "user",
		"llm.input_messages.0.message.content":  "SECRET-oid-msg-a",
		"llm.output_messages.0.message.role":    "assistant",
		"llm.output_messages.0.message.content": "SECRET-oid-answer",
		// The same message, plus tools and parameters: kept.
		"input.value": `{"messages":[{"role":"user","content":"SECRET-oid-msg-a"}],"tools":[{"name":"SECRET-oid-rawtool-b"}],"temperature":0.3}`,
		// Another answer than the stored one: kept.
		"output.value": "SECRET-oid-other-answer",
	}, messages: []string{"llm.input_messages.", "llm.output_messages."}},
	{name: "openrouter differing sources", attrs: map[string]any{
		"span.type": "generation", "gen_ai.request.model": "openai/gpt-4o",
		"gen_ai.prompt":     `{"messages":[{"role":"user","content":"SECRET-ord-prompt"}]}`,
		"gen_ai.completion": `{"completion":"SECRET-ord-answer","reasoning":null,"toolCalls":[]}`,
		"span.input":        `{"messages":[{"role":"user","content":"SECRET-ord-prompt"}]}`, // the same: removed
		"trace.input":       `{"messages":[{"role":"user","content":"SECRET-ord-first-turn"}]}`,
		"span.output":       `{"completion":"SECRET-ord-answer","reasoning":null,"toolCalls":[]}`, // the same: removed
		"trace.output":      `{"completion":"SECRET-ord-trace-answer","reasoning":null,"toolCalls":[]}`,
	}},
	{name: "semconv with system instructions and a lower source", attrs: map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
		"gen_ai.system_instructions": `[{"type":"text","content":"SECRET-sd-sys"}]`,
		"gen_ai.input.messages":      `[{"role":"user","parts":[{"type":"text","content":"SECRET-sd-user"}]}]`,
		// Contained in the stored prompt (system + user): removed.
		"input.value": `[{"role":"user","content":"SECRET-sd-user"}]`,
		// A message object with empty members only beside the stored one: removed.
		"gen_ai.output.messages":      `[{"role":"assistant","parts":[{"type":"text","content":"SECRET-sd-answer"}]}]`,
		"langfuse.observation.output": `{"role":"assistant","content":"SECRET-sd-answer","refusal":null,"annotations":[]}`,
	}},
	{name: "langfuse input with parameters as the only source", attrs: map[string]any{
		"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
		"langfuse.observation.input":  `{"messages":[{"role":"user","content":"SECRET-lfp-user"}],"tools":[{"type":"function","function":{"name":"SECRET-lfp-tool"}}]}`,
		"langfuse.observation.output": `{"role":"assistant","content":"SECRET-lfp-answer"}`,
	}},
}

var markerRE = regexp.MustCompile(`SECRET-[a-z0-9-]+`)

func (f contentFixture) traces(t *testing.T) ptrace.Traces {
	t.Helper()
	td := oneSpan(f.attrs)
	for _, e := range f.events {
		ev := spanAt(td, 0).Events().AppendEmpty()
		ev.SetName(e.name)
		require.NoError(t, ev.Attributes().FromRaw(e.attrs))
	}
	return td
}

func textOfValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// attrSets are the span's attributes and each event's, by a name for messages.
func attrSets(span ptrace.Span) map[string]pcommon.Map {
	out := map[string]pcommon.Map{"span": span.Attributes()}
	for i := 0; i < span.Events().Len(); i++ {
		out["event "+span.Events().At(i).Name()] = span.Events().At(i).Attributes()
	}
	return out
}

// fixtureSets are the fixture's input attributes, named like attrSets.
func (f contentFixture) sets() map[string]map[string]any {
	out := map[string]map[string]any{"span": f.attrs}
	for _, e := range f.events {
		out["event "+e.name] = e.attrs
	}
	return out
}

// Issue 16.2: with drop_content every content value is gone, from the span
// and from its events, and every other value is kept as it was.
func TestDropContentRemovesEveryContentKey(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.DropContent = true
	p := newTestProcessor(t, cfg)
	for _, f := range append(append([]contentFixture{}, contentFixtures...), differingContentFixtures...) {
		t.Run(f.name, func(t *testing.T) {
			out, err := p.processTraces(authed, f.traces(t))
			require.NoError(t, err)
			span := spanAt(out, 0)
			got := attrSets(span)
			for set, in := range f.sets() {
				for k, v := range in {
					outV, kept := got[set].Get(k)
					if f.isContent(k, v) {
						assert.False(t, kept, "%s: content key %s kept with drop_content", set, k)
					} else if assert.True(t, kept, "%s: %s is not content but was removed", set, k) {
						assert.Equal(t, v, outV.AsRaw(), "%s: %s changed", set, k)
					}
				}
			}
			for set, m := range got {
				for k, v := range m.All() {
					assert.NotRegexp(t, markerRE, k+"="+v.AsString(), "%s: content left in %s", set, k)
				}
			}
			assert.Equal(t, true, span.Attributes().AsRaw()[fallomattr.FlagContentDropped])
		})
	}
}

// Issue 16.2, the other end of the same table: without drop_content each
// content value is stored once. A content attribute is either kept as sent
// (content with no column: tool arguments, documents...) or removed because
// its text is in fallom.prompt / fallom.completion; never removed unstored,
// never both kept and stored.
func TestContentIsStoredOnceAndNeverLost(t *testing.T) {
	p := newTestProcessor(t, nil)
	for _, f := range append(append([]contentFixture{}, contentFixtures...), differingContentFixtures...) {
		t.Run(f.name, func(t *testing.T) {
			out, err := p.processTraces(authed, f.traces(t))
			require.NoError(t, err)
			span := spanAt(out, 0)
			attrs := span.Attributes().AsRaw()
			stored := ""
			for _, k := range []string{fallomattr.Prompt, fallomattr.Completion} {
				if s, ok := attrs[k].(string); ok {
					stored += s
				}
			}
			got := attrSets(span)
			kept := map[string]bool{} // markers still in kept attributes
			for set, in := range f.sets() {
				for k, v := range in {
					outV, stays := got[set].Get(k)
					text := textOfValue(v)
					markers := markerRE.FindAllString(text, -1)
					if stays {
						assert.Equal(t, v, outV.AsRaw(), "%s: %s changed", set, k)
						// An attribute that also carries content that was
						// not stored is kept whole: its stored markers are
						// not counted twice.
						unstored := false
						for _, m := range markers {
							unstored = unstored || !strings.Contains(stored, m)
						}
						for _, m := range markers {
							kept[m] = kept[m] || !unstored
						}
						continue
					}
					require.True(t, f.isContent(k, v), "%s: %s is not content but was removed", set, k)
					for _, m := range markers {
						assert.Contains(t, stored, m, "%s: %s removed but %s is not stored", set, k, m)
					}
				}
			}
			var twice []string
			for m, whole := range kept {
				if whole && strings.Contains(stored, m) {
					twice = append(twice, m)
				}
			}
			sort.Strings(twice)
			assert.Empty(t, twice, "stored and kept in the attributes too")
		})
	}
}

// Issue 16.1, the review's reproduction: the OpenInference messages are
// stored; input.value holds the same message plus tools and parameters, so
// it stays as sent, and a lower source that holds only the stored messages
// is still removed.
func TestLowerContentSourceKeptWhenItHoldsMore(t *testing.T) {
	p := newTestProcessor(t, nil)
	raw := `{"messages":[{"role":"user","content":"MSG-A"}],"tools":[{"name":"RAWTOOL-B"}],"temperature":0.3}`
	attrs := mapOne(t, p, map[string]any{
		"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
		"llm.input_messages.0.message.role":    "user",
		"llm.input_messages.0.message.content": "MSG-A",
		"input.value":                          raw,
	})
	assert.JSONEq(t, `[{"role":"user","content":"MSG-A"}]`, attrs[fallomattr.Prompt].(string))
	assert.Equal(t, raw, attrs["input.value"], "input.value carries tools and parameters that were not stored")
	assert.NotContains(t, attrs, "llm.input_messages.0.message.content")

	attrs = mapOne(t, p, map[string]any{
		"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
		"llm.input_messages.0.message.role":    "user",
		"llm.input_messages.0.message.content": "MSG-A",
		"input.value":                          `{"messages":[{"role":"user","content":"MSG-A"}]}`,
	})
	assert.NotContains(t, attrs, "input.value", "input.value holds only the stored messages")
}

// The OpenRouter completion is stored from gen_ai.completion, which also
// echoes the request (rawRequest); span.output holds the same completion
// without it and is removed, trace.output with a request parameter more is
// kept.
func TestOpenRouterLowerSourcesBesideRawRequest(t *testing.T) {
	p := newTestProcessor(t, nil)
	attrs := mapOne(t, p, map[string]any{
		"span.type": "generation", "gen_ai.request.model": "openai/gpt-4o",
		"gen_ai.prompt":     `{"messages":[{"role":"user","content":"hi"}]}`,
		"gen_ai.completion": `{"completion":"hello","reasoning":null,"toolCalls":[],"rawRequest":{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}}`,
		"span.output":       `{"completion":"hello","reasoning":null,"toolCalls":[]}`,
		"trace.output":      `{"completion":"hello","reasoning":null,"toolCalls":[],"temperature":0.2}`,
	})
	assert.JSONEq(t, `[{"role":"assistant","content":"hello"}]`, attrs[fallomattr.Completion].(string))
	assert.NotContains(t, attrs, "gen_ai.completion")
	assert.NotContains(t, attrs, "span.output", "the stored completion, once more")
	assert.Contains(t, attrs, "trace.output", "carries a parameter that was not stored")
	assert.Equal(t, true, attrs[fallomattr.Streamed])
}
