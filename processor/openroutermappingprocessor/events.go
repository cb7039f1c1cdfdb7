package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Content carried by span events, read when no attribute carries it:
//
//   - semconv v1.37+: one gen_ai.client.inference.operation.details event
//     with gen_ai.input.messages, gen_ai.output.messages and
//     gen_ai.system_instructions (the keys and shapes of the span attributes
//     of those names; structured values on events);
//   - older semconv: gen_ai.content.prompt / gen_ai.content.completion
//     carrying gen_ai.prompt / gen_ai.completion;
//   - deprecated semconv: one event per message (gen_ai.system.message,
//     gen_ai.user.message, gen_ai.assistant.message, gen_ai.tool.message with
//     `content`, `tool_calls`, `id`) and gen_ai.choice with `message` (or
//     `content`) for the completion.
//
// Sources are taken in that order. An event attribute is removed only when
// what it carries was stored (or by drop_content): content that went nowhere
// stays on its event.

// eventContentSpec is one content attribute of an event.
type eventContentSpec struct {
	event string
	key   string
	role  contentRole
	kind  contentKind
}

const detailsEvent = "gen_ai.client.inference.operation.details"

// eventContentSpecs: the content attributes of the events that carry a whole
// prompt or completion, in precedence order per role.
var eventContentSpecs = []eventContentSpec{
	{detailsEvent, "gen_ai.system_instructions", toSystemInstructions, ckMessages},
	{detailsEvent, "gen_ai.input.messages", toPrompt, ckMessages},
	{detailsEvent, "gen_ai.output.messages", toCompletion, ckMessages},
	{"gen_ai.content.prompt", "gen_ai.prompt", toPrompt, ckOpenRouter},
	{"gen_ai.content.completion", "gen_ai.completion", toCompletion, ckOpenRouter},
}

// eventRoles: the deprecated per-message events, assembled into the prompt.
var eventRoles = map[string]string{
	"gen_ai.system.message":    "system",
	"gen_ai.user.message":      "user",
	"gen_ai.assistant.message": "assistant",
	"gen_ai.tool.message":      "tool",
}

// messageEventContentKeys are the content attributes of the per-message
// events and of gen_ai.choice (`id`, `role`, `index`, `finish_reason` are
// not content).
var messageEventContentKeys = []string{"content", "tool_calls", "message", "body"}

// eventAttr names one attribute of one event.
type eventAttr struct {
	event int
	key   string
}

// eventSources is what the events offer, before precedence is applied.
type eventSources struct {
	prompt, completion   string
	hasPrompt, hasComp   bool
	promptFrom, compFrom []eventAttr
	finish               string
}

// mapEvents fills the prompt and completion the attributes did not supply
// from the events, then removes what was stored (or, with drop_content,
// every content attribute of every event).
func (p *mappingProcessor) mapEvents(st *spanState, events ptrace.SpanEventSlice, m *mapped) {
	if p.cfg.DropContent {
		if m.finish == "" && st.slots[fFinishReason].rank == 0 {
			// The finish reason is not content: read it before the drop.
			for i := 0; i < events.Len(); i++ {
				if ev := events.At(i); ev.Name() == detailsEvent {
					if v, ok := ev.Attributes().Get("gen_ai.output.messages"); ok {
						m.finish = p.limitStr(st, outputFinishReason(v), "finish_reason")
					}
				}
			}
		}
		if dropEventContent(events) {
			st.hasContent = true
		}
		return
	}
	if m.hasPrompt && m.hasCompletion || !hasGenAIEvents(events) {
		return
	}
	src := eventContent(events, &st.hints)
	var stored []eventAttr
	if src.hasPrompt && !m.hasPrompt {
		m.prompt, m.hasPrompt = src.prompt, true
		stored = append(stored, src.promptFrom...)
	}
	if src.hasComp && !m.hasCompletion {
		m.completion, m.hasCompletion = src.completion, true
		stored = append(stored, src.compFrom...)
		if src.finish != "" && st.slots[fFinishReason].rank == 0 {
			m.finish = p.limitStr(st, src.finish, "finish_reason")
		}
	}
	if len(stored) > 0 && !p.cfg.KeepOriginalContent {
		st.hasContent = true
		for _, ea := range stored {
			events.At(ea.event).Attributes().Remove(ea.key)
		}
	}
}

