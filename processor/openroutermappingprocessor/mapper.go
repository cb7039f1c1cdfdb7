package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"github.com/fallom/fallom-collector/internal/attrvalue"

	"github.com/fallom/fallom-collector/internal/jsonenc"

	"math"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/pricing"
)

// slot holds the best value seen so far for one field.
type slot struct {
	rank uint8 // precedence rank + 1; 0 = empty
	s    string
	i    int64
	f    float64
	b    bool
}

// contentCand is the best content source seen so far for one role.
type contentCand struct {
	rank uint8 // rank + 1; 0 = none
	kind contentKind
	v    pcommon.Value
}

// spanState is the scratch space of one span, reused across spans (pooled
// per batch) so the per-span pass allocates nothing for spans without
// content.
type spanState struct {
	slots      [nFields]slot
	dialect    dialect
	prompt     contentCand
	completion contentCand
	sysInstr   contentCand
	toolCalls  contentCand
	reasoning  contentCand
	hasContent bool
	hasFallom  bool   // the span already carries fallom.* keys (re-processing)
	markers    uint32 // tokenRules whose marker keys are present
	start      int64  // the span's start, unix nanoseconds
	flat       []flatEntry
	remove     []removal         // content attributes: removed once stored, or by drop_content
	used       [toOther + 1]bool // content roles that went into the stored prompt/completion
	truncated  []string
	hints      hints
}

// removal is a content attribute at a position, with the role it feeds and
// the source it belongs to (its rank in contentSpecs, its kind, its value).
type removal struct {
	idx  int
	role contentRole
	rank uint8
	kind contentKind
	v    pcommon.Value
	keep bool // holds content the stored prompt/completion does not (see keepUnstored)
}

func (st *spanState) reset() {
	flat, remove, truncated := st.flat[:0], st.remove[:0], st.truncated[:0]
	for i := range st.flat {
		st.flat[i] = flatEntry{} // drop references to the previous batch
	}
	for i := range st.remove {
		st.remove[i] = removal{}
	}
	*st = spanState{flat: flat, remove: remove, truncated: truncated}
}

// prefixIndex buckets the prefix rules by the first byte of the key, so an
// unmapped key costs one or two prefix checks at most.
var prefixIndex [256][]prefixRule

func init() {
	for _, pr := range prefixRules {
		prefixIndex[pr.prefix[0]] = append(prefixIndex[pr.prefix[0]], pr)
	}
}

// read is the one pass over a span's attributes: every attribute is looked
// at once, dispatched through exactRules (one map lookup) or, for keys not
// in it, the few prefix rules sharing its first byte.
func (st *spanState) read(attrs pcommon.Map) {
	idx := 0
	for k, v := range attrs.All() {
		if r, ok := exactRules[k]; ok {
			st.apply(r, v, idx)
			if k[0] == 'f' && strings.HasPrefix(k, fallomattr.Prefix) {
				st.hasFallom = true
			}
		} else if k != "" {
			st.applyPrefix(k, v, idx)
		}
		idx++
	}
}

func (st *spanState) apply(r *keyRule, v pcommon.Value, idx int) {
	for i := range r.targets {
		t := &r.targets[i]
		sl := &st.slots[t.field]
		if sl.rank != 0 && sl.rank <= t.rank+1 {
			continue
		}
		if readInto(sl, t, v) {
			sl.rank = t.rank + 1
		}
	}
	if r.dialect > st.dialect {
		st.dialect = r.dialect
	}
	st.markers |= r.markers
	if r.content != nil {
		st.hasContent = true
		st.remove = append(st.remove, removal{idx: idx, role: r.content.role, rank: r.rank, kind: r.content.kind, v: v})
		st.offer(r.content.role, r.content.kind, r.rank, v)
	}
}

