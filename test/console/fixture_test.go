package console

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// call is one generation of the fixture, as the test sends it over OTLP
// (an OpenRouter Broadcast delivery: the generation and its two children)
// and as it expects to see it in the console.
type call struct {
	traceID, spanID string
	childA, childB  string
	start           time.Time
	duration        time.Duration
	session         string // "" = none
	customer        string // "" = none
	model, provider string
	in, out, cached int64
	cost            float64 // < 0: unknown (no cost on the span)
	errored         bool
	statusMessage   string
	prompt          string // gen_ai.prompt (OpenRouter's JSON)
	completion      string // gen_ai.completion
	extraAttr       string // a trace.metadata.note value
	name            string
}

// fixture is the data of one project and the figures the test expects.
type fixture struct {
	calls []call
}

var models = []struct{ model, provider string }{
	{"openai/gpt-4o-mini", "OpenAI"},
	{"anthropic/claude-haiku-4.5", "Amazon Bedrock"},
	{"google/gemini-2.5-flash", "Google Vertex"},
}

// unpriced is a model no price table knows: its calls that carry no cost
// keep an unknown (NULL) cost, where the processor would compute one for
// the models above.
var unpriced = struct{ model, provider string }{"in-house/support-ft-3", "Self-hosted"}

// normalFixture makes n generations, one every two hours up to now: 6 sessions,
// 4 customers, 3 models (and an in-house one whose calls have no cost), some
// errors; one call with tool calls and multi-part content.
func normalFixture(n int, now time.Time) fixture {
	rng := rand.New(rand.NewPCG(7, 42))
	var f fixture
	for i := range n {
		m := models[i%len(models)]
		c := call{
			traceID: hexID(16, rng), spanID: hexID(8, rng), childA: hexID(8, rng), childB: hexID(8, rng),
			start:    now.Add(-time.Duration(n-i) * 2 * time.Hour),
			duration: time.Duration(300+rng.IntN(4000)) * time.Millisecond,
			session:  fmt.Sprintf("sess-%d", i%6),
			customer: fmt.Sprintf("cust-%d", i%4),
			model:    m.model, provider: m.provider,
			in: int64(100 + rng.IntN(3000)), out: int64(10 + rng.IntN(400)),
			cost: float64(1+rng.IntN(5000)) / 1e6,
			name: "LLM Generation",
		}
		c.cached = c.in / 4
		if i%9 == 5 {
			c.errored, c.statusMessage, c.cost = true, "upstream provider returned 502", -1
		}
		if i%11 == 3 {
			c.cost = -1 // unknown cost
			c.model, c.provider = unpriced.model, unpriced.provider
		}
		if i%13 == 12 {
			c.session = "" // no session
		}
		c.prompt = promptJSON(fmt.Sprintf("Question %d: how warm is Oslo today?", i))
		c.completion = fmt.Sprintf(`{"completion":"Answer %d: about 3 degrees.","reasoning":null,"toolCalls":[]}`, i)
		if i == 1 {
			c.prompt = toolPrompt
		}
		f.calls = append(f.calls, c)
	}
	return f
}

const toolPrompt = `{"messages":[{"role":"system","content":"You are a weather bot."},` +
	`{"role":"user","content":[{"type":"text","text":"Weather in Oslo?"},{"type":"image_url","image_url":{"url":"https://example.com/map.png"}}]},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_7","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_7","content":"{\"celsius\":3}"}]}`

func promptJSON(text string) string {
	b, _ := json.Marshal(map[string]any{"messages": []map[string]any{
		{"role": "system", "content": "You are a helpful assistant."},
		{"role": "user", "content": text},
	}})
	return string(b)
}

func hexID(n int, rng *rand.Rand) string {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(b[i:], w[:])
	}
	return fmt.Sprintf("%x", b)
}

