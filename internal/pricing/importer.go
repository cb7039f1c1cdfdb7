package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ListFormat is a public price list that `fallomcol prices import` reads.
type ListFormat string

const (
	// FormatOpenRouter is the answer of OpenRouter's GET /api/v1/models:
	// {"data": [{"id": "openai/gpt-4o", "pricing": {"prompt": "0.0000025", ...}}]},
	// USD per token as decimal strings.
	FormatOpenRouter ListFormat = "openrouter"
	// FormatLiteLLM is LiteLLM's model_prices_and_context_window.json: an
	// object keyed by model name, USD per token as JSON numbers.
	FormatLiteLLM ListFormat = "litellm"
)

// Price fields in pricing-file order; ImportedModel.Prices follows it.
const (
	fieldInput = iota
	fieldOutput
	fieldCacheRead
	fieldCacheWrite
	fieldCacheWrite1h
	numFields
)

var fieldNames = [numFields]string{"input", "output", "cache_read", "cache_write", "cache_write_1h"}

// ImportedModel is one model of a price list, its prices kept as the decimal
// text the list gives (so the pricing file holds exactly the source's digits).
type ImportedModel struct {
	Name   string
	Prices [numFields]string // "" = not given
}

// PriceList is what a price list yields.
type PriceList struct {
	Format ListFormat
	Models []ImportedModel // sorted by name
	// Skipped lists the entries that are not per-token model prices, by
	// reason (an image model, a per-second price, a router...).
	Skipped map[string][]string
	// Invalid holds one error per model whose prices are nonsense
	// (negative, not a number, not finite): the import writes nothing.
	Invalid []error
	// Refused holds one error per model whose price fails the per-token
	// sanity guard (checkPrice: over MaxPerToken, 100x the built-in price,
	// an unknown model above the dearest known prices, a cache read above
	// input or a cache write above 2.5x input: a per-million or per-1K price
	// in a per-token field). The lists carry such mistakes (LiteLLM's wandb/*
	// entries in 2026); they are left out.
	Refused []error
	// Warnings are about prices that are kept but deserve a look (digits a
	// float64 cannot hold).
	Warnings []string
	// Notes count price features a computed cost does not include (per-
	// request fees, long-context tiers...), by description.
	Notes map[string]int
}

func (l *PriceList) skip(reason, name string) { l.Skipped[reason] = append(l.Skipped[reason], name) }
func (l *PriceList) note(what string)         { l.Notes[what]++ }

// Reasons for skipping an entry.
const (
	skipNoTokenPrice = "no per-token input and output price (priced per image, second, character or request)"
	skipMode         = "not a text-generation or embedding model (LiteLLM mode)"
	skipRouter       = "price decided per request (OpenRouter router, price -1)"
	skipSpec         = "LiteLLM's sample_spec (documentation, not a model)"
	skipBadName      = "model name empty, over 256 bytes or with control characters"
	skipNotEntry     = "not a model entry (not a JSON object)"
	skipDuplicate    = "same name as another model but for case"
)

// ParsePriceList reads an OpenRouter model list or a LiteLLM price file,
// telling them apart by content.
func ParsePriceList(data []byte) (*PriceList, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a price list: expected a JSON object (OpenRouter's /api/v1/models answer or LiteLLM's model_prices_and_context_window.json): %w", err)
	}
	list := &PriceList{Skipped: map[string][]string{}, Notes: map[string]int{}}
	if raw, ok := top["data"]; ok && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		list.Format = FormatOpenRouter
		if err := list.readOpenRouter(raw); err != nil {
			return nil, err
		}
	} else if looksLikeLiteLLM(top) {
		list.Format = FormatLiteLLM
		if err := list.readLiteLLM(top); err != nil {
			return nil, err
		}
	} else {
		return nil, errors.New(`not a known price list: expected OpenRouter's /api/v1/models answer ({"data": [...]}) or LiteLLM's model_prices_and_context_window.json (an object of models with input_cost_per_token)`)
	}
	sort.Slice(list.Models, func(i, j int) bool { return list.Models[i].Name < list.Models[j].Name })
	// Lookups ignore case: of names that differ only in case, the first
	// (in byte order) is kept.
	seen := make(map[string]bool, len(list.Models))
	unique := list.Models[:0]
	for _, m := range list.Models {
		key := strings.ToLower(strings.TrimSpace(m.Name))
		if seen[key] {
			list.skip(skipDuplicate, m.Name)
			continue
		}
		seen[key] = true
		unique = append(unique, m)
	}
	list.Models = unique
	for _, names := range list.Skipped {
		sort.Strings(names)
	}
	byText := func(errs []error) {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	}
	byText(list.Invalid)
	byText(list.Refused)
	if len(list.Models) == 0 && len(list.Invalid) == 0 && len(list.Refused) == 0 {
		return nil, fmt.Errorf("the %s list has no model with per-token prices", list.Format)
	}
	return list, nil
}

