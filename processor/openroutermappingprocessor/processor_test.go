package openroutermappingprocessor

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// authData is the principal fallomauth puts in client.Info.
type authData map[string]any

func (a authData) GetAttribute(k string) any { return a[k] }
func (a authData) GetAttributeNames() []string {
	out := make([]string, 0, len(a))
	for k := range a {
		out = append(out, k)
	}
	return out
}

func ctxWithProject(project string) context.Context {
	return client.NewContext(context.Background(), client.Info{
		Auth: authData{fallomattr.AuthProjectID: project, fallomattr.AuthKeyName: "openrouter-prod"},
	})
}

// newPipeline builds the processor through its factory with a sink behind
// it, as the collector does.
func newPipeline(t *testing.T, cfg *Config) (*consumertest.TracesSink, func(context.Context, ptrace.Traces) error) {
	t.Helper()
	sink := new(consumertest.TracesSink)
	set := processortest.NewNopSettings(metadata.Type)
	proc, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	return sink, proc.ConsumeTraces
}

func projectOf(rs ptrace.ResourceSpans) (string, bool) {
	v, ok := rs.Resource().Attributes().Get(fallomattr.ProjectID)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func TestProjectStamping(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.DefaultProjectID = "fallback"
	sink, consume := newPipeline(t, cfg)

	// Three resources: one claims another project, one claims nothing, and
	// the authenticated project overwrites both.
	td := loadTraces(t, "openrouter-delivery.json")
	td.ResourceSpans().At(0).Resource().Attributes().PutStr(fallomattr.ProjectID, "victim-project")
	require.NoError(t, consume(ctxWithProject("acme"), td))
	out := sink.AllTraces()[0]
	for i := 0; i < out.ResourceSpans().Len(); i++ {
		got, ok := projectOf(out.ResourceSpans().At(i))
		assert.True(t, ok)
		assert.Equal(t, "acme", got, "resource %d", i)
	}

	// No principal: default_project_id replaces what the sender claims
	// (issue 15 item 7: a lost principal must not let a sender choose).
	td = loadTraces(t, "openrouter-delivery.json")
	td.ResourceSpans().At(1).Resource().Attributes().PutStr(fallomattr.ProjectID, "victim-project")
	require.NoError(t, consume(context.Background(), td))
	out = sink.AllTraces()[1]
	for i := 0; i < 3; i++ {
		got, _ := projectOf(out.ResourceSpans().At(i))
		assert.Equal(t, "fallback", got, "resource %d", i)
	}

	// A principal without a project (another authenticator) is no principal.
	td = loadTraces(t, "openrouter-delivery.json")
	td.ResourceSpans().At(0).Resource().Attributes().PutStr(fallomattr.ProjectID, "victim-project")
	ctx := client.NewContext(context.Background(), client.Info{Auth: authData{"subject": "x"}})
	require.NoError(t, consume(ctx, td))
	got, _ := projectOf(sink.AllTraces()[2].ResourceSpans().At(0))
	assert.Equal(t, "fallback", got)
}

// TestNoPrincipalIsRefusedByDefault (issue 15 item 7): with the default
// settings, data without an authenticated project is refused, permanently,
// and the stock OTLP receiver answers 401; nothing reaches the next stage.
func TestNoPrincipalIsRefusedByDefault(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.TracesSink)
	proc, err := NewFactory().CreateTraces(context.Background(), set, createDefaultConfig(), sink)
	require.NoError(t, err)

	td := loadTraces(t, "openrouter-delivery.json")
	td.ResourceSpans().At(0).Resource().Attributes().PutStr(fallomattr.ProjectID, "victim-project")
	err = proc.ConsumeTraces(context.Background(), td)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "resending cannot help")
	assert.Contains(t, err.Error(), "no authenticated project")
	ctx := client.NewContext(context.Background(), client.Info{Auth: authData{"subject": "x"}})
	require.Error(t, proc.ConsumeTraces(ctx, loadTraces(t, "openrouter-delivery.json")), "a principal without a project")
	assert.Zero(t, sink.SpanCount())

	m, err := tel.GetMetric("otelcol_processor_openroutermapping_unauthenticated_refused")
	require.NoError(t, err)
	assert.Equal(t, int64(2), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)

	// Through the real OTLP/HTTP receiver (no auth configured on it).
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = proc.Shutdown(context.Background()) })
	url := startOTLPHTTPReceiver(t, proc)
	body, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", msg)
	assert.Contains(t, string(msg), "no authenticated project")
	assert.Zero(t, sink.SpanCount())
}

