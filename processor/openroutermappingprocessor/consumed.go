package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"encoding/json"
	"strings"
)

// Which content sources are consumed (issue 16.1: never strip anything that
// was not stored). A span often carries one prompt or completion several
// times (OpenRouter three times, OpenInference as flattened messages and as
// input.value); the highest-ranked source is stored, and each source of that
// role is removed only when what it holds is in the stored messages:
//
//   - the stored source itself is removed, unless it is free-form JSON
//     (ckAny: input.value, langfuse.observation.input...) that carries more
//     than messages (tools, parameters, ids, usage): then it stays as sent;
//   - a lower-ranked source is removed only when every text it holds (message
//     contents, tool arguments, names, ids: its string and number leaves,
//     roles and part types aside) is a text of the stored messages and it
//     carries nothing else; otherwise (another turn, another answer, tools,
//     parameters) it stays as sent. Texts, not shapes, are compared: the
//     same message sent as a string and as text parts is the same content.
//
// "Nothing else": plain text; a messages array or a single message whose
// members are message members (role, content, parts, name, tool_call_id,
// tool_calls, reasoning, finish_reason); an object whose members are message
// containers (messages, system, prompt, and OpenRouter's completion,
// reasoning, toolCalls). Members that are null, "", [] or {} count as
// nothing. The OpenRouter and Fallom SDK shapes of the stored source keep
// their own rules (rawRequest is the echo of the request, not content).

// keepUnstored marks the removals of stored roles whose attribute must stay.
func (st *spanState) keepUnstored(m *mapped) {
	var (
		storedTexts [2]map[string]bool // prompt, completion: collected on first use
		flatKeep    map[[2]uint8]bool  // a flattened source is kept or removed as a whole
	)
	stored := func(role contentRole) map[string]bool {
		i, text := 0, m.prompt
		if role == toCompletion {
			i, text = 1, m.completion
		}
		if storedTexts[i] == nil {
			storedTexts[i] = map[string]bool{}
			if v, ok := decodeJSON(text); ok {
				collectTexts(v, "", func(s string) bool { storedTexts[i][s] = true; return true })
			}
		}
		return storedTexts[i]
	}
	for i := range st.remove {
		r := &st.remove[i]
		if !st.used[r.role] || (r.role != toPrompt && r.role != toCompletion) {
			continue // the other roles have one source each, merged whole
		}
		win := &st.prompt
		if r.role == toCompletion {
			win = &st.completion
		}
		if win.rank == r.rank+1 {
			r.keep = r.kind == ckAny && holdsMoreThanMessages(valueText(r.v))
			continue
		}
		switch r.kind {
		case ckFlatOpenInference, ckFlatTraceloop:
			key := [2]uint8{uint8(r.role), r.rank}
			keep, done := flatKeep[key]
			if !done {
				keep = !flatStored(st.flat, r.role, r.kind, stored(r.role))
				if flatKeep == nil {
					flatKeep = map[[2]uint8]bool{}
				}
				flatKeep[key] = keep
			}
			r.keep = keep
		default:
			text := valueText(r.v)
			if win.kind == r.kind && win.kind != ckAny && text == valueText(win.v) {
				continue // the stored text itself, repeated (OpenRouter span.input)
			}
			if r.kind == ckOpenRouter && onlyOpenRouterMembers(text) {
				// OpenRouter's span.output beside a gen_ai.completion that
				// also echoes the request: sliced, not decoded.
				storedText, defRole := m.prompt, rolePrompt
				if r.role == toCompletion {
					storedText, defRole = m.completion, roleCompletion
				}
				var h hints // facts of a source that is not stored are not used
				if normalizeContent(r.kind, r.v, defRole, &h) == storedText {
					continue
				}
			}
			r.keep = holdsMoreThanMessages(text) || !textsStored(text, stored(r.role))
		}
	}
}

