// Package loadgen generates realistic OpenRouter Broadcast deliveries and
// sends them as OTLP/HTTP JSON to a collector on this machine, counting only
// the spans the collector acknowledged.
//
// A delivery is what OpenRouter sends for one API request: a root
// `LLM Generation` span (span.type=generation, ~60 attributes: usage, cost,
// prompt and completion three times each, latency breakdown, metadata) and its
// `provider attempt 1: <Provider>` and `generation` children, each span in its
// own resourceSpans element with scope `openrouter`, intValue as bare JSON
// numbers and lowercase hex ids (CONVENTIONS.md section 1). The payload is
// written with byte appends from precomputed pieces so that the generator
// costs far less CPU than the collector decoding it.
package loadgen

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// SpansPerDelivery is the number of spans in one OpenRouter delivery: the
// root generation span, one provider attempt and the generation child.
const SpansPerDelivery = 3

// DeliveryConfig shapes the generated deliveries.
type DeliveryConfig struct {
	// PromptBytes is the size of the user message of each prompt. The prompt
	// is sent three times per root span (gen_ai.prompt, span.input,
	// trace.input), as OpenRouter does.
	PromptBytes int
	// CompletionBytes is the size of the completion text (also sent three
	// times).
	CompletionBytes int
	// Sessions and Customers are the number of distinct session.id and
	// user.id values; each session belongs to one customer.
	Sessions  int
	Customers int
	// ErrorRate is the fraction of deliveries that are failed generations
	// (status ERROR, exception event, no usage or cost).
	ErrorRate float64
}

// DefaultDeliveryConfig is a mid-sized chat request: a 2 KiB user message and
// a 512-byte answer, spread over 5000 sessions of 1000 customers, 2% failures.
func DefaultDeliveryConfig() DeliveryConfig {
	return DeliveryConfig{PromptBytes: 2048, CompletionBytes: 512, Sessions: 5000, Customers: 1000, ErrorRate: 0.02}
}

// Validate reports a configuration that cannot generate deliveries.
func (c DeliveryConfig) Validate() error {
	switch {
	case c.PromptBytes < 0 || c.PromptBytes > 8<<20:
		return fmt.Errorf("prompt bytes %d: must be between 0 and 8 MiB", c.PromptBytes)
	case c.CompletionBytes < 0 || c.CompletionBytes > 8<<20:
		return fmt.Errorf("completion bytes %d: must be between 0 and 8 MiB", c.CompletionBytes)
	case c.Sessions < 1:
		return fmt.Errorf("sessions %d: need at least 1", c.Sessions)
	case c.Customers < 1 || c.Customers > c.Sessions:
		return fmt.Errorf("customers %d: need between 1 and sessions (%d)", c.Customers, c.Sessions)
	case c.ErrorRate < 0 || c.ErrorRate > 1:
		return fmt.Errorf("error rate %v: must be within [0, 1]", c.ErrorRate)
	}
	return nil
}

// model is one model as OpenRouter reports it, with the provider that serves
// it and its per-token prices.
type model struct {
	slug, author, providerName, providerSlug string
	inputPrice, outputPrice                  float64
	nativeFinish                             string
}

var models = []model{
	{"openai/gpt-4o-mini", "openai", "OpenAI", "openai", 1.5e-07, 6e-07, "stop"},
	{"anthropic/claude-haiku-4.5", "anthropic", "Amazon Bedrock", "amazon-bedrock/global", 1e-06, 5e-06, "end_turn"},
	{"anthropic/claude-sonnet-4.5", "anthropic", "Anthropic", "anthropic", 3e-06, 1.5e-05, "end_turn"},
	{"google/gemini-2.5-flash", "google", "Google Vertex", "google-vertex", 3e-07, 2.5e-06, "STOP"},
	{"meta-llama/llama-3.3-70b-instruct", "meta-llama", "DeepInfra", "deepinfra/fp8", 1.3e-07, 3.9e-07, "stop"},
	{"deepseek/deepseek-chat-v3.1", "deepseek", "DeepSeek", "deepseek", 2.7e-07, 1.1e-06, "stop"},
}

const variants = 8 // distinct prompt/completion texts per generator

