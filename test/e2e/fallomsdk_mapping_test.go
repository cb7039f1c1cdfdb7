package e2e

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12 item 2 through the built binary into SQLite: spans carrying the
// Fallom SDK's attributes, as the fallomsdk receiver keeps a TraceData
// (the SDK's attributes as sent, the envelope as fallom.<field>), are
// mapped by the default config's processor and stored with tokens, a
// computed cost, content and the experiment columns. They arrive here over
// OTLP: the mapping does not depend on the receiver that made the span.

func fallomJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var (
	// TS wrapAnthropic with cache fields, after prompts.getAB().
	sdkAnthropic = e2eSpan{id: 0x21, attrs: map[string]any{
		"fallom.config_key": "support-bot", "fallom.session_id": "sdk-sess-1", "fallom.customer_id": "sdk-cust",
		"fallom.kind": "llm", "fallom.model": "claude-sonnet-4-5-20250929", "fallom.duration_ms": int64(1000),
		"fallom.prompt_key": "onboarding", "fallom.prompt_version": int64(2),
		"fallom.prompt_ab_test_key": "onboarding-test", "fallom.prompt_variant_index": int64(0),
		"fallom.metadata": map[string]any{"env": "prod"}, "fallom.tags": []any{"beta"},
		"fallom.sdk_version": "2", "fallom.method": "messages.create",
		"fallom.raw.request": fallomJSON(map[string]any{"system": "Be terse.", "model": "claude-sonnet-4-5",
			"messages": []any{map[string]any{"role": "user", "content": "SDK-question"}}}),
		"fallom.raw.response": fallomJSON(map[string]any{"text": "SDK-answer", "finishReason": "end_turn", "model": "claude-sonnet-4-5-20250929", "toolCalls": []any{}}),
		"fallom.raw.usage":    fallomJSON(map[string]any{"input_tokens": 12, "output_tokens": 100, "cache_read_input_tokens": 6209, "cache_creation_input_tokens": 50}),
	}}
	// PY Google with content capture off (FALLOM_CAPTURE_CONTENT=false).
	sdkGoogleCaptureOff = e2eSpan{id: 0x22, attrs: map[string]any{
		"fallom.config_key": "support-bot", "fallom.session_id": "sdk-sess-1", "fallom.kind": "llm", "fallom.model": "gemini-1.5-flash",
		"fallom.sdk_version": "2", "fallom.method": "generateContent",
		"fallom.raw.usage": fallomJSON(map[string]any{"prompt_token_count": 8, "candidates_token_count": 40, "total_token_count": 48}),
	}}
	// A manual span: not a generation, never costed.
	sdkManual = e2eSpan{id: 0x23, attrs: map[string]any{
		"fallom.config_key": "support-bot", "fallom.session_id": "sdk-sess-1", "fallom.kind": "retrieval",
		"fallom.sdk_version": "2", "fallom.span_type": "manual", "rag.k": int64(5),
	}}
)