// TestTrustResourceProject: for trusted senders (a sidecar's applications)
// the resource's own project is kept when no key names one.
func TestTrustResourceProject(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.TrustResourceProject = true
	sink, consume := newPipeline(t, cfg)
	td := loadTraces(t, "openrouter-delivery.json")
	td.ResourceSpans().At(1).Resource().Attributes().PutStr(fallomattr.ProjectID, "own")
	require.NoError(t, consume(context.Background(), td))
	out := sink.AllTraces()[0]
	for i, want := range []string{"", "own", ""} {
		got, _ := projectOf(out.ResourceSpans().At(i))
		assert.Equal(t, want, got, "resource %d", i)
	}

	// With a default, resources without their own project get it.
	cfg.DefaultProjectID = "fallback"
	sink, consume = newPipeline(t, cfg)
	td = loadTraces(t, "openrouter-delivery.json")
	td.ResourceSpans().At(1).Resource().Attributes().PutStr(fallomattr.ProjectID, "own")
	require.NoError(t, consume(context.Background(), td))
	out = sink.AllTraces()[0]
	for i, want := range []string{"fallback", "own", "fallback"} {
		got, _ := projectOf(out.ResourceSpans().At(i))
		assert.Equal(t, want, got, "resource %d", i)
	}

	// An authenticated project still wins.
	td = loadTraces(t, "openrouter-delivery.json")
	td.ResourceSpans().At(1).Resource().Attributes().PutStr(fallomattr.ProjectID, "own")
	require.NoError(t, consume(ctxWithProject("acme"), td))
	got, _ := projectOf(sink.AllTraces()[1].ResourceSpans().At(1))
	assert.Equal(t, "acme", got)
}

func TestConnectionTestIsDroppedAndAcknowledged(t *testing.T) {
	sink, consume := newPipeline(t, createDefaultConfig())
	td := loadTraces(t, "openrouter-connection-test.json")
	// The receiver answers 2xx when the pipeline returns nil: the skip
	// sentinel is turned into nil by processorhelper.
	require.NoError(t, consume(ctxWithProject("acme"), td))
	assert.Equal(t, 0, sink.SpanCount(), "nothing reaches storage")
	assert.Empty(t, sink.AllTraces())

	// Mixed with real spans, only the test span goes.
	td = loadTraces(t, "openrouter-delivery.json")
	loadTraces(t, "openrouter-connection-test.json").ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	require.NoError(t, consume(ctxWithProject("acme"), td))
	require.Len(t, sink.AllTraces(), 1)
	out := sink.AllTraces()[0]
	assert.Equal(t, 3, out.SpanCount())
	assert.Equal(t, 3, out.ResourceSpans().Len(), "the emptied resource is gone")

	// The processor function itself reports the skip.
	p := newTestProcessor(t, nil)
	_, err := p.processTraces(authed, loadTraces(t, "openrouter-connection-test.json"))
	assert.ErrorContains(t, err, "skip processing")
}