// readInto reads v with the target's reader and stores it in the slot only
// if it could be read (a failed read never disturbs the value held).
func readInto(sl *slot, t *target, v pcommon.Value) bool {
	var (
		ok bool
		s  string
		i  int64
		f  float64
		b  bool
	)
	switch t.reader {
	case rString:
		s, ok = readString(v)
	case rInt:
		i, ok = readCount(v)
	case rDouble:
		f, ok = attrvalue.Double(v)
	case rSecondsToMs:
		f, ok = attrvalue.Double(v)
		f *= 1000
		ok = ok && !math.IsInf(f, 0) // 1e306 s is no duration
	case rBool:
		b, ok = readBool(v)
	case rFinishReason:
		s, ok = readFinishReason(v)
	case rVerdict:
		switch readVerdict(v, t.verdict) {
		case 1:
			b, ok = true, true
		case 0:
			b, ok = false, true
		}
	case rJSON:
		s = valueText(v)
		ok = s != ""
	case rTimestamp:
		i, ok = readTimestamp(v)
	}
	if ok {
		sl.s, sl.i, sl.f, sl.b = s, i, f, b
	}
	return ok
}

func (st *spanState) offer(role contentRole, kind contentKind, rank uint8, v pcommon.Value) {
	var c *contentCand
	switch role {
	case toPrompt:
		c = &st.prompt
	case toCompletion:
		c = &st.completion
	case toSystemInstructions:
		c = &st.sysInstr
	case toToolCalls:
		c = &st.toolCalls
	case toReasoning:
		c = &st.reasoning
	default:
		return
	}
	if c.rank == 0 || rank+1 < c.rank {
		*c = contentCand{rank: rank + 1, kind: kind, v: v}
	}
}

func (st *spanState) applyPrefix(k string, v pcommon.Value, idx int) {
	for i := range prefixIndex[k[0]] {
		pr := &prefixIndex[k[0]][i]
		if !strings.HasPrefix(k, pr.prefix) {
			continue
		}
		rest := k[len(pr.prefix):]
		if pr.indexed && (rest == "" || rest[0] < '0' || rest[0] > '9') {
			continue
		}
		if pr.dialect > st.dialect {
			st.dialect = pr.dialect
		}
		if pr.content == nil {
			continue
		}
		if pr.content.suffix != "" || !pr.content.role.stored() {
			// Content with no column (document contents...): drop_content only.
			if rest != "" && strings.HasSuffix(k, pr.content.suffix) {
				st.hasContent = true
				st.remove = append(st.remove, removal{idx: idx, role: toOther})
			}
			continue
		}
		if rest == "" || rest[0] < '0' || rest[0] > '9' {
			continue
		}
		n, path, ok := parseFlatKey(rest)
		if !ok {
			continue
		}
		if path == "finish_reason" {
			// Not content: a last-resort finish reason.
			sl := &st.slots[fFinishReason]
			if sl.rank == 0 || sl.rank > lowestRank {
				if s, ok := readFinishReason(v); ok {
					sl.s, sl.rank = s, lowestRank
				}
			}
			continue
		}
		st.hasContent = true
		st.remove = append(st.remove, removal{idx: idx, role: pr.content.role, rank: pr.rank, kind: pr.content.kind, v: v})
		st.flat = append(st.flat, flatEntry{role: pr.content.role, kind: pr.content.kind, idx: n, path: path, value: v})
		st.offer(pr.content.role, pr.content.kind, pr.rank, v)
	}
}

const lowestRank = 250

// mapped is the result of mapping one span: the canonical fields, resolved.
type mapped struct {
	isGeneration                       bool
	tokens                             [6]int64 // input, output, total, cached, cache write, reasoning
	hasTokens                          [6]bool
	inCost, outCost, totalCost         float64
	hasIn, hasOut, hasTotal            bool
	costSource                         string
	ttft                               float64
	hasTTFT                            bool
	streamed, hasStreamed              bool
	prompt, completion                 string
	hasPrompt, hasCompletion           bool
	session, customer, model, reqModel string
	provider, operation, finish        string
	source                             string
	adjustments                        []string // fallom.tokens_adjusted
	costPartial                        string   // fallom.cost_partial: the part of a reported cost that is missing
	cacheWrite1h                       int64    // part of the cache writes kept 1 hour (priced apart)
	priceSource                        string   // the price table that computed the cost
	experiment                         [len(experimentFields)]experimentValue
}

