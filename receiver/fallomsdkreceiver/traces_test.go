package fallomsdkreceiver

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func mustTime(t *testing.T, s string) pcommon.Timestamp {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return pcommon.NewTimestampFromTime(tm)
}

func attrStr(t *testing.T, m pcommon.Map, k string) string {
	t.Helper()
	v, ok := m.Get(k)
	require.True(t, ok, "attribute %s missing; have %v", k, m.AsRaw())
	require.Equal(t, pcommon.ValueTypeStr, v.Type(), "attribute %s", k)
	return v.Str()
}

func attrInt(t *testing.T, m pcommon.Map, k string) int64 {
	t.Helper()
	v, ok := m.Get(k)
	require.True(t, ok, "attribute %s missing; have %v", k, m.AsRaw())
	require.Equal(t, pcommon.ValueTypeInt, v.Type(), "attribute %s", k)
	return v.Int()
}

// The TypeScript SDK's TraceData (captured from wrapOpenAI after
// prompts.get): ids, times in JS ISO form, the envelope as fallom.*
// attributes, the SDK's own attributes untouched.
func TestTraceDataTypeScript(t *testing.T) {
	e := start(t, envOptions{})
	a := e.post(t, "/v1/traces", keyAcme, fixture(t, "ts_openai.json"))
	require.Equal(t, http.StatusOK, a.code, "%s", a.body)

	rs, ss, span := onlySpan(t, e.sinks)
	assert.Equal(t, "ccea8fb8215e569346c89a2c5dc9bb55", span.TraceID().String())
	assert.Equal(t, "3696c77151ca725c", span.SpanID().String())
	assert.True(t, span.ParentSpanID().IsEmpty())
	assert.Equal(t, "chat.completions.create", span.Name())
	assert.Equal(t, ptrace.SpanKindClient, span.Kind())
	ts := mustTime(t, "2026-12-02T16:05:22.732Z")
	assert.Equal(t, ts, span.StartTimestamp())
	assert.Equal(t, ts, span.EndTimestamp())
	assert.Equal(t, ptrace.StatusCodeOk, span.Status().Code())

	attrs := span.Attributes()
	assert.Equal(t, "my-agent", attrStr(t, attrs, "fallom.config_key"))
	assert.Equal(t, "session-123", attrStr(t, attrs, "fallom.session_id"))
	assert.Equal(t, "cust-1", attrStr(t, attrs, "fallom.customer_id"))
	assert.Equal(t, "gpt-4o-2024", attrStr(t, attrs, "fallom.model"))
	assert.Equal(t, "llm", attrStr(t, attrs, "fallom.kind"))
	assert.Equal(t, "onboarding", attrStr(t, attrs, "fallom.prompt_key"))
	assert.Equal(t, int64(2), attrInt(t, attrs, "fallom.prompt_version"))
	assert.Equal(t, int64(0), attrInt(t, attrs, "fallom.duration_ms"))
	md, ok := attrs.Get("fallom.metadata")
	require.True(t, ok)
	assert.Equal(t, map[string]any{"env": "test", "n": int64(1)}, md.Map().AsRaw())
	tags, ok := attrs.Get("fallom.tags")
	require.True(t, ok)
	assert.Equal(t, []any{"t1"}, tags.Slice().AsRaw())
	// The SDK's attributes, as sent (JSON strings stay strings).
	assert.Equal(t, "2", attrStr(t, attrs, "fallom.sdk_version"))
	assert.Equal(t, `{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`,
		attrStr(t, attrs, "fallom.raw.usage"))
	assert.Contains(t, attrStr(t, attrs, "fallom.raw.request"), `"content":"Sys v2 Ann"`)
	assert.Contains(t, attrStr(t, attrs, "fallom.raw.response"), `"finishReason":"stop"`)
	for _, k := range []string{"trace_id", "span_id", "name", "start_time", "end_time", "status", "attributes"} {
		_, has := attrs.Get("fallom." + k)
		assert.False(t, has, "%s is a span field, not an attribute", k)
	}
	// No project on the resource: the processor stamps the key's.
	res := rs.Resource().Attributes()
	_, has := res.Get("fallom.project_id")
	assert.False(t, has)
	assert.Equal(t, "my-agent", attrStr(t, res, "service.name"))
	assert.Equal(t, ScopeName, ss.Scope().Name())
	assert.Equal(t, "2", ss.Scope().Version())
}

