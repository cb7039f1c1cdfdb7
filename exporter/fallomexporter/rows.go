package fallomexporter

import (
	"github.com/fallom/fallom-collector/internal/attrvalue"

	"github.com/fallom/fallom-collector/internal/jsonenc"

	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/storage"
)

// columnSetter stores one canonical attribute into its column; it returns
// false when the value has a type the column cannot hold, in which case the
// attribute stays in the attributes JSON (nothing is lost).
type columnSetter func(row *storage.Span, v pcommon.Value) bool

// canonicalColumns maps each fallomattr.Columns key to its setter.
var canonicalColumns = map[string]columnSetter{
	fallomattr.IsGeneration: func(r *storage.Span, v pcommon.Value) bool {
		b, ok := asBool(v)
		r.IsGeneration = ok && b
		return ok
	},
	fallomattr.SessionID:             keyColumn(func(r *storage.Span) **string { return &r.SessionID }),
	fallomattr.CustomerID:            keyColumn(func(r *storage.Span) **string { return &r.CustomerID }),
	fallomattr.Model:                 keyColumn(func(r *storage.Span) **string { return &r.Model }),
	fallomattr.RequestedModel:        stringColumn(func(r *storage.Span) **string { return &r.RequestedModel }),
	fallomattr.Provider:              keyColumn(func(r *storage.Span) **string { return &r.Provider }),
	fallomattr.Operation:             stringColumn(func(r *storage.Span) **string { return &r.Operation }),
	fallomattr.InputTokens:           intColumn(func(r *storage.Span) **int64 { return &r.InputTokens }),
	fallomattr.OutputTokens:          intColumn(func(r *storage.Span) **int64 { return &r.OutputTokens }),
	fallomattr.TotalTokens:           intColumn(func(r *storage.Span) **int64 { return &r.TotalTokens }),
	fallomattr.CachedInputTokens:     intColumn(func(r *storage.Span) **int64 { return &r.CachedInputTokens }),
	fallomattr.CacheWriteInputTokens: intColumn(func(r *storage.Span) **int64 { return &r.CacheWriteInputTokens }),
	fallomattr.ReasoningTokens:       intColumn(func(r *storage.Span) **int64 { return &r.ReasoningTokens }),
	fallomattr.InputCostUSD:          costColumn(func(r *storage.Span) **float64 { return &r.InputCostUSD }),
	fallomattr.OutputCostUSD:         costColumn(func(r *storage.Span) **float64 { return &r.OutputCostUSD }),
	fallomattr.TotalCostUSD:          costColumn(func(r *storage.Span) **float64 { return &r.TotalCostUSD }),
	fallomattr.CostSource:            stringColumn(func(r *storage.Span) **string { return &r.CostSource }),
	fallomattr.FinishReason:          stringColumn(func(r *storage.Span) **string { return &r.FinishReason }),
	fallomattr.TimeToFirstTokenMs:    floatColumn(func(r *storage.Span) **float64 { return &r.TimeToFirstTokenMs }),
	fallomattr.Streamed: func(r *storage.Span, v pcommon.Value) bool {
		b, ok := asBool(v)
		if ok {
			r.Streamed = &b
		}
		return ok
	},
	fallomattr.Prompt:     stringColumn(func(r *storage.Span) **string { return &r.Prompt }),
	fallomattr.Completion: stringColumn(func(r *storage.Span) **string { return &r.Completion }),
	fallomattr.Source:     stringColumn(func(r *storage.Span) **string { return &r.Source }),

	// The Fallom SDK experiment fields (the SDK contract): keys are index
	// keys, versions and the variant index non-negative integers.
	fallomattr.ConfigKey:          keyColumn(func(r *storage.Span) **string { return &r.ConfigKey }),
	fallomattr.ConfigVersion:      ordinalColumn(func(r *storage.Span) **int64 { return &r.ConfigVersion }),
	fallomattr.PromptKey:          keyColumn(func(r *storage.Span) **string { return &r.PromptKey }),
	fallomattr.PromptVersion:      ordinalColumn(func(r *storage.Span) **int64 { return &r.PromptVersion }),
	fallomattr.PromptABTestKey:    keyColumn(func(r *storage.Span) **string { return &r.PromptABTestKey }),
	fallomattr.PromptVariantIndex: ordinalColumn(func(r *storage.Span) **int64 { return &r.PromptVariantIndex }),
}

// experimentColumns are the canonical keys of the experiment columns (not
// in fallomattr.Columns, which lists the columns of the first schema).
var experimentColumns = []string{
	fallomattr.ConfigKey, fallomattr.ConfigVersion, fallomattr.PromptKey, fallomattr.PromptVersion,
	fallomattr.PromptABTestKey, fallomattr.PromptVariantIndex,
}