// eventContent reads every content source of the events.
func eventContent(events ptrace.SpanEventSlice, h *hints) eventSources {
	var (
		out                  eventSources
		promptRank, compRank = len(eventContentSpecs) + 1, len(eventContentSpecs) + 1
		sys                  *normMsg
		sysFrom              eventAttr
		detailsPrompt        bool
		promptMsgs           []normMsg
		msgFrom              []eventAttr
		choiceMsgs           []normMsg
		choiceFrom           []eventAttr
	)
	for i := 0; i < events.Len(); i++ {
		ev := events.At(i)
		name := ev.Name()
		if !strings.HasPrefix(name, "gen_ai.") {
			continue
		}
		attrs := ev.Attributes()
		for rank, spec := range eventContentSpecs {
			if spec.event != name {
				continue
			}
			v, ok := attrs.Get(spec.key)
			if !ok {
				continue
			}
			at := eventAttr{i, spec.key}
			switch spec.role {
			case toSystemInstructions:
				if msg, ok := systemMessage(v); ok {
					sys, sysFrom = &msg, at
				}
			case toPrompt:
				if rank < promptRank {
					promptRank = rank
					out.prompt, out.hasPrompt, out.promptFrom = normalizeContent(spec.kind, v, rolePrompt, h), true, []eventAttr{at}
					detailsPrompt = name == detailsEvent
				}
			case toCompletion:
				if rank < compRank {
					compRank = rank
					out.completion, out.hasComp, out.compFrom = normalizeContent(spec.kind, v, roleCompletion, h), true, []eventAttr{at}
					if spec.kind == ckMessages {
						out.finish = outputFinishReason(v)
					}
				}
			}
		}
		switch name {
		case "gen_ai.choice":
			if v, ok := attrs.Get("message"); ok {
				choiceMsgs = append(choiceMsgs, eventMessage(v, roleCompletion)...)
				choiceFrom = append(choiceFrom, eventAttr{i, "message"})
			} else if v, ok := attrs.Get("content"); ok {
				choiceMsgs = append(choiceMsgs, normMsg{Role: roleCompletion, Content: valueText(v)})
				choiceFrom = append(choiceFrom, eventAttr{i, "content"})
			}
			continue
		}
		role, ok := eventRoles[name]
		if !ok {
			continue
		}
		m := map[string]any{"role": role}
		if v, ok := attrs.Get("role"); ok && v.Str() != "" {
			m["role"] = v.Str()
		}
		for _, k := range []string{"content", "tool_calls"} {
			if v, ok := attrs.Get(k); ok {
				m[k] = rawOf(v)
				msgFrom = append(msgFrom, eventAttr{i, k})
			}
		}
		if v, ok := attrs.Get("id"); ok && role == "tool" {
			m["tool_call_id"] = v.AsString()
		}
		promptMsgs = append(promptMsgs, convertMessage(m, role)...)
	}
	switch {
	case sys != nil && detailsPrompt:
		out.prompt = prependMessage(*sys, out.prompt)
		out.promptFrom = append(out.promptFrom, sysFrom)
	case sys != nil && !out.hasPrompt && len(promptMsgs) == 0:
		out.prompt, out.hasPrompt, out.promptFrom = marshalMsgs([]normMsg{*sys}), true, []eventAttr{sysFrom}
	}
	if !out.hasPrompt && len(promptMsgs) > 0 {
		out.prompt, out.hasPrompt, out.promptFrom = marshalMsgs(promptMsgs), true, msgFrom
	}
	if !out.hasComp && len(choiceMsgs) > 0 {
		out.completion, out.hasComp, out.compFrom = marshalMsgs(choiceMsgs), true, choiceFrom
	}
	return out
}

// outputFinishReason is the first finish_reason of semconv output messages
// (a fallback for the span's finish reason).
func outputFinishReason(v pcommon.Value) string {
	arr, ok := rawOf(v).([]any)
	if !ok {
		return ""
	}
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			if s := str(m["finish_reason"]); s != "" {
				return s
			}
		}
	}
	return ""
}

// dropEventContent removes every content attribute of every event: the keys
// of the content table (the same names as on spans) and the content keys of
// the gen_ai.* events. It reports whether there were any.
func dropEventContent(events ptrace.SpanEventSlice) bool {
	dropped := false
	for i := 0; i < events.Len(); i++ {
		ev := events.At(i)
		genAI := strings.HasPrefix(ev.Name(), "gen_ai.")
		ev.Attributes().RemoveIf(func(k string, _ pcommon.Value) bool {
			if isContentKey(k) || genAI && isEventContentKey(k) {
				dropped = true
				return true
			}
			return false
		})
	}
	return dropped
}

func isEventContentKey(k string) bool {
	for _, s := range eventContentSpecs {
		if s.key == k {
			return true
		}
	}
	for _, c := range messageEventContentKeys {
		if c == k {
			return true
		}
	}
	return false
}

// eventMessage reads a message sent as a map value or as JSON text.
func eventMessage(v pcommon.Value, defRole string) []normMsg {
	switch raw := rawOf(v).(type) {
	case map[string]any:
		return convertMessage(raw, defRole)
	case string:
		return []normMsg{{Role: defRole, Content: raw}}
	}
	return nil
}

// rawOf returns a value as Go data; strings holding a JSON array or object
// (SDKs often serialize structured event fields) are decoded.
func rawOf(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := strings.TrimSpace(v.Str())
		if len(s) > 1 && (s[0] == '[' || s[0] == '{') {
			if d, ok := decodeJSON(s); ok {
				return d
			}
		}
		return v.Str()
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		// Round-trip through JSON so numbers become json.Number like the
		// rest of the content path.
		if d, ok := decodeJSON(valueText(v)); ok {
			return d
		}
	}
	return v.AsString()
}

// hasGenAIEvents reports whether any span event is a gen_ai.* event.
func hasGenAIEvents(events ptrace.SpanEventSlice) bool {
	for i := 0; i < events.Len(); i++ {
		if strings.HasPrefix(events.At(i).Name(), "gen_ai.") {
			return true
		}
	}
	return false
}