// The Python SDK writes microsecond times with an offset, and none at all
// when the fraction is 0.
func TestTraceDataPython(t *testing.T) {
	e := start(t, envOptions{})
	require.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, fixture(t, "py_anthropic.json")).code)
	_, _, span := onlySpan(t, e.sinks)
	assert.Equal(t, mustTime(t, "2026-12-02T16:05:52.828Z"), span.StartTimestamp())
	assert.Equal(t, mustTime(t, "2026-12-02T16:05:54Z"), span.EndTimestamp())
	attrs := span.Attributes()
	assert.Equal(t, "onboarding-test", attrStr(t, attrs, "fallom.prompt_ab_test_key"))
	assert.Equal(t, int64(0), attrInt(t, attrs, "fallom.prompt_variant_index"))
	assert.Equal(t, int64(1), attrInt(t, attrs, "fallom.prompt_version"))
	assert.Equal(t, `{"input_tokens": 12, "output_tokens": 5}`, attrStr(t, attrs, "fallom.raw.usage"))

	// A naive datetime's isoformat() (no offset) is UTC.
	naive := strings.NewReplacer(`"2026-12-02T16:05:52.828000+00:00"`, `"2026-12-02T16:05:52.828000"`,
		`"b7ad6b7169203331"`, `"b7ad6b7169203332"`).Replace(string(fixture(t, "py_anthropic.json")))
	require.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, []byte(naive)).code)
	got := e.sinks.allTraces()[1].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, mustTime(t, "2026-12-02T16:05:52.828Z"), got.StartTimestamp())
}

// Content capture off (FALLOM_CAPTURE_CONTENT=false): no raw request or
// response, the usage still arrives; an ERROR status keeps its message; a
// parent span id is kept.
func TestTraceDataCaptureOffAndError(t *testing.T) {
	e := start(t, envOptions{})
	require.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, fixture(t, "py_capture_off.json")).code)
	_, _, span := onlySpan(t, e.sinks)
	assert.Equal(t, "53995c3f42cd8ad8", span.ParentSpanID().String())
	assert.Equal(t, ptrace.StatusCodeError, span.Status().Code())
	assert.Equal(t, "Rate limit exceeded", span.Status().Message())
	assert.Equal(t, mustTime(t, "2026-12-02T16:06:01.5Z"), span.EndTimestamp())
	attrs := span.Attributes()
	_, has := attrs.Get("fallom.raw.request")
	assert.False(t, has)
	assert.Contains(t, attrStr(t, attrs, "fallom.raw.usage"), `"prompt_tokens": 7`)
}

// A manual span: user attribute values are raw JSON (numbers, lists,
// objects) and stay typed.
func TestTraceDataManualSpan(t *testing.T) {
	e := start(t, envOptions{})
	require.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, fixture(t, "ts_manual_span.json")).code)
	_, _, span := onlySpan(t, e.sinks)
	assert.Equal(t, ptrace.SpanKindInternal, span.Kind())
	assert.Equal(t, "eee19b7ec3c1b173", span.ParentSpanID().String())
	attrs := span.Attributes()
	assert.Equal(t, int64(5), attrInt(t, attrs, "rag.k"))
	v, _ := attrs.Get("rag.score")
	assert.Equal(t, 0.75, v.Double())
	v, _ = attrs.Get("rag.sources")
	assert.Equal(t, []any{"a", "b"}, v.Slice().AsRaw())
	v, _ = attrs.Get("rag.filter")
	assert.Equal(t, map[string]any{"lang": "en", "recent": true}, v.Map().AsRaw())
	assert.Equal(t, "retrieval", attrStr(t, attrs, "fallom.kind"))
	// Attributes keep the order the SDK wrote them in.
	var order []string
	for k := range attrs.All() {
		order = append(order, k)
	}
	assert.Equal(t, []string{"fallom.sdk_version", "fallom.span_type", "rag.k", "rag.score", "rag.sources", "rag.filter"}, order[:6])
}