func init() {
	// The contract lists the columns; a key added there without a setter
	// here would silently end up in the attributes JSON.
	for _, k := range append(fallomattr.Columns[:len(fallomattr.Columns):len(fallomattr.Columns)], experimentColumns...) {
		if canonicalColumns[k] == nil {
			panic("fallomexporter: no column setter for " + k)
		}
	}
}

func stringColumn(field func(*storage.Span) **string) columnSetter {
	return func(r *storage.Span, v pcommon.Value) bool {
		switch v.Type() {
		case pcommon.ValueTypeStr, pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool:
			s := storage.CleanText(v.AsString())
			if s == "" {
				*field(r) = nil // absent, not an empty grouping key
			} else {
				*field(r) = &s
			}
			return true
		}
		return false
	}
}

// keyColumn is a stringColumn for the grouping keys (session, customer,
// model, provider) and the experiment keys: they are index keys, so a
// value longer than an index entry holds (storage.MaxIndexedTextBytes)
// leaves the column NULL and stays in the attributes JSON, and the span is
// stored.
func keyColumn(field func(*storage.Span) **string) columnSetter {
	set := stringColumn(field)
	return func(r *storage.Span, v pcommon.Value) bool {
		if len(v.AsString()) > storage.MaxIndexedTextBytes {
			return false
		}
		return set(r, v)
	}
}

// intColumn holds token counts: a count above storage.MaxTokenCount (2^40)
// is not believed (it could only overflow the rollup) and stays in the
// attributes JSON, the column NULL, as a negative count does.
func intColumn(field func(*storage.Span) **int64) columnSetter {
	return func(r *storage.Span, v pcommon.Value) bool {
		i, ok := attrvalue.Int(v)
		if ok && i <= storage.MaxTokenCount {
			*field(r) = &i
			return true
		}
		return false
	}
}

// ordinalColumn holds a version or an index: a non-negative integer (as
// int, whole double or numeric string, like the counts); anything else
// stays in the attributes JSON and the column is NULL.
func ordinalColumn(field func(*storage.Span) **int64) columnSetter {
	return func(r *storage.Span, v pcommon.Value) bool {
		i, ok := attrvalue.Int(v)
		if ok {
			*field(r) = &i
		}
		return ok
	}
}

// costColumn holds a cost in USD, at most storage.MaxCostUSD; above it the
// value stays in the attributes JSON and the column is NULL (unknown).
func costColumn(field func(*storage.Span) **float64) columnSetter {
	return func(r *storage.Span, v pcommon.Value) bool {
		f, ok := attrvalue.Double(v)
		if ok && f <= storage.MaxCostUSD {
			*field(r) = &f
			return true
		}
		return false
	}
}

func floatColumn(field func(*storage.Span) **float64) columnSetter {
	return func(r *storage.Span, v pcommon.Value) bool {
		f, ok := attrvalue.Double(v)
		if ok {
			*field(r) = &f
		}
		return ok
	}
}

func asBool(v pcommon.Value) (bool, bool) {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return v.Bool(), true
	case pcommon.ValueTypeInt:
		switch v.Int() {
		case 0:
			return false, true
		case 1:
			return true, true
		}
	case pcommon.ValueTypeStr:
		b, err := strconv.ParseBool(strings.TrimSpace(v.Str()))
		return b, err == nil
	}
	return false, false
}

var spanKinds = [...]string{
	ptrace.SpanKindUnspecified: "UNSPECIFIED",
	ptrace.SpanKindInternal:    "INTERNAL",
	ptrace.SpanKindServer:      "SERVER",
	ptrace.SpanKindClient:      "CLIENT",
	ptrace.SpanKindProducer:    "PRODUCER",
	ptrace.SpanKindConsumer:    "CONSUMER",
}

func kindName(k ptrace.SpanKind) string {
	if int(k) >= 0 && int(k) < len(spanKinds) {
		return spanKinds[k]
	}
	return "UNSPECIFIED"
}

func statusName(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "OK"
	case ptrace.StatusCodeError:
		return "ERROR"
	}
	return "UNSET"
}

// saturate converts an OTLP timestamp to the signed 64-bit column type;
// values past year 2262 are clamped rather than wrapped to negative.
func saturate(t pcommon.Timestamp) int64 {
	if uint64(t) > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(t)
}

// invalidSpan describes a span that can never be stored.
type invalidSpan struct {
	traceID, spanID, name, reason string
}