// experimentValue is one Fallom SDK experiment field, resolved.
type experimentValue struct {
	s   string
	i   int64
	has bool
}

// experimentFields are the Fallom SDK experiment fields (DESIGN 6), each
// written as its canonical attribute: strings (keys) or ints (versions,
// the variant index).
var experimentFields = [...]struct {
	field field
	attr  string
	isInt bool
}{
	{fConfigKey, fallomattr.ConfigKey, false},
	{fConfigVersion, fallomattr.ConfigVersion, true},
	{fPromptKey, fallomattr.PromptKey, false},
	{fPromptVersion, fallomattr.PromptVersion, true},
	{fPromptABTestKey, fallomattr.PromptABTestKey, false},
	{fPromptVariantIndex, fallomattr.PromptVariantIndex, true},
}

const (
	tIn = iota
	tOut
	tTotal
	tCached
	tCacheWrite
	tReasoning
)

// mapSpan maps one span's attributes: read once, resolve, normalize content,
// remove consumed content, write the canonical fields.
func (p *mappingProcessor) mapSpan(st *spanState, span ptrace.Span, scopeDialect dialect, now time.Time, counts *batchCounts) {
	attrs := span.Attributes()
	st.reset()
	st.start = int64(span.StartTimestamp())
	st.read(attrs)
	if scopeDialect > st.dialect {
		st.dialect = scopeDialect
	}

	var m mapped
	p.resolve(st, &m)

	// Content is read while the attribute values are still in place; the
	// removals and writes below move them.
	if st.hasContent && !p.cfg.DropContent {
		p.resolveContent(st, &m)
	}
	if m.finish == "" && st.completion.rank != 0 && st.completion.kind == ckMessages {
		// semconv output messages carry a finish_reason each.
		m.finish = p.limitStr(st, outputFinishReason(st.completion.v), "finish_reason")
	}
	if events := span.Events(); events.Len() > 0 {
		p.mapEvents(st, events, &m)
	}
	if len(st.remove) > 0 && (p.cfg.DropContent || !p.cfg.KeepOriginalContent) {
		if !p.cfg.DropContent {
			st.keepUnstored(&m)
		}
		removeContent(attrs, st, p.cfg.DropContent)
	}

	if st.dialect == dFallom {
		applyStatus(span, st)
	}
	p.write(attrs, st, &m)
	if reason := suspectTimestamps(span.StartTimestamp(), span.EndTimestamp(), now); reason != "" {
		attrs.PutStr(fallomattr.FlagTimestampSuspect, reason)
		counts.suspectTimes++
	}
	if m.isGeneration {
		counts.generations++
	}
	counts.truncated += int64(len(st.truncated))
}