// otlp returns the calls as an OTLP/JSON request, one resourceSpans per
// span as OpenRouter sends them.
func (f fixture) otlp() []byte {
	td := ptrace.NewTraces()
	for _, c := range f.calls {
		addSpan := func() ptrace.Span {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "openrouter")
			rs.Resource().Attributes().PutStr("service.version", "1.0.0")
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("openrouter")
			return ss.Spans().AppendEmpty()
		}
		g := addSpan()
		g.SetTraceID(traceID(c.traceID))
		g.SetSpanID(spanID(c.spanID))
		g.SetName(c.name)
		g.SetKind(ptrace.SpanKindClient)
		g.SetStartTimestamp(pcommon.NewTimestampFromTime(c.start))
		g.SetEndTimestamp(pcommon.NewTimestampFromTime(c.start.Add(c.duration)))
		a := g.Attributes()
		a.PutStr("span.type", "generation")
		a.PutStr("gen_ai.operation.name", "chat")
		a.PutStr("gen_ai.request.model", c.model)
		a.PutStr("gen_ai.response.model", c.model)
		a.PutStr("trace.metadata.openrouter.provider_name", c.provider)
		if c.session != "" {
			a.PutStr("session.id", c.session)
		}
		if c.customer != "" {
			a.PutStr("user.id", c.customer)
		}
		if c.extraAttr != "" {
			a.PutStr("trace.metadata.note", c.extraAttr)
		}
		if c.errored {
			g.Status().SetCode(ptrace.StatusCodeError)
			g.Status().SetMessage(c.statusMessage)
			a.PutStr("span.level", "ERROR")
		} else {
			g.Status().SetCode(ptrace.StatusCodeOk)
			a.PutInt("gen_ai.usage.input_tokens", c.in)
			a.PutInt("gen_ai.usage.output_tokens", c.out)
			a.PutInt("gen_ai.usage.total_tokens", c.in+c.out)
			a.PutInt("gen_ai.usage.input_tokens.cached", c.cached)
			if c.cost >= 0 {
				a.PutDouble("gen_ai.usage.total_cost", c.cost)
			}
			a.PutStr("gen_ai.response.finish_reason", "stop")
			a.PutStr("gen_ai.prompt", c.prompt)
			a.PutStr("gen_ai.completion", c.completion)
		}
		for i, child := range []string{c.childA, c.childB} {
			s := addSpan()
			s.SetTraceID(traceID(c.traceID))
			s.SetSpanID(spanID(child))
			s.SetParentSpanID(spanID(c.spanID))
			s.SetKind(ptrace.SpanKindServer)
			if i == 0 {
				s.SetName("provider attempt 1: " + c.provider)
			} else {
				s.SetName("generation")
			}
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(c.start.Add(time.Duration(i+1) * 10 * time.Millisecond)))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(c.start.Add(c.duration - 5*time.Millisecond)))
			s.Attributes().PutStr("span.type", "span")
			s.Attributes().PutStr("gen_ai.operation.name", "chat")
		}
	}
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	return b
}

func traceID(h string) pcommon.TraceID {
	var id pcommon.TraceID
	if b, err := hex.DecodeString(h); err != nil || copy(id[:], b) != len(id) {
		panic("bad trace id " + h)
	}
	return id
}

func spanID(h string) pcommon.SpanID {
	var id pcommon.SpanID
	if b, err := hex.DecodeString(h); err != nil || copy(id[:], b) != len(id) {
		panic("bad span id " + h)
	}
	return id
}

// Expected figures, computed from the calls.

type totals struct {
	generations, errors, in, out int64
	cost                         float64
	sessions, customers          map[string]bool
}

func (f fixture) totals(keep func(*call) bool) totals {
	t := totals{sessions: map[string]bool{}, customers: map[string]bool{}}
	for i := range f.calls {
		c := &f.calls[i]
		if keep != nil && !keep(c) {
			continue
		}
		t.generations++
		if c.errored {
			t.errors++
		} else {
			t.in += c.in
			t.out += c.out
		}
		if c.cost > 0 {
			t.cost += c.cost
		}
		if c.session != "" {
			t.sessions[c.session] = true
		}
		if c.customer != "" {
			t.customers[c.customer] = true
		}
	}
	return t
}
