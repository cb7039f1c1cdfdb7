// Package attrvalue reads numbers from span attribute values as they arrive
// in the wild (ints as strings, counts as doubles, numeric strings with
// blanks). The processor reads the dialects' attributes with it and the
// exporter the canonical fallom.* ones, so both accept and refuse alike.
package attrvalue // import "github.com/fallom/fallom-collector/internal/attrvalue"

import (
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Int reads a non-negative count: ints, whole doubles (1200.0), and
// strings holding either ("1200", " 1200 ", "1.2e3"). Negative or fractional
// values are not counts.
func Int(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		i := v.Int()
		return i, i >= 0
	case pcommon.ValueTypeDouble:
		return WholeFloat(v.Double())
	case pcommon.ValueTypeStr:
		s := strings.TrimSpace(v.Str())
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, i >= 0
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return WholeFloat(f)
		}
	}
	return 0, false
}

// WholeFloat returns f as a count when it is a non-negative whole number
// that a float64 holds exactly.
func WholeFloat(f float64) (int64, bool) {
	if f < 0 || f != math.Trunc(f) || f > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// Double reads a non-negative finite number (costs, durations): doubles,
// ints, and numeric strings.
func Double(v pcommon.Value) (float64, bool) {
	var f float64
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		f = v.Double()
	case pcommon.ValueTypeInt:
		f = float64(v.Int())
	case pcommon.ValueTypeStr:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v.Str()), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	return f, true
}
