package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import "strings"

// The Fallom SDK's wrappers send what they kept of a call as two JSON
// strings, fallom.raw.request and fallom.raw.response, one shape per wrapper
// (FALLOM_SDK.md 2.3, read from the TypeScript SDK 0.2.28 and the Python SDK
// 0.2.7):
//
//	wrapper            request                                        response
//	OpenAI chat        {messages, model, tools, ...}                  {text, finishReason, model, toolCalls (OpenAI), functionCall}
//	PY Responses API   {model, input (text or items), instructions}   {responseId, model, status, output[], text}
//	Anthropic          {messages, system (text or blocks), model}     {text, finishReason, model, toolCalls[{id,name,arguments}], content (blocks)}
//	Google             the request: text, parts, or {contents, systemInstruction}; PY: text   {text, candidates, finishReason, toolCalls[{name,arguments}]}
//	AI SDK             {prompt (text or messages), messages, system}  {text, toolCalls, toolResults, steps[], responseMessages}; generateObject {object}
//	Mastra agent       the input: text or messages                    the agent's result ({text, toolCalls, steps, ...})
//
// The members are read by name, whichever wrapper sent them (the names do
// not collide between wrappers); the messages inside them are converted by
// convertMessage, which knows every dialect's message and part shapes. A
// value of no known shape falls back to normalizeAny.

// fallomSystemMembers hold system instructions: "system" (Anthropic, the AI
// SDK: text or text blocks), "instructions" (OpenAI Responses API),
// "systemInstruction" (Gemini: text, parts or a Content).
var fallomSystemMembers = []string{"system", "instructions", "systemInstruction"}

// fallomConversationMembers hold the conversation; the first present wins:
// "messages" (OpenAI, Anthropic, AI SDK), "contents" (Gemini), "input"
// (OpenAI Responses API), "prompt" (AI SDK: text or messages).
var fallomConversationMembers = []string{"messages", "contents", "input", "prompt"}

// fallomItemRoles: OpenAI Responses API items that are not messages, and the
// role of the message each becomes.
var fallomItemRoles = map[string]string{"function_call": roleCompletion, "function_call_output": "tool"}