func looksLikeLiteLLM(top map[string]json.RawMessage) bool {
	if _, ok := top["sample_spec"]; ok {
		return true
	}
	for _, raw := range top {
		var entry map[string]json.RawMessage
		if json.Unmarshal(raw, &entry) != nil {
			continue
		}
		if _, ok := entry["input_cost_per_token"]; ok {
			return true
		}
		if _, ok := entry["litellm_provider"]; ok {
			return true
		}
	}
	return false
}

// openRouterFields maps OpenRouter's pricing keys to pricing-file fields.
// OpenRouter lists one cache-write price: the default (5-minute) one.
var openRouterFields = map[string]int{
	"prompt":            fieldInput,
	"completion":        fieldOutput,
	"input_cache_read":  fieldCacheRead,
	"input_cache_write": fieldCacheWrite,
}

func (l *PriceList) readOpenRouter(raw json.RawMessage) error {
	var models []struct {
		ID      string                     `json:"id"`
		Pricing map[string]json.RawMessage `json:"pricing"`
	}
	if err := json.Unmarshal(raw, &models); err != nil {
		return fmt.Errorf("not an OpenRouter model list: %w", err)
	}
	for _, m := range models {
		if !validName(m.ID) {
			l.skip(skipBadName, m.ID)
			continue
		}
		// The prices used must be numbers; the others (request,
		// internal_reasoning, image, web_search, ...) only feed the notes.
		text := map[string]string{}
		var errs []error
		for key, v := range m.Pricing {
			s, err := decimalText(v)
			if _, used := openRouterFields[key]; used && err != nil {
				errs = append(errs, fmt.Errorf("%s price %s: %w", key, v, err))
			}
			if err == nil {
				text[key] = s
			}
		}
		if err := errors.Join(errs...); err != nil {
			l.Invalid = append(l.Invalid, fmt.Errorf("model %q: %w", m.ID, err))
			continue
		}
		if text["prompt"] == "" || text["completion"] == "" {
			l.skip(skipNoTokenPrice, m.ID)
			continue
		}
		// Routers such as openrouter/auto list -1: the price is the one of
		// the model each request is routed to.
		if text["prompt"] == "-1" || text["completion"] == "-1" {
			l.skip(skipRouter, m.ID)
			continue
		}
		var im ImportedModel
		im.Name = m.ID
		for key, field := range openRouterFields {
			im.Prices[field] = text[key]
		}
		if isNonZero(text["request"]) {
			l.note("models with a per-request fee (not in computed costs)")
		}
		if r := text["internal_reasoning"]; isNonZero(r) && !sameDecimal(r, text["completion"]) {
			l.note("models with a reasoning-token price other than the output price (reasoning is priced as output)")
		}
		if strings.HasPrefix(m.ID, "anthropic/") {
			l.deriveAnthropic1h(&im)
		}
		l.add(im)
	}
	return nil
}

// liteLLMFields maps LiteLLM's keys to pricing-file fields, first key first.
var liteLLMFields = [numFields][]string{
	fieldInput:        {"input_cost_per_token"},
	fieldOutput:       {"output_cost_per_token"},
	fieldCacheRead:    {"cache_read_input_token_cost", "input_cost_per_token_cache_hit"},
	fieldCacheWrite:   {"cache_creation_input_token_cost"},
	fieldCacheWrite1h: {"cache_creation_input_token_cost_above_1hr"},
}

// liteLLMModes are the LiteLLM modes whose entries are priced per token of
// text: chat and completion models, the responses API, and embeddings.
var liteLLMModes = map[string]bool{"": true, "chat": true, "completion": true, "responses": true, "embedding": true}

func (l *PriceList) readLiteLLM(top map[string]json.RawMessage) error {
	for name, raw := range top {
		if name == "sample_spec" {
			l.skip(skipSpec, name)
			continue
		}
		if !validName(name) {
			l.skip(skipBadName, name)
			continue
		}
		var entry map[string]json.RawMessage
		if err := json.Unmarshal(raw, &entry); err != nil {
			l.skip(skipNotEntry, name) // e.g. a "last_updated" date added by a mirror
			continue
		}
		var mode string
		if m, ok := entry["mode"]; ok {
			_ = json.Unmarshal(m, &mode)
		}
		if !liteLLMModes[mode] {
			l.skip(skipMode+": "+mode, name)
			continue
		}
		var im ImportedModel
		im.Name = name
		var errs []error
		for field, keys := range liteLLMFields {
			for _, key := range keys {
				v, ok := entry[key]
				if !ok || string(v) == "null" {
					continue
				}
				s, err := decimalText(v)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", key, v, err))
				} else {
					im.Prices[field] = s
				}
				break
			}
		}
		if err := errors.Join(errs...); err != nil {
			l.Invalid = append(l.Invalid, fmt.Errorf("model %q: %w", name, err))
			continue
		}
		if mode == "embedding" && im.Prices[fieldOutput] == "" {
			im.Prices[fieldOutput] = "0" // embeddings produce no output tokens
		}
		if im.Prices[fieldInput] == "" || im.Prices[fieldOutput] == "" {
			l.skip(skipNoTokenPrice, name)
			continue
		}
		tiers, perRequest := false, false
		for key := range entry {
			tiers = tiers || strings.Contains(key, "_above_") && strings.HasSuffix(key, "_tokens")
			perRequest = perRequest || key == "input_cost_per_request" || key == "output_cost_per_request"
		}
		if tiers {
			l.note("models with long-context price tiers (priced at their base tier)")
		}
		if perRequest {
			l.note("models with a per-request fee (not in computed costs)")
		}
		if strings.Contains(name, "claude") {
			l.deriveAnthropic1h(&im)
		}
		l.add(im)
	}
	return nil
}

