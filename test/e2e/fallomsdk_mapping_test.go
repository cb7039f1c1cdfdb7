package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

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