func TestTraceDataStreaming(t *testing.T) {
	e := start(t, envOptions{})
	require.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, fixture(t, "ts_stream_text.json")).code)
	_, _, span := onlySpan(t, e.sinks)
	attrs := span.Attributes()
	assert.Equal(t, int64(320), attrInt(t, attrs, "fallom.time_to_first_token_ms"))
	v, ok := attrs.Get("fallom.is_streaming")
	require.True(t, ok)
	assert.True(t, v.Bool())
}

// A bad body gets 400 with a message naming the problem, and nothing
// reaches the pipeline.
func TestTraceDataBadBodies(t *testing.T) {
	e := start(t, envOptions{})
	good := string(fixture(t, "ts_openai.json"))
	cases := []struct {
		name, body, want string
	}{
		{"not json", `{"trace_id": `, "not valid JSON"},
		{"array", `[` + good + `]`, "one JSON object"},
		{"trailing data", good + `{}`, "after its JSON object"},
		{"missing trace id", strings.Replace(good, `"trace_id":"ccea8fb8215e569346c89a2c5dc9bb55",`, "", 1), "trace_id is required"},
		{"short span id", strings.Replace(good, `"3696c77151ca725c"`, `"3696c7"`, 1), "span_id must be 16 hex digits"},
		{"non-hex trace id", strings.Replace(good, `ccea8fb8215e569346c89a2c5dc9bb55`, `zzea8fb8215e569346c89a2c5dc9bb55`, 1), "trace_id must be 32 hex digits"},
		{"zero trace id", strings.Replace(good, `ccea8fb8215e569346c89a2c5dc9bb55`, strings.Repeat("0", 32), 1), "trace_id is all zeros"},
		{"bad status", strings.Replace(good, `"status":"OK"`, `"status":"FINE"`, 1), `status must be "OK" or "ERROR"`},
		{"bad time", strings.Replace(good, `"start_time":"2026-12-02T16:05:22.732Z"`, `"start_time":"yesterday"`, 1), "start_time must be an ISO-8601 time"},
		{"prompt version as string", strings.Replace(good, `"prompt_version":2`, `"prompt_version":"2"`, 1), "prompt_version must be an integer"},
		{"session id as number", strings.Replace(good, `"session_id":"session-123"`, `"session_id":123`, 1), "session_id must be a string"},
		{"tags not strings", strings.Replace(good, `"tags":["t1"]`, `"tags":[1]`, 1), "tags[0] must be a string"},
		{"attributes not object", strings.Replace(good, `"attributes":{`, `"attributes":"x","a":{`, 1), "attributes must be an object"},
		{"resourceSpans not otlp", `{"resourceSpans":{"x":1}}`, "not OTLP/JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.post(t, "/v1/traces", keyAcme, []byte(c.body))
			require.Equal(t, http.StatusBadRequest, a.code, "%s", a.body)
			assert.Contains(t, a.errorText(t), c.want)
		})
	}
	assert.Empty(t, e.sinks.allTraces())
}