func (p *mappingProcessor) resolve(st *spanState, m *mapped) {
	s := &st.slots
	str := func(f field) string {
		if s[f].rank != 0 {
			return s[f].s
		}
		return ""
	}
	for _, f := range embeddedSources {
		if s[f].rank != 0 {
			readEmbedded(st)
			break
		}
	}
	m.session = p.limitID(st, str(fSession), "session_id")
	m.customer = p.limitID(st, str(fCustomer), "customer_id")
	m.reqModel = p.limitStr(st, str(fRequestedModel), "requested_model")
	m.model = p.limitStr(st, str(fModel), "model")
	m.provider = p.limitStr(st, str(fProvider), "provider")
	m.operation = p.limitStr(st, str(fOperation), "operation")
	m.finish = p.limitStr(st, str(fFinishReason), "finish_reason")

	resolveTokens(st, m)
	if s[fCacheWrite1h].rank != 0 {
		m.cacheWrite1h = min(s[fCacheWrite1h].i, maxTokens) // priced apart (pricing.Usage)
	}

	if s[fInputCost].rank != 0 {
		m.inCost, m.hasIn = s[fInputCost].f, true
	}
	if s[fOutputCost].rank != 0 {
		m.outCost, m.hasOut = s[fOutputCost].f, true
	}
	if s[fTotalCost].rank != 0 {
		m.totalCost, m.hasTotal = s[fTotalCost].f, true
	}
	if s[fCostJSON].rank != 0 {
		langfuseCost(s[fCostJSON].s, m)
	}
	switch {
	case m.hasTotal:
	case m.hasIn && m.hasOut:
		m.totalCost, m.hasTotal = m.inCost+m.outCost, true
	case m.hasIn || m.hasOut:
		// A part alone: the total is the part, and the span says which part
		// is missing, so a view that sums totals still counts the call.
		m.totalCost, m.hasTotal = m.inCost+m.outCost, true
		if m.hasIn {
			m.costPartial = "output"
		} else {
			m.costPartial = "input"
		}
	}

	// Reported values are finite each, but their sum may not be.
	m.hasIn, m.hasOut, m.hasTotal = m.hasIn && finite(m.inCost), m.hasOut && finite(m.outCost), m.hasTotal && finite(m.totalCost)

	if s[fTTFTms].rank != 0 {
		m.ttft, m.hasTTFT = s[fTTFTms].f, true
	} else if cs := &s[fCompletionStart]; cs.rank != 0 && st.start != 0 && cs.i >= st.start {
		// Langfuse: the time of the first token, against the span's start.
		m.ttft, m.hasTTFT = float64(cs.i-st.start)/1e6, true
	}
	if s[fStreamed].rank != 0 {
		m.streamed, m.hasStreamed = s[fStreamed].b, true
	}

	if s[fIsGeneration].rank != 0 {
		m.isGeneration = s[fIsGeneration].b
	} else {
		// No dialect marker: a span with a model and usage or cost is one
		// model call.
		anyUsage := m.hasTokens[tIn] || m.hasTokens[tOut] || m.hasTotal
		m.isGeneration = (m.model != "" || m.reqModel != "") && anyUsage
	}
	if m.model == "" {
		m.model = m.reqModel
	}

	reported := m.hasIn || m.hasOut || m.hasTotal
	switch {
	case reported:
		m.costSource = fallomattr.CostReported
		// A span this processor already mapped keeps its computed origin.
		if s[fTotalCost].rank == 1 && s[fCostSource].rank != 0 && s[fCostSource].s == fallomattr.CostComputed {
			m.costSource = fallomattr.CostComputed
		}
	case m.isGeneration:
		m.costSource = fallomattr.CostUnknown
		p.computeCost(m)
	}

	for i, ef := range experimentFields {
		sl := &s[ef.field]
		if sl.rank == 0 {
			continue
		}
		e := &m.experiment[i]
		if ef.isInt {
			e.i, e.has = sl.i, true
		} else if e.s = p.limitID(st, sl.s, ef.attr[len(fallomattr.Prefix):]); e.s != "" {
			e.has = true
		}
	}

	if s[fSource].rank != 0 {
		m.source = p.limitStr(st, s[fSource].s, "source")
	} else {
		m.source = dialectNames[st.dialect]
	}
}

// computeCost prices a generation that reported no cost: only when tokens and
// a price are known; otherwise the cost stays NULL (never 0).
func (p *mappingProcessor) computeCost(m *mapped) {
	if !m.hasTokens[tIn] && !m.hasTokens[tOut] {
		return
	}
	price, ok := p.pricer.Lookup(m.model)
	if !ok && m.reqModel != "" && m.reqModel != m.model {
		price, ok = p.pricer.Lookup(m.reqModel)
	}
	if !ok {
		return
	}
	in, out := price.Cost(pricing.Usage{
		Input: m.tokens[tIn], Output: m.tokens[tOut],
		CachedInput: m.tokens[tCached], CacheWriteInput: m.tokens[tCacheWrite],
		CacheWrite1hInput: m.cacheWrite1h,
	})
	m.costSource = fallomattr.CostComputed
	m.priceSource = price.Source
	m.totalCost, m.hasTotal = in+out, true
	if m.hasTokens[tIn] {
		m.inCost, m.hasIn = in, true
	}
	if m.hasTokens[tOut] {
		m.outCost, m.hasOut = out, true
	}
}

