package e2e

import (
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// Issue 16, items 1-3, through the built binary into SQLite: what a user of
// the default config finds in the database.

// e2eSpan is one span to send: attributes and events.
type e2eSpan struct {
	id     byte
	attrs  map[string]any
	events map[string]map[string]any
}

const mappingTraceID = "16161616161616161616161616161616"

func spanID(id byte) string {
	return strings.Repeat(hex.EncodeToString([]byte{id}), 8)
}

// otlpJSON encodes the spans as one OTLP/JSON request, with pdata.
func otlpJSON(t *testing.T, spans ...e2eSpan) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "mapping-e2e")
	ss := rs.ScopeSpans().AppendEmpty()
	start := time.Now().Add(-time.Minute)
	for _, sp := range spans {
		span := ss.Spans().AppendEmpty()
		span.SetName("call")
		var tid pcommon.TraceID
		copy(tid[:], mustHex(t, mappingTraceID))
		span.SetTraceID(tid)
		var sid pcommon.SpanID
		copy(sid[:], mustHex(t, spanID(sp.id)))
		span.SetSpanID(sid)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
		require.NoError(t, span.Attributes().FromRaw(sp.attrs))
		for name, attrs := range sp.events {
			ev := span.Events().AppendEmpty()
			ev.SetName(name)
			require.NoError(t, ev.Attributes().FromRaw(attrs))
		}
	}
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

var (
	// Vercel AI SDK v5 with an Anthropic model: input_tokens without the
	// cache, total = input + output (16.3).
	vercelV5Anthropic = e2eSpan{id: 1, attrs: map[string]any{
		"ai.operationId": "ai.streamText.doStream", "ai.model.provider": "anthropic.messages", "gen_ai.system": "anthropic.messages",
		"ai.model.id": "claude-sonnet-4-5", "ai.telemetry.metadata.sessionId": "sess-v5", "ai.telemetry.metadata.userId": "cust-v5",
		"ai.usage.inputTokens": int64(12), "ai.usage.cachedInputTokens": int64(6209), "ai.usage.outputTokens": int64(100), "ai.usage.totalTokens": int64(112),
		"gen_ai.usage.input_tokens": int64(12), "gen_ai.usage.output_tokens": int64(100),
	}}
	// Gemini-style output without its thinking tokens (16.3 guard).
	geminiOutput = e2eSpan{id: 2, attrs: map[string]any{
		"gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": "gemini-2.5-flash",
		"gen_ai.conversation.id":    "sess-v5",
		"gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(20),
		"gen_ai.usage.reasoning.output_tokens": int64(190), "gen_ai.usage.total_tokens": int64(310),
	}}
	// Content only in the v1.37+ details event (16.1).
	detailsOnly = e2eSpan{id: 3, attrs: map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
		"gen_ai.usage.input_tokens": int64(30), "gen_ai.usage.output_tokens": int64(8),
	}, events: map[string]map[string]any{"gen_ai.client.inference.operation.details": {
		"gen_ai.input.messages":  []any{map[string]any{"role": "user", "parts": []any{map[string]any{"type": "text", "content": "SECRET-e2e-question"}}}},
		"gen_ai.output.messages": []any{map[string]any{"role": "assistant", "parts": []any{map[string]any{"type": "text", "content": "SECRET-e2e-answer"}}, "finish_reason": "stop"}},
	}}}
	// Content keys with no column (16.2): kept without drop_content,
	// gone with it.
	contentWithoutColumn = e2eSpan{id: 4, attrs: map[string]any{
		"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
		"gen_ai.tool.call.arguments":             `{"q":"SECRET-e2e-args"}`,
		"gen_ai.tool.call.result":                `{"a":"SECRET-e2e-result"}`,
		"gen_ai.retrieval.query.text":            "SECRET-e2e-query",
		"ai.toolCall.args":                       `{"q":"SECRET-e2e-vargs"}`,
		"ai.toolCall.result":                     "SECRET-e2e-vresult",
		"traceloop.entity.input":                 "SECRET-e2e-tl-in",
		"traceloop.entity.output":                "SECRET-e2e-tl-out",
		"llm.prompts.0.prompt.text":              "SECRET-e2e-llm-prompt",
		"llm.choices.0.completion.text":          "SECRET-e2e-llm-choice",
		"llm.prompt_template.variables":          `{"x":"SECRET-e2e-vars"}`,
		"retrieval.documents.0.document.content": "SECRET-e2e-doc",
		"langfuse.trace.input":                   "SECRET-e2e-lf",
	}}
)