// Generator writes deliveries. It is safe for concurrent use: all mutable
// state (the random source) is passed in by the caller.
type Generator struct {
	cfg         DeliveryConfig
	prompts     [variants]string   // JSON-quoted gen_ai.prompt values
	completions [variants][]string // [variant][model] JSON-quoted gen_ai.completion values
	responses   [variants][]string // [variant][model] JSON-quoted provider_responses values
	sessions    []string
	customers   []string
}

// NewGenerator precomputes the prompt and completion texts and the id pools.
func NewGenerator(cfg DeliveryConfig) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg}
	rng := rand.New(rand.NewPCG(1, 2)) // texts are fixed: only ids and numbers vary per delivery
	for v := range variants {
		userText := filler(rng, cfg.PromptBytes)
		prompt := map[string]any{"messages": []map[string]any{
			{"role": "system", "content": "You are a helpful assistant for an online store. Answer in the customer's language."},
			{"role": "user", "content": userText},
		}}
		g.prompts[v] = quoteJSON(mustJSON(prompt))
		completion := filler(rng, cfg.CompletionBytes)
		for _, m := range models {
			c := map[string]any{
				"completion": completion, "reasoning": nil, "toolCalls": []any{},
				"rawRequest": map[string]any{"model": m.slug, "messages": "<omitted>", "stream": v%2 == 0, "temperature": 0.7},
			}
			g.completions[v] = append(g.completions[v], quoteJSON(mustJSON(c)))
			r := []map[string]any{{"provider": m.providerName, "status": 200, "endpoint_id": "ep-" + m.providerSlug, "model_permaslug": m.slug + "-2025", "latency_ms": 200 + 37*v}}
			g.responses[v] = append(g.responses[v], quoteJSON(mustJSON(r)))
		}
	}
	g.customers = make([]string, cfg.Customers)
	for i := range g.customers {
		g.customers[i] = fmt.Sprintf("customer-%06d", i)
	}
	g.sessions = make([]string, cfg.Sessions)
	for i := range g.sessions {
		g.sessions[i] = fmt.Sprintf("session-%07d-%04x", i, rng.Uint32()&0xffff)
	}
	return g, nil
}

// Payload appends an OTLP/HTTP JSON request body holding n deliveries to buf
// and returns it with the number of spans it holds. Every delivery has fresh
// random trace and span ids.
func (g *Generator) Payload(buf []byte, rng *rand.Rand, n int, now time.Time) ([]byte, int) {
	buf = append(buf, `{"resourceSpans":[`...)
	for i := range n {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = g.appendDelivery(buf, rng, now)
	}
	buf = append(buf, "]}"...)
	return buf, n * SpansPerDelivery
}

// ids of one delivery, lowercase hex.
type ids struct {
	trace             [32]byte
	root, attempt, gn [16]byte
}

