package openroutermappingprocessor

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// FuzzScanMatchesEncodingJSON: the hand-written scanner that slices
// OpenRouter content accepts exactly what encoding/json accepts, so what it
// passes through is always valid JSON.
func FuzzScanMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"role":"user","content":"hi"}]}`, `[]`, `{}`, `"a\u00e9\n"`, `-0.5e+10`, `01`, `1.`, `[1,]`,
		`{"a":1,}`, "\"\x01\"", `"\x"`, `"\ud800"`, `tru`, `nul`, ` [ true , false , null ] `, `{"a" "b"}`, `"abcdefghij\"klmnop"`,
		`"0123456789abcdef0123456789"`, "\"\xff\xfe\"", `[[[[[[[[[[]]]]]]]]]]`, `{"completion":null,"toolCalls":[]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validJSON(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", s, got, want)
		}
		forEachMember(s, func(key string, start, end int) bool {
			if !json.Valid([]byte(s[start:end])) {
				t.Fatalf("member value %q of %q is not JSON", s[start:end], s)
			}
			return true
		})
	})
}

// fuzzKeys are the keys the mapping knows, plus flattened and unknown ones.
// (A function: package variables are initialized before init() builds
// exactRules, so a variable would hold the extra keys only.)
var fuzzKeys = sync.OnceValue(func() []string {
	var ks []string
	for k := range exactRules {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return append(ks,
		"llm.input_messages.0.message.role", "llm.input_messages.0.message.content", "llm.input_messages.1.message.contents.0.message_content.text",
		"llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", "llm.input_messages.x.message.role", "llm.input_messages.",
		"gen_ai.prompt.0.role", "gen_ai.prompt.0.content", "gen_ai.completion.0.content", "gen_ai.completion.0.finish_reason",
		"gen_ai.prompt.99999999999999999999.role", "gen_ai.prompt.3", "trace.metadata.openrouter.x", "ai.x", "langfuse.x", "", "f", "x",
		"gen_ai.prompt.name", "llm.prompts.0.prompt.text", "llm.choices.0.completion.text", "retrieval.documents.0.document.content",
		"llm.output_messages.0.message.contents.0.message_content.type", "llm.output_messages.0.message.contents.0.message_content.text")
})

// fuzzStrings are values that exercise the content and number readers.
var fuzzStrings = []string{
	"", "generation", "span", "chat", "invoke_agent", "LLM", "True", "false", "12", "-5", "1e3", "NaN", "Inf", "0.1",
	`{"messages":[{"role":"user","content":"hi"}]}`, `{"completion":"x","reasoning":"r","toolCalls":[{"id":"1"}],"rawRequest":{"stream":true}}`,
	`[{"role":"user","parts":[{"type":"text","content":"a"},{"type":"tool_call","id":"1","name":"n","arguments":{"a":1}}]}]`,
	`[{"role":"tool","parts":[{"type":"tool_call_response","id":"1","response":{"x":[1,2]}}]}]`,
	`{"input":10,"output":"x","total":-1}`, `["stop"]`, `[`, `{"messages":`, `[1,2,3]`, `{"choices":[{"message":{"role":"assistant","content":null}}]}`,
	`{"system":"s","messages":[{"role":"user","content":[{"type":"image","image":"x"}]}]}`, "\xff\xfe", `"just a string"`, `{"role":"assistant"}`,
	`[{"toolCallId":"t","toolName":"n","args":{"a":1}}]`, `null`, `gpt-4o-mini-2024-07-18`, `openai/gpt-4o`, `claude-3-5-haiku@20241022`,
	"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", "5000000000000000000", "1e306", "reasoning", "anthropic.messages",
	`{"anthropic":{"usage":{"input_tokens":5,"cache_read_input_tokens":9}},"openrouter":{"usage":{"cost":1e308}}}`,
	`{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":99}}`, `"2026-11-26T11:00:00.5Z"`,
	// Fallom SDK: usage shapes, wrapper requests and responses, kinds.
	`{"input_tokens":5,"output_tokens":1,"cache_read_input_tokens":9,"cache_creation":{"ephemeral_1h_input_tokens":99}}`,
	`{"promptTokenCount":3,"candidatesTokenCount":1,"thoughtsTokenCount":7,"totalTokenCount":2}`,
	`{"inputTokens":9,"inputTokenDetails":{"noCacheTokens":9,"cacheReadTokens":4},"outputTokens":2,"outputTokenDetails":{"textTokens":5}}`,
	`{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f"}},{"text":"t","thought":true}]}],"systemInstruction":{"parts":[]}}`,
	`{"input":[{"type":"function_call_output","call_id":"1","output":null},"x",{"inlineData":{}}],"instructions":["a"]}`,
	`{"text":null,"toolCalls":[{"name":"f","arguments":{"a":1}}],"content":[{"type":"thinking","thinking":"r"}],"output":[{"type":"message","content":"x"}]}`,
	`{"responseMessages":[],"steps":[{"toolResults":[{"toolCallId":1}]},{},7],"object":null,"functionCall":{"name":2}}`,
	"llm", "agent", "ERROR", "generateText", "traceModel.doStream",
}

type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) u64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = r.byte()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