func TestDropContent(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.DropContent = true
	p := newTestProcessor(t, cfg)
	td := loadTraces(t, "openrouter-delivery.json")
	// Deprecated semconv content events must go too.
	ev := spanAt(td, 0).Events().AppendEmpty()
	ev.SetName("gen_ai.user.message")
	ev.Attributes().PutStr("content", "secret question")
	ev.Attributes().PutStr("gen_ai.system", "openai")
	exc := spanAt(td, 0).Events().AppendEmpty()
	exc.SetName("exception")
	exc.Attributes().PutStr("exception.message", "kept")

	out, err := p.processTraces(authed, td)
	require.NoError(t, err)
	root := spanAt(out, 0).Attributes().AsRaw()
	for _, k := range []string{fallomattr.Prompt, fallomattr.Completion, "gen_ai.prompt", "gen_ai.completion", "span.input", "span.output", "trace.input", "trace.output"} {
		assert.NotContains(t, root, k)
	}
	assert.Equal(t, true, root[fallomattr.FlagContentDropped])
	// Tokens, cost and timing stay.
	assert.Equal(t, int64(2489), root[fallomattr.InputTokens])
	assert.Equal(t, 0.0010523, root[fallomattr.TotalCostUSD])
	assert.Equal(t, 734.0, root[fallomattr.TimeToFirstTokenMs])
	assert.Equal(t, "sess-2026-11-abc", root[fallomattr.SessionID])
	evs := spanAt(out, 0).Events()
	_, hasContent := evs.At(0).Attributes().Get("content")
	assert.False(t, hasContent)
	_, hasSystem := evs.At(0).Attributes().Get("gen_ai.system")
	assert.True(t, hasSystem)
	_, hasExc := evs.At(1).Attributes().Get("exception.message")
	assert.True(t, hasExc)
	// Children had no content: no flag.
	assert.NotContains(t, spanAt(out, 1).Attributes().AsRaw(), fallomattr.FlagContentDropped)
	// Nothing secret is left anywhere in the span.
	assert.NotContains(t, rawString(out), "Porto weather")
	assert.NotContains(t, rawString(out), "secret question")
}

// spanAttrs lists each span's attributes (order-insensitive).
func spanAttrs(td ptrace.Traces) []map[string]any {
	out := make([]map[string]any, td.SpanCount())
	for i := range out {
		out[i] = spanAt(td, i).Attributes().AsRaw()
	}
	return out
}

func rawString(td ptrace.Traces) string {
	b, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	return string(b)
}

func TestKeepOriginalContent(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.KeepOriginalContent = true
	p := newTestProcessor(t, cfg)
	out, err := p.processTraces(authed, loadTraces(t, "openrouter-delivery.json"))
	require.NoError(t, err)
	root := spanAt(out, 0).Attributes().AsRaw()
	for _, k := range []string{"gen_ai.prompt", "gen_ai.completion", "span.input", "span.output", "trace.input", "trace.output", fallomattr.Prompt, fallomattr.Completion} {
		assert.Contains(t, root, k)
	}
}

func TestTruncation(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxValueBytes = 300
	p := newTestProcessor(t, cfg)
	long := strings.Repeat("é\"\n", 400) // multi-byte, quote and newline: escapes grow
	longID := strings.Repeat("ü", 300)
	got := mapOne(t, p, map[string]any{
		"gen_ai.operation.name":      "chat",
		"gen_ai.request.model":       "gpt-4o",
		"gen_ai.usage.input_tokens":  int64(1),
		"gen_ai.usage.output_tokens": int64(1),
		"session.id":                 longID,
		"user.id":                    "ok",
		"gen_ai.prompt":              long,
		"gen_ai.completion":          "short",
	})
	sess := got[fallomattr.SessionID].(string)
	assert.Equal(t, 256, utf8.RuneCountInString(sess), "256 characters, not bytes")
	assert.Equal(t, "ok", got[fallomattr.CustomerID])
	prompt := got[fallomattr.Prompt].(string)
	assert.LessOrEqual(t, len(prompt), 300)
	assert.True(t, utf8.ValidString(prompt))
	msgs := messages(t, got, fallomattr.Prompt)
	require.Len(t, msgs, 1, "still a valid messages array")
	assert.Equal(t, true, msgs[0]["truncated"])
	assert.True(t, strings.HasPrefix(`[{"role":"user","content":"`+strings.ReplaceAll(strings.ReplaceAll(long, `"`, `\"`), "\n", `\n`), msgs[0]["content"].(string)),
		"the beginning of the normalized prompt")
	assert.Equal(t, []any{"session_id", "prompt"}, got[fallomattr.FlagTruncated])
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "short"}}, messages(t, got, fallomattr.Completion))

	// 0 = no limit.
	cfg = createDefaultConfig()
	cfg.MaxValueBytes = 0
	p = newTestProcessor(t, cfg)
	got = mapOne(t, p, map[string]any{"gen_ai.prompt": strings.Repeat("x", 3<<20)})
	assert.Greater(t, len(got[fallomattr.Prompt].(string)), 3<<20)
	assert.NotContains(t, got, fallomattr.FlagTruncated)
}