// fallomRequest normalizes fallom.raw.request; nil when it has no known shape.
func fallomRequest(s string) []normMsg {
	v, ok := decodeJSON(strings.TrimSpace(s))
	if !ok {
		return nil
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return fallomConversation(v) // Gemini text or parts, Mastra input
	}
	var out []normMsg
	for _, k := range fallomSystemMembers {
		out = append(out, fallomSystem(obj[k])...)
	}
	for _, k := range fallomConversationMembers {
		if msgs := fallomConversation(obj[k]); msgs != nil {
			out = append(out, msgs...)
			break
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fallomSystem reads system instructions: text, a list of blocks or parts,
// or a Gemini Content.
func fallomSystem(v any) []normMsg {
	switch x := v.(type) {
	case string:
		if x != "" {
			return []normMsg{{Role: "system", Content: x}}
		}
	case []any:
		if len(x) > 0 {
			return convertMessage(map[string]any{"role": "system", "content": x}, "system")
		}
	case map[string]any:
		if parts, ok := x["parts"]; ok {
			return convertMessage(map[string]any{"role": "system", "parts": parts}, "system")
		}
		return convertMessage(map[string]any{"role": "system", "content": []any{x}}, "system") // one part
	}
	return nil
}

// fallomConversation reads a conversation: text (one user message), a list
// of messages, items or bare parts, or a single message.
func fallomConversation(v any) []normMsg {
	switch x := v.(type) {
	case string:
		return []normMsg{{Role: rolePrompt, Content: x}}
	case []any:
		return fallomItems(x)
	case map[string]any:
		if isMessage(x) {
			return convertMessage(x, rolePrompt)
		}
	}
	return nil
}

func isMessage(m map[string]any) bool {
	return m["role"] != nil || m["parts"] != nil || m["content"] != nil
}

// fallomItems converts a list whose elements are messages, OpenAI Responses
// items, or parts that belong to no message (Gemini's generateContent(["a",
// {inlineData}]) is one user message of two parts).
func fallomItems(arr []any) []normMsg {
	var out []normMsg
	var loose []any
	flush := func() {
		if len(loose) > 0 {
			out = append(out, convertMessage(map[string]any{"role": rolePrompt, "content": loose}, rolePrompt)...)
			loose = nil
		}
	}
	for _, e := range arr {
		switch x := e.(type) {
		case string:
			loose = append(loose, x)
		case map[string]any:
			role, isItem := fallomItemRoles[str(x["type"])]
			switch {
			case isMessage(x):
				flush()
				out = append(out, convertMessage(x, rolePrompt)...)
			case isItem:
				flush()
				out = append(out, convertMessage(map[string]any{"role": role, "content": []any{x}}, role)...)
			default:
				loose = append(loose, x)
			}
		}
	}
	flush()
	if out == nil {
		return []normMsg{}
	}
	return out
}

// fallomResponse normalizes fallom.raw.response into the assistant
// message(s); nil when it has no known shape.
func fallomResponse(s string) []normMsg {
	v, ok := decodeJSON(strings.TrimSpace(s))
	if !ok {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	// The AI SDK's own record of the turn (tool calls, tool results and the
	// answer of every step), when the wrapper got it.
	if rm, ok := obj["responseMessages"].([]any); ok && len(rm) > 0 && looksLikeMessages(rm) {
		return convertMessages(rm, roleCompletion)
	}
	if steps, ok := obj["steps"].([]any); ok && len(steps) > 1 {
		if msgs := aiSDKSteps(steps); len(msgs) > 0 {
			return msgs
		}
	}
	msg, found := fallomAnswer(obj)
	if !found {
		return nil
	}
	return append([]normMsg{msg}, toolResults(obj["toolResults"])...)
}

// fallomAnswer builds one assistant message from the members the wrappers
// use; found is false when obj has none of them.
func fallomAnswer(obj map[string]any) (normMsg, bool) {
	msg := normMsg{Role: roleCompletion}
	found := false
	if t, ok := obj["text"]; ok {
		found = true
		if s, isStr := t.(string); isStr {
			msg.Content = s
		}
	}
	if o := obj["object"]; o != nil { // generateObject / streamObject
		found = true
		msg.Content = textOf(o)
	}
	if tcs, ok := obj["toolCalls"].([]any); ok {
		found = true
		msg.ToolCalls = convertToolCalls(tcs)
	}
	if fc, ok := obj["functionCall"].(map[string]any); ok { // OpenAI's legacy function call
		found = true
		msg.ToolCalls = append(msg.ToolCalls, toolCall("", str(fc["name"]), fc["arguments"]))
	}
	// Anthropic content blocks (thinking, and text and tool_use when the
	// members above are missing); OpenAI Responses output items.
	for _, k := range []string{"content", "output"} {
		blocks, ok := obj[k].([]any)
		if !ok {
			continue
		}
		found = true
		var parts []any
		for _, b := range blocks {
			bm, _ := b.(map[string]any)
			if c, ok := bm["content"].([]any); ok && str(bm["type"]) == "message" {
				parts = append(parts, c...) // a Responses message item: its parts
			} else if bm != nil {
				parts = append(parts, bm)
			}
		}
		conv := convertMessage(map[string]any{"role": roleCompletion, "content": parts}, roleCompletion)
		if len(conv) == 0 {
			continue
		}
		if msg.Content == nil {
			msg.Content = conv[0].Content
		}
		if len(msg.ToolCalls) == 0 {
			msg.ToolCalls = conv[0].ToolCalls
		}
		if msg.Reasoning == "" {
			msg.Reasoning = conv[0].Reasoning
		}
	}
	if s, _ := msg.Content.(string); s == "" && len(msg.ToolCalls) > 0 {
		msg.Content = nil // a tool-call turn has no text, as in the OpenAI shape
	}
	return msg, found
}

// aiSDKSteps turns the AI SDK's steps into the turn's messages: each step's
// answer and tool calls, then its tool results.
func aiSDKSteps(steps []any) []normMsg {
	var out []normMsg
	for _, st := range steps {
		sm, ok := st.(map[string]any)
		if !ok {
			continue
		}
		msg := normMsg{Role: roleCompletion}
		if t, _ := sm["text"].(string); t != "" {
			msg.Content = t
		}
		if tcs, ok := sm["toolCalls"].([]any); ok {
			msg.ToolCalls = convertToolCalls(tcs)
		}
		if msg.Content != nil || len(msg.ToolCalls) > 0 {
			out = append(out, msg)
		}
		out = append(out, toolResults(sm["toolResults"])...)
	}
	return out
}

// toolResults converts the AI SDK's tool results ({toolCallId, toolName,
// result}) into tool messages.
func toolResults(v any) []normMsg {
	trs, _ := v.([]any)
	var out []normMsg
	for _, tr := range trs {
		m, ok := tr.(map[string]any)
		if !ok {
			continue
		}
		out = append(out, normMsg{
			Role: "tool", ToolCallID: firstStr(m, "toolCallId", "id"), Name: str(m["toolName"]),
			Content: textOf(firstOf(m, "result", "output")),
		})
	}
	return out
}