func (r *fuzzReader) str() string {
	if c := r.byte(); c < 200 {
		return fuzzStrings[int(c)%len(fuzzStrings)]
	}
	n := int(r.byte())
	n = min(n, len(r.b))
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *fuzzReader) value(v pcommon.Value, depth int) {
	switch r.byte() % 8 {
	case 0:
		v.SetStr(r.str())
	case 1:
		v.SetInt(int64(r.u64()))
	case 2:
		v.SetDouble(math.Float64frombits(r.u64()))
	case 3:
		v.SetDouble(float64(int64(r.byte()) - 20))
	case 4:
		v.SetBool(r.byte()%2 == 0)
	case 5:
		sl := v.SetEmptySlice()
		if depth < 3 {
			for n := r.byte() % 4; n > 0; n-- {
				r.value(sl.AppendEmpty(), depth+1)
			}
		}
	case 6:
		m := v.SetEmptyMap()
		if depth < 3 {
			for n := r.byte() % 4; n > 0; n-- {
				r.value(m.PutEmpty(r.str()), depth+1)
			}
		}
	case 7:
		v.SetEmptyBytes().FromRaw(r.b[:min(len(r.b), 4)])
	}
}

// t0 is a plausible span start for seeds (Nov 2026, unix nanoseconds).
const t0 = uint64(1795000000) * 1e9

// fuzzSeed encodes one span with the given attributes in fuzzReader's
// format, so that a known bad input is a seed of the corpus.
func fuzzSeed(start uint64, attrs map[string]any) []byte {
	b := []byte{0, 0} // one span, named fuzzStrings[0]
	b = binary.LittleEndian.AppendUint64(b, start)
	b = binary.LittleEndian.AppendUint64(b, start+1e9)
	ks := make([]string, 0, len(attrs))
	for k := range attrs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	b = append(b, byte(len(ks)))
	for _, k := range ks {
		i := slices.Index(fuzzKeys(), k)
		if i < 0 {
			panic("fuzzSeed: " + k + " is not in fuzzKeys")
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(i))
		switch v := attrs[k].(type) {
		case string:
			if len(v) > 255 {
				panic("fuzzSeed: string over 255 bytes")
			}
			b = append(b, 0, 200, byte(len(v)))
			b = append(b, v...)
		case int64:
			b = append(b, 1)
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case float64:
			b = append(b, 2)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		default:
			panic("fuzzSeed: unsupported value type")
		}
	}
	return append(b, 1) // no event (1 % 4)
}

