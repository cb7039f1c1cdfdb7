package fallomexporter

import (
	"encoding/binary"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// Fixtures mirror one OpenRouter Broadcast delivery (CONVENTIONS.md 1): a
// root generation span with ~60 attributes and its `provider attempt` and
// `generation` children, each in its own resourceSpans element. raw is what
// OpenRouter sends (prompt and completion three times each); mapped is the
// same delivery after the openroutermapping processor with its defaults
// (fallom.* canonical attributes written, duplicate content attributes
// removed, fallom.project_id on the resource).

const baseUnixNano = uint64(1794000000120000000)

func traceID(i int) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], 0x5f2c0a9be1d34c7a)
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

func spanID(i, n int) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(i)<<8|uint64(n)+1)
	return id
}

// promptJSON is an OpenAI-shaped conversation of about size bytes.
func promptJSON(i, size int) string {
	var b strings.Builder
	b.WriteString(`{"messages":[{"role":"system","content":"You are a meticulous travel assistant. Answer with sources and keep answers short."}`)
	turn := 0
	for b.Len() < size {
		fmt.Fprintf(&b, `,{"role":"user","content":"Request %d turn %d: which trains leave Lyon for Turin on Tuesday morning, and do they need a reservation? \"quoted\" <tags> & more"}`, i, turn)
		fmt.Fprintf(&b, `,{"role":"assistant","content":"Two TGV services leave Lyon Part-Dieu at 06:58 and 10:58; both need a seat reservation (%d)."}`, turn)
		turn++
	}
	b.WriteString(`]}`)
	return b.String()
}

func completionJSON(i, size int) string {
	text := strings.Repeat(fmt.Sprintf("The 06:58 TGV INOUI (train %d) reaches Torino Porta Susa at 10:59. ", i), max(1, size/70))
	return `{"completion":"` + text + `","reasoning":null,"toolCalls":[],"rawRequest":{"model":"anthropic/claude-haiku-4.5","stream":true,"user":"customer-` +
		fmt.Sprint(i%50) + `","session_id":"conversation-` + fmt.Sprint(i%200) + `"}}`
}

func putResource(rs ptrace.ResourceSpans, project string) {
	r := rs.Resource().Attributes()
	r.PutStr("service.name", "openrouter")
	r.PutStr("openrouter.trace.id", "gen-1794000000-Ex4mpleGenerationId01")
	r.PutStr("service.version", "1.0.0")
	if project != "" {
		r.PutStr(fallomattr.ProjectID, project)
	}
}

func newSpan(td ptrace.Traces, project string) ptrace.Span {
	rs := td.ResourceSpans().AppendEmpty()
	putResource(rs, project)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("openrouter")
	return ss.Spans().AppendEmpty()
}