// textsStored reports whether every text a content value holds (the value
// itself when it is not JSON, else its string and number leaves but roles
// and part types) is a text of the stored messages.
func textsStored(text string, stored map[string]bool) bool {
	t := strings.TrimSpace(text)
	if t == "" || (t[0] != '{' && t[0] != '[' && t[0] != '"') {
		return stored[text]
	}
	v, ok := decodeJSON(t)
	if !ok {
		return stored[text]
	}
	return collectTexts(v, "", func(s string) bool { return stored[s] })
}

// flatStored: textsStored for a flattened source (all its keys of one role
// and kind).
func flatStored(entries []flatEntry, role contentRole, kind contentKind, stored map[string]bool) bool {
	for _, e := range entries {
		if e.role != role || e.kind != kind || structuralPath(e.path) {
			continue
		}
		if !textsStored(valueText(e.value), stored) {
			return false
		}
	}
	return true
}

// structuralPath: a flattened key that names a role or a part type, not
// content.
func structuralPath(path string) bool {
	return path == "role" || strings.HasSuffix(path, ".type")
}

// collectTexts calls f on every string and number leaf of v except the values
// of "role" and "type" members (structure: normalization renames and folds
// them), until f returns false.
func collectTexts(v any, key string, f func(string) bool) bool {
	switch x := v.(type) {
	case string:
		return key == "role" || key == "type" || f(x)
	case json.Number:
		return f(x.String())
	case []any:
		for _, e := range x {
			if !collectTexts(e, "", f) {
				return false
			}
		}
	case map[string]any:
		for k, e := range x {
			if !collectTexts(e, k, f) {
				return false
			}
		}
	}
	return true
}

// messageMembers are the members of one message that normalization keeps
// (finish_reason feeds its column).
var messageMembers = map[string]bool{
	"role": true, "content": true, "parts": true, "name": true, "tool_call_id": true,
	"tool_calls": true, "reasoning": true, "reasoning_content": true, "finish_reason": true,
}

// containerMembers are the members of the objects that wrap messages.
var containerMembers = map[string]bool{
	"messages": true, "system": true, "prompt": true, // Vercel ai.prompt, {"messages":[...]}
	"completion": true, "reasoning": true, "toolCalls": true, // OpenRouter completion
}

// holdsMoreThanMessages reports whether a content value carries something
// normalization does not keep: tools, parameters, response metadata.
func holdsMoreThanMessages(text string) bool {
	t := strings.TrimSpace(text)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return false // text: all of it is the message
	}
	v, ok := decodeJSON(t)
	if !ok {
		return false // not JSON: stored as text
	}
	switch x := v.(type) {
	case []any:
		return !allMessages(x)
	case map[string]any:
		if _, ok := x["role"]; ok {
			return !onlyMembers(x, messageMembers)
		}
		if _, ok := x["parts"]; ok {
			return !onlyMembers(x, messageMembers)
		}
		if !onlyMembers(x, containerMembers) {
			return true
		}
		if ms, ok := x["messages"].([]any); ok {
			return !allMessages(ms)
		}
	}
	return false
}

func allMessages(arr []any) bool {
	for _, e := range arr {
		switch m := e.(type) {
		case map[string]any:
			if !onlyMembers(m, messageMembers) {
				return false
			}
		case string: // a list of prompt strings
		default:
			return false
		}
	}
	return true
}

// onlyMembers: every member of m is allowed or empty.
func onlyMembers(m map[string]any, allowed map[string]bool) bool {
	for k, v := range m {
		if !allowed[k] && !emptyJSON(v) {
			return false
		}
	}
	return true
}

func emptyJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// onlyOpenRouterMembers: holdsMoreThanMessages for the OpenRouter shapes,
// with the scanner instead of a decode.
func onlyOpenRouterMembers(text string) bool {
	only := true
	ok := forEachMember(text, func(key string, start, end int) bool {
		switch text[start:end] {
		case "null", `""`, "[]", "{}":
			return true
		}
		only = containerMembers[key]
		return only
	})
	return ok && only
}
