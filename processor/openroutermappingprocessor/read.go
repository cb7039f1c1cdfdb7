package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Typed readers. Each accepts the value types seen in the wild for its kind
// and reports ok=false for anything it cannot read faithfully (the key then
// counts as absent and a lower-precedence key may still supply the field).

// readString accepts strings and renders numbers and bools (ids sent as ints).
// Empty strings are absent.
func readString(v pcommon.Value) (string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := v.Str()
		return s, s != ""
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10), true
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return "", false
		}
		return strconv.FormatFloat(d, 'f', -1, 64), true
	case pcommon.ValueTypeBool:
		return strconv.FormatBool(v.Bool()), true
	}
	return "", false
}

// readBool reads bools, "true"/"True"/"TRUE"/"1"/"false"/... strings (LiteLLM
// sends Python's "True"/"False") and 0/1 ints.
func readBool(v pcommon.Value) (bool, bool) {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return v.Bool(), true
	case pcommon.ValueTypeStr:
		return parseBool(v.Str())
	case pcommon.ValueTypeInt:
		switch v.Int() {
		case 0:
			return false, true
		case 1:
			return true, true
		}
	}
	return false, false
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}

// readFinishReason takes the first non-empty reason from a string, a JSON
// array in a string (OpenRouter sends `["tool_calls"]`), or an array value.
func readFinishReason(v pcommon.Value) (string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := strings.TrimSpace(v.Str())
		if strings.HasPrefix(s, "[") {
			return firstJSONString(s)
		}
		return s, s != ""
	case pcommon.ValueTypeSlice:
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			if s, ok := readString(sl.At(i)); ok {
				return s, true
			}
		}
		return "", false
	}
	return readString(v)
}

// firstJSONString returns the first non-empty string element of a JSON array.
func firstJSONString(s string) (string, bool) {
	found := ""
	ok := forEachArrayElem(s, func(start, end int) bool {
		if s[start] != '"' {
			return true
		}
		if str, good := unquote(s[start:end]); good && str != "" {
			found = str
			return false
		}
		return true
	})
	return found, ok && found != ""
}

// readVerdict matches a value against a verdict table: 1 = generation,
// 0 = not a generation, -1 = no verdict.
func readVerdict(v pcommon.Value, vt *verdicts) int8 {
	var s string
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s = strings.ToLower(strings.TrimSpace(v.Str()))
	case pcommon.ValueTypeBool:
		s = strconv.FormatBool(v.Bool())
	case pcommon.ValueTypeInt:
		s = strconv.FormatInt(v.Int(), 10)
	default:
		return -1
	}
	if s == "" {
		return -1
	}
	if is, ok := vt.match[s]; ok {
		if is {
			return 1
		}
		return 0
	}
	if vt.other == vFalse {
		return 0
	}
	return -1
}

// readTimestamp reads an RFC 3339 time, as the Langfuse SDKs send it (a
// JSON-encoded string, so possibly in quotes), as unix nanoseconds.
func readTimestamp(v pcommon.Value) (int64, bool) {
	if v.Type() != pcommon.ValueTypeStr {
		return 0, false
	}
	s := strings.TrimSpace(v.Str())
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	if y := t.Year(); y < 1970 || y > 2200 {
		return 0, false
	}
	return t.UnixNano(), true
}