func TestMappingFallomSDKSpansStored(t *testing.T) {
	in := startDefault(t, "sdkmap")
	code, body := in.post(t, otlpJSON(t, sdkAnthropic, sdkGoogleCaptureOff, sdkManual), map[string]string{"Authorization": "Bearer " + in.key})
	require.Equal(t, http.StatusOK, code, body)
	db := in.db(t)

	type row struct {
		source, session, customer, model, costSource, finish *string
		isGen                                                bool
		in, out, total, cached, write                        *int64
		cost                                                 *float64
		prompt, completion                                   *string
		configKey, promptKey, abKey                          *string
		promptVersion, variant                               *int64
		attrs                                                string
	}
	get := func(id byte) row {
		var r row
		require.NoError(t, db.QueryRow(`SELECT source, session_id, customer_id, model, cost_source, finish_reason, is_generation,
			input_tokens, output_tokens, total_tokens, cached_input_tokens, cache_write_input_tokens, total_cost_usd,
			prompt, completion, config_key, prompt_key, prompt_ab_test_key, prompt_version, prompt_variant_index, attributes
			FROM spans WHERE project_id = 'sdkmap' AND trace_id = ? AND span_id = ?`, mappingTraceID, spanID(id)).
			Scan(&r.source, &r.session, &r.customer, &r.model, &r.costSource, &r.finish, &r.isGen,
				&r.in, &r.out, &r.total, &r.cached, &r.write, &r.cost,
				&r.prompt, &r.completion, &r.configKey, &r.promptKey, &r.abKey, &r.promptVersion, &r.variant, &r.attrs))
		return r
	}

	an := get(0x21)
	assert.Equal(t, "fallom", *an.source)
	assert.True(t, an.isGen)
	assert.Equal(t, "sdk-sess-1", *an.session)
	assert.Equal(t, "sdk-cust", *an.customer)
	assert.Equal(t, "claude-sonnet-4-5-20250929", *an.model)
	assert.EqualValues(t, 6271, *an.in, "Anthropic's input_tokens leave the cache out")
	assert.EqualValues(t, 6209, *an.cached)
	assert.EqualValues(t, 50, *an.write)
	assert.EqualValues(t, 100, *an.out)
	assert.EqualValues(t, 6371, *an.total)
	assert.Equal(t, "computed", *an.costSource)
	assert.InDelta(t, (12*3+6209*0.30+50*3.75+100*15)/1e6, *an.cost, 1e-12)
	assert.Equal(t, "end_turn", *an.finish)
	require.NotNil(t, an.prompt)
	assert.JSONEq(t, `[{"role":"system","content":"Be terse."},{"role":"user","content":"SDK-question"}]`, *an.prompt)
	require.NotNil(t, an.completion)
	assert.JSONEq(t, `[{"role":"assistant","content":"SDK-answer"}]`, *an.completion)
	assert.Equal(t, "support-bot", *an.configKey)
	assert.Equal(t, "onboarding", *an.promptKey)
	assert.EqualValues(t, 2, *an.promptVersion)
	assert.Equal(t, "onboarding-test", *an.abKey)
	require.NotNil(t, an.variant, "variant 0 is stored, not NULL")
	assert.EqualValues(t, 0, *an.variant)
	assert.NotContains(t, an.attrs, "fallom.raw.request", "content stored once")
	assert.NotContains(t, an.attrs, "SDK-question")
	assert.Contains(t, an.attrs, `"fallom.metadata":{"env":"prod"}`, "metadata kept in the attributes JSON")
	assert.Contains(t, an.attrs, `"fallom.tags":["beta"]`)

	off := get(0x22)
	assert.Nil(t, off.prompt, "capture off: no content")
	assert.Nil(t, off.completion)
	assert.EqualValues(t, 8, *off.in)
	assert.EqualValues(t, 40, *off.out)
	assert.Equal(t, "computed", *off.costSource)
	assert.InDelta(t, (8*0.075+40*0.30)/1e6, *off.cost, 1e-15)
	assert.Equal(t, "support-bot", *off.configKey)
	assert.Nil(t, off.promptKey)

	manual := get(0x23)
	assert.False(t, manual.isGen)
	assert.Nil(t, manual.costSource)
	assert.Equal(t, "fallom", *manual.source)

	var generations int
	require.NoError(t, db.QueryRow(`SELECT generations FROM sessions WHERE project_id = 'sdkmap' AND session_id = 'sdk-sess-1'`).Scan(&generations))
	assert.Equal(t, 2, generations, "the manual span is not a generation")
}

// sdkTraceData is a TraceData body as the SDKs post it (FALLOM_SDK.md 2.2):
// the envelope, and attributes whose fallom.raw.* values are JSON strings.
func sdkTraceData(spanID string, envelope, attrs map[string]any) []byte {
	td := map[string]any{
		"config_key": "usage-shapes", "session_id": "shape-session", "trace_id": "5ea5ea5ea5ea5ea5ea5ea5ea5ea5ea5e",
		"span_id": spanID, "name": "call", "kind": "llm", "duration_ms": 900, "status": "OK",
		"start_time": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano),
		"end_time":   time.Now().Add(-time.Minute + 900*time.Millisecond).UTC().Format("2006-01-02T15:04:05.000000+00:00"),
	}
	for k, v := range envelope {
		td[k] = v
	}
	a := map[string]any{"fallom.sdk_version": "2"}
	for k, v := range attrs {
		if _, isStr := v.(string); strings.HasPrefix(k, "fallom.raw.") && !isStr {
			v = fallomJSON(v)
		}
		a[k] = v
	}
	td["attributes"] = a
	return []byte(fallomJSON(td))
}

