// Package ottl benchmarks the openroutermapping mapping written as
// transform processor (OTTL) statements, on the same input as the
// processor's own benchmark. It is a separate module because the transform
// processor is only served here at v0.161.0, whose collector core cannot
// coexist with the v0.165 core of the main module; the input file is a
// byte-identical copy (checked by the processor's
// TestBenchFixtureMatchesOTTLCopy).
package ottl

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
)

const benchFixture = "openrouter-delivery-bench.json"

func loadTraces(tb testing.TB) ptrace.Traces {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", benchFixture))
	require.NoError(tb, err)
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(data)
	require.NoError(tb, err)
	return td
}

// newTransform builds the stock transform processor from testdata/transform.yaml.
func newTransform(tb testing.TB, next *consumertest.TracesSink) processor.Traces {
	tb.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "transform.yaml"))
	require.NoError(tb, err)
	f := transformprocessor.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(tb, cm.Unmarshal(cfg))
	require.NoError(tb, confmap.Validate(cfg))
	set := processortest.NewNopSettings(f.Type())
	p, err := f.CreateTraces(context.Background(), set, cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), nil))
	tb.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

// TestStatementsMapTheDelivery: the OTTL version really produces the
// canonical attributes (a benchmark of statements that silently did nothing
// would compare nothing).
func TestStatementsMapTheDelivery(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p := newTransform(t, sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), loadTraces(t)))
	out := sink.AllTraces()[0]
	root := out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
	want := map[string]any{
		"fallom.is_generation":            true,
		"fallom.session_id":               "sess-7d1e-2026-11",
		"fallom.customer_id":              "customer-9f2c",
		"fallom.model":                    "openai/gpt-4o-mini",
		"fallom.requested_model":          "openai/gpt-4o-mini",
		"fallom.provider":                 "OpenAI",
		"fallom.operation":                "chat",
		"fallom.input_tokens":             int64(1873),
		"fallom.output_tokens":            int64(412),
		"fallom.total_tokens":             int64(2285),
		"fallom.cached_input_tokens":      int64(1536),
		"fallom.cache_write_input_tokens": int64(0),
		"fallom.reasoning_tokens":         int64(0),
		"fallom.input_cost_usd":           0.00016575,
		"fallom.output_cost_usd":          0.0002472,
		"fallom.total_cost_usd":           0.00041295,
		"fallom.cost_source":              "reported",
		"fallom.finish_reason":            "stop",
		"fallom.time_to_first_token_ms":   388.0,
		"fallom.streamed":                 true,
		"fallom.source":                   "openrouter",
	}
	for k, v := range want {
		assert.Equal(t, v, root[k], k)
	}
	var prompt, completion []map[string]any
	require.NoError(t, json.Unmarshal([]byte(root["fallom.prompt"].(string)), &prompt))
	assert.Len(t, prompt, 10)
	require.NoError(t, json.Unmarshal([]byte(root["fallom.completion"].(string)), &completion))
	require.Len(t, completion, 1)
	assert.Equal(t, "assistant", completion[0]["role"])
	for _, k := range []string{"gen_ai.prompt", "gen_ai.completion", "span.input", "span.output", "trace.input", "trace.output"} {
		assert.NotContains(t, root, k)
	}
	child := out.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
	assert.Equal(t, false, child["fallom.is_generation"])
	assert.NotContains(t, child, "fallom.cost_source")
}

// benchOnClones is the same harness as the processor benchmark: fresh
// clones made with the timer stopped, allocations counted per span.
func benchOnClones(b *testing.B, td ptrace.Traces, fn func(ptrace.Traces)) {
	const batch = 64
	spans := td.SpanCount()
	clones := make([]ptrace.Traces, batch)
	var before, after runtime.MemStats
	var mallocs uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		for i := 0; i < n; i++ {
			clones[i] = ptrace.NewTraces()
			td.CopyTo(clones[i])
		}
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for i := 0; i < n; i++ {
			fn(clones[i])
		}
		b.StopTimer()
		runtime.ReadMemStats(&after)
		mallocs += after.Mallocs - before.Mallocs
		done += n
	}
	total := float64(b.N * spans)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/span")
	b.ReportMetric(float64(mallocs)/total, "allocs/span")
}

// BenchmarkOTTLTransform: the transform processor running the statements,
// through its factory and processorhelper like ours.
func BenchmarkOTTLTransform(b *testing.B) {
	td := loadTraces(b)
	p := newTransform(b, new(consumertest.TracesSink))
	ctx := context.Background()
	benchOnClones(b, td, func(t ptrace.Traces) {
		if err := p.ConsumeTraces(ctx, t); err != nil {
			b.Fatal(err)
		}
	})
}

var floorSink uint64

// BenchmarkAttributeReadFloor (same definition as the processor package's):
// each attribute read once, string values byte by byte. Run here too so the
// OTTL figure has a floor measured in the same process and build.
func BenchmarkAttributeReadFloor(b *testing.B) {
	td := loadTraces(b)
	benchOnClones(b, td, func(t ptrace.Traces) { floorSink += readAttributes(t) })
}

func readAttributes(td ptrace.Traces) uint64 {
	var sum uint64
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				spans.At(k).Attributes().Range(func(key string, v pcommon.Value) bool {
					sum += uint64(len(key))
					switch v.Type() {
					case pcommon.ValueTypeStr:
						s := v.Str()
						sum += uint64(len(s))
						for n := 0; n < len(s); n++ {
							sum += uint64(s[n])
						}
					case pcommon.ValueTypeInt:
						sum += uint64(v.Int())
					case pcommon.ValueTypeDouble:
						sum += math.Float64bits(v.Double())
					case pcommon.ValueTypeBool:
						if v.Bool() {
							sum++
						}
					}
					return true
				})
			}
		}
	}
	return sum
}
