package openroutermappingprocessor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// detailsEventSpan is a chat span of an instrumentation on semconv v1.37+
// that sends the content only in the gen_ai.client.inference.operation.details
// event (structured values, as the semconv requires on events), plus an
// attribute that is not content.
func detailsEventSpan(t *testing.T, spanAttrs map[string]any) ptrace.Traces {
	t.Helper()
	attrs := map[string]any{
		"gen_ai.operation.name":      "chat",
		"gen_ai.provider.name":       "openai",
		"gen_ai.request.model":       "gpt-4o-mini",
		"gen_ai.usage.input_tokens":  int64(30),
		"gen_ai.usage.output_tokens": int64(8),
	}
	for k, v := range spanAttrs {
		attrs[k] = v
	}
	td := oneSpan(attrs)
	ev := spanAt(td, 0).Events().AppendEmpty()
	ev.SetName("gen_ai.client.inference.operation.details")
	require.NoError(t, ev.Attributes().FromRaw(map[string]any{
		"gen_ai.operation.name": "chat",
		"gen_ai.system_instructions": []any{
			map[string]any{"type": "text", "content": "Answer in French."},
		},
		"gen_ai.input.messages": []any{
			map[string]any{"role": "user", "parts": []any{map[string]any{"type": "text", "content": "Capital of Italy?"}}},
		},
		// Some SDKs cannot send structured values: a JSON string.
		"gen_ai.output.messages": `[{"role":"assistant","parts":[{"type":"text","content":"Rome."}],"finish_reason":"stop"}]`,
	}))
	return td
}

// Issue 16.1: the v1.37+ details event is read, and its content is removed
// only because it was stored.
func TestDetailsEventContentIsStored(t *testing.T) {
	p := newTestProcessor(t, nil)
	out, err := p.processTraces(authed, detailsEventSpan(t, nil))
	require.NoError(t, err)
	got := spanAt(out, 0).Attributes().AsRaw()
	assert.Equal(t, []map[string]any{
		{"role": "system", "content": "Answer in French."},
		{"role": "user", "content": "Capital of Italy?"},
	}, messages(t, got, fallomattr.Prompt))
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "Rome."}}, messages(t, got, fallomattr.Completion))
	assert.Equal(t, "stop", got[fallomattr.FinishReason], "finish_reason of the output message")
	ev := spanAt(out, 0).Events().At(0).Attributes().AsRaw()
	assert.Equal(t, map[string]any{"gen_ai.operation.name": "chat"}, ev, "stored content is not kept twice; the rest stays")

	cfg := createDefaultConfig()
	cfg.KeepOriginalContent = true
	out, err = newTestProcessor(t, cfg).processTraces(authed, detailsEventSpan(t, nil))
	require.NoError(t, err)
	assert.Len(t, spanAt(out, 0).Events().At(0).Attributes().AsRaw(), 4)
	assert.Contains(t, spanAt(out, 0).Attributes().AsRaw(), fallomattr.Completion)

	cfg = createDefaultConfig()
	cfg.DropContent = true
	out, err = newTestProcessor(t, cfg).processTraces(authed, detailsEventSpan(t, nil))
	require.NoError(t, err)
	got = spanAt(out, 0).Attributes().AsRaw()
	assert.NotContains(t, got, fallomattr.Prompt)
	assert.Equal(t, true, got[fallomattr.FlagContentDropped])
	assert.Equal(t, map[string]any{"gen_ai.operation.name": "chat"}, spanAt(out, 0).Events().At(0).Attributes().AsRaw())
}

// Content that was not stored is never removed: when the span's attributes
// carry the prompt and completion, the event's (possibly different) content
// stays where it is.
func TestEventContentNotStoredIsKept(t *testing.T) {
	p := newTestProcessor(t, nil)
	td := detailsEventSpan(t, map[string]any{
		"gen_ai.input.messages":  `[{"role":"user","parts":[{"type":"text","content":"Capital of Spain?"}]}]`,
		"gen_ai.output.messages": `[{"role":"assistant","parts":[{"type":"text","content":"Madrid."}]}]`,
	})
	out, err := p.processTraces(authed, td)
	require.NoError(t, err)
	got := spanAt(out, 0).Attributes().AsRaw()
	assert.Equal(t, []map[string]any{{"role": "user", "content": "Capital of Spain?"}}, messages(t, got, fallomattr.Prompt))
	ev := spanAt(out, 0).Events().At(0).Attributes().AsRaw()
	assert.Contains(t, ev, "gen_ai.input.messages")
	assert.Contains(t, ev, "gen_ai.output.messages")
	assert.Contains(t, ev, "gen_ai.system_instructions", "not stored (the attributes had no system instructions to merge with)")

	// The same holds for the deprecated per-message events.
	td = oneSpan(map[string]any{"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.prompt": "Hi"})
	ev2 := spanAt(td, 0).Events().AppendEmpty()
	ev2.SetName("gen_ai.user.message")
	ev2.Attributes().PutStr("content", "Something else")
	out, err = p.processTraces(authed, td)
	require.NoError(t, err)
	assert.Equal(t, "Something else", spanAt(out, 0).Events().At(0).Attributes().AsRaw()["content"])
}
