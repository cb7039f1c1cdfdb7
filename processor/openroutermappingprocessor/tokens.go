package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"math"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fallom/fallom-collector/internal/attrvalue"
)

// Reasons listed in fallom.tokens_adjusted.
const (
	adjInputExcludedCache      = "input_excluded_cache"
	adjOutputExcludedReasoning = "output_excluded_reasoning"
	adjCacheExceededInput      = "cache_exceeded_input"
	adjReasoningExceededOutput = "reasoning_exceeded_output"
	adjTotalRecomputed         = "total_recomputed"
	adjTotalExceedsParts       = "total_exceeds_parts"
)

// maxTokens caps every count read and written: 2^40 (about 1.1e12) is more
// than any call uses (storage.MaxTokenCount, above which the exporter does
// not believe a count), and sums of a few capped counts cannot overflow an
// int64 (two counts of 5e18 wrapped a total to a negative number).
const maxTokens = int64(1) << 40

// readCount reads a token count (attrvalue.Int), capped at maxTokens; a
// whole double too large for attrvalue is capped as well.
func readCount(v pcommon.Value) (int64, bool) {
	if v.Type() == pcommon.ValueTypeDouble {
		if f := v.Double(); f >= float64(maxTokens) && !math.IsInf(f, 0) {
			return maxTokens, true
		}
	}
	i, ok := attrvalue.Int(v)
	return min(i, maxTokens), ok
}

// readEmbedded fills the fields that embeddedSpecs read from inside JSON
// attribute values, where the attributes left them empty. The members are
// found with the scanner of jsonscan.go (no decode: a Fallom SDK request
// can hold a whole conversation, of which only "model" is read here).
func readEmbedded(st *spanState) {
	for i := range embeddedSpecs {
		es := &embeddedSpecs[i]
		src := &st.slots[es.from]
		dst := &st.slots[es.field]
		if src.rank == 0 || dst.rank != 0 {
			continue
		}
		raw, ok := jsonLookup(src.s, es.path)
		if !ok {
			continue
		}
		var val pcommon.Value
		switch c := raw[0]; {
		case c == '-' || (c >= '0' && c <= '9'):
			val = pcommon.NewValueStr(raw)
		case c == '"' && es.reader == rString:
			str, good := unquote(raw)
			if !good {
				continue
			}
			val = pcommon.NewValueStr(str)
		default: // null, objects, arrays, booleans, and strings where a number is due
			continue
		}
		t := target{field: es.field, reader: es.reader}
		if readInto(dst, &t, val) {
			dst.rank = lowestRank
		}
	}
}

// jsonLookup returns the raw JSON value at path (member names joined by
// ".") in the JSON object s; the last of duplicate members wins, as with
// encoding/json. ok is false when s is not a valid JSON object or a member
// on the path is missing or not an object.
func jsonLookup(s, path string) (string, bool) {
	for {
		name, rest, deeper := strings.Cut(path, ".")
		found := ""
		if !forEachMember(s, func(key string, start, end int) bool {
			if key == name {
				found = s[start:end]
			}
			return true
		}) || found == "" {
			return "", false
		}
		if !deeper {
			return found, true
		}
		s, path = found, rest
	}
}

// embeddedSources are the JSON fields embeddedSpecs read from.
var embeddedSources = func() (out []field) {
	for _, es := range embeddedSpecs {
		if !slices.Contains(out, es.from) {
			out = append(out, es.from)
		}
	}
	return out
}()

// tokenCountingOf looks the span up in tokenRules.
func tokenCountingOf(st *spanState, provider string) tokenCounting {
	for i := range tokenRules {
		tr := &tokenRules[i]
		if !slices.Contains(tr.dialects, st.dialect) {
			continue
		}
		if len(tr.markers) > 0 && st.markers&(1<<i) == 0 {
			continue
		}
		if len(tr.providers) > 0 && !hasAnyPrefix(provider, tr.providers) {
			continue
		}
		return tr.counting
	}
	return countsInclusive
}

// hasAnyPrefix matches case-insensitively (without allocating a lower-cased
// copy on every span).
func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return true
		}
	}
	return false
}

