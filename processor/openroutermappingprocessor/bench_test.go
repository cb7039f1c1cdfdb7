package openroutermappingprocessor

import (
	"context"
	"math"
	"runtime"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// The benchmarks run on testdata/openrouter-delivery-bench.json, a realistic
// OpenRouter delivery (root with 61 attributes, a 6 KB prompt and a 2 KB
// completion each repeated three times, plus the two children). The OTTL
// comparison in bench/ottl runs the same mapping written as transform
// processor statements on a byte-identical copy of that file
// (TestBenchFixtureMatchesOTTLCopy).

const benchFixture = "openrouter-delivery-bench.json"

// benchOnClones runs fn on fresh clones of td, b.N times. Cloning happens
// with the timer stopped, in batches, so neither its time nor its
// allocations are counted; fn's allocations are counted with MemStats and
// reported per span next to ns/span.
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

// BenchmarkProcessOpenRouter: the processor, through its factory and
// processorhelper, as the collector runs it.
func BenchmarkProcessOpenRouter(b *testing.B) {
	td := loadTraces(b, benchFixture)
	set := processortest.NewNopSettings(metadata.Type)
	proc, err := NewFactory().CreateTraces(context.Background(), set, createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	ctx := authed
	benchOnClones(b, td, func(t ptrace.Traces) {
		if err := proc.ConsumeTraces(ctx, t); err != nil {
			b.Fatal(err)
		}
	})
}

var floorSink uint64

// BenchmarkAttributeReadFloor is the floor: reading each attribute of the
// same spans once, values included (every byte of a string value: the
// processor must read content to normalize it).
func BenchmarkAttributeReadFloor(b *testing.B) {
	td := loadTraces(b, benchFixture)
	benchOnClones(b, td, func(t ptrace.Traces) { floorSink += readAttributes(t, true) })
}

// BenchmarkAttributeIterateFloor visits each attribute once without reading
// string contents (len only): the lower bound of a pass over the keys.
func BenchmarkAttributeIterateFloor(b *testing.B) {
	td := loadTraces(b, benchFixture)
	benchOnClones(b, td, func(t ptrace.Traces) { floorSink += readAttributes(t, false) })
}

func readAttributes(td ptrace.Traces, bytes bool) uint64 {
	var sum uint64
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				for key, v := range spans.At(k).Attributes().All() {
					sum += uint64(len(key))
					switch v.Type() {
					case pcommon.ValueTypeStr:
						s := v.Str()
						sum += uint64(len(s))
						if bytes {
							for n := 0; n < len(s); n++ {
								sum += uint64(s[n])
							}
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
				}
			}
		}
	}
	return sum
}