// The Mastra exporter's OTLP/JSON: hex ids, API span kinds (2 = CLIENT),
// intValue as a number, X-Fallom-* headers applied to every span.
func TestMastraOTLP(t *testing.T) {
	e := start(t, envOptions{})
	a := e.do(t, http.MethodPost, "/v1/traces", keyAcme, fixture(t, "mastra_otlp.json"), map[string]string{
		"X-Fallom-Config-Key":     "mastra-app",
		"X-Fallom-Session-Id":     "session-123",
		"X-Fallom-Customer-Id":    "user-456",
		"X-Fallom-Prompt-Key":     "onboarding",
		"X-Fallom-Prompt-Version": "2",
		"X-Fallom-Prompt-AB-Test": "onboarding-test",
		"X-Fallom-Prompt-Variant": "1",
	})
	require.Equal(t, http.StatusOK, a.code, "%s", a.body)
	all := e.sinks.allTraces()
	require.Len(t, all, 1)
	spans := all[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	require.Equal(t, 2, spans.Len())
	llm, step := spans.At(0), spans.At(1)
	assert.Equal(t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", llm.TraceID().String())
	assert.Equal(t, "bbbbbbbbbbbbbbbb", llm.SpanID().String())
	assert.Equal(t, ptrace.SpanKindClient, llm.Kind(), "API kind 2 is CLIENT")
	assert.Equal(t, ptrace.SpanKindInternal, step.Kind(), "API kind 0 is INTERNAL")
	assert.Equal(t, "bbbbbbbbbbbbbbbb", step.ParentSpanID().String())
	assert.Equal(t, pcommon.Timestamp(1700000000000000005), llm.StartTimestamp())
	assert.Equal(t, int64(3), attrInt(t, llm.Attributes(), "gen_ai.usage.prompt_tokens"))
	for _, s := range []ptrace.Span{llm, step} {
		attrs := s.Attributes()
		assert.Equal(t, "mastra-app", attrStr(t, attrs, "fallom.config_key"))
		assert.Equal(t, "session-123", attrStr(t, attrs, "fallom.session_id"))
		assert.Equal(t, "user-456", attrStr(t, attrs, "fallom.customer_id"))
		assert.Equal(t, "onboarding", attrStr(t, attrs, "fallom.prompt_key"))
		assert.Equal(t, int64(2), attrInt(t, attrs, "fallom.prompt_version"))
		assert.Equal(t, "onboarding-test", attrStr(t, attrs, "fallom.prompt_ab_test_key"))
		assert.Equal(t, int64(1), attrInt(t, attrs, "fallom.prompt_variant_index"))
	}

	bad := e.do(t, http.MethodPost, "/v1/traces", keyAcme, fixture(t, "mastra_otlp.json"), map[string]string{"X-Fallom-Prompt-Version": "two"})
	require.Equal(t, http.StatusBadRequest, bad.code)
	assert.Contains(t, bad.errorText(t), "X-Fallom-Prompt-Version must be an integer")
	noID := strings.Replace(string(fixture(t, "mastra_otlp.json")), `"spanId":"cccccccccccccccc",`, "", 1)
	bad = e.post(t, "/v1/traces", keyAcme, []byte(noID))
	require.Equal(t, http.StatusBadRequest, bad.code)
	assert.Contains(t, bad.errorText(t), "resourceSpans[0].scopeSpans[0].spans[1]: spanId is missing")
	assert.Len(t, e.sinks.allTraces(), 1, "a refused body stores none of its spans")
}

// With otlp_span_kind: otlp, OTLP bodies keep their kinds; OTLP protobuf
// (the Python SDK 0.1.x) always does.
func TestOTLPStandardKinds(t *testing.T) {
	e := start(t, envOptions{mutate: func(c *Config) { c.OTLPSpanKind = SpanKindOTLP }})
	require.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, fixture(t, "mastra_otlp.json")).code)
	spans := e.sinks.allTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	assert.Equal(t, ptrace.SpanKindServer, spans.At(0).Kind())

	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{1, 2, 3})
	s.SetSpanID(pcommon.SpanID{4, 5, 6})
	s.SetName("legacy")
	s.SetKind(ptrace.SpanKindClient)
	s.Attributes().PutStr("fallom.session_id", "py-old")
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	a := e.do(t, http.MethodPost, "/v1/traces", keyAcme, body, map[string]string{"Content-Type": "application/x-protobuf"})
	require.Equal(t, http.StatusOK, a.code, "%s", a.body)
	got := e.sinks.allTraces()[1].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, ptrace.SpanKindClient, got.Kind())
	assert.Equal(t, "py-old", attrStr(t, got.Attributes(), "fallom.session_id"))
}