// resolveTokens makes the counts inclusive: the emitter's counting (the
// table, refined by witnesses), then the guard for figures that cannot be
// inclusive. What was changed and why is listed in m.adjusted.
func resolveTokens(st *spanState, m *mapped) {
	s := &st.slots
	t, has := &m.tokens, &m.hasTokens
	for i, f := range [6]field{fInputTokens, fOutputTokens, fTotalTokens, fCachedTokens, fCacheWriteTokens, fReasoningTokens} {
		if s[f].rank != 0 {
			t[i], has[i] = min(s[f].i, maxTokens), true
		}
	}
	if !has[tCacheWrite] && (s[fCacheWrite5m].rank != 0 || s[fCacheWrite1h].rank != 0) {
		t[tCacheWrite], has[tCacheWrite] = min(s[fCacheWrite5m].i, maxTokens)+min(s[fCacheWrite1h].i, maxTokens), true
	}
	if s[fUsageJSON].rank != 0 {
		langfuseUsage(s[fUsageJSON].s, m)
	}
	cache := t[tCached] + t[tCacheWrite] // 0 where absent
	// Counts of a span this processor already mapped are inclusive: only
	// the guard applies to them.
	canonical := s[fInputTokens].rank == 1 || s[fOutputTokens].rank == 1
	counting := countsInclusive
	if !canonical {
		counting = tokenCountingOf(st, m.provider)
	}
	// Witnesses: the span itself says which count its input and output are.
	if nc := &s[fInputNoCache]; !canonical && nc.rank != 0 && has[tIn] && cache > 0 {
		switch t[tIn] {
		case nc.i:
			counting |= inputOmitsCache
		case nc.i + cache:
			counting &^= inputOmitsCache
		}
	}
	if tx := &s[fOutputText]; !canonical && tx.rank != 0 && has[tOut] && t[tReasoning] > 0 {
		switch t[tOut] {
		case tx.i:
			counting |= outputOmitsReasoning
		case tx.i + t[tReasoning]:
			counting &^= outputOmitsReasoning
		}
	}

	if has[tIn] {
		var add int64
		if counting&inputOmitsCacheRead != 0 {
			add += t[tCached]
		}
		if counting&inputOmitsCacheWrite != 0 {
			add += t[tCacheWrite]
		}
		if add > 0 {
			t[tIn] += add
			m.adjust(adjInputExcludedCache)
		}
		// Guard: an inclusive input holds its cache reads and writes.
		if cache > t[tIn] {
			t[tIn] += cache
			m.adjust(adjCacheExceededInput)
		}
	}
	if has[tOut] {
		if counting&outputOmitsReasoning != 0 && t[tReasoning] > 0 {
			t[tOut] += t[tReasoning]
			m.adjust(adjOutputExcludedReasoning)
		}
		// Guard: an inclusive output holds its reasoning.
		if t[tReasoning] > t[tOut] {
			t[tOut] += t[tReasoning]
			m.adjust(adjReasoningExceededOutput)
		}
	}
	defer func() {
		// Stored counts never exceed the cap, however the parts added up.
		for i := range t {
			t[i] = min(t[i], maxTokens)
		}
	}()
	if !has[tIn] || !has[tOut] {
		return
	}
	sum := t[tIn] + t[tOut]
	switch {
	case !has[tTotal]:
		t[tTotal], has[tTotal] = sum, true
	case t[tTotal] < sum:
		// A total of exclusive figures (Vercel v5: input + output).
		t[tTotal] = sum
		m.adjust(adjTotalRecomputed)
	case t[tTotal] > sum:
		// A total of inclusive figures above the parts: the part it holds
		// that the parts left out.
		switch gap := t[tTotal] - sum; {
		case gap == t[tReasoning] && !m.adjusted(adjOutputExcludedReasoning, adjReasoningExceededOutput):
			t[tOut] += gap
			m.adjust(adjOutputExcludedReasoning)
		case gap == cache && !m.adjusted(adjInputExcludedCache, adjCacheExceededInput),
			gap == t[tCached] && !m.adjusted(adjInputExcludedCache, adjCacheExceededInput):
			t[tIn] += gap
			m.adjust(adjInputExcludedCache)
		default:
			m.adjust(adjTotalExceedsParts)
		}
	}
}

func (m *mapped) adjust(reason string) {
	for _, r := range m.adjustments {
		if r == reason {
			return
		}
	}
	m.adjustments = append(m.adjustments, reason)
}

func (m *mapped) adjusted(reasons ...string) bool {
	for _, r := range m.adjustments {
		for _, q := range reasons {
			if r == q {
				return true
			}
		}
	}
	return false
}
