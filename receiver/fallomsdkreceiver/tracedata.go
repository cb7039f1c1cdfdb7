package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ScopeName is the instrumentation scope of the spans made from TraceData:
// the Fallom SDK, whose "fallom.sdk_version" attribute becomes its version.
const ScopeName = "fallom-sdk"

// serviceNameDefault is the service.name of a TraceData without config_key.
const serviceNameDefault = "fallom-sdk"

// The TraceData fields (FALLOM_SDK.md 2.2) that become span fields rather
// than attributes.
const (
	tdTraceID      = "trace_id"
	tdSpanID       = "span_id"
	tdParentSpanID = "parent_span_id"
	tdName         = "name"
	tdStartTime    = "start_time"
	tdEndTime      = "end_time"
	tdStatus       = "status"
	tdErrorMessage = "error_message"
	tdAttributes   = "attributes"
)

// Every other TraceData field is kept as the span attribute "fallom." +
// field, with the SDK's value; these are checked for the type the SDKs send
// so the processor can rely on it. Fields not listed (a future SDK's, or the
// legacy prompt_tokens of TS 0.1.x) are kept unchecked.
var envelopeTypes = map[string]pcommon.ValueType{
	"config_key":             pcommon.ValueTypeStr,
	"session_id":             pcommon.ValueTypeStr,
	"customer_id":            pcommon.ValueTypeStr,
	"kind":                   pcommon.ValueTypeStr,
	"model":                  pcommon.ValueTypeStr,
	"duration_ms":            pcommon.ValueTypeDouble, // any number
	"time_to_first_token_ms": pcommon.ValueTypeDouble, // any number
	"is_streaming":           pcommon.ValueTypeBool,
	"metadata":               pcommon.ValueTypeMap,
	"tags":                   pcommon.ValueTypeSlice,
	"prompt_key":             pcommon.ValueTypeStr,
	"prompt_version":         pcommon.ValueTypeInt,
	"prompt_ab_test_key":     pcommon.ValueTypeStr,
	"prompt_variant_index":   pcommon.ValueTypeInt,
}

// traceDataToTraces makes one span of a TraceData object (already parsed
// into an ordered map). An error names the field and the problem; nothing
// is produced then.
func traceDataToTraces(td pcommon.Map) (ptrace.Traces, error) {
	traces := ptrace.NewTraces()
	rs := traces.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(ScopeName)
	span := ss.Spans().AppendEmpty()

	traceID, err := hexID(td, tdTraceID, 16, true)
	if err != nil {
		return traces, err
	}
	span.SetTraceID(pcommon.TraceID(traceID))
	spanID, err := hexID(td, tdSpanID, 8, true)
	if err != nil {
		return traces, err
	}
	span.SetSpanID(pcommon.SpanID(spanID))
	if parent, err := hexID(td, tdParentSpanID, 8, false); err != nil {
		return traces, err
	} else if parent != nil {
		span.SetParentSpanID(pcommon.SpanID(parent))
	}

	name, err := str(td, tdName, true)
	if err != nil {
		return traces, err
	}
	span.SetName(name)
	start, err := timestamp(td, tdStartTime)
	if err != nil {
		return traces, err
	}
	end, err := timestamp(td, tdEndTime)
	if err != nil {
		return traces, err
	}
	span.SetStartTimestamp(start)
	span.SetEndTimestamp(end)

	statusText, err := str(td, tdStatus, false)
	if err != nil {
		return traces, err
	}
	errMsg, err := str(td, tdErrorMessage, false)
	if err != nil {
		return traces, err
	}
	switch strings.ToUpper(statusText) {
	case "OK":
		span.Status().SetCode(ptrace.StatusCodeOk)
	case "ERROR":
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage(errMsg)
	case "":
		if errMsg != "" {
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage(errMsg)
		}
	default:
		return traces, fmt.Errorf(`status must be "OK" or "ERROR", got %q`, clip(statusText))
	}

	attrs := span.Attributes()
	if v, ok := td.Get(tdAttributes); ok && v.Type() != pcommon.ValueTypeEmpty {
		if v.Type() != pcommon.ValueTypeMap {
			return traces, fmt.Errorf("attributes must be an object, got %s", typeName(v))
		}
		attrs.EnsureCapacity(v.Map().Len() + td.Len())
		for k, av := range v.Map().All() {
			if av.Type() == pcommon.ValueTypeEmpty {
				continue // null: nothing was sent
			}
			av.CopyTo(attrs.PutEmpty(k))
		}
	}

	var envErr error
	for k, v := range td.All() {
		switch k {
		case tdTraceID, tdSpanID, tdParentSpanID, tdName, tdStartTime, tdEndTime, tdStatus, tdErrorMessage, tdAttributes:
			continue
		}
		if v.Type() == pcommon.ValueTypeEmpty {
			continue // the SDKs omit unset fields; a null means the same
		}
		if want, ok := envelopeTypes[k]; ok {
			if err := checkType(k, v, want); err != nil {
				envErr = err
				break
			}
		}
		v.CopyTo(attrs.PutEmpty("fallom." + k))
	}
	if envErr != nil {
		return traces, envErr
	}

	if v, ok := td.Get("kind"); ok && v.Str() == "llm" {
		span.SetKind(ptrace.SpanKindClient) // a call to a model provider
	} else {
		span.SetKind(ptrace.SpanKindInternal)
	}
	if v, ok := attrs.Get("fallom.sdk_version"); ok && v.Type() == pcommon.ValueTypeStr {
		ss.Scope().SetVersion(v.Str())
	}
	service := serviceNameDefault
	if v, ok := td.Get("config_key"); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
		service = v.Str()
	}
	rs.Resource().Attributes().PutStr("service.name", service)
	return traces, nil
}

