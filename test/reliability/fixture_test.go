package reliability

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// spanKey identifies a stored span: lowercase hex ids, as the spans table
// holds them.
type spanKey struct{ traceID, spanID string }

func (k spanKey) String() string { return k.traceID + "/" + k.spanID }

// idSource hands out trace and span ids that are unique within one test:
// a per-source tag in the high half and a counter in the low half, so the
// ids a test sent can be told apart from anything else in the database.
type idSource struct {
	tag  uint64
	next atomic.Uint64
}

func newIDSource(tag uint64) *idSource { return &idSource{tag: tag} }

func (s *idSource) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], s.tag)
	binary.BigEndian.PutUint64(id[8:], s.next.Add(1))
	return id
}

func (s *idSource) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], s.tag<<32|s.next.Add(1)&0xffffffff)
	return id
}

func (s *idSource) traceHex() string { id := s.traceID(); return hex.EncodeToString(id[:]) }

func (s *idSource) spanHex() string { id := s.spanID(); return hex.EncodeToString(id[:]) }

func keyOf(sp ptrace.Span) spanKey {
	t, s := sp.TraceID(), sp.SpanID()
	return spanKey{hex.EncodeToString(t[:]), hex.EncodeToString(s[:])}
}

// spanKeys lists the ids of every span in td.
func spanKeys(td ptrace.Traces) []spanKey {
	var keys []spanKey
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				keys = append(keys, keyOf(spans.At(k)))
			}
		}
	}
	return keys
}

// deliveryShape sizes the generated OpenRouter deliveries.
type deliveryShape struct {
	// promptBytes is the length of the user message; OpenRouter repeats the
	// prompt under gen_ai.prompt, span.input and trace.input.
	promptBytes int
	// session and customer override the grouping ids (defaults derive from
	// the trace id).
	session, customer string
}

// appendOpenRouterDelivery adds one OpenRouter Broadcast delivery as it
// really arrives (CONVENTIONS section 1): a root `LLM Generation` span
// (span.type=generation, usage, reported cost, prompt and completion three
// times) and its `provider attempt 1: ...` and `generation` children, each in
// its own resourceSpans element with scope `openrouter`.
func appendOpenRouterDelivery(td ptrace.Traces, ids *idSource, shape deliveryShape, now time.Time) {
	traceID := ids.traceID()
	rootID := ids.spanID()
	session, customer := shape.session, shape.customer
	if session == "" {
		session = fmt.Sprintf("sess-%x", traceID[12:])
	}
	if customer == "" {
		customer = fmt.Sprintf("cust-%x", traceID[14:])
	}
	start := now.Add(-3 * time.Second)
	prompt := `{"messages":[{"role":"system","content":"You are a terse travel assistant."},{"role":"user","content":"` +
		filler(shape.promptBytes) + `"}]}`
	completion := `{"completion":"TP1234 leaves Lisbon at 08:10.","reasoning":null,"toolCalls":[]}`

	newSpan := func(name string, kind ptrace.SpanKind, parent pcommon.SpanID, id pcommon.SpanID) ptrace.Span {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", "openrouter")
		ra.PutStr("service.version", "1.0.0")
		ra.PutStr("openrouter.trace.id", fmt.Sprintf("gen-%d-%x", now.Unix(), traceID[8:]))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("openrouter")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(id)
		sp.SetParentSpanID(parent)
		sp.SetName(name)
		sp.SetKind(kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		sp.Status().SetCode(ptrace.StatusCodeOk)
		a := sp.Attributes()
		a.PutStr("span.level", "DEFAULT")
		a.PutStr("gen_ai.operation.name", "chat")
		a.PutStr("gen_ai.response.id", fmt.Sprintf("gen-%d-%x", now.Unix(), traceID[8:]))
		return sp
	}

	root := newSpan("LLM Generation", ptrace.SpanKindServer, pcommon.SpanID{}, rootID)
	a := root.Attributes()
	a.PutStr("trace.name", "OpenRouter Request")
	a.PutStr("span.type", "generation")
	a.PutStr("user.id", customer)
	a.PutStr("session.id", session)
	a.PutStr("gen_ai.system", "anthropic")
	a.PutStr("gen_ai.provider.name", "anthropic")
	a.PutStr("gen_ai.request.model", "anthropic/claude-haiku-4.5")
	a.PutStr("gen_ai.response.model", "anthropic/claude-haiku-4.5")
	a.PutInt("gen_ai.usage.input_tokens", 2489)
	a.PutInt("gen_ai.usage.output_tokens", 87)
	a.PutInt("gen_ai.usage.total_tokens", 2576)
	a.PutInt("gen_ai.usage.input_tokens.cached", 2048)
	a.PutDouble("gen_ai.usage.input_cost", 0.0004537)
	a.PutDouble("gen_ai.usage.output_cost", 0.000435)
	a.PutDouble("gen_ai.usage.total_cost", 0.0008887)
	a.PutStr("gen_ai.response.finish_reason", "stop")
	a.PutStr("trace.metadata.openrouter.provider_name", "Amazon Bedrock")
	a.PutStr("trace.metadata.openrouter.provider_slug", "amazon-bedrock")
	a.PutStr("trace.metadata.openrouter.finish_reason", "stop")
	a.PutStr("gen_ai.prompt", prompt)
	a.PutStr("span.input", prompt)
	a.PutStr("trace.input", prompt)
	a.PutStr("gen_ai.completion", completion)
	a.PutStr("span.output", completion)
	a.PutStr("trace.output", completion)

	attempt := newSpan("provider attempt 1: Amazon Bedrock", ptrace.SpanKindClient, rootID, ids.spanID())
	attempt.Attributes().PutStr("span.type", "span")
	attempt.Attributes().PutStr("trace.metadata.openrouter.provider_name", "Amazon Bedrock")
	attempt.Attributes().PutInt("span.metadata.status_code", 200)
	gen := newSpan("generation", ptrace.SpanKindClient, rootID, ids.spanID())
	gen.Attributes().PutStr("span.type", "span")
}

// openRouterTraces returns n deliveries (3 spans each) and their span ids.
func openRouterTraces(ids *idSource, n int, shape deliveryShape) (ptrace.Traces, []spanKey) {
	td := ptrace.NewTraces()
	now := time.Now()
	for range n {
		appendOpenRouterDelivery(td, ids, shape, now)
	}
	return td, spanKeys(td)
}

// simpleTraces returns one resource with n plain spans (no GenAI
// attributes), for cases that only care about rows.
func simpleTraces(ids *idSource, n int, name string) (ptrace.Traces, []spanKey) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "reliability")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("reliability")
	now := time.Now()
	traceID := ids.traceID()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(ids.spanID())
		sp.SetName(fmt.Sprintf("%s-%d", name, i))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	return td, spanKeys(td)
}

func jsonBody(td ptrace.Traces) []byte {
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err) // pdata marshals any Traces it built
	}
	return b
}

func protoBody(td ptrace.Traces) []byte {
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	return b
}

// filler is n bytes of plain ASCII prose (no JSON escapes needed).
func filler(n int) string {
	const words = "please find a direct flight from lisbon to oslo next friday morning with one bag "
	if n <= 0 {
		return ""
	}
	return strings.Repeat(words, n/len(words)+1)[:n]
}