// appendDelivery appends delivery i to raw and mapped.
func appendDelivery(raw, mapped ptrace.Traces, project string, i, contentBytes int) {
	prompt, completion := promptJSON(i, contentBytes*3/4), completionJSON(i, contentBytes/4)
	start := baseUnixNano + uint64(i)*1_000_000_000
	end := start + 1_890_000_000
	for _, td := range []ptrace.Traces{raw, mapped} {
		isMapped := td == mapped
		proj := ""
		if isMapped {
			proj = project
		}
		root := newSpan(td, proj)
		root.SetTraceID(traceID(i))
		root.SetSpanID(spanID(i, 0))
		root.SetName("LLM Generation")
		root.SetKind(ptrace.SpanKindClient)
		root.SetStartTimestamp(pcommon.Timestamp(start))
		root.SetEndTimestamp(pcommon.Timestamp(end))
		root.Status().SetCode(ptrace.StatusCodeOk)
		a := root.Attributes()
		a.PutStr("trace.name", "OpenRouter Request")
		a.PutStr("span.type", "generation")
		a.PutStr("span.level", "DEFAULT")
		a.PutStr("user.id", fmt.Sprintf("customer-%d", i%50))
		a.PutStr("session.id", fmt.Sprintf("conversation-%d", i%200))
		a.PutStr("gen_ai.operation.name", "chat")
		a.PutStr("gen_ai.system", "anthropic")
		a.PutStr("gen_ai.provider.name", "anthropic")
		a.PutStr("gen_ai.request.model", "anthropic/claude-haiku-4.5")
		a.PutStr("gen_ai.response.model", "anthropic/claude-haiku-4.5")
		a.PutStr("gen_ai.response.id", fmt.Sprintf("gen-1794000000-%08d", i))
		a.PutInt("gen_ai.usage.input_tokens", 2489)
		a.PutInt("gen_ai.usage.output_tokens", 312)
		a.PutInt("gen_ai.usage.total_tokens", 2801)
		a.PutInt("gen_ai.usage.input_tokens.cached", 1024)
		a.PutInt("gen_ai.usage.input_tokens.cache_write", 0)
		a.PutInt("gen_ai.usage.output_tokens.reasoning", 0)
		a.PutDouble("gen_ai.usage.input_cost", 0.002489)
		a.PutDouble("gen_ai.usage.output_cost", 0.00156)
		a.PutDouble("gen_ai.usage.total_cost", 0.004049)
		if !isMapped {
			for _, k := range []string{"gen_ai.prompt", "span.input", "trace.input"} {
				a.PutStr(k, prompt)
			}
			for _, k := range []string{"gen_ai.completion", "span.output", "trace.output"} {
				a.PutStr(k, completion)
			}
		}
		a.PutStr("gen_ai.response.finish_reasons", `["stop"]`)
		a.PutStr("gen_ai.response.finish_reason", "stop")
		a.PutStr("trace.metadata.openrouter.finish_reason", "end_turn")
		a.PutStr("trace.metadata.openrouter.provider_name", "Amazon Bedrock")
		a.PutStr("trace.metadata.openrouter.provider_slug", "amazon-bedrock/global")
		a.PutStr("trace.metadata.openrouter.api_key_name", "prod-backend")
		a.PutStr("trace.metadata.openrouter.entity_id", "org_2x9Ab3Cd4Ef5Gh6Ij7Kl8Mn")
		a.PutStr("trace.metadata.openrouter.creator_user_id", "user_2x9Ab3Cd4Ef5Gh6Ij7Kl")
		a.PutStr("trace.metadata.openrouter.source", "api")
		a.PutDouble("trace.metadata.openrouter.input_unit_price", 0.000001)
		a.PutDouble("trace.metadata.openrouter.output_unit_price", 0.000005)
		a.PutDouble("trace.metadata.openrouter.first_token_ms", 412)
		a.PutDouble("trace.metadata.openrouter.router_latency_ms", 18)
		a.PutDouble("trace.metadata.openrouter.provider_request_ms", 1850)
		a.PutDouble("trace.metadata.openrouter.provider_headers_ms", 390)
		a.PutDouble("trace.metadata.openrouter.provider_body_end_ms", 1849)
		a.PutDouble("trace.metadata.openrouter.provider_time_to_first_token_ms", 395)
		a.PutDouble("trace.metadata.openrouter.inter_token_latency_ms", 4.6)
		responses := `[{"provider":"Amazon Bedrock","status":200,"latency_ms":1850,"endpoint_id":"ep_1"}]`
		a.PutStr("trace.metadata.provider_responses", responses)
		a.PutStr("span.metadata.provider_responses", responses)
		a.PutStr("trace.metadata.feature", "itinerary")
		a.PutStr("span.metadata.feature", "itinerary")
		a.PutStr("trace.metadata.release", "2026.11.1")
		a.PutStr("span.metadata.release", "2026.11.1")
		if isMapped {
			a.PutBool(fallomattr.IsGeneration, true)
			a.PutStr(fallomattr.SessionID, fmt.Sprintf("conversation-%d", i%200))
			a.PutStr(fallomattr.CustomerID, fmt.Sprintf("customer-%d", i%50))
			a.PutStr(fallomattr.Model, "anthropic/claude-haiku-4.5")
			a.PutStr(fallomattr.RequestedModel, "anthropic/claude-haiku-4.5")
			a.PutStr(fallomattr.Provider, "Amazon Bedrock")
			a.PutStr(fallomattr.Operation, "chat")
			a.PutInt(fallomattr.InputTokens, 2489)
			a.PutInt(fallomattr.OutputTokens, 312)
			a.PutInt(fallomattr.TotalTokens, 2801)
			a.PutInt(fallomattr.CachedInputTokens, 1024)
			a.PutInt(fallomattr.CacheWriteInputTokens, 0)
			a.PutInt(fallomattr.ReasoningTokens, 0)
			a.PutDouble(fallomattr.InputCostUSD, 0.002489)
			a.PutDouble(fallomattr.OutputCostUSD, 0.00156)
			a.PutDouble(fallomattr.TotalCostUSD, 0.004049)
			a.PutStr(fallomattr.CostSource, fallomattr.CostReported)
			a.PutStr(fallomattr.FinishReason, "stop")
			a.PutDouble(fallomattr.TimeToFirstTokenMs, 412)
			a.PutBool(fallomattr.Streamed, true)
			a.PutStr(fallomattr.Prompt, prompt[len(`{"messages":`):len(prompt)-1])
			a.PutStr(fallomattr.Completion, completion)
			a.PutStr(fallomattr.Source, "openrouter")
		}

		attempt := newSpan(td, proj)
		attempt.SetTraceID(traceID(i))
		attempt.SetSpanID(spanID(i, 1))
		attempt.SetParentSpanID(spanID(i, 0))
		attempt.SetName("provider attempt 1: Amazon Bedrock")
		attempt.SetKind(ptrace.SpanKindServer)
		attempt.SetStartTimestamp(pcommon.Timestamp(start + 18_000_000))
		attempt.SetEndTimestamp(pcommon.Timestamp(end - 2_000_000))
		b := attempt.Attributes()
		b.PutStr("span.type", "span")
		b.PutInt("span.metadata.attempt_index", 1)
		b.PutInt("span.metadata.status_code", 200)
		b.PutBool("span.metadata.is_byok", false)
		b.PutStr("span.metadata.endpoint_id", "ep_1")
		b.PutStr("span.metadata.model_permaslug", "anthropic/claude-4.5-haiku-20251001")
		b.PutStr("gen_ai.operation.name", "chat")
		b.PutStr("gen_ai.response.id", fmt.Sprintf("gen-1794000000-%08d:attempt-1", i))
		b.PutStr("trace.metadata.openrouter.provider_name", "Amazon Bedrock")
		if isMapped {
			b.PutBool(fallomattr.IsGeneration, false)
			b.PutStr(fallomattr.Operation, "chat")
			b.PutStr(fallomattr.Provider, "Amazon Bedrock")
			b.PutStr(fallomattr.Source, "openrouter")
		}

		gen := newSpan(td, proj)
		gen.SetTraceID(traceID(i))
		gen.SetSpanID(spanID(i, 2))
		gen.SetParentSpanID(spanID(i, 0))
		gen.SetName("generation")
		gen.SetKind(ptrace.SpanKindServer)
		gen.SetStartTimestamp(pcommon.Timestamp(start + 1_000_000))
		gen.SetEndTimestamp(pcommon.Timestamp(end))
		c := gen.Attributes()
		c.PutStr("span.type", "span")
		c.PutStr("span.level", "DEFAULT")
		c.PutStr("gen_ai.operation.name", "chat")
		c.PutStr("gen_ai.response.id", fmt.Sprintf("gen-1794000000-%08d:generation", i))
		if isMapped {
			c.PutBool(fallomattr.IsGeneration, false)
			c.PutStr(fallomattr.Operation, "chat")
			c.PutStr(fallomattr.Source, "openrouter")
		}
	}
}

// deliveries returns n OpenRouter deliveries (3n spans) as OpenRouter sends
// them and as the processor hands them to the exporter.
func deliveries(project string, first, n, contentBytes int) (raw, mapped ptrace.Traces) {
	raw, mapped = ptrace.NewTraces(), ptrace.NewTraces()
	for i := first; i < first+n; i++ {
		appendDelivery(raw, mapped, project, i, contentBytes)
	}
	return raw, mapped
}

func mappedDeliveries(project string, first, n int) ptrace.Traces {
	_, m := deliveries(project, first, n, 4096)
	return m
}