func TestPricingFileOverridesBuiltin(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.yaml")
	require.NoError(t, os.WriteFile(path, []byte("models:\n  openai/gpt-4o-mini:\n    input: 0.000001\n    output: 0.000002\n    cache_read: 0.0000001\n  acme/llama-ft:\n    input: 0.0000005\n    output: 0.0000005\n"), 0o600))
	cfg := createDefaultConfig()
	cfg.PricingFile = path
	p := newTestProcessor(t, cfg)

	got := mapOne(t, p, map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
		"gen_ai.usage.input_tokens": int64(1000), "gen_ai.usage.cache_read.input_tokens": int64(400), "gen_ai.usage.output_tokens": int64(100),
	})
	assert.Equal(t, "computed", got[fallomattr.CostSource])
	assert.InDelta(t, 600*1e-6+400*1e-7+100*2e-6, got[fallomattr.TotalCostUSD], 1e-12)
	assert.Equal(t, "gpt-4o-mini-2024-07-18", got[fallomattr.Model], "lookup normalizes, the stored model does not change")

	got = mapOne(t, p, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "llama-ft", "gen_ai.usage.input_tokens": int64(10), "gen_ai.usage.output_tokens": int64(10)})
	assert.InDelta(t, 20*0.0000005, got[fallomattr.TotalCostUSD], 1e-15)

	// A reported cost wins over any price.
	got = mapOne(t, p, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": int64(1000), "gen_ai.usage.output_tokens": int64(100), "gen_ai.usage.total_cost": 0.5})
	assert.Equal(t, "reported", got[fallomattr.CostSource])
	assert.Equal(t, 0.5, got[fallomattr.TotalCostUSD])

	// Unknown model: NULL, never 0.
	got = mapOne(t, p, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "my-private-model", "gen_ai.usage.input_tokens": int64(10), "gen_ai.usage.output_tokens": int64(1)})
	assert.Equal(t, "unknown", got[fallomattr.CostSource])
	assertGone(t, got, fallomattr.TotalCostUSD, fallomattr.InputCostUSD, fallomattr.OutputCostUSD)

	// Known model, no tokens (an error before usage): unknown.
	got = mapOne(t, p, map[string]any{"span.type": "generation", "gen_ai.request.model": "openai/gpt-4o-mini", "span.level": "ERROR"})
	assert.Equal(t, true, got[fallomattr.IsGeneration])
	assert.Equal(t, "unknown", got[fallomattr.CostSource])
	assert.NotContains(t, got, fallomattr.TotalCostUSD)

	// A broken pricing file fails the start with a clear error.
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("models:\n  x: {input: 2.5, output: 10}\n"), 0o600))
	cfg = createDefaultConfig()
	cfg.PricingFile = bad
	assert.ErrorContains(t, cfg.Validate(), "per token, not per million")
	_, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	assert.ErrorContains(t, err, "bad.yaml")
}

