package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The headers of the Fallom Mastra exporter (FALLOM_SDK.md 2.5), in Go's
// canonical form, and the span attributes they become: the same keys as a
// TraceData's fields, so the processor reads both paths alike.
var fallomHeaders = []struct {
	header, attr string
	isInt        bool
}{
	{"X-Fallom-Config-Key", "fallom.config_key", false},
	{"X-Fallom-Session-Id", "fallom.session_id", false},
	{"X-Fallom-Customer-Id", "fallom.customer_id", false},
	{"X-Fallom-Prompt-Key", "fallom.prompt_key", false},
	{"X-Fallom-Prompt-Version", "fallom.prompt_version", true},
	{"X-Fallom-Prompt-Ab-Test", "fallom.prompt_ab_test_key", false},
	{"X-Fallom-Prompt-Variant", "fallom.prompt_variant_index", true},
}

var emptyObject = []byte("{}")

// handleTraces is POST /v1/traces: one TraceData object, OTLP/JSON (a body
// with resourceSpans: the Mastra exporter, or TS SDK 0.1.x) or OTLP
// protobuf (PY SDK 0.1.x).
func (r *sdkReceiver) handleTraces(w http.ResponseWriter, req *http.Request) {
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	var (
		traces ptrace.Traces
		format string
		err    error
	)
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mediaType == "application/x-protobuf" {
		format = "protobuf"
		traces, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "body is not OTLP protobuf: "+err.Error())
			return
		}
		err = r.prepareOTLP(traces, req.Header, false)
	} else {
		// The SDKs send application/json; a fire-and-forget sender that
		// sends another type still means JSON.
		format = "json"
		traces, err = r.decodeJSONTraces(body, req.Header)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n := traces.SpanCount()
	if n == 0 {
		writeJSON(w, http.StatusOK, emptyObject)
		return
	}
	ctx := r.obsTraces.StartTracesOp(req.Context())
	err = r.nextTraces.ConsumeTraces(ctx, traces)
	r.obsTraces.EndTracesOp(ctx, format, n, err)
	if err != nil {
		r.writePipelineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

func (r *sdkReceiver) decodeJSONTraces(body []byte, h http.Header) (ptrace.Traces, error) {
	top, err := parseObject(body)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("%w (want one TraceData object, or OTLP/JSON with resourceSpans)", err)
	}
	if _, isOTLP := top.Get("resourceSpans"); isOTLP {
		// Decoded only with pdata: it reads hex ids, numbers for intValue
		// and nanosecond strings, as the Mastra exporter writes them.
		traces, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
		if err != nil {
			return ptrace.Traces{}, fmt.Errorf("body has resourceSpans but is not OTLP/JSON: %w", err)
		}
		return traces, r.prepareOTLP(traces, h, r.cfg.OTLPSpanKind == SpanKindAPI)
	}
	traces, err := traceDataToTraces(top)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("TraceData: %w", err)
	}
	return traces, nil
}

// prepareOTLP checks every span's ids (the storage refuses a span without
// them, and one bad span must not let the others be half-stored), turns
// OpenTelemetry JS API span kinds into OTLP ones when apiKinds, and applies
// the X-Fallom-* headers to every span.
func (r *sdkReceiver) prepareOTLP(traces ptrace.Traces, h http.Header, apiKinds bool) error {
	type headerAttr struct {
		attr  string
		value pcommon.Value
	}
	var fromHeaders []headerAttr
	for _, fh := range fallomHeaders {
		s := h.Get(fh.header)
		if s == "" {
			continue
		}
		v := pcommon.NewValueStr(s)
		if fh.isInt {
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("header %s must be an integer, got %q", fh.header, clip(s))
			}
			v = pcommon.NewValueInt(i)
		}
		fromHeaders = append(fromHeaders, headerAttr{fh.attr, v})
	}
	for i, rs := range traces.ResourceSpans().All() {
		for j, ss := range rs.ScopeSpans().All() {
			for k, span := range ss.Spans().All() {
				at := func() string { return fmt.Sprintf("resourceSpans[%d].scopeSpans[%d].spans[%d]", i, j, k) }
				if span.TraceID().IsEmpty() {
					return fmt.Errorf("%s: traceId is missing or all zeros", at())
				}
				if span.SpanID().IsEmpty() {
					return fmt.Errorf("%s: spanId is missing or all zeros", at())
				}
				if apiKinds && span.Kind() <= ptrace.SpanKindProducer {
					// API INTERNAL=0 ... CONSUMER=4 is OTLP 1 ... 5. A 5
					// cannot be an API kind and is left as sent.
					span.SetKind(span.Kind() + 1)
				}
				for _, ha := range fromHeaders {
					ha.value.CopyTo(span.Attributes().PutEmpty(ha.attr))
				}
			}
		}
	}
	return nil
}
