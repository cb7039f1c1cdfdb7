package openroutermappingprocessor

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// authed is the context of a request that fallomauth authenticated: the
// processor refuses data without one by default.
var authed = ctxWithProject("test-project")

// fixedNow is the processor clock in tests: the fixtures are from Nov 2026.
var fixedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newTestProcessor(t testing.TB, cfg *Config) *mappingProcessor {
	t.Helper()
	if cfg == nil {
		cfg = createDefaultConfig()
	}
	require.NoError(t, cfg.Validate())
	p, err := newMappingProcessor(cfg, componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	p.now = func() time.Time { return fixedNow }
	return p
}

// loadTraces decodes an OTLP JSON fixture with pdata's decoder (the one the
// OTLP receiver uses: it reads hex ids and intValue as bare numbers).
func loadTraces(t testing.TB, name string) ptrace.Traces {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(data)
	require.NoError(t, err)
	return td
}

// oneSpan builds a batch of one span with the given attributes.
func oneSpan(attrs map[string]any) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "test")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("span")
	span.SetTraceID(pcommon.TraceID{1, 2, 3})
	span.SetSpanID(pcommon.SpanID{4, 5, 6})
	start := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	if err := span.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
	return td
}

// mapOne runs the processor on one span and returns its attributes.
func mapOne(t testing.TB, p *mappingProcessor, attrs map[string]any) map[string]any {
	t.Helper()
	td := oneSpan(attrs)
	out, err := p.processTraces(authed, td)
	require.NoError(t, err)
	return out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
}

func spanAt(td ptrace.Traces, i int) ptrace.Span {
	n := 0
	for r := 0; r < td.ResourceSpans().Len(); r++ {
		sss := td.ResourceSpans().At(r).ScopeSpans()
		for s := 0; s < sss.Len(); s++ {
			spans := sss.At(s).Spans()
			for k := 0; k < spans.Len(); k++ {
				if n == i {
					return spans.At(k)
				}
				n++
			}
		}
	}
	panic("no such span")
}