func checkType(field string, v pcommon.Value, want pcommon.ValueType) error {
	switch want {
	case pcommon.ValueTypeDouble:
		if v.Type() == pcommon.ValueTypeInt || v.Type() == pcommon.ValueTypeDouble {
			return nil
		}
		return fmt.Errorf("%s must be a number, got %s", field, typeName(v))
	case pcommon.ValueTypeInt:
		if v.Type() == pcommon.ValueTypeInt {
			return nil
		}
		if v.Type() == pcommon.ValueTypeDouble && v.Double() == math.Trunc(v.Double()) && math.Abs(v.Double()) < 1<<53 {
			v.SetInt(int64(v.Double())) // 2.0 from a JSON encoder that writes floats
			return nil
		}
		return fmt.Errorf("%s must be an integer, got %s", field, typeName(v))
	case pcommon.ValueTypeSlice:
		if v.Type() != pcommon.ValueTypeSlice {
			return fmt.Errorf("%s must be an array, got %s", field, typeName(v))
		}
		for i, e := range v.Slice().All() {
			if e.Type() != pcommon.ValueTypeStr {
				return fmt.Errorf("%s[%d] must be a string, got %s", field, i, typeName(e))
			}
		}
		return nil
	}
	if v.Type() != want {
		return fmt.Errorf("%s must be %s, got %s", field, article(want), typeName(v))
	}
	return nil
}

func article(t pcommon.ValueType) string {
	switch t {
	case pcommon.ValueTypeStr:
		return "a string"
	case pcommon.ValueTypeBool:
		return "a boolean"
	case pcommon.ValueTypeMap:
		return "an object"
	}
	return t.String()
}

func typeName(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return "a string"
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble:
		return "a number"
	case pcommon.ValueTypeBool:
		return "a boolean"
	case pcommon.ValueTypeMap:
		return "an object"
	case pcommon.ValueTypeSlice:
		return "an array"
	case pcommon.ValueTypeEmpty:
		return "null"
	}
	return v.Type().String()
}

// str reads a string field; a missing or null field is "" (an error when
// required).
func str(m pcommon.Map, field string, required bool) (string, error) {
	v, ok := m.Get(field)
	if !ok || v.Type() == pcommon.ValueTypeEmpty {
		if required {
			return "", fmt.Errorf("%s is required", field)
		}
		return "", nil
	}
	if v.Type() != pcommon.ValueTypeStr {
		return "", fmt.Errorf("%s must be a string, got %s", field, typeName(v))
	}
	if required && v.Str() == "" {
		return "", fmt.Errorf("%s is empty", field)
	}
	return v.Str(), nil
}

// hexID reads a trace or span id of n bytes written as 2n hex digits
// (either case). All zeros is not an id. A missing, null or empty optional
// id is nil.
func hexID(m pcommon.Map, field string, n int, required bool) ([]byte, error) {
	s, err := str(m, field, required)
	if err != nil || s == "" {
		return nil, err
	}
	if len(s) != 2*n {
		return nil, fmt.Errorf("%s must be %d hex digits, got %d characters", field, 2*n, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s must be %d hex digits: %q is not hex", field, 2*n, clip(s))
	}
	for _, c := range b {
		if c != 0 {
			out := make([]byte, 16)
			copy(out, b)
			return out[:n], nil
		}
	}
	return nil, fmt.Errorf("%s is all zeros, which is not a valid id", field)
}

// timestamp reads an ISO-8601 time as both SDKs write it: TS
// "2026-12-02T16:05:22.732Z", PY "2026-12-02T16:05:52.828000+00:00" (no
// fraction when it is 0). A time without offset (a naive Python datetime)
// is UTC.
func timestamp(m pcommon.Map, field string) (pcommon.Timestamp, error) {
	s, err := str(m, field, true)
	if err != nil {
		return 0, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		var err2 error
		if t, err2 = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err2 != nil {
			return 0, fmt.Errorf("%s must be an ISO-8601 time such as 2026-12-02T16:05:22.732Z, got %q", field, clip(s))
		}
	}
	if t.Year() < 1971 || t.Year() > 2200 {
		return 0, fmt.Errorf("%s %q is out of range", field, clip(s))
	}
	return pcommon.NewTimestampFromTime(t), nil
}

// clip keeps a quoted value in an error message short.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