func TestMappingTokensAndEventContentStored(t *testing.T) {
	in := startDefault(t, "mapping")
	code, body := in.post(t, otlpJSON(t, vercelV5Anthropic, geminiOutput, detailsOnly), map[string]string{"Authorization": "Bearer " + in.key})
	require.Equal(t, http.StatusOK, code, body)
	db := in.db(t)

	type row struct {
		in, out, total, cached, reasoning *int64
		prompt, completion, finish, attrs *string
	}
	get := func(id byte) row {
		var r row
		require.NoError(t, db.QueryRow(`SELECT input_tokens, output_tokens, total_tokens, cached_input_tokens, reasoning_tokens,
			prompt, completion, finish_reason, attributes FROM spans WHERE trace_id = ? AND span_id = ?`, mappingTraceID, spanID(id)).
			Scan(&r.in, &r.out, &r.total, &r.cached, &r.reasoning, &r.prompt, &r.completion, &r.finish, &r.attrs))
		return r
	}

	v5 := get(1)
	assert.EqualValues(t, 6221, *v5.in, "Anthropic input + cache reads")
	assert.EqualValues(t, 6209, *v5.cached)
	assert.EqualValues(t, 100, *v5.out)
	assert.EqualValues(t, 6321, *v5.total)
	assert.Contains(t, *v5.attrs, "input_excluded_cache")

	gem := get(2)
	assert.EqualValues(t, 210, *gem.out, "output + thinking tokens")
	assert.EqualValues(t, 190, *gem.reasoning)
	assert.EqualValues(t, 310, *gem.total)
	assert.Contains(t, *gem.attrs, "reasoning_exceeded_output")

	var sessIn, sessOut int64
	require.NoError(t, db.QueryRow(`SELECT input_tokens, output_tokens FROM sessions WHERE project_id = 'mapping' AND session_id = 'sess-v5'`).Scan(&sessIn, &sessOut))
	assert.EqualValues(t, 6221+100, sessIn)
	assert.EqualValues(t, 100+210, sessOut)

	ev := get(3)
	require.NotNil(t, ev.prompt, "the details event's content is stored")
	assert.Contains(t, *ev.prompt, "SECRET-e2e-question")
	require.NotNil(t, ev.completion)
	assert.Contains(t, *ev.completion, "SECRET-e2e-answer")
	assert.Equal(t, "stop", *ev.finish)
}

func TestMappingDropContentLeavesNoContent(t *testing.T) {
	// Control: the default config keeps content that has no column in the
	// attributes JSON (so this test can see a leak).
	def := startDefault(t, "mapping")
	auth := map[string]string{"Authorization": "Bearer " + def.key}
	code, body := def.post(t, otlpJSON(t, detailsOnly, contentWithoutColumn), auth)
	require.Equal(t, http.StatusOK, code, body)
	var kept string
	require.NoError(t, def.db(t).QueryRow(`SELECT attributes FROM spans WHERE span_id = ?`, spanID(4)).Scan(&kept))
	assert.Contains(t, kept, "SECRET-e2e-args")

	in := startInstance(t, "mapping", []string{"--config", dropContentConfig(t)})
	code, body = in.post(t, otlpJSON(t, vercelV5Anthropic, detailsOnly, contentWithoutColumn), map[string]string{"Authorization": "Bearer " + in.key})
	require.Equal(t, http.StatusOK, code, body)
	db := in.db(t)
	assert.Equal(t, 3, count(t, db, `SELECT count(*) FROM spans`))
	rows, err := db.Query(`SELECT span_id, COALESCE(prompt, ''), COALESCE(completion, ''), attributes FROM spans`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id, prompt, completion, attrs string
		require.NoError(t, rows.Scan(&id, &prompt, &completion, &attrs))
		assert.NotContains(t, prompt+completion+attrs, "SECRET", "span %s", id)
	}
	require.NoError(t, rows.Err())
	var inTok int64
	require.NoError(t, db.QueryRow(`SELECT input_tokens FROM spans WHERE span_id = ?`, spanID(1)).Scan(&inTok))
	assert.EqualValues(t, 6221, inTok, "tokens stay")
}

// dropContentConfig writes the shipped config with drop_content: true and
// returns its path.
func dropContentConfig(t *testing.T) string {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(collectortest.RepoRoot(t), "config", "config.yaml"))
	require.NoError(t, err)
	text := strings.Replace(string(cfg), "  openroutermapping:\n", "  openroutermapping:\n    drop_content: true\n", 1)
	require.NotEqual(t, string(cfg), text, "the default config changed: adapt this test")
	path := filepath.Join(t.TempDir(), "drop.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}