// toRows converts traces into rows. Spans without a trace or span id (the
// primary key) cannot be stored; they are returned separately.
func toRows(td ptrace.Traces, receivedAt int64) ([]storage.Span, []invalidSpan) {
	rows := make([]storage.Span, 0, td.SpanCount())
	var invalid []invalidSpan
	var buf []byte
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		project := fallomattr.DefaultProjectID
		if v, ok := res.Get(fallomattr.ProjectID); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
			project = storage.CleanText(v.Str())
		}
		buf = appendMap(buf[:0], res, func(k string) bool { return k == fallomattr.ProjectID })
		resourceJSON := string(buf)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					invalid = append(invalid, invalidSpan{
						traceID: traceHex(sp.TraceID()), spanID: spanHex(sp.SpanID()), name: truncate(sp.Name(), 100),
						reason: "an empty (all-zero) trace_id or span_id cannot identify a span",
					})
					continue
				}
				rows = append(rows, storage.Span{})
				row := &rows[len(rows)-1]
				buf = fillRow(row, sp, buf[:0])
				row.ProjectID = project
				row.ReceivedAtUnixNano = receivedAt
				row.ResourceAttributes = resourceJSON
			}
		}
	}
	return rows, invalid
}

func traceHex(id pcommon.TraceID) string { return hex.EncodeToString(id[:]) }

func spanHex(id pcommon.SpanID) string { return hex.EncodeToString(id[:]) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// fillRow sets every column of row from sp except project, received time
// and resource attributes. buf is scratch space for the attributes JSON.
func fillRow(row *storage.Span, sp ptrace.Span, buf []byte) []byte {
	tid, sid := sp.TraceID(), sp.SpanID()
	row.TraceID = hex.EncodeToString(tid[:])
	row.SpanID = hex.EncodeToString(sid[:])
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		s := hex.EncodeToString(p[:])
		row.ParentSpanID = &s
	}
	row.Name = storage.CleanText(sp.Name())
	row.Kind = kindName(sp.Kind())
	row.StatusCode = statusName(sp.Status().Code())
	if m := sp.Status().Message(); m != "" {
		m = storage.CleanText(m)
		row.StatusMessage = &m
	}
	row.StartTimeUnixNano = saturate(sp.StartTimestamp())
	row.EndTimeUnixNano = saturate(sp.EndTimestamp())
	if row.EndTimeUnixNano > row.StartTimeUnixNano {
		row.DurationMs = float64(row.EndTimeUnixNano-row.StartTimeUnixNano) / 1e6
	}

	attrs := sp.Attributes()
	// Canonical attributes that went into a column, by position in the
	// map: they are left out of the attributes JSON.
	var stored []bool
	i := 0
	for k, v := range attrs.All() {
		if strings.HasPrefix(k, fallomattr.Prefix) {
			if set := canonicalColumns[k]; set != nil && set(row, v) {
				if stored == nil {
					stored = make([]bool, attrs.Len())
				}
				stored[i] = true
			}
		}
		i++
	}
	buf = appendAttributes(buf, attrs, stored)
	row.Attributes = string(buf)
	return buf
}

// appendAttributes appends attrs as a JSON object without the entries
// whose position is marked in skip.
func appendAttributes(b []byte, attrs pcommon.Map, skip []bool) []byte {
	b = append(b, '{')
	first := true
	i := -1
	for k, v := range attrs.All() {
		i++
		if skip != nil && skip[i] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = appendValue(b, v, 1)
	}
	return append(b, '}')
}

// appendMap appends m as a JSON object, leaving out the keys skip accepts.
// The encoding is plain JSON without HTML escaping (so stored text is not
// inflated by \u003c sequences); NaN and infinities, which JSON cannot
// carry, become the strings "NaN", "Infinity" and "-Infinity"; bytes become
// base64 strings.
func appendMap(b []byte, m pcommon.Map, skip func(string) bool) []byte {
	return appendMapDepth(b, m, skip, 0)
}

func appendMapDepth(b []byte, m pcommon.Map, skip func(string) bool, depth int) []byte {
	b = append(b, '{')
	first := true
	for k, v := range m.All() {
		if skip != nil && skip(k) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = appendValue(b, v, depth+1)
	}
	return append(b, '}')
}

// nestedTooDeep replaces a map or list nested deeper than
// storage.MaxJSONDepth: OTLP decoding accepts any depth, PostgreSQL's jsonb
// fails from about 16,000 levels (and the processor treats JSON deeper
// than 512 as invalid too).
const nestedTooDeep = `"[nested deeper than 512 levels: dropped]"`

// appendValue appends v, which sits at nesting depth depth (1 for an
// attribute's value).
func appendValue(b []byte, v pcommon.Value, depth int) []byte {
	if depth > storage.MaxJSONDepth && (v.Type() == pcommon.ValueTypeMap || v.Type() == pcommon.ValueTypeSlice) {
		return append(b, nestedTooDeep...)
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return jsonenc.AppendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return append(b, `"NaN"`...)
		case math.IsInf(f, 1):
			return append(b, `"Infinity"`...)
		case math.IsInf(f, -1):
			return append(b, `"-Infinity"`...)
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeMap:
		return appendMapDepth(b, v.Map(), nil, depth)
	case pcommon.ValueTypeSlice:
		b = append(b, '[')
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, s.At(i), depth+1)
		}
		return append(b, ']')
	case pcommon.ValueTypeBytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes().AsRaw())
		return append(b, '"')
	}
	return append(b, "null"...)
}