// FuzzProcessAttributes feeds random attribute maps (known keys with random
// types and values) through every configuration: the processor must never
// fail or panic, and what it writes must keep the exporter contract.
func FuzzProcessAttributes(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("span.type generation gen_ai.prompt {\"messages\":[]} 0123456789abcdef"))
	f.Add([]byte{200, 10, 't', 'r', 'u', 'e', 0, 0, 17, 3, 5, 200, 3, 0xff, 0xfe, '"'})
	// Issue 16.8: counts that overflow a sum, a TTFT of +Inf ms, costs whose
	// sum is +Inf, invalid UTF-8 in content normalized by slicing.
	f.Add(fuzzSeed(t0, map[string]any{
		"gen_ai.usage.input_tokens": int64(5e18), "gen_ai.usage.output_tokens": int64(5e18),
		"gen_ai.usage.total_tokens": int64(5e18), "gen_ai.usage.cache_read.input_tokens": int64(5e18),
		"gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat",
	}))
	f.Add(fuzzSeed(t0, map[string]any{
		"gen_ai.response.time_to_first_chunk": 1e306, "gen_ai.usage.input_cost": 1e308, "gen_ai.usage.output_cost": 1e308,
		"span.type": "generation",
	}))
	f.Add(fuzzSeed(t0, map[string]any{
		"span.type":            "generation",
		"gen_ai.prompt":        "{\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9 \xff\"}]}",
		"gen_ai.completion":    "{\"completion\":\"ok \xc3\",\"toolCalls\":[]}",
		"fallom.prompt":        "[{\"role\":\"user\",\"content\":\"\xff\"}]",
		"gen_ai.request.model": "gpt-\xff",
	}))
	// A Fallom SDK span (TraceData fields under their own names).
	f.Add(fuzzSeed(t0, map[string]any{
		"kind": "llm", "status": "ERROR", "model": "claude-sonnet-4-5", "prompt_variant_index": int64(-1),
		"fallom.raw.usage":    `{"input_tokens":12,"output_tokens":100,"cache_read_input_tokens":6209,"cache_creation_input_tokens":50}`,
		"fallom.raw.request":  `{"system":[{"type":"text","text":"s"}],"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"1","name":"n","input":{}}]}]}`,
		"fallom.raw.response": `{"text":"","finishReason":"tool_use","toolCalls":[{"id":"1","name":"n","arguments":{}}]}`,
	}))
	configs := []*Config{
		{MaxValueBytes: defaultMaxValueBytes},
		{MaxValueBytes: minMaxValueBytes, DefaultProjectID: "p"},
		{DropContent: true},
		{KeepOriginalContent: true},
	}
	procs := make([]*mappingProcessor, len(configs))
	for i, c := range configs {
		procs[i] = newTestProcessor(f, c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for n := r.byte()%3 + 1; n > 0; n-- {
			span := spans.AppendEmpty()
			span.SetName(r.str())
			span.SetStartTimestamp(pcommon.Timestamp(r.u64()))
			span.SetEndTimestamp(pcommon.Timestamp(r.u64()))
			attrs := span.Attributes()
			for k := r.byte() % 24; k > 0; k-- {
				keys := fuzzKeys()
				key := keys[int(binary.LittleEndian.Uint16([]byte{r.byte(), r.byte()}))%len(keys)]
				r.value(attrs.PutEmpty(key), 0)
			}
			switch r.byte() % 4 {
			case 0:
				ev := span.Events().AppendEmpty()
				ev.SetName("gen_ai.choice")
				r.value(ev.Attributes().PutEmpty("message"), 0)
			case 2:
				ev := span.Events().AppendEmpty()
				ev.SetName(detailsEvent)
				for _, k := range []string{"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.call.arguments"} {
					if r.byte()%2 == 0 {
						r.value(ev.Attributes().PutEmpty(k), 0)
					}
				}
			}
		}
		for i, p := range procs {
			in := ptrace.NewTraces()
			td.CopyTo(in)
			out, err := p.processTraces(authed, in)
			if err != nil {
				t.Fatalf("config %d: %v", i, err)
			}
			checkContract(t, configs[i], out)
		}
	})
}

var columnTypes = map[string]pcommon.ValueType{
	fallomattr.IsGeneration: pcommon.ValueTypeBool, fallomattr.Streamed: pcommon.ValueTypeBool,
	fallomattr.InputTokens: pcommon.ValueTypeInt, fallomattr.OutputTokens: pcommon.ValueTypeInt, fallomattr.TotalTokens: pcommon.ValueTypeInt,
	fallomattr.CachedInputTokens: pcommon.ValueTypeInt, fallomattr.CacheWriteInputTokens: pcommon.ValueTypeInt, fallomattr.ReasoningTokens: pcommon.ValueTypeInt,
	fallomattr.InputCostUSD: pcommon.ValueTypeDouble, fallomattr.OutputCostUSD: pcommon.ValueTypeDouble, fallomattr.TotalCostUSD: pcommon.ValueTypeDouble,
	fallomattr.TimeToFirstTokenMs: pcommon.ValueTypeDouble,
}

