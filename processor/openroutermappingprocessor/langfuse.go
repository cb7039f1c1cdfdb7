package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"github.com/fallom/fallom-collector/internal/attrvalue"

	"encoding/json"
	"strings"
)

// Langfuse carries usage and cost as JSON objects with open-ended keys. What
// arrives in langfuse.observation.usage_details depends on the integration
// that filled it, so the object's shape is recognized first (usageShapes):
// the raw usage of a provider API, passed on as the API returned it (the
// Langfuse Python OpenAI integration does this), is read by path with that
// API's counting; anything else is Langfuse's own usage details, whose keys
// are exclusive parts (input, input_cached_tokens, ..., output,
// output_reasoning_tokens, ...) and are summed:
//
//	{"input":100,"input_cached_tokens":900,"cache_creation_input_tokens":50,
//	 "output":20,"output_reasoning_tokens":10,"total":1080}
//	-> input 1050, cached 900, cache write 50, output 30, reasoning 10, total 1080
//
// They only fill fields that no attribute supplied.

// usageShape is one provider's raw usage object: recognized by a member only
// it has, its members read by path, with that provider's counting.
type usageShape struct {
	name     string
	markers  []string // top-level members (any of them) that identify the shape
	members  []usageMember
	counting tokenCounting
}

type usageMember struct {
	path  string // member names joined by "."
	token int    // tIn, tOut, ..., or tCacheWrite1h
}

// tCacheWrite1h: a usage member that is the part of the cache writes kept
// one hour (priced apart, mapped.cacheWrite1h), not one of the six counts.
const tCacheWrite1h = tReasoning + 1

var usageShapes = []usageShape{
	{
		// prompt_tokens includes prompt_tokens_details.cached_tokens,
		// completion_tokens includes completion_tokens_details.reasoning_tokens.
		name:    "OpenAI Chat Completions usage",
		markers: []string{"prompt_tokens", "completion_tokens"},
		members: []usageMember{
			{"prompt_tokens", tIn}, {"completion_tokens", tOut}, {"total_tokens", tTotal},
			{"prompt_tokens_details.cached_tokens", tCached}, {"completion_tokens_details.reasoning_tokens", tReasoning},
		},
		counting: countsInclusive,
	},
	{
		// input_tokens leaves cache_read_input_tokens and
		// cache_creation_input_tokens out.
		name:    "Anthropic Messages usage",
		markers: []string{"cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation"},
		members: []usageMember{
			{"input_tokens", tIn}, {"output_tokens", tOut},
			{"cache_read_input_tokens", tCached}, {"cache_creation_input_tokens", tCacheWrite},
			{"cache_creation.ephemeral_1h_input_tokens", tCacheWrite1h}, // part of the writes
		},
		counting: inputOmitsCache,
	},
	{
		// input_tokens includes input_tokens_details.cached_tokens (and
		// Anthropic's input_tokens without cache members is the whole input).
		name:    "OpenAI Responses usage",
		markers: []string{"input_tokens", "output_tokens"},
		members: []usageMember{
			{"input_tokens", tIn}, {"output_tokens", tOut}, {"total_tokens", tTotal},
			{"input_tokens_details.cached_tokens", tCached}, {"output_tokens_details.reasoning_tokens", tReasoning},
		},
		counting: countsInclusive,
	},
}

// Langfuse's own keys of cached, cache-write and reasoning parts.
var (
	langfuseCachedKeys = map[string]bool{"input_cached_tokens": true, "cache_read_input_tokens": true, "input_cache_read": true, "cached_tokens": true}
	langfuseWriteKeys  = map[string]bool{"cache_creation_input_tokens": true, "input_cache_creation": true, "input_cache_write": true}
	langfuseReasonKeys = map[string]bool{"output_reasoning_tokens": true, "output_reasoning": true, "reasoning_tokens": true}
)

func isLangfuseInput(k string) bool {
	return strings.HasPrefix(k, "input") || strings.HasPrefix(k, "prompt") || langfuseCachedKeys[k] || langfuseWriteKeys[k]
}