func newIDs(rng *rand.Rand) ids {
	var d ids
	var raw [16]byte
	putU64(raw[:8], rng.Uint64())
	putU64(raw[8:], rng.Uint64())
	hex.Encode(d.trace[:], raw[:])
	for _, dst := range []*[16]byte{&d.root, &d.attempt, &d.gn} {
		putU64(raw[:8], rng.Uint64()|1) // never the all-zero (invalid) span id
		hex.Encode(dst[:], raw[:8])
	}
	return d
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func (g *Generator) appendDelivery(b []byte, rng *rand.Rand, now time.Time) []byte {
	id := newIDs(rng)
	m := models[rng.IntN(len(models))]
	mi := modelIndex(m.slug)
	v := rng.IntN(variants)
	s := rng.IntN(len(g.sessions))
	session := g.sessions[s]
	customer := g.customers[s%len(g.customers)]
	failed := g.cfg.ErrorRate > 0 && rng.Float64() < g.cfg.ErrorRate

	var gen [20]byte
	for i := range gen {
		gen[i] = alnum[rng.IntN(len(alnum))]
	}
	genID := "gen-" + strconv.FormatInt(now.Unix(), 10) + "-" + string(gen[:])

	// Timing: the request ended just now; first token after 150-1350 ms,
	// total 0.4-8 s.
	totalMs := 400 + rng.IntN(7600)
	firstMs := 150 + rng.IntN(1200)
	if firstMs > totalMs {
		firstMs = totalMs
	}
	end := now.UnixNano()
	start := end - int64(totalMs)*int64(time.Millisecond)
	first := start + int64(firstMs)*int64(time.Millisecond)

	res := func(b []byte) []byte {
		b = append(b, `{"resource":{"attributes":[`...)
		b = strAttr(b, "service.name", "openrouter")
		b = append(b, ',')
		b = strAttr(b, "openrouter.trace.id", genID)
		b = append(b, ',')
		b = strAttr(b, "service.version", "1.0.0")
		return append(b, `]},"scopeSpans":[{"scope":{"name":"openrouter"},"spans":[`...)
	}
	const resEnd = `]}]}`

	// Root generation span.
	b = res(b)
	b = spanHead(b, id.trace[:], id.root[:], nil, "LLM Generation", 3, start, end)
	b = append(b, `"attributes":[`...)
	b = strAttr(b, "trace.name", "OpenRouter Request")
	b = append(b, ',')
	b = strAttr(b, "span.type", "generation")
	b = append(b, ',')
	if failed {
		b = strAttr(b, "span.level", "ERROR")
		b = append(b, ',')
		b = strAttr(b, "span.status_message", "Provider returned error: 502 upstream timeout")
	} else {
		b = strAttr(b, "span.level", "DEFAULT")
	}
	b = append(b, ',')
	b = strAttr(b, "user.id", customer)
	b = append(b, ',')
	b = strAttr(b, "session.id", session)
	b = append(b, ',')
	b = strAttr(b, "gen_ai.operation.name", "chat")
	b = append(b, ',')
	b = strAttr(b, "gen_ai.system", m.author)
	b = append(b, ',')
	b = strAttr(b, "gen_ai.provider.name", m.author)
	b = append(b, ',')
	b = strAttr(b, "gen_ai.request.model", m.slug)
	b = append(b, ',')
	b = strAttr(b, "gen_ai.response.model", m.slug)
	b = append(b, ',')
	b = strAttr(b, "gen_ai.response.id", genID)
	b = append(b, ',')
	prompt, completion := g.prompts[v], g.completions[v][mi]
	for _, k := range [...]string{"gen_ai.prompt", "span.input", "trace.input"} {
		b = quotedAttr(b, k, prompt)
		b = append(b, ',')
	}
	if !failed {
		for _, k := range [...]string{"gen_ai.completion", "span.output", "trace.output"} {
			b = quotedAttr(b, k, completion)
			b = append(b, ',')
		}
		cached := 0
		if rng.IntN(3) == 0 {
			cached = 1024 * (1 + rng.IntN(4))
		}
		cacheWrite := 0
		if cached == 0 && rng.IntN(5) == 0 {
			cacheWrite = 512 + rng.IntN(2048)
		}
		input := 200 + g.cfg.PromptBytes/4 + rng.IntN(4000) + cached + cacheWrite
		reasoning := 0
		if rng.IntN(4) == 0 {
			reasoning = rng.IntN(2000)
		}
		output := 10 + g.cfg.CompletionBytes/4 + rng.IntN(800) + reasoning
		inCost := float64(input) * m.inputPrice
		outCost := float64(output) * m.outputPrice
		b = intAttr(b, "gen_ai.usage.input_tokens", input)
		b = append(b, ',')
		b = intAttr(b, "gen_ai.usage.output_tokens", output)
		b = append(b, ',')
		b = intAttr(b, "gen_ai.usage.total_tokens", input+output)
		b = append(b, ',')
		b = intAttr(b, "gen_ai.usage.input_tokens.cached", cached)
		b = append(b, ',')
		b = intAttr(b, "gen_ai.usage.input_tokens.cache_write", cacheWrite)
		b = append(b, ',')
		b = intAttr(b, "gen_ai.usage.input_tokens.cache_write_5m", cacheWrite)
		b = append(b, ',')
		b = intAttr(b, "gen_ai.usage.input_tokens.cache_write_1h", 0)
		b = append(b, ',')
		b = intAttr(b, "gen_ai.usage.output_tokens.reasoning", reasoning)
		b = append(b, ',')
		b = doubleAttr(b, "gen_ai.usage.input_cost", inCost)
		b = append(b, ',')
		b = doubleAttr(b, "gen_ai.usage.output_cost", outCost)
		b = append(b, ',')
		b = doubleAttr(b, "gen_ai.usage.total_cost", inCost+outCost)
		b = append(b, ',')
		finish := "stop"
		if rng.IntN(10) == 0 {
			finish = "length"
		}
		b = strAttr(b, "gen_ai.response.finish_reasons", `["`+finish+`"]`)
		b = append(b, ',')
		b = strAttr(b, "gen_ai.response.finish_reason", finish)
		b = append(b, ',')
		b = strAttr(b, "trace.metadata.openrouter.finish_reason", m.nativeFinish)
		b = append(b, ',')
		b = doubleAttr(b, "trace.metadata.openrouter_generation.usage", inCost+outCost)
		b = append(b, ',')
		b = doubleAttr(b, "trace.metadata.openrouter_generation.usage_upstream", (inCost+outCost)*0.95)
		b = append(b, ',')
		b = doubleAttr(b, "trace.metadata.openrouter_generation.usage_cache", float64(cached)*m.inputPrice*-0.9)
		b = append(b, ',')
		b = intAttr(b, "trace.metadata.openrouter_generation.tokens_prompt", input)
		b = append(b, ',')
		b = intAttr(b, "trace.metadata.openrouter_generation.tokens_completion", output)
		b = append(b, ',')
	}
	b = strAttr(b, "trace.metadata.openrouter.provider_name", m.providerName)
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter.provider_slug", m.providerSlug)
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter.api_key_name", "production")
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter.entity_id", "org_2bench0000000000000000000")
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter.creator_user_id", "user_2bench0000000000000000001")
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter.source", "openrouter")
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.input_unit_price", m.inputPrice)
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.output_unit_price", m.outputPrice)
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.first_token_ms", float64(firstMs))
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.router_latency_ms", float64(20+rng.IntN(60)))
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.provider_request_ms", float64(totalMs-30))
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.provider_headers_ms", float64(firstMs-10))
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.provider_body_end_ms", float64(totalMs-5))
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.provider_time_to_first_token_ms", float64(firstMs-25))
	b = append(b, ',')
	b = doubleAttr(b, "trace.metadata.openrouter.inter_token_latency_ms", 8+rng.Float64()*20)
	b = append(b, ',')
	b = quotedAttr(b, "trace.metadata.provider_responses", g.responses[v][mi])
	b = append(b, ',')
	b = quotedAttr(b, "span.metadata.provider_responses", g.responses[v][mi])
	b = append(b, ',')
	b = boolAttr(b, "trace.metadata.openrouter_generation.streamed", v%2 == 0)
	b = append(b, ',')
	b = boolAttr(b, "trace.metadata.openrouter_generation.is_byok", false)
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter_generation.app.title", "Bench Shop Assistant")
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter_generation.external_user", customer)
	// Caller metadata from the request's `trace` object, sent twice.
	for _, kv := range [...][2]string{{"environment", "production"}, {"feature", "checkout-help"}, {"app_version", "4.12.0"}, {"tenant", "tenant-" + customer[len(customer)-2:]}} {
		b = append(b, ',')
		b = strAttr(b, "trace.metadata."+kv[0], kv[1])
		b = append(b, ',')
		b = strAttr(b, "span.metadata."+kv[0], kv[1])
	}
	b = append(b, ']')
	if failed {
		b = append(b, `,"events":[{"timeUnixNano":"`...)
		b = strconv.AppendInt(b, end, 10)
		b = append(b, `","name":"exception","attributes":[`...)
		b = strAttr(b, "exception.type", "ProviderError")
		b = append(b, ',')
		b = strAttr(b, "exception.message", "Provider returned error: 502 upstream timeout")
		b = append(b, `]}],"status":{"code":2,"message":"Provider returned error: 502 upstream timeout"}}`...)
	} else {
		b = append(b, `,"status":{"code":1}}`...)
	}
	b = append(b, resEnd...)

	// provider attempt 1: <Provider>.
	b = append(b, ',')
	b = res(b)
	b = spanHead(b, id.trace[:], id.attempt[:], id.root[:], "provider attempt 1: "+m.providerName, 2, start, first)
	b = append(b, `"attributes":[`...)
	b = strAttr(b, "span.type", "span")
	b = append(b, ',')
	b = strAttr(b, "span.level", "DEFAULT")
	b = append(b, ',')
	b = intAttr(b, "span.metadata.attempt_index", 0)
	b = append(b, ',')
	status := 200
	if failed {
		status = 502
	}
	b = intAttr(b, "span.metadata.status_code", status)
	b = append(b, ',')
	b = boolAttr(b, "span.metadata.is_byok", false)
	b = append(b, ',')
	b = strAttr(b, "span.metadata.endpoint_id", "ep-"+m.providerSlug)
	b = append(b, ',')
	b = strAttr(b, "span.metadata.model_permaslug", m.slug+"-2025")
	b = append(b, ',')
	b = strAttr(b, "gen_ai.operation.name", "chat")
	b = append(b, ',')
	b = strAttr(b, "gen_ai.response.id", genID+":attempt-0")
	b = append(b, ',')
	b = strAttr(b, "trace.metadata.openrouter.provider_name", m.providerName)
	b = append(b, `],"status":{"code":1}}`...)
	b = append(b, resEnd...)

	// generation.
	b = append(b, ',')
	b = res(b)
	b = spanHead(b, id.trace[:], id.gn[:], id.root[:], "generation", 2, first, end)
	b = append(b, `"attributes":[`...)
	b = strAttr(b, "span.type", "span")
	b = append(b, ',')
	b = strAttr(b, "span.level", "DEFAULT")
	b = append(b, ',')
	b = strAttr(b, "gen_ai.operation.name", "chat")
	b = append(b, ',')
	b = strAttr(b, "gen_ai.response.id", genID+":generation")
	b = append(b, `],"status":{"code":1}}`...)
	return append(b, resEnd...)
}

func modelIndex(slug string) int {
	for i, m := range models {
		if m.slug == slug {
			return i
		}
	}
	return 0
}

// spanHead writes a span object up to (not including) its attributes.
func spanHead(b, traceID, spanID, parentID []byte, name string, kind int, start, end int64) []byte {
	b = append(b, `{"traceId":"`...)
	b = append(b, traceID...)
	b = append(b, `","spanId":"`...)
	b = append(b, spanID...)
	if parentID != nil {
		b = append(b, `","parentSpanId":"`...)
		b = append(b, parentID...)
	}
	b = append(b, `","name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"kind":`...)
	b = strconv.AppendInt(b, int64(kind), 10)
	b = append(b, `,"startTimeUnixNano":"`...)
	b = strconv.AppendInt(b, start, 10)
	b = append(b, `","endTimeUnixNano":"`...)
	b = strconv.AppendInt(b, end, 10)
	return append(b, `",`...)
}

func attrKey(b []byte, key string) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, key)
	return append(b, `,"value":{`...)
}