func TestWrongTypedValues(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		"span.type":                                "generation",
		"session.id":                               int64(12345), // id as int
		"user.id":                                  "",           // empty: absent
		"langfuse.user.id":                         "lf-fallback",
		"gen_ai.response.model":                    []any{"not", "a", "string"},
		"gen_ai.request.model":                     "gpt-4o",
		"gen_ai.usage.input_tokens":                "not a number", // unreadable: the next key supplies it
		"gen_ai.usage.prompt_tokens":               "42",
		"gen_ai.usage.output_tokens":               7.5, // fractional: not a count
		"gen_ai.usage.completion_tokens":           int64(-3),
		"ai.usage.outputTokens":                    "8",
		"gen_ai.usage.input_tokens.cached":         true,
		"gen_ai.usage.total_cost":                  "0.25",
		"gen_ai.request.stream":                    "TRUE",
		"gen_ai.response.finish_reasons":           `not json [`,
		"gen_ai.response.finish_reason":            int64(3),
		"trace.metadata.openrouter.first_token_ms": "412",
		"gen_ai.prompt":                            `{"messages": [`, // broken JSON: kept as text
		"gen_ai.completion":                        map[string]any{"completion": "structured value"},
	})
	assert.Equal(t, "12345", got[fallomattr.SessionID])
	assert.Equal(t, "lf-fallback", got[fallomattr.CustomerID])
	assert.Equal(t, "gpt-4o", got[fallomattr.Model])
	assert.Equal(t, int64(42), got[fallomattr.InputTokens])
	assert.Equal(t, int64(8), got[fallomattr.OutputTokens])
	assert.NotContains(t, got, fallomattr.CachedInputTokens)
	assert.Equal(t, 0.25, got[fallomattr.TotalCostUSD])
	assert.Equal(t, true, got[fallomattr.Streamed])
	assert.Equal(t, "3", got[fallomattr.FinishReason])
	assert.Equal(t, 412.0, got[fallomattr.TimeToFirstTokenMs])
	assert.Equal(t, []map[string]any{{"role": "user", "content": `{"messages": [`}}, messages(t, got, fallomattr.Prompt))
	assert.Equal(t, []map[string]any{{"role": "assistant", "content": "structured value"}}, messages(t, got, fallomattr.Completion))
	assert.Equal(t, []any{"not", "a", "string"}, got["gen_ai.response.model"], "originals untouched")
}

func TestTimestampsSuspect(t *testing.T) {
	p := newTestProcessor(t, nil)
	cases := []struct {
		start, end time.Time
		want       string
	}{
		{time.Unix(0, 0), fixedNow, "start_time is 0"},
		{time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), fixedNow.Add(-time.Minute), "start_time is before 2000"},
		{fixedNow, fixedNow.Add(2 * time.Hour), "end_time is more than 1h in the future"},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "start_time is more than 1h in the future; end_time is more than 1h in the future"},
		{fixedNow.Add(-time.Minute), fixedNow.Add(50 * time.Minute), ""},
	}
	for _, c := range cases {
		td := oneSpan(map[string]any{"gen_ai.operation.name": "chat"})
		span := spanAt(td, 0)
		start, end := pcommon.NewTimestampFromTime(c.start), pcommon.NewTimestampFromTime(c.end)
		if c.start.Unix() == 0 {
			start = 0
		}
		span.SetStartTimestamp(start)
		span.SetEndTimestamp(end)
		out, err := p.processTraces(authed, td)
		require.NoError(t, err)
		got := spanAt(out, 0)
		v, ok := got.Attributes().Get(fallomattr.FlagTimestampSuspect)
		if c.want == "" {
			assert.False(t, ok)
			continue
		}
		assert.Equal(t, c.want, v.Str())
		assert.Equal(t, start, got.StartTimestamp(), "kept as sent")
	}
}

