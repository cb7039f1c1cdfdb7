package fallomconsoleextension

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Display formats. Missing values show as an em dash, never as 0.

const missing = "—"

func fmtCost(v *float64) string {
	if v == nil {
		return missing
	}
	x := *v
	switch a := math.Abs(x); {
	case a == 0:
		return "$0"
	case a < 0.01:
		return "$" + strconv.FormatFloat(x, 'f', 6, 64)
	case a < 100:
		return "$" + strconv.FormatFloat(x, 'f', 4, 64)
	}
	return "$" + groupThousands(strconv.FormatFloat(x, 'f', 2, 64))
}

func fmtInt(v int64) string { return groupThousands(strconv.FormatInt(v, 10)) }

func fmtIntPtr(v *int64) string {
	if v == nil {
		return missing
	}
	return fmtInt(*v)
}

// groupThousands puts commas between groups of three digits of the integer
// part of a formatted number.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := sign + b.String()
	if hasFrac {
		out += "." + frac
	}
	return out
}

func fmtMs(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	case v < 60000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(v/60000, 'f', 1, 64) + " min"
}

func fmtMsPtr(v *float64) string {
	if v == nil {
		return missing
	}
	return fmtMs(*v)
}

// fmtTime shows a unix-nano time in UTC, to the millisecond.
func fmtTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000")
}

func fmtStr(s *string) string {
	if s == nil || *s == "" {
		return missing
	}
	return *s
}

func fmtPct(part, whole int64) string {
	if whole == 0 {
		return missing
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 1, 64) + "%"
}

func fmtBoolPtr(v *bool) string {
	if v == nil {
		return missing
	}
	if *v {
		return "yes"
	}
	return "no"
}