func (p *mappingProcessor) resolveContent(st *spanState, m *mapped) {
	u := &st.used
	if st.prompt.rank != 0 {
		m.prompt = p.contentOf(st, st.prompt, toPrompt, rolePrompt)
		if st.sysInstr.rank != 0 && st.prompt.kind != ckNormalized && st.prompt.kind != ckOpenRouter {
			if sys, ok := systemMessage(st.sysInstr.v); ok {
				m.prompt = prependMessage(sys, m.prompt)
				u[toSystemInstructions] = true
			}
		}
		m.hasPrompt, u[toPrompt] = true, true
	} else if st.sysInstr.rank != 0 {
		if sys, ok := systemMessage(st.sysInstr.v); ok {
			m.prompt, m.hasPrompt, u[toSystemInstructions] = marshalMsgs([]normMsg{sys}), true, true
		}
	}
	switch {
	case st.completion.rank != 0 && st.completion.kind == ckText && (st.toolCalls.rank != 0 || st.reasoning.rank != 0):
		m.completion = vercelCompletion(&st.completion.v, candPtr(st.toolCalls), candPtr(st.reasoning))
		u[toToolCalls], u[toReasoning] = st.toolCalls.rank != 0, st.reasoning.rank != 0
		m.hasCompletion, u[toCompletion] = true, true
	case st.completion.rank != 0:
		m.completion = p.contentOf(st, st.completion, toCompletion, roleCompletion)
		m.hasCompletion, u[toCompletion] = true, true
	case st.toolCalls.rank != 0 || st.reasoning.rank != 0:
		m.completion = vercelCompletion(nil, candPtr(st.toolCalls), candPtr(st.reasoning))
		u[toToolCalls], u[toReasoning] = st.toolCalls.rank != 0, st.reasoning.rank != 0
		m.hasCompletion = true
	}
	if st.hints.hasStreamed && !m.hasStreamed {
		m.streamed, m.hasStreamed = st.hints.streamed, true
	}
}

func candPtr(c contentCand) *pcommon.Value {
	if c.rank == 0 {
		return nil
	}
	v := c.v
	return &v
}

func (p *mappingProcessor) contentOf(st *spanState, c contentCand, role contentRole, defRole string) string {
	if c.kind == ckFlatOpenInference || c.kind == ckFlatTraceloop {
		return assembleFlat(st.flat, role, c.kind, defRole)
	}
	return normalizeContent(c.kind, c.v, defRole, &st.hints)
}

// removeContent removes the content attributes recorded while reading:
// all of them with drop_content, otherwise those whose role was stored and
// that hold nothing the stored content does not (keepUnstored).
func removeContent(attrs pcommon.Map, st *spanState, drop bool) {
	i, next := 0, 0
	attrs.RemoveIf(func(string, pcommon.Value) bool {
		hit := false
		for ; next < len(st.remove) && st.remove[next].idx <= i; next++ {
			if st.remove[next].idx == i {
				r := &st.remove[next]
				hit = hit || drop || st.used[r.role] && !r.keep
			}
		}
		i++
		return hit
	})
}

// maxWrites bounds the attributes write adds (columns and flags), so the
// attribute slice grows once instead of several times.
const maxWrites = 33

