package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"encoding/json"
	"strings"
)

// Langfuse carries usage and cost as JSON objects with open-ended keys.
// Its usage details are exclusive (the Langfuse SDKs subtract cached tokens
// from "input" and reasoning from "output", and Anthropic reports input
// without cache), so the inclusive counts we store are sums:
//
//	usage_details {"input":100,"input_cached_tokens":900,"cache_creation_input_tokens":50,
//	               "output":20,"output_reasoning_tokens":10,"total":1080}
//	-> input 1050, cached 900, cache write 50, output 30, reasoning 10, total 1080
//
// They only fill fields that no attribute supplied.

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

// langfuseNumbers decodes a JSON object of numbers, ignoring other members.
func langfuseNumbers(s string) map[string]float64 {
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil
	}
	out := make(map[string]float64, len(raw))
	for k, v := range raw {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		f, err := n.Float64()
		if err != nil || f < 0 {
			continue
		}
		out[strings.ToLower(k)] = f
	}
	return out
}

func langfuseUsage(s string, m *mapped) {
	nums := langfuseNumbers(s)
	if len(nums) == 0 {
		return
	}
	var in, out, cached, write, reasoning float64
	var hasIn, hasOut, hasCached, hasWrite, hasReasoning bool
	for k, v := range nums {
		switch {
		case k == "total":
			continue
		case isLangfuseInput(k):
			in, hasIn = in+v, true
			if langfuseCachedKeys[k] {
				cached, hasCached = cached+v, true
			}
			if langfuseWriteKeys[k] {
				write, hasWrite = write+v, true
			}
		case isLangfuseOutput(k):
			out, hasOut = out+v, true
			if langfuseReasonKeys[k] {
				reasoning, hasReasoning = reasoning+v, true
			}
		}
	}
	fill := func(i int, v float64, ok bool) {
		if ok && !m.hasTokens[i] {
			if n, whole := wholeCount(v); whole {
				m.tokens[i], m.hasTokens[i] = n, true
			}
		}
	}
	fill(tIn, in, hasIn)
	fill(tOut, out, hasOut)
	fill(tCached, cached, hasCached)
	fill(tCacheWrite, write, hasWrite)
	fill(tReasoning, reasoning, hasReasoning)
	total, hasTotal := nums["total"]
	fill(tTotal, total, hasTotal)
}

func langfuseCost(s string, m *mapped) {
	nums := langfuseNumbers(s)
	if len(nums) == 0 {
		return
	}
	var in, out float64
	var hasIn, hasOut bool
	for k, v := range nums {
		switch {
		case k == "total":
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
	if total, ok := nums["total"]; ok && !m.hasTotal {
		m.totalCost, m.hasTotal = total, true
	}
}