// Every usage shape of FALLOM_SDK.md 2.3, posted as TraceData to the
// fallomsdk receiver of the shipped config: the stored counts are
// inclusive and the cost is computed from the built-in prices.
func TestMappingFallomSDKUsageShapesStored(t *testing.T) {
	in := startSDK(t)
	perM := func(v float64) float64 { return v / 1e6 }
	cases := []struct {
		name, spanID                         string
		envelope, attrs                      map[string]any
		in, out, total, cached, write, think int64 // -1: NULL
		cost                                 float64
	}{
		{"OpenAI chat with details", "a000000000000001", map[string]any{"model": "gpt-4o", "prompt_key": "p", "prompt_version": 4}, map[string]any{
			"fallom.method": "chat.completions.create",
			"fallom.raw.usage": map[string]any{"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
				"prompt_tokens_details": map[string]any{"cached_tokens": 1200}, "completion_tokens_details": map[string]any{"reasoning_tokens": 64}}},
			2006, 300, 2306, 1200, -1, 64, 806*perM(2.5) + 1200*perM(1.25) + 300*perM(10)},
		{"Anthropic with cache fields", "a000000000000002", map[string]any{"model": "claude-sonnet-4-5"}, map[string]any{
			"fallom.method":    "messages.create",
			"fallom.raw.usage": map[string]any{"input_tokens": 12, "output_tokens": 100, "cache_read_input_tokens": 6209, "cache_creation_input_tokens": 50}},
			6271, 100, 6371, 6209, 50, -1, 12*perM(3) + 6209*perM(0.30) + 50*perM(3.75) + 100*perM(15)},
		{"Google camelCase", "a000000000000003", map[string]any{"model": "gemini-2.5-flash"}, map[string]any{
			"fallom.method":    "generateContent",
			"fallom.raw.usage": map[string]any{"promptTokenCount": 1000, "candidatesTokenCount": 40, "totalTokenCount": 1070, "cachedContentTokenCount": 600, "thoughtsTokenCount": 30}},
			1000, 70, 1070, 600, -1, 30, 400*perM(0.30) + 600*perM(0.075) + 70*perM(2.50)},
		{"Google snake_case", "a000000000000004", map[string]any{"model": "gemini-1.5-flash"}, map[string]any{
			"fallom.method":    "generateContent",
			"fallom.raw.usage": map[string]any{"prompt_token_count": 8, "candidates_token_count": 40, "total_token_count": 48}},
			8, 40, 48, -1, -1, -1, 8*perM(0.075) + 40*perM(0.30)},
		{"Vercel AI SDK v4", "a000000000000005", map[string]any{"model": "gpt-4o-mini"}, map[string]any{
			"fallom.method": "generateText", "fallom.provider": "openai.chat",
			"fallom.raw.usage": map[string]any{"promptTokens": 50, "completionTokens": 10, "totalTokens": 60}},
			50, 10, 60, -1, -1, -1, 50*perM(0.15) + 10*perM(0.60)},
		{"Vercel AI SDK v5, Anthropic provider", "a000000000000006", map[string]any{"model": "claude-sonnet-4-5"}, map[string]any{
			"fallom.method": "streamText", "fallom.provider": "anthropic.messages",
			"fallom.raw.usage": map[string]any{"inputTokens": 5000, "outputTokens": 100, "totalTokens": 5100, "cachedInputTokens": 1000}},
			6000, 100, 6100, 1000, -1, -1, 5000*perM(3) + 1000*perM(0.30) + 100*perM(15)},
		{"Vercel AI SDK v6 with details", "a000000000000007", map[string]any{"model": "claude-sonnet-4-5"}, map[string]any{
			"fallom.method": "generateText", "fallom.provider": "anthropic.messages",
			"fallom.raw.usage": map[string]any{"inputTokens": 6000, "inputTokenDetails": map[string]any{"noCacheTokens": 4000, "cacheReadTokens": 1500, "cacheWriteTokens": 500},
				"outputTokens": 130, "outputTokenDetails": map[string]any{"textTokens": 100, "reasoningTokens": 30}, "totalTokens": 6130}},
			6000, 130, 6130, 1500, 500, 30, 4000*perM(3) + 1500*perM(0.30) + 500*perM(3.75) + 130*perM(15)},
	}
	for _, c := range cases {
		code, body := in.sdkDo(t, http.MethodPost, "/v1/traces", in.key, sdkTraceData(c.spanID, c.envelope, c.attrs), nil)
		require.Equal(t, http.StatusOK, code, "%s: %s", c.name, body)
	}
	db := in.db(t)
	for _, c := range cases {
		var (
			in, out, total, cached, write, think sql.NullInt64
			cost                                 sql.NullFloat64
			source, costSource                   string
		)
		require.NoError(t, db.QueryRow(`SELECT input_tokens, output_tokens, total_tokens, cached_input_tokens, cache_write_input_tokens,
			reasoning_tokens, total_cost_usd, source, cost_source FROM spans WHERE project_id = 'acme' AND span_id = ?`, c.spanID).
			Scan(&in, &out, &total, &cached, &write, &think, &cost, &source, &costSource), c.name)
		for _, n := range []struct {
			name string
			got  sql.NullInt64
			want int64
		}{{"input", in, c.in}, {"output", out, c.out}, {"total", total, c.total}, {"cached", cached, c.cached}, {"cache write", write, c.write}, {"reasoning", think, c.think}} {
			if n.want < 0 {
				assert.False(t, n.got.Valid, "%s: %s is %d, want NULL", c.name, n.name, n.got.Int64)
			} else {
				assert.Equal(t, sql.NullInt64{Int64: n.want, Valid: true}, n.got, "%s: %s", c.name, n.name)
			}
		}
		assert.Equal(t, "fallom", source, c.name)
		assert.Equal(t, "computed", costSource, c.name)
		assert.InDelta(t, c.cost, cost.Float64, 1e-12, c.name)
	}
	var key string
	var version int64
	require.NoError(t, db.QueryRow(`SELECT prompt_key, prompt_version FROM spans WHERE span_id = 'a000000000000001'`).Scan(&key, &version))
	assert.Equal(t, "p", key)
	assert.EqualValues(t, 4, version)
}