func (p *mappingProcessor) write(attrs pcommon.Map, st *spanState, m *mapped) {
	attrs.EnsureCapacity(attrs.Len() + maxWrites)
	attrs.PutBool(fallomattr.IsGeneration, m.isGeneration)
	putStr(attrs, st, fallomattr.SessionID, m.session)
	putStr(attrs, st, fallomattr.CustomerID, m.customer)
	putStr(attrs, st, fallomattr.Model, m.model)
	putStr(attrs, st, fallomattr.RequestedModel, m.reqModel)
	putStr(attrs, st, fallomattr.Provider, m.provider)
	putStr(attrs, st, fallomattr.Operation, m.operation)
	for i, k := range [6]string{fallomattr.InputTokens, fallomattr.OutputTokens, fallomattr.TotalTokens, fallomattr.CachedInputTokens, fallomattr.CacheWriteInputTokens, fallomattr.ReasoningTokens} {
		if m.hasTokens[i] {
			attrs.PutInt(k, m.tokens[i])
		} else if st.hasFallom {
			attrs.Remove(k)
		}
	}
	putDouble(attrs, st, fallomattr.InputCostUSD, m.inCost, m.hasIn)
	putDouble(attrs, st, fallomattr.OutputCostUSD, m.outCost, m.hasOut)
	putDouble(attrs, st, fallomattr.TotalCostUSD, m.totalCost, m.hasTotal)
	putStr(attrs, st, fallomattr.CostSource, m.costSource)
	switch {
	case m.priceSource != "":
		attrs.PutStr(fallomattr.PriceSource, m.priceSource)
	case m.costSource != fallomattr.CostComputed && st.hasFallom:
		attrs.Remove(fallomattr.PriceSource) // kept only beside a computed cost
	}
	putStr(attrs, st, fallomattr.FinishReason, m.finish)
	putDouble(attrs, st, fallomattr.TimeToFirstTokenMs, m.ttft, m.hasTTFT)
	if m.hasStreamed {
		attrs.PutBool(fallomattr.Streamed, m.streamed)
	} else if st.hasFallom {
		attrs.Remove(fallomattr.Streamed)
	}
	switch {
	case p.cfg.DropContent:
		if st.hasContent {
			attrs.PutBool(fallomattr.FlagContentDropped, true)
		}
	default:
		if m.hasPrompt {
			attrs.PutStr(fallomattr.Prompt, p.limitContent(st, m.prompt, "prompt", rolePrompt))
		}
		if m.hasCompletion {
			attrs.PutStr(fallomattr.Completion, p.limitContent(st, m.completion, "completion", roleCompletion))
		}
	}
	putStr(attrs, st, fallomattr.Source, m.source)
	for i, ef := range experimentFields {
		switch e := &m.experiment[i]; {
		case e.has && ef.isInt:
			attrs.PutInt(ef.attr, e.i)
		case e.has:
			attrs.PutStr(ef.attr, e.s)
		case st.hasFallom:
			attrs.Remove(ef.attr)
		}
	}
	if m.costPartial != "" {
		attrs.PutEmptySlice(fallomattr.FlagCostPartial).AppendEmpty().SetStr(m.costPartial)
	}
	if len(m.adjustments) > 0 {
		sl := attrs.PutEmptySlice(fallomattr.FlagTokensAdjusted)
		sl.EnsureCapacity(len(m.adjustments))
		for _, r := range m.adjustments {
			sl.AppendEmpty().SetStr(r)
		}
	}
	if len(st.truncated) > 0 {
		sl := attrs.PutEmptySlice(fallomattr.FlagTruncated)
		sl.EnsureCapacity(len(st.truncated))
		for _, f := range st.truncated {
			sl.AppendEmpty().SetStr(f)
		}
	}
}

// putStr writes a known value; unknown values are left absent (NULL). An
// incoming fallom.* value that could not be read (wrong type, junk) is
// removed so that the exporter never stores it as a column.
func putStr(attrs pcommon.Map, st *spanState, k, v string) {
	if v != "" {
		attrs.PutStr(k, v)
	} else if st.hasFallom {
		attrs.Remove(k)
	}
}