func strAttr(b []byte, key, val string) []byte {
	b = attrKey(b, key)
	b = append(b, `"stringValue":`...)
	b = appendJSONString(b, val)
	return append(b, "}}"...)
}

// quotedAttr writes a string attribute whose value is already JSON-quoted.
func quotedAttr(b []byte, key, quoted string) []byte {
	b = attrKey(b, key)
	b = append(b, `"stringValue":`...)
	b = append(b, quoted...)
	return append(b, "}}"...)
}

// intAttr writes intValue as a bare JSON number, as OpenRouter does (the
// proto3 JSON mapping would quote it).
func intAttr(b []byte, key string, v int) []byte {
	b = attrKey(b, key)
	b = append(b, `"intValue":`...)
	b = strconv.AppendInt(b, int64(v), 10)
	return append(b, "}}"...)
}

func doubleAttr(b []byte, key string, v float64) []byte {
	b = attrKey(b, key)
	b = append(b, `"doubleValue":`...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, "}}"...)
}

func boolAttr(b []byte, key string, v bool) []byte {
	b = attrKey(b, key)
	b = append(b, `"boolValue":`...)
	b = strconv.AppendBool(b, v)
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func quoteJSON(s string) string { return string(appendJSONString(nil, s)) }

func mustJSON(v any) string {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on literal maps above
	}
	return string(out)
}

var words = strings.Fields(`the order shipping refund customer please help with my account invoice
product size color return policy delivery address payment card failed warranty discount code
"quoted" tab\tnewline\nunicode café naïve 数据 emoji 🙂 price total subscription cancel upgrade`)

// filler returns text of exactly n bytes made of words (including quotes,
// escapes and multi-byte characters, so the JSON encoding is exercised),
// cut at a rune boundary and padded with spaces.
func filler(rng *rand.Rand, n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		w := words[rng.IntN(len(words))]
		if sb.Len()+len(w)+1 > n {
			break
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(w)
	}
	for sb.Len() < n {
		sb.WriteByte(' ')
	}
	return sb.String()
}