// drop_content removes the SDK's raw request and response: nothing of the
// conversation is stored; tokens, cost, finish reason and the experiment
// columns stay.
func TestMappingFallomSDKDropContent(t *testing.T) {
	in := startInstance(t, "sdkmap", []string{"--config", dropContentConfig(t)})
	code, body := in.post(t, otlpJSON(t, sdkAnthropic), map[string]string{"Authorization": "Bearer " + in.key})
	require.Equal(t, http.StatusOK, code, body)
	var (
		prompt, completion sql.NullString
		attrs, finish      string
		input              int64
		cost               float64
		promptKey          string
	)
	require.NoError(t, in.db(t).QueryRow(`SELECT prompt, completion, attributes, finish_reason, input_tokens, total_cost_usd, prompt_key
		FROM spans WHERE span_id = ?`, spanID(0x21)).Scan(&prompt, &completion, &attrs, &finish, &input, &cost, &promptKey))
	assert.False(t, prompt.Valid)
	assert.False(t, completion.Valid)
	assert.NotContains(t, attrs, "SDK-question")
	assert.NotContains(t, attrs, "SDK-answer")
	assert.NotContains(t, attrs, "fallom.raw.request")
	assert.Contains(t, attrs, `"fallom.content_dropped":true`)
	assert.Equal(t, "end_turn", finish)
	assert.EqualValues(t, 6271, input)
	assert.Positive(t, cost)
	assert.Equal(t, "onboarding", promptKey)
}
