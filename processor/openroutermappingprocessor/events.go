package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Deprecated semconv content events, as span events: one event per message
// (gen_ai.system.message, gen_ai.user.message, gen_ai.assistant.message,
// gen_ai.tool.message with `content`, `tool_calls`, `id`), gen_ai.choice
// with `message` (or `content`) for the completion, and the older
// gen_ai.content.prompt / gen_ai.content.completion carrying gen_ai.prompt /
// gen_ai.completion. Used when no attribute carries the content.

var eventRoles = map[string]string{
	"gen_ai.system.message":    "system",
	"gen_ai.user.message":      "user",
	"gen_ai.assistant.message": "assistant",
	"gen_ai.tool.message":      "tool",
}

// eventContent builds the normalized prompt and completion from the events.
func eventContent(events ptrace.SpanEventSlice, h *hints) (prompt, completion string, hasPrompt, hasCompletion bool) {
	var promptMsgs, choiceMsgs []normMsg
	for i := 0; i < events.Len(); i++ {
		ev := events.At(i)
		name := ev.Name()
		if !strings.HasPrefix(name, "gen_ai.") {
			continue
		}
		attrs := ev.Attributes()
		switch name {
		case "gen_ai.content.prompt":
			if v, ok := attrs.Get("gen_ai.prompt"); ok {
				prompt, hasPrompt = normalizeContent(ckOpenRouter, v, rolePrompt, h), true
			}
			continue
		case "gen_ai.content.completion":
			if v, ok := attrs.Get("gen_ai.completion"); ok {
				completion, hasCompletion = normalizeContent(ckOpenRouter, v, roleCompletion, h), true
			}
			continue
		case "gen_ai.choice":
			if v, ok := attrs.Get("message"); ok {
				choiceMsgs = append(choiceMsgs, eventMessage(v, roleCompletion)...)
			} else if v, ok := attrs.Get("content"); ok {
				choiceMsgs = append(choiceMsgs, normMsg{Role: roleCompletion, Content: valueText(v)})
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
		if v, ok := attrs.Get("content"); ok {
			m["content"] = rawOf(v)
		}
		if v, ok := attrs.Get("tool_calls"); ok {
			m["tool_calls"] = rawOf(v)
		}
		if v, ok := attrs.Get("id"); ok && role == "tool" {
			m["tool_call_id"] = v.AsString()
		}
		promptMsgs = append(promptMsgs, convertMessage(m, role)...)
	}
	if !hasPrompt && len(promptMsgs) > 0 {
		prompt, hasPrompt = marshalMsgs(promptMsgs), true
	}
	if !hasCompletion && len(choiceMsgs) > 0 {
		completion, hasCompletion = marshalMsgs(choiceMsgs), true
	}
	return prompt, completion, hasPrompt, hasCompletion
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