// deriveAnthropic1h adds the 1-hour cache-write price of an Anthropic model
// whose list gives only the 5-minute one: Anthropic bills 1-hour writes at
// 2x the input price (anthropic.com/pricing). Without it, 1-hour writes
// would be priced as 5-minute ones (38% low).
func (l *PriceList) deriveAnthropic1h(im *ImportedModel) {
	if im.Prices[fieldCacheWrite] == "" || im.Prices[fieldCacheWrite1h] != "" {
		return
	}
	in, ok := new(big.Rat).SetString(im.Prices[fieldInput])
	if !ok || in.Sign() < 0 {
		return // reported as invalid by add
	}
	im.Prices[fieldCacheWrite1h] = ratDecimal(in.Mul(in, big.NewRat(2, 1)))
	l.note("Anthropic models given a 1-hour cache-write price of 2x input (the list has only the 5-minute one)")
}

// add validates a model's prices and keeps it, or records why not.
func (l *PriceList) add(im ImportedModel) {
	var p Price
	var errs []error
	for field, text := range im.Prices {
		if text == "" {
			continue
		}
		v, warn, err := decimalValue(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s price %s: %w", fieldNames[field], text, err))
			continue
		}
		if warn != "" {
			l.Warnings = append(l.Warnings, fmt.Sprintf("model %q: %s price %s %s", im.Name, fieldNames[field], text, warn))
		}
		switch field {
		case fieldInput:
			p.Input = v
		case fieldOutput:
			p.Output = v
		case fieldCacheRead:
			p.CacheRead, p.HasCacheRead = v, true
		case fieldCacheWrite:
			p.CacheWrite, p.HasCacheWrite = v, true
		case fieldCacheWrite1h:
			p.CacheWrite1h, p.HasCacheWrite1h = v, true
		}
	}
	if err := errors.Join(errs...); err != nil {
		l.Invalid = append(l.Invalid, fmt.Errorf("model %q: %w", im.Name, err))
		return
	}
	if err := checkPrice(im.Name, p); err != nil {
		l.Refused = append(l.Refused, fmt.Errorf("model %q: %w", im.Name, err))
		return
	}
	l.Models = append(l.Models, im)
}

func validName(name string) bool {
	return strings.TrimSpace(name) != "" && len(name) <= 256 && utf8.ValidString(name) &&
		!strings.ContainsFunc(name, unicode.IsControl)
}

// decimalSyntax is a JSON number: what both lists write (OpenRouter inside
// strings). Anything else ("NaN", "Infinity", "1,5", "") is not a price.
var decimalSyntax = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// decimalText returns the decimal text of a JSON number or of a string
// holding one, exactly as written.
func decimalText(raw json.RawMessage) (string, error) {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errors.New("not a number")
		}
		s = strings.TrimSpace(s)
	}
	if !decimalSyntax.MatchString(s) {
		return "", errors.New("not a number")
	}
	return s, nil
}

// decimalValue converts decimal text to the float64 the processor computes
// with. A negative or non-finite value is an error; a value whose digits a
// float64 cannot hold comes back with a warning naming the value used, so
// precision is never lost silently.
func decimalValue(text string) (v float64, warning string, err error) {
	exact, ok := new(big.Rat).SetString(text)
	if !ok || !decimalSyntax.MatchString(text) {
		return 0, "", errors.New("not a number")
	}
	if exact.Sign() < 0 {
		return 0, "", errors.New("is negative")
	}
	v, err = strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, "", errors.New("is not a finite float64")
	}
	back, _ := new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
	if back.Cmp(exact) != 0 {
		warning = fmt.Sprintf("has more digits than a float64 holds: costs use %s", strconv.FormatFloat(v, 'g', -1, 64))
	}
	return v, warning, nil
}

func isNonZero(text string) bool {
	r, ok := new(big.Rat).SetString(text)
	return ok && r.Sign() != 0
}

func sameDecimal(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

// ratDecimal writes r, a finite decimal (a product of decimals), exactly.
func ratDecimal(r *big.Rat) string {
	for prec := 0; prec <= 60; prec++ {
		s := r.FloatString(prec)
		if back, ok := new(big.Rat).SetString(s); ok && back.Cmp(r) == 0 {
			return s
		}
	}
	return r.FloatString(60)
}