func putDouble(attrs pcommon.Map, st *spanState, k string, v float64, ok bool) {
	if ok && finite(v) {
		attrs.PutDouble(k, v)
	} else if st.hasFallom {
		attrs.Remove(k)
	}
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// maxIDChars is DESIGN's limit for session and customer ids.
const maxIDChars = 256

func (p *mappingProcessor) limitID(st *spanState, s, name string) string {
	if len(s) <= maxIDChars && utf8.ValidString(s) {
		return s // the common case: short ASCII
	}
	cut := false
	if utf8.RuneCountInString(s) > maxIDChars {
		cut = true
		n := 0
		for i := range s {
			if n == maxIDChars {
				s = s[:i]
				break
			}
			n++
		}
	}
	s = validUTF8(s)
	if cut {
		st.truncated = append(st.truncated, name)
	}
	return s
}

// limitStr caps a short canonical string at max_value_bytes.
func (p *mappingProcessor) limitStr(st *spanState, s, name string) string {
	s = validUTF8(s)
	limit := p.cfg.MaxValueBytes
	if limit <= 0 || len(s) <= limit {
		return s
	}
	st.truncated = append(st.truncated, name)
	return cutUTF8(s, limit)
}

// limitContent keeps a normalized prompt/completion within max_value_bytes.
// A cut JSON text is no longer JSON, so an oversized value is stored as one
// message holding the beginning of the normalized text, marked truncated:
// the column stays a valid messages array.
func (p *mappingProcessor) limitContent(st *spanState, s, name, role string) string {
	// Content normalized by slicing the sent text keeps its bytes; invalid
	// UTF-8 there would make a protobuf exporter downstream refuse the batch.
	s = validUTF8(s)
	limit := p.cfg.MaxValueBytes
	if limit <= 0 || len(s) <= limit {
		return s
	}
	st.truncated = append(st.truncated, name)
	head := `[{"role":"` + role + `","truncated":true,"content":`
	budget := limit - len(head) - len(`}]`)
	n := budget
	for {
		b := make([]byte, 0, limit)
		b = append(b, head...)
		b = jsonenc.AppendString(b, cutUTF8(s, max(n, 0)))
		b = append(b, "}]"...)
		if len(b) <= limit || n <= 0 {
			return string(b)
		}
		n -= len(b) - limit // escapes only grow the text: shrink by the excess
	}
}

// validUTF8 replaces each run of bytes that are not UTF-8 with U+FFFD (inside
// a JSON string that keeps the JSON valid).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\ufffd")
}

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// applyStatus gives a Fallom SDK span the TraceData status its receiver
// kept as attributes ("status": "OK" | "ERROR", "error_message"), when the
// span's own status says nothing. A span status that is set wins.
func applyStatus(span ptrace.Span, st *spanState) {
	status := span.Status()
	msg := &st.slots[fErrorMessage]
	switch code := status.Code(); {
	case code == ptrace.StatusCodeUnset && st.slots[fStatus].rank != 0:
		switch strings.ToUpper(st.slots[fStatus].s) {
		case "ERROR":
			status.SetCode(ptrace.StatusCodeError)
			if msg.rank != 0 {
				status.SetMessage(validUTF8(msg.s))
			}
		case "OK":
			status.SetCode(ptrace.StatusCodeOk)
		}
	case code == ptrace.StatusCodeError && status.Message() == "" && msg.rank != 0:
		status.SetMessage(validUTF8(msg.s))
	}
}

var year2000 = uint64(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())

// suspectTimestamps explains why a span's timestamps cannot be trusted
// (0, before 2000, more than an hour in the future), or returns "".
func suspectTimestamps(start, end pcommon.Timestamp, now time.Time) string {
	future := uint64(now.Add(time.Hour).UnixNano())
	var reasons []string
	for _, t := range []struct {
		name string
		v    uint64
	}{{"start_time", uint64(start)}, {"end_time", uint64(end)}} {
		switch {
		case t.v == 0:
			reasons = append(reasons, t.name+" is 0")
		case t.v < year2000:
			reasons = append(reasons, t.name+" is before 2000")
		case t.v > future:
			reasons = append(reasons, t.name+" is more than 1h in the future")
		}
	}
	return strings.Join(reasons, "; ")
}