// Mapping an already mapped span changes nothing: a sidecar chain of two
// fallom collectors stores the same row.
func TestIdempotent(t *testing.T) {
	for _, keep := range []bool{false, true} {
		cfg := createDefaultConfig()
		cfg.KeepOriginalContent = keep
		p := newTestProcessor(t, cfg)
		once, err := p.processTraces(authed, loadTraces(t, "openrouter-delivery.json"))
		require.NoError(t, err)
		first := spanAttrs(once)
		twice, err := p.processTraces(authed, once)
		require.NoError(t, err)
		assert.Equal(t, first, spanAttrs(twice))

		// A computed cost stays computed.
		td := oneSpan(map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": int64(10), "gen_ai.usage.output_tokens": int64(10)})
		once, err = p.processTraces(authed, td)
		require.NoError(t, err)
		first = spanAttrs(once)
		twice, err = p.processTraces(authed, once)
		require.NoError(t, err)
		assert.Equal(t, first, spanAttrs(twice))
		assert.Equal(t, "computed", first[0][fallomattr.CostSource])
	}
}

// Junk in fallom.* keys (a client writing the columns directly with wrong
// types) never reaches the exporter as a column value.
func TestJunkCanonicalKeysAreNotStored(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{
		fallomattr.InputTokens:  "lots",
		fallomattr.TotalCostUSD: map[string]any{"x": 1},
		fallomattr.Streamed:     "maybe",
		fallomattr.Model:        "",
		fallomattr.IsGeneration: "yes please",
	})
	assertGone(t, got, fallomattr.InputTokens, fallomattr.TotalCostUSD, fallomattr.Streamed, fallomattr.Model)
	assert.Equal(t, false, got[fallomattr.IsGeneration])
}

func TestNonGenAISpanIsLeftAlone(t *testing.T) {
	p := newTestProcessor(t, nil)
	got := mapOne(t, p, map[string]any{"http.method": "GET", "http.route": "/v1/x"})
	assert.Equal(t, map[string]any{"http.method": "GET", "http.route": "/v1/x", fallomattr.IsGeneration: false}, got)
}

func TestTelemetryCounts(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := createDefaultConfig()
	cfg.MaxValueBytes = 256
	proc, err := NewFactory().CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, proc.ConsumeTraces(authed, loadTraces(t, "openrouter-connection-test.json")))
	require.NoError(t, proc.ConsumeTraces(authed, loadTraces(t, "openrouter-delivery.json")))

	sum := func(name string) int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err, name)
		s, ok := m.Data.(metricdata.Sum[int64])
		require.True(t, ok, name)
		var total int64
		for _, dp := range s.DataPoints {
			total += dp.Value
		}
		return total
	}
	assert.Equal(t, int64(1), sum("otelcol_processor_openroutermapping_connection_tests"))
	assert.Equal(t, int64(1), sum("otelcol_processor_openroutermapping_generations"), "the root only")
	assert.Equal(t, int64(1), sum("otelcol_processor_openroutermapping_truncated_values"), "the prompt is over 256 bytes, the completion is not")
}

// The collector calls ConsumeTraces from many goroutines: the pooled scratch
// state and the pricing memo must be safe (run with -race).
func TestConcurrentBatches(t *testing.T) {
	p := newTestProcessor(t, nil)
	want := spanAttrs(mustProcess(t, p, loadTraces(t, "openrouter-delivery.json")))
	inputs := make([]ptrace.Traces, 16)
	for i := range inputs {
		inputs[i] = loadTraces(t, "openrouter-delivery.json")
	}
	results := make([]ptrace.Traces, len(inputs))
	done := make(chan int)
	for i := range inputs {
		go func() {
			results[i], _ = p.processTraces(authed, inputs[i])
			done <- i
		}()
	}
	for range inputs {
		<-done
	}
	for _, r := range results {
		assert.Equal(t, want, spanAttrs(r))
	}
}

func mustProcess(t *testing.T, p *mappingProcessor, td ptrace.Traces) ptrace.Traces {
	t.Helper()
	out, err := p.processTraces(authed, td)
	require.NoError(t, err)
	return out
}