// 2xx only once the pipeline accepted the data: a retryable refusal is
// 503 with Retry-After (the pipeline's own delay when it names one), a
// permanent one 400.
func TestPipelineRefusals(t *testing.T) {
	e := start(t, envOptions{})
	body := fixture(t, "ts_openai.json")

	e.sinks.setErr(errors.New("database is locked"))
	a := e.post(t, "/v1/traces", keyAcme, body)
	require.Equal(t, http.StatusServiceUnavailable, a.code)
	assert.Equal(t, "5", a.header.Get("Retry-After"))
	assert.Contains(t, a.errorText(t), "database is locked")

	st, err := status.New(codes.Unavailable, "memory limit").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)})
	require.NoError(t, err)
	e.sinks.setErr(st.Err())
	a = e.post(t, "/v1/traces", keyAcme, body)
	require.Equal(t, http.StatusServiceUnavailable, a.code)
	assert.Equal(t, "7", a.header.Get("Retry-After"))

	e.sinks.setErr(consumererror.NewPermanent(errors.New("span refused")))
	a = e.post(t, "/v1/traces", keyAcme, body)
	require.Equal(t, http.StatusBadRequest, a.code)
	assert.Contains(t, a.errorText(t), "span refused")

	// The mapping processor's refusal of data without a principal.
	e.sinks.setErr(consumererror.NewPermanent(status.Error(codes.Unauthenticated, "no authenticated project")))
	a = e.post(t, "/v1/traces", keyAcme, body)
	require.Equal(t, http.StatusUnauthorized, a.code)
	assert.Contains(t, a.errorText(t), "no authenticated project")

	e.sinks.setErr(nil)
	require.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, body).code)
	assert.Len(t, e.sinks.allTraces(), 1)
}

// Every route needs an ingest key: none, an unknown one and a read-only
// one are refused before anything is read or served.
func TestAuthRequired(t *testing.T) {
	e := start(t, envOptions{})
	for _, key := range []string{"", "flm_notAKnownKeyOfAnyProject_00000000", keyReadOnly} {
		assert.Equal(t, http.StatusUnauthorized, e.post(t, "/v1/traces", key, fixture(t, "ts_openai.json")).code)
		assert.Equal(t, http.StatusUnauthorized, e.post(t, "/sessions", key, []byte(`{}`)).code)
		a := e.get(t, "/prompts", key)
		assert.Equal(t, http.StatusUnauthorized, a.code)
		assert.NotContains(t, string(a.body), "onboarding")
	}
	assert.Empty(t, e.sinks.allTraces())
	assert.Empty(t, e.sinks.allLogs())
}

// A body over max_request_body_size is refused whole.
func TestBodyLimit(t *testing.T) {
	e := start(t, envOptions{mutate: func(c *Config) { c.MaxRequestBodySize = 1024 }})
	big := strings.Replace(string(fixture(t, "ts_openai.json")), `"tags":["t1"]`, `"tags":["`+strings.Repeat("x", 2048)+`"]`, 1)
	a := e.post(t, "/v1/traces", keyAcme, []byte(big))
	assert.Contains(t, []int{http.StatusRequestEntityTooLarge, http.StatusBadRequest}, a.code)
	assert.Empty(t, e.sinks.allTraces())
}

// A receiver in no logs pipeline does not acknowledge what it could not
// store.
func TestRoutesWithoutPipeline(t *testing.T) {
	e := start(t, envOptions{noLogs: true})
	a := e.post(t, "/sessions", keyAcme, []byte(`{"config_key":"my-agent","config_version":2,"session_id":"s","assigned_model":"gpt-4o"}`))
	assert.Equal(t, http.StatusNotFound, a.code)
	assert.Contains(t, a.errorText(t), "no logs pipeline")
	assert.Equal(t, http.StatusOK, e.post(t, "/v1/traces", keyAcme, fixture(t, "ts_openai.json")).code)
}
