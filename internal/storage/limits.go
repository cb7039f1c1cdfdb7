package storage

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Limits on what one span row may hold. They are checked in Go before any
// statement runs, so a row the database would refuse costs no transaction,
// and no value can poison a usage_daily row (an overflowing counter would
// make every later span of the same project, day, model and customer fail).
const (
	// MaxTokenCount bounds each token count of a span (2^40, about 1.1e12:
	// far beyond any model's context, and 2^23 such spans still fit one
	// usage_daily counter).
	MaxTokenCount = int64(1) << 40
	// MaxCostUSD bounds each cost of a span (USD 1,000,000; 9,223 such
	// spans fit one nano-USD counter, and the usage_daily sums saturate
	// rather than overflow beyond that).
	MaxCostUSD = 1e6
	// MaxIndexedTextBytes bounds session_id, customer_id, model and
	// provider, which are keys of indexes and of the rollups: a PostgreSQL
	// btree entry must fit a third of a page (2704 bytes), and
	// spans_gen_start holds all four beside the project id, the ids and
	// the figures (about 2,470 bytes at this limit; at 1024 a generation
	// with long keys was refused by PostgreSQL, and lost).
	MaxIndexedTextBytes = 512
	// MaxProjectIDBytes bounds project_id (a key of every index).
	MaxProjectIDBytes = 256
	// MaxJSONDepth bounds the nesting of attribute values (the processor
	// treats deeper JSON as invalid too); PostgreSQL's jsonb fails from
	// about 16,000 levels.
	MaxJSONDepth = 512
)

// NanoUSD converts a cost in USD to integer nano-USD, the unit of the
// usage_daily sums (exact integer arithmetic: no drift such as a row with
// 0 generations left at 2.78e-17 USD). Rounded half away from zero.
func NanoUSD(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

// RowProblem says why row can never be stored, or "" when it can.
func RowProblem(row *Span) string {
	switch {
	case row.ProjectID == "":
		return "empty project_id"
	case len(row.ProjectID) > MaxProjectIDBytes:
		return fmt.Sprintf("project_id longer than %d bytes", MaxProjectIDBytes)
	case !isHex(row.TraceID, 32) || row.TraceID == strings.Repeat("0", 32):
		return "trace_id is not 32 lowercase hex digits (or is all zero)"
	case !isHex(row.SpanID, 16) || row.SpanID == strings.Repeat("0", 16):
		return "span_id is not 16 lowercase hex digits (or is all zero)"
	}
	for _, t := range []struct {
		name string
		v    *string
	}{{"session_id", row.SessionID}, {"customer_id", row.CustomerID}, {"model", row.Model}, {"provider", row.Provider},
		{"config_key", row.ConfigKey}, {"prompt_key", row.PromptKey}, {"prompt_ab_test_key", row.PromptABTestKey}} {
		if t.v != nil && len(*t.v) > MaxIndexedTextBytes {
			return fmt.Sprintf("%s is %d bytes, longer than the %d an index entry holds", t.name, len(*t.v), MaxIndexedTextBytes)
		}
	}
	for _, t := range []struct {
		name string
		v    *int64
	}{{"input_tokens", row.InputTokens}, {"output_tokens", row.OutputTokens}, {"total_tokens", row.TotalTokens},
		{"cached_input_tokens", row.CachedInputTokens}, {"cache_write_input_tokens", row.CacheWriteInputTokens},
		{"reasoning_tokens", row.ReasoningTokens}} {
		if t.v != nil && (*t.v < 0 || *t.v > MaxTokenCount) {
			return fmt.Sprintf("%s %d is outside 0..2^40", t.name, *t.v)
		}
	}
	for _, t := range []struct {
		name string
		v    *float64
	}{{"input_cost_usd", row.InputCostUSD}, {"output_cost_usd", row.OutputCostUSD}, {"total_cost_usd", row.TotalCostUSD}} {
		if t.v != nil && !(*t.v >= 0 && *t.v <= MaxCostUSD) { // NaN fails both
			return fmt.Sprintf("%s %v is outside 0..%g", t.name, *t.v, MaxCostUSD)
		}
	}
	return ""
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Error texts returned to senders are bounded: a batch of 2000 bad spans
// must not produce a 440 KB answer.
const (
	maxNamedRejections  = 10
	maxRejectionMessage = 200
)

// rejection is one span that cannot be stored and why.
type rejection struct {
	key    Key
	reason string
}

// rejectionError reports the rejected spans of one write as one permanent
// error, naming at most maxNamedRejections of them, each reason cut to
// maxRejectionMessage bytes.
func rejectionError(rejected []rejection, cause error) error {
	if len(rejected) == 0 {
		return nil
	}
	text := rejectionText("span", "spans", len(rejected), func(i int) string {
		r := rejected[i]
		return fmt.Sprintf("span trace_id=%s span_id=%s of project %q: %s",
			clip(r.key.TraceID, 64), clip(r.key.SpanID, 64), clip(r.key.ProjectID, 64), clip(r.reason, maxRejectionMessage))
	})
	err := errors.New(text)
	if cause != nil {
		// Keep the first database error reachable (errors.As) for callers
		// and tests, without its text repeated.
		err = &causedError{msg: text, cause: cause}
	}
	return NewPermanent(err)
}

// rejectionText says that n things (one, many: their noun) cannot be
// stored, naming at most maxNamedRejections of them (item(i) describes the
// i-th) and counting the rest.
func rejectionText(one, many string, n int, item func(i int) string) string {
	var b strings.Builder
	if n == 1 {
		fmt.Fprintf(&b, "1 %s cannot be stored: ", one)
	} else {
		fmt.Fprintf(&b, "%d %s cannot be stored: ", n, many)
	}
	for i := range n {
		if i == maxNamedRejections {
			fmt.Fprintf(&b, "; and %d more", n-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(item(i))
	}
	return b.String()
}

type causedError struct {
	msg   string
	cause error
}

func (e *causedError) Error() string { return e.msg }
func (e *causedError) Unwrap() error { return e.cause }

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