func isLangfuseOutput(k string) bool {
	return strings.HasPrefix(k, "output") || strings.HasPrefix(k, "completion") || langfuseReasonKeys[k]
}

// langfuseObject decodes a JSON object, member names lower-cased (nested
// objects too).
func langfuseObject(s string) map[string]any {
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil
	}
	return lowerKeys(raw)
}

func lowerKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = lowerKeys(sub)
		}
		out[strings.ToLower(k)] = v
	}
	return out
}

// jsonCount reads a member as a non-negative number.
func jsonCount(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil && f >= 0
}

func langfuseUsage(s string, m *mapped) {
	obj := langfuseObject(s)
	if len(obj) == 0 {
		return
	}
	var (
		vals [tCacheWrite1h + 1]float64
		has  [tCacheWrite1h + 1]bool
	)
	shape := shapeOf(obj)
	if shape != nil {
		for _, mb := range shape.members {
			if v, ok := jsonPath(obj, mb.path); ok {
				vals[mb.token], has[mb.token] = jsonCount(v)
			}
		}
		if shape.counting&inputOmitsCache != 0 && has[tIn] && vals[tCached]+vals[tCacheWrite] > 0 {
			vals[tIn] += vals[tCached] + vals[tCacheWrite]
			m.adjust(adjInputExcludedCache)
		}
	} else {
		for k, raw := range obj {
			v, ok := jsonCount(raw)
			switch {
			case !ok || k == "total":
				continue
			case isLangfuseInput(k):
				vals[tIn], has[tIn] = vals[tIn]+v, true
				if langfuseCachedKeys[k] {
					vals[tCached], has[tCached] = vals[tCached]+v, true
				}
				if langfuseWriteKeys[k] {
					vals[tCacheWrite], has[tCacheWrite] = vals[tCacheWrite]+v, true
				}
			case isLangfuseOutput(k):
				vals[tOut], has[tOut] = vals[tOut]+v, true
				if langfuseReasonKeys[k] {
					vals[tReasoning], has[tReasoning] = vals[tReasoning]+v, true
				}
			}
		}
		vals[tTotal], has[tTotal] = jsonCount(obj["total"])
	}
	if has[tCacheWrite1h] && m.cacheWrite1h == 0 {
		// An attribute's 1-hour count, read after this, wins.
		if n, whole := attrvalue.WholeFloat(min(vals[tCacheWrite1h], float64(maxTokens))); whole {
			m.cacheWrite1h = n
		}
	}
	for i := range m.tokens {
		if has[i] && !m.hasTokens[i] {
			if n, whole := attrvalue.WholeFloat(min(vals[i], float64(maxTokens))); whole {
				m.tokens[i], m.hasTokens[i] = n, true
			}
		}
	}
}

// shapeOf returns the provider usage shape of a usage object, or nil for
// Langfuse's own usage details.
func shapeOf(obj map[string]any) *usageShape {
	for i := range usageShapes {
		for _, k := range usageShapes[i].markers {
			if _, ok := obj[k]; ok {
				return &usageShapes[i]
			}
		}
	}
	return nil
}

func langfuseCost(s string, m *mapped) {
	obj := langfuseObject(s)
	if len(obj) == 0 {
		return
	}
	var in, out float64
	var hasIn, hasOut bool
	for k, raw := range obj {
		v, ok := jsonCount(raw)
		switch {
		case !ok || k == "total":
		case isLangfuseInput(k):
			in, hasIn = in+v, true
		case isLangfuseOutput(k):
			out, hasOut = out+v, true
		}
	}
	if hasIn && !m.hasIn {
		m.inCost, m.hasIn = in, true
	}
	if hasOut && !m.hasOut {
		m.outCost, m.hasOut = out, true
	}
	if total, ok := jsonCount(obj["total"]); ok && !m.hasTotal {
		m.totalCost, m.hasTotal = total, true
	}
}

// jsonPath walks member names joined by "." through decoded JSON objects.
func jsonPath(root map[string]any, path string) (any, bool) {
	var cur any = root
	for path != "" {
		name, rest, _ := strings.Cut(path, ".")
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[name]; !ok || cur == nil {
			return nil, false
		}
		path = rest
	}
	return cur, true
}
