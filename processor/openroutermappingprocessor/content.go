package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"github.com/fallom/fallom-collector/internal/jsonenc"

	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Normalized content. fallom.prompt and fallom.completion are JSON arrays of
// messages in the OpenAI chat shape, whatever dialect they came from:
//
//	[{"role": "system"|"user"|"assistant"|"tool",
//	  "content": "text" | [parts...] | null,
//	  "name": "...", "tool_call_id": "...",            (when present)
//	  "tool_calls": [{"id","type":"function","function":{"name","arguments"}}],
//	  "reasoning": "..."}]                              (when present)
//
// The completion is the assistant message(s). A single text part becomes a
// string; several parts stay an array ({"type":"text","text":...} and the
// other parts as sent). Text that is not JSON becomes one message whose
// content is that text.

type normMsg struct {
	Role       string `json:"role"`
	Content    any    `json:"content"`
	Name       string `json:"name,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	ToolCalls  []any  `json:"tool_calls,omitempty"`
	Reasoning  string `json:"reasoning,omitempty"`
}

const (
	rolePrompt     = "user"
	roleCompletion = "assistant"
)

// valueText returns an attribute value as text: strings as they are,
// structured values (some SDKs send messages as OTLP arrays) as JSON.
func valueText(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		b, err := json.Marshal(v.AsRaw())
		if err != nil {
			return v.AsString()
		}
		return string(b)
	}
	return v.AsString()
}

// normalizeContent turns one source value into the normalized messages
// array. defRole is the role of content that carries none.
func normalizeContent(kind contentKind, v pcommon.Value, defRole string, h *hints) string {
	s := valueText(v)
	switch kind {
	case ckNormalized:
		// Already normalized by a collector before this one: kept as it is
		// when it is an array of message objects.
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") && validJSON(t) {
			if v, ok := decodeJSON(t); ok && allObjects(v) {
				return t
			}
		}
	case ckOpenRouter:
		if out, ok := openRouterContent(s, defRole, h); ok {
			return out
		}
	case ckText:
		return marshalMsgs([]normMsg{{Role: defRole, Content: s}})
	case ckFallomRequest:
		if msgs := fallomRequest(s); msgs != nil {
			return marshalMsgs(msgs)
		}
	case ckFallomResponse:
		if msgs := fallomResponse(s); msgs != nil {
			return marshalMsgs(msgs)
		}
	}
	return normalizeAny(s, defRole)
}

// hints are facts found inside content that feed other fields.
type hints struct {
	streamed    bool
	hasStreamed bool
}

// openRouterContent slices the OpenRouter shapes without decoding them:
// prompt {"messages":[...]} -> the array as sent (already OpenAI shape);
// completion {"completion":s|null,"reasoning":s|null,"toolCalls":[...],
// "rawRequest":{...}} -> one assistant message. rawRequest (the echoed
// request body) is not content; its "stream" flag feeds fallom.streamed.
func openRouterContent(s, defRole string, h *hints) (string, bool) {
	var messages, completion, reasoning, toolCalls string
	found := false
	ok := forEachMember(s, func(key string, start, end int) bool {
		raw := s[start:end]
		switch key {
		case "messages":
			if raw[0] == '[' {
				messages, found = raw, true
			}
		case "completion":
			completion, found = raw, true
		case "reasoning":
			if raw != "null" {
				reasoning = raw
			}
			found = true
		case "toolCalls":
			if raw[0] == '[' && raw != "[]" && strings.TrimSpace(raw[1:len(raw)-1]) != "" {
				toolCalls = raw
			}
			found = true
		case "rawRequest":
			if raw[0] == '{' {
				forEachMember(raw, func(k string, st, en int) bool {
					if k == "stream" {
						switch raw[st:en] {
						case "true":
							h.streamed, h.hasStreamed = true, true
						case "false":
							h.streamed, h.hasStreamed = false, true
						}
						return false
					}
					return true
				})
			}
		}
		return true
	})
	if !ok || !found {
		return "", false
	}
	if messages != "" {
		return messages, true
	}
	if completion == "" && reasoning == "" && toolCalls == "" {
		return "", false
	}
	if completion == "" {
		completion = "null"
	}
	var b strings.Builder
	b.Grow(48 + len(completion) + len(reasoning) + len(toolCalls))
	b.WriteString(`[{"role":`)
	b.Write(jsonenc.AppendString(nil, defRole))
	b.WriteString(`,"content":`)
	b.WriteString(completion)
	if toolCalls != "" {
		b.WriteString(`,"tool_calls":`)
		b.WriteString(toolCalls)
	}
	if reasoning != "" {
		b.WriteString(`,"reasoning":`)
		b.WriteString(reasoning)
	}
	b.WriteString("}]")
	return b.String(), true
}

// decodeJSON decodes s keeping numbers exact (tool arguments, ids).
func decodeJSON(s string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if dec.More() {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false // trailing data
	}
	return v, true
}

// normalizeAny handles JSON of any known shape, or text.
func normalizeAny(s, defRole string) string {
	t := strings.TrimSpace(s)
	if t == "" {
		return marshalMsgs([]normMsg{{Role: defRole, Content: s}})
	}
	if t[0] != '[' && t[0] != '{' && t[0] != '"' {
		return marshalMsgs([]normMsg{{Role: defRole, Content: s}})
	}
	v, ok := decodeJSON(t)
	if !ok {
		return marshalMsgs([]normMsg{{Role: defRole, Content: s}})
	}
	if msgs := messagesFrom(v, defRole); msgs != nil {
		return marshalMsgs(msgs)
	}
	if str, isStr := v.(string); isStr {
		return marshalMsgs([]normMsg{{Role: defRole, Content: str}})
	}
	// JSON with no message shape (a structured output, tool input...): one
	// message holding the JSON text.
	return marshalMsgs([]normMsg{{Role: defRole, Content: t}})
}

// messagesFrom recognizes the message containers of the dialects: an array
// of messages; {"messages":[...]} with an optional "system" (Vercel
// ai.prompt); {"prompt": "..."}; a single message; an OpenAI response with
// "choices". nil if v has none of these shapes.
func messagesFrom(v any, defRole string) []normMsg {
	switch x := v.(type) {
	case []any:
		if !looksLikeMessages(x) {
			return nil
		}
		return convertMessages(x, defRole)
	case map[string]any:
		var out []normMsg
		if sys, ok := x["system"].(string); ok && sys != "" {
			out = append(out, normMsg{Role: "system", Content: sys})
		}
		if ms, ok := x["messages"].([]any); ok && looksLikeMessages(ms) {
			return append(out, convertMessages(ms, defRole)...)
		}
		if p, ok := x["prompt"].(string); ok {
			return append(out, normMsg{Role: rolePrompt, Content: p})
		}
		if choices, ok := x["choices"].([]any); ok {
			for _, c := range choices {
				cm, _ := c.(map[string]any)
				if m, ok := cm["message"].(map[string]any); ok {
					out = append(out, convertMessage(m, roleCompletion)...)
				} else if txt, ok := cm["text"].(string); ok {
					out = append(out, normMsg{Role: roleCompletion, Content: txt})
				}
			}
			if len(out) > 0 {
				return out
			}
			return nil
		}
		if _, ok := x["role"]; ok {
			return append(out, convertMessage(x, defRole)...)
		}
		if _, ok := x["parts"]; ok {
			return append(out, convertMessage(x, defRole)...)
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

func looksLikeMessages(arr []any) bool {
	if len(arr) == 0 {
		return true
	}
	for _, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		_, role := m["role"]
		_, parts := m["parts"]
		_, content := m["content"]
		if !role && !parts && !content {
			return false
		}
	}
	return true
}

func convertMessages(arr []any, defRole string) []normMsg {
	out := make([]normMsg, 0, len(arr))
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			out = append(out, convertMessage(m, defRole)...)
		}
	}
	return out
}

// convertMessage converts one message of any dialect. A message holding
// several tool results (semconv, Vercel) becomes one tool message per result,
// as in the OpenAI shape.
func convertMessage(m map[string]any, defRole string) []normMsg {
	msg := normMsg{Role: str(m["role"])}
	if msg.Role == "" {
		msg.Role = defRole
	}
	if alias, ok := roleAliases[msg.Role]; ok {
		msg.Role = alias
	}
	msg.Name = str(m["name"])
	msg.ToolCallID = str(m["tool_call_id"])
	if tc, ok := m["tool_calls"].([]any); ok && len(tc) > 0 {
		msg.ToolCalls = convertToolCalls(tc)
	}
	for _, k := range []string{"reasoning", "reasoning_content"} {
		if r, ok := m[k].(string); ok && r != "" {
			msg.Reasoning = r
			break
		}
	}
	var parts []any
	hasParts := false
	if p, ok := m["parts"].([]any); ok { // semconv
		parts, hasParts = p, true
	} else if c, ok := m["content"]; ok {
		switch cv := c.(type) {
		case []any:
			parts, hasParts = cv, true
		case nil:
			msg.Content = nil
		default:
			msg.Content = cv
		}
	}
	if !hasParts {
		return []normMsg{msg}
	}
	var results []normMsg
	var kept []any
	for _, p := range parts {
		pm, ok := p.(map[string]any)
		if !ok {
			if s, isStr := p.(string); isStr {
				kept = append(kept, map[string]any{"type": "text", "text": s})
			}
			continue
		}
		typ := strings.ToLower(str(pm["type"]))
		if typ == "" {
			typ = untypedPartType(pm)
		}
		switch typ {
		case "text", "input_text", "output_text":
			txt := str(pm["text"])
			if txt == "" {
				txt = str(pm["content"])
			}
			kept = append(kept, map[string]any{"type": "text", "text": txt})
		case "reasoning", "thinking", "reasoning_text", "summary_text":
			msg.Reasoning += firstStr(pm, "content", "text", "thinking") // Anthropic: {"type":"thinking","thinking":...}
		case "tool_call", "tool-call", "function_call", "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, toolCall(
				firstStr(pm, "id", "toolCallId", "call_id"),
				firstStr(pm, "name", "toolName"),
				firstOf(pm, "arguments", "args", "input")))
		case "functioncall": // Gemini {"functionCall":{"name","args"}}
			fc, _ := pm["functionCall"].(map[string]any)
			msg.ToolCalls = append(msg.ToolCalls, toolCall(str(fc["id"]), str(fc["name"]), fc["args"]))
		case "functionresponse": // Gemini {"functionResponse":{"name","response"}}
			fr, _ := pm["functionResponse"].(map[string]any)
			results = append(results, normMsg{Role: "tool", ToolCallID: str(fr["id"]), Name: str(fr["name"]), Content: textOf(fr["response"])})
		case "tool_call_response", "tool-result", "tool_result", "function_call_output":
			results = append(results, normMsg{
				Role:       "tool",
				ToolCallID: firstStr(pm, "id", "toolCallId", "call_id", "tool_use_id"),
				Name:       str(pm["toolName"]),
				Content:    textOf(firstOf(pm, "response", "result", "output", "content")),
			})
		default:
			kept = append(kept, pm)
		}
	}
	switch {
	case len(kept) == 1 && isTextPart(kept[0]):
		msg.Content = kept[0].(map[string]any)["text"]
	case len(kept) > 0:
		msg.Content = kept
	default:
		msg.Content = nil
	}
	if len(results) > 0 && len(kept) == 0 && len(msg.ToolCalls) == 0 {
		return results // a message that only carries tool results
	}
	out := []normMsg{msg}
	return append(out, results...)
}

// roleAliases are other dialects' names of the OpenAI roles (Gemini calls
// the assistant "model").
var roleAliases = map[string]string{"model": "assistant"}

// untypedPartType names a part that carries no "type" by the member that
// holds its value, as Gemini parts do ({"text": ...}, {"functionCall": ...}).
func untypedPartType(pm map[string]any) string {
	switch {
	case pm["functionCall"] != nil:
		return "functioncall"
	case pm["functionResponse"] != nil:
		return "functionresponse"
	}
	if _, ok := pm["text"].(string); ok {
		if thought, _ := pm["thought"].(bool); thought {
			return "reasoning" // a Gemini thought summary
		}
		return "text"
	}
	return ""
}

func isTextPart(p any) bool {
	m, ok := p.(map[string]any)
	if !ok || len(m) != 2 {
		return false
	}
	_, isText := m["text"].(string)
	return isText && m["type"] == "text"
}

// convertToolCalls normalizes OpenAI tool calls (kept as sent) and the flat
// {id, name, arguments} / Vercel {toolCallId, toolName, args} shapes.
func convertToolCalls(tcs []any) []any {
	out := make([]any, 0, len(tcs))
	for _, tc := range tcs {
		m, ok := tc.(map[string]any)
		if !ok {
			continue
		}
		if _, isOpenAI := m["function"]; isOpenAI {
			out = append(out, m)
			continue
		}
		out = append(out, toolCall(firstStr(m, "id", "toolCallId"), firstStr(m, "name", "toolName"), firstOf(m, "arguments", "args", "input")))
	}
	return out
}

func toolCall(id, name string, args any) map[string]any {
	tc := map[string]any{"type": "function", "function": map[string]any{"name": name, "arguments": textOf(args)}}
	if id != "" {
		tc["id"] = id
	}
	return tc
}

// textOf renders a value as text: strings as they are, anything else as JSON
// (OpenAI tool arguments and tool results are strings).
func textOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

func firstStr(m map[string]any, ks ...string) string {
	for _, k := range ks {
		if s := str(m[k]); s != "" {
			return s
		}
	}
	return ""
}

func firstOf(m map[string]any, ks ...string) any {
	for _, k := range ks {
		if v, ok := m[k]; ok && v != nil {
			return v
		}
	}
	return nil
}

func marshalMsgs(msgs []normMsg) string {
	if msgs == nil {
		msgs = []normMsg{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(msgs); err != nil {
		// Only unencodable values (none come out of decoding) reach here.
		return "[]"
	}
	return strings.ToValidUTF8(strings.TrimSuffix(buf.String(), "\n"), "\ufffd")
}

// normalizeSemconvSystem turns gen_ai.system_instructions (a JSON array of
// parts, or text) into one system message.
func systemMessage(v pcommon.Value) (normMsg, bool) {
	s := strings.TrimSpace(valueText(v))
	if s == "" {
		return normMsg{}, false
	}
	if parsed, ok := decodeJSON(s); ok {
		switch x := parsed.(type) {
		case []any:
			msgs := convertMessage(map[string]any{"role": "system", "parts": x}, "system")
			if len(msgs) > 0 {
				return msgs[0], true
			}
		case string:
			return normMsg{Role: "system", Content: x}, true
		}
	}
	return normMsg{Role: "system", Content: s}, true
}

// prependMessage splices msg in front of a normalized messages array.
func prependMessage(msg normMsg, arr string) string {
	first := marshalMsgs([]normMsg{msg})
	body := strings.TrimSpace(arr)
	if len(body) < 2 || body[0] != '[' {
		return first
	}
	inner := strings.TrimSpace(body[1 : len(body)-1])
	if inner == "" {
		return first
	}
	return first[:len(first)-1] + "," + inner + "]"
}

// vercelCompletion builds the assistant message of a Vercel AI SDK span from
// ai.response.text, ai.response.toolCalls and ai.response.reasoning.
func vercelCompletion(text *pcommon.Value, toolCalls *pcommon.Value, reasoning *pcommon.Value) string {
	msg := normMsg{Role: roleCompletion}
	if text != nil {
		msg.Content = valueText(*text)
	}
	if toolCalls != nil {
		if v, ok := decodeJSON(valueText(*toolCalls)); ok {
			if arr, ok := v.([]any); ok {
				msg.ToolCalls = convertToolCalls(arr)
			}
		}
	}
	if reasoning != nil {
		msg.Reasoning = valueText(*reasoning)
	}
	if s, _ := msg.Content.(string); s == "" && len(msg.ToolCalls) > 0 {
		msg.Content = nil // a tool-call turn has no text, as in the OpenAI shape
	}
	return marshalMsgs([]normMsg{msg})
}

// flatEntry is one flattened message attribute: llm.input_messages.3.message.role
// -> {idx: 3, path: "role"}.
type flatEntry struct {
	role  contentRole
	kind  contentKind
	idx   int
	path  string
	value pcommon.Value
}

// parseFlatKey splits "<prefix>N.<rest>" and normalizes the rest of the
// OpenInference and OpenLLMetry spellings to one path:
//
//	message.role / role                                        -> role
//	message.content / content                                  -> content
//	message.contents.M.message_content.text (.type, .image...) -> contents.M.text
//	message.tool_calls.K.tool_call.function.name / tool_calls.K.name -> tool_calls.K.name
func parseFlatKey(rest string) (int, string, bool) {
	dot := strings.IndexByte(rest, '.')
	if dot <= 0 {
		return 0, "", false
	}
	idx, err := strconv.Atoi(rest[:dot])
	if err != nil || idx < 0 || idx > 1<<20 {
		return 0, "", false
	}
	path := rest[dot+1:]
	path = strings.TrimPrefix(path, "message.")
	switch path {
	case "prompt.text", "completion.text": // OpenInference llm.prompts.N.prompt.text, llm.choices.N.completion.text
		return idx, "content", true
	}
	if strings.Contains(path, "message_content.") || strings.Contains(path, "tool_call.") || strings.Contains(path, "function.") {
		path = strings.NewReplacer("message_content.", "", "tool_call.", "", "function.", "").Replace(path)
	}
	return idx, path, path != ""
}

// assembleFlat builds messages from flattened attributes of one role.
func assembleFlat(entries []flatEntry, role contentRole, kind contentKind, defRole string) string {
	type partAcc struct {
		typ, text, url string
	}
	type tcAcc struct {
		id, name, args string
	}
	type msgAcc struct {
		msg   normMsg
		hasC  bool
		parts map[int]*partAcc
		tcs   map[int]*tcAcc
	}
	byIdx := map[int]*msgAcc{}
	for _, e := range entries {
		if e.role != role || e.kind != kind {
			continue
		}
		a := byIdx[e.idx]
		if a == nil {
			a = &msgAcc{}
			byIdx[e.idx] = a
		}
		val, _ := readString(e.value)
		if e.value.Type() == pcommon.ValueTypeMap || e.value.Type() == pcommon.ValueTypeSlice {
			val = valueText(e.value)
		}
		head, tail, _ := strings.Cut(e.path, ".")
		switch head {
		case "role":
			a.msg.Role = val
		case "content":
			a.msg.Content, a.hasC = val, true
		case "name":
			a.msg.Name = val
		case "tool_call_id":
			a.msg.ToolCallID = val
		case "reasoning", "reasoning_content":
			a.msg.Reasoning = val
		case "contents", "tool_calls":
			n, sub, ok := strings.Cut(tail, ".")
			k, err := strconv.Atoi(n)
			if !ok || err != nil || k < 0 || k > 1<<20 {
				continue
			}
			if head == "contents" {
				if a.parts == nil {
					a.parts = map[int]*partAcc{}
				}
				p := a.parts[k]
				if p == nil {
					p = &partAcc{}
					a.parts[k] = p
				}
				switch sub {
				case "type":
					p.typ = val
				case "text":
					p.text = val
				case "image.image.url", "image.url", "image_url.url":
					p.url = val
				}
				continue
			}
			if a.tcs == nil {
				a.tcs = map[int]*tcAcc{}
			}
			tc := a.tcs[k]
			if tc == nil {
				tc = &tcAcc{}
				a.tcs[k] = tc
			}
			switch sub {
			case "id":
				tc.id = val
			case "name":
				tc.name = val
			case "arguments":
				tc.args = val
			}
		}
	}
	idxs := make([]int, 0, len(byIdx))
	for i := range byIdx {
		idxs = append(idxs, i)
	}
	sort.Ints(idxs)
	msgs := make([]normMsg, 0, len(idxs))
	for _, i := range idxs {
		a := byIdx[i]
		m := a.msg
		if m.Role == "" {
			m.Role = defRole
		}
		if !a.hasC && len(a.parts) > 0 {
			ks := make([]int, 0, len(a.parts))
			for k := range a.parts {
				ks = append(ks, k)
			}
			sort.Ints(ks)
			parts := make([]any, 0, len(ks))
			for _, k := range ks {
				p := a.parts[k]
				switch {
				case reasoningPartTypes[strings.ToLower(p.typ)]:
					// OpenInference message_content.type = reasoning: the
					// chain of thought, not the answer.
					m.Reasoning += p.text
				case p.url != "":
					parts = append(parts, map[string]any{"type": "image_url", "image_url": map[string]any{"url": p.url}})
				default:
					parts = append(parts, map[string]any{"type": "text", "text": p.text})
				}
			}
			switch {
			case len(parts) == 0:
				m.Content = nil
			case len(parts) == 1 && isTextPart(parts[0]):
				m.Content = parts[0].(map[string]any)["text"]
			default:
				m.Content = parts
			}
		} else if s, isStr := m.Content.(string); isStr && strings.HasPrefix(strings.TrimSpace(s), "[") {
			// OpenLLMetry sends list content as a JSON string of parts.
			if v, ok := decodeJSON(s); ok {
				if arr, ok := v.([]any); ok && allTypedParts(arr) {
					conv := convertMessage(map[string]any{"role": m.Role, "content": arr}, defRole)
					if len(conv) == 1 {
						m.Content = conv[0].Content
					}
				}
			}
		}
		if len(a.tcs) > 0 {
			ks := make([]int, 0, len(a.tcs))
			for k := range a.tcs {
				ks = append(ks, k)
			}
			sort.Ints(ks)
			for _, k := range ks {
				tc := a.tcs[k]
				m.ToolCalls = append(m.ToolCalls, toolCall(tc.id, tc.name, tc.args))
			}
		}
		msgs = append(msgs, m)
	}
	return marshalMsgs(msgs)
}

func allObjects(v any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range arr {
		if _, ok := e.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// reasoningPartTypes are the part types that carry the model's reasoning.
var reasoningPartTypes = map[string]bool{"reasoning": true, "thinking": true, "reasoning_text": true, "summary_text": true}

func allTypedParts(arr []any) bool {
	if len(arr) == 0 {
		return false
	}
	for _, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := m["type"].(string); !ok {
			return false
		}
	}
	return true
}

// unquoteSlow decodes a JSON string literal with encoding/json.
func unquoteSlow(raw string) (string, bool) {
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return "", false
	}
	return s, true
}
