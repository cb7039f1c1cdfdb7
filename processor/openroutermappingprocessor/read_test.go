package openroutermappingprocessor

import (
	"github.com/fallom/fallom-collector/internal/attrvalue"

	"github.com/fallom/fallom-collector/internal/jsonenc"

	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func val(v any) pcommon.Value {
	out := pcommon.NewValueEmpty()
	if err := out.FromRaw(v); err != nil {
		panic(err)
	}
	return out
}

func TestReaders(t *testing.T) {
	ints := []struct {
		in   any
		want int64
		ok   bool
	}{
		{int64(12), 12, true}, {"12", 12, true}, {" 12 ", 12, true}, {12.0, 12, true}, {"1.2e3", 1200, true},
		{12.5, 0, false}, {int64(-1), 0, false}, {"-1", 0, false}, {"abc", 0, false}, {true, 0, false},
		{math.NaN(), 0, false}, {math.Inf(1), 0, false}, {1e300, 0, false}, {nil, 0, false}, {[]any{1}, 0, false},
	}
	for _, c := range ints {
		got, ok := attrvalue.Int(val(c.in))
		assert.Equal(t, c.ok, ok, "%#v", c.in)
		if c.ok {
			assert.Equal(t, c.want, got, "%#v", c.in)
		}
	}
	doubles := []struct {
		in   any
		want float64
		ok   bool
	}{
		{0.25, 0.25, true}, {int64(3), 3, true}, {"0.0001788", 0.0001788, true}, {"1e-7", 1e-7, true},
		{-0.5, 0, false}, {math.NaN(), 0, false}, {"NaN", 0, false}, {"Inf", 0, false}, {false, 0, false},
	}
	for _, c := range doubles {
		got, ok := attrvalue.Double(val(c.in))
		assert.Equal(t, c.ok, ok, "%#v", c.in)
		if c.ok {
			assert.Equal(t, c.want, got, "%#v", c.in)
		}
	}
	bools := []struct {
		in       any
		want, ok bool
	}{
		{true, true, true}, {"True", true, true}, {"FALSE", false, true}, {"1", true, true}, {int64(0), false, true},
		{int64(2), false, false}, {"maybe", false, false}, {1.0, false, false},
	}
	for _, c := range bools {
		got, ok := readBool(val(c.in))
		assert.Equal(t, c.ok, ok, "%#v", c.in)
		assert.Equal(t, c.want, got, "%#v", c.in)
	}
	finish := []struct {
		in   any
		want string
		ok   bool
	}{
		{"stop", "stop", true}, {`["tool_calls"]`, "tool_calls", true}, {`[ "", "length" ]`, "length", true},
		{`["\u0073top"]`, "stop", true}, {`["\ud83d\ude00"]`, "\U0001F600", true}, {`[`, "", false}, {`[]`, "", false},
		{[]any{"", "stop"}, "stop", true}, {[]any{}, "", false}, {int64(3), "3", true}, {"", "", false},
	}
	for _, c := range finish {
		got, ok := readFinishReason(val(c.in))
		assert.Equal(t, c.ok, ok, "%#v", c.in)
		assert.Equal(t, c.want, got, "%#v", c.in)
	}
	s, ok := readString(val(int64(42)))
	assert.True(t, ok)
	assert.Equal(t, "42", s)
	_, ok = readString(val(""))
	assert.False(t, ok)
	_, ok = readString(val(map[string]any{"a": 1}))
	assert.False(t, ok)
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            `"plain"`,
		"q\"b\\n\nt\t\x01": `"q\"b\\n\nt\t\u0001"`,
		"<b>&é☀️":          `"<b>&é☀️"`,
		"bad\xffutf8":      "\"bad\ufffdutf8\"",
	} {
		got := string(jsonenc.AppendString(nil, in))
		assert.Equal(t, want, got)
		assert.True(t, validJSON(got))
	}
}