func checkContract(t *testing.T, cfg *Config, td ptrace.Traces) {
	t.Helper()
	for i := 0; i < td.SpanCount(); i++ {
		attrs := spanAt(td, i).Attributes()
		isGen, ok := attrs.Get(fallomattr.IsGeneration)
		if !ok || isGen.Type() != pcommon.ValueTypeBool {
			t.Fatalf("is_generation missing or not bool")
		}
		for _, col := range fallomattr.Columns {
			v, ok := attrs.Get(col)
			if !ok {
				continue
			}
			want, typed := columnTypes[col]
			if !typed {
				want = pcommon.ValueTypeStr
			}
			if v.Type() != want {
				t.Fatalf("%s has type %s, want %s", col, v.Type(), want)
			}
			switch want {
			case pcommon.ValueTypeStr:
				s := v.Str()
				if s == "" || !utf8.ValidString(s) {
					t.Fatalf("%s = %q", col, s)
				}
				if col == fallomattr.SessionID || col == fallomattr.CustomerID {
					// Ids have their own limit (DESIGN 2.3): 256 characters.
					if utf8.RuneCountInString(s) > maxIDChars {
						t.Fatalf("%s has %d characters", col, utf8.RuneCountInString(s))
					}
				} else if cfg.MaxValueBytes > 0 && len(s) > cfg.MaxValueBytes {
					t.Fatalf("%s is %d bytes over max_value_bytes %d", col, len(s), cfg.MaxValueBytes)
				}
			case pcommon.ValueTypeInt:
				if v.Int() < 0 || v.Int() > maxTokens {
					t.Fatalf("%s = %d", col, v.Int())
				}
			case pcommon.ValueTypeDouble:
				if d := v.Double(); math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
					t.Fatalf("%s = %v", col, d)
				}
			}
		}
		// The Fallom SDK experiment fields: non-empty ids of at most 256
		// characters, non-negative ints.
		for _, ef := range experimentFields {
			v, ok := attrs.Get(ef.attr)
			switch {
			case !ok:
			case ef.isInt:
				if v.Type() != pcommon.ValueTypeInt || v.Int() < 0 {
					t.Fatalf("%s = %v (%s)", ef.attr, v.AsRaw(), v.Type())
				}
			case v.Type() != pcommon.ValueTypeStr || v.Str() == "" || !utf8.ValidString(v.Str()) || utf8.RuneCountInString(v.Str()) > maxIDChars:
				t.Fatalf("%s = %q (%s)", ef.attr, v.AsString(), v.Type())
			}
		}
		// Inclusive counts: the parts fit in their wholes.
		count := func(k string) (int64, bool) {
			v, ok := attrs.Get(k)
			return v.Int(), ok
		}
		in, hasIn := count(fallomattr.InputTokens)
		out, hasOut := count(fallomattr.OutputTokens)
		total, hasTotal := count(fallomattr.TotalTokens)
		cached, hasCached := count(fallomattr.CachedInputTokens)
		write, hasWrite := count(fallomattr.CacheWriteInputTokens)
		reasoning, hasReasoning := count(fallomattr.ReasoningTokens)
		// (A count at the cap stands for "too many": the relations may not
		// hold between capped counts.)
		capped := in == maxTokens || out == maxTokens || total == maxTokens
		if hasIn && (hasCached || hasWrite) && cached+write > in && !capped {
			t.Fatalf("cached %d + cache write %d > input %d", cached, write, in)
		}
		if hasOut && hasReasoning && reasoning > out {
			t.Fatalf("reasoning %d > output %d", reasoning, out)
		}
		if hasIn && hasOut && hasTotal && total < in+out && !capped {
			t.Fatalf("total %d < input %d + output %d", total, in, out)
		}
		for _, col := range []string{fallomattr.Prompt, fallomattr.Completion} {
			v, ok := attrs.Get(col)
			if !ok {
				continue
			}
			if cfg.DropContent {
				t.Fatalf("%s set with drop_content", col)
			}
			var msgs []map[string]any
			if err := json.Unmarshal([]byte(v.Str()), &msgs); err != nil {
				t.Fatalf("%s is not a JSON messages array: %v: %q", col, err, v.Str())
			}
		}
		if isGen.Bool() {
			cs, ok := attrs.Get(fallomattr.CostSource)
			if !ok {
				t.Fatalf("generation without cost_source")
			}
			_, hasCost := attrs.Get(fallomattr.TotalCostUSD)
			switch cs.Str() {
			case fallomattr.CostUnknown:
				if hasCost {
					t.Fatalf("cost with cost_source unknown")
				}
			case fallomattr.CostReported, fallomattr.CostComputed:
			default:
				t.Fatalf("cost_source %q", cs.Str())
			}
		}
		if cfg.DropContent {
			for k := range attrs.All() {
				if isContentKey(k) {
					t.Fatalf("content key %s kept with drop_content", k)
				}
			}
			events := spanAt(td, i).Events()
			for e := 0; e < events.Len(); e++ {
				for k := range events.At(e).Attributes().All() {
					if isContentKey(k) || strings.HasPrefix(events.At(e).Name(), "gen_ai.") && isEventContentKey(k) {
						t.Fatalf("content key %s kept on event %s with drop_content", k, events.At(e).Name())
					}
				}
			}
		}
	}
}
