// Package pricing holds per-token model prices: a built-in table of list
// prices for common models and a user pricing file that overrides it. It is
// used only when a span carries no cost of its own (a reported cost always
// wins over a computed one).
package pricing // import "github.com/fallom/fallom-collector/internal/pricing"

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Price is what one token costs, in USD. A cache price that is not set falls
// back to the input price: charging cached tokens at the full input price
// over-estimates, which is safer than charging nothing.
type Price struct {
	Input         float64
	Output        float64
	CacheRead     float64
	CacheWrite    float64
	HasCacheRead  bool
	HasCacheWrite bool
}

// Usage is a token count as stored: inclusive, like OpenRouter and the OTel
// semantic conventions report it. Input includes cached (cache read) and
// cache-write tokens; Output includes reasoning tokens.
type Usage struct {
	Input, Output, CachedInput, CacheWriteInput int64
}

// Cost returns the input and output cost of usage. Every token is priced
// exactly once: the input price applies to input - cached - cache_write, the
// cache prices to those two, and the output price to all output tokens
// (reasoning tokens are output tokens, billed at the output price).
func (p Price) Cost(u Usage) (input, output float64) {
	cached := max(u.CachedInput, 0)
	write := max(u.CacheWriteInput, 0)
	plain := max(u.Input-cached-write, 0)
	readPrice, writePrice := p.Input, p.Input
	if p.HasCacheRead {
		readPrice = p.CacheRead
	}
	if p.HasCacheWrite {
		writePrice = p.CacheWrite
	}
	input = float64(plain)*p.Input + float64(cached)*readPrice + float64(write)*writePrice
	output = float64(max(u.Output, 0)) * p.Output
	return input, output
}

// Table is a set of prices looked up by model name, tolerant of the many
// spellings of one model (OpenRouter slugs, dated provider names, Bedrock and
// Vertex ids). Names are normalized only for the lookup.
type Table struct {
	exact map[string]Price // lower-cased full names and slugs
	bare  map[string]Price // lower-cased names without the "vendor/" path
}

func newTable() *Table {
	return &Table{exact: map[string]Price{}, bare: map[string]Price{}}
}

func (t *Table) add(name string, p Price) {
	key := strings.ToLower(strings.TrimSpace(name))
	if key == "" {
		return
	}
	t.exact[key] = p
	bare := lastSegment(key)
	// A full key wins over an alias that merely shares its last segment.
	if _, ok := t.bare[bare]; !ok || bare == key {
		t.bare[bare] = p
	}
}

// Len is the number of names in the table.
func (t *Table) Len() int { return len(t.exact) }

// Lookup finds the price of model, trying the exact name first and then
// progressively normalized forms (see candidates).
func (t *Table) Lookup(model string) (Price, bool) {
	if t == nil {
		return Price{}, false
	}
	var found Price
	ok := false
	forEachCandidate(model, func(name string, bareOnly bool) bool {
		if !bareOnly {
			if p, hit := t.exact[name]; hit {
				found, ok = p, true
				return false
			}
		}
		if p, hit := t.bare[name]; hit {
			found, ok = p, true
			return false
		}
		return true
	})
	return found, ok
}

// forEachCandidate calls try with the lookup forms of model, most specific
// first, until try returns false:
//
//	"OpenAI/GPT-4o-mini-2024-07-18"  -> "openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18",
//	                                    "gpt-4o-mini-2024-07", "gpt-4o-mini-2024", "gpt-4o-mini"
//	"anthropic/claude-3.5-haiku:beta" -> variant suffix dropped
//	"us.anthropic.claude-3-5-haiku-20241022-v1:0" (Bedrock) -> "claude-3-5-haiku"
//	"claude-3-5-haiku@20241022" (Vertex) -> "claude-3-5-haiku"
//
// Only trailing segments of two or more digits (dates, versions like -002)
// and the words latest/preview/exp are stripped, so "claude-sonnet-4-5" is
// never shortened to "claude-sonnet-4".
func forEachCandidate(model string, try func(name string, bareOnly bool) bool) {
	name := strings.ToLower(strings.TrimSpace(model))
	if name == "" {
		return
	}
	if !try(name, false) {
		return
	}
	if i := strings.LastIndexByte(name, ':'); i > 0 {
		name = name[:i] // OpenRouter variants (:beta, :nitro, :free) and Bedrock ":0"
		if !try(name, false) {
			return
		}
	}
	bare := lastSegment(name)
	if i := strings.IndexByte(bare, '@'); i > 0 {
		bare = bare[:i] // Vertex AI: claude-3-5-haiku@20241022
	}
	bare = stripBedrock(bare)
	if !try(bare, true) {
		return
	}
	for {
		i := strings.LastIndexByte(bare, '-')
		if i <= 0 || !strippable(bare[i+1:]) {
			return
		}
		bare = bare[:i]
		if !try(bare, true) {
			return
		}
	}
}

func lastSegment(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

var bedrockRegions = []string{"us.", "eu.", "apac.", "global.", "us-gov."}
var bedrockVendors = []string{"anthropic.", "meta.", "mistral.", "deepseek.", "amazon.", "cohere.", "ai21.", "openai.", "xai."}

// stripBedrock turns "us.anthropic.claude-3-5-haiku-20241022-v1" into
// "claude-3-5-haiku-20241022".
func stripBedrock(name string) string {
	for _, p := range bedrockRegions {
		if strings.HasPrefix(name, p) {
			name = name[len(p):]
			break
		}
	}
	vendor := false
	for _, p := range bedrockVendors {
		if strings.HasPrefix(name, p) {
			name = name[len(p):]
			vendor = true
			break
		}
	}
	if vendor {
		if i := strings.LastIndex(name, "-v"); i > 0 && allDigits(name[i+2:]) {
			name = name[:i]
		}
	}
	return name
}

func strippable(seg string) bool {
	switch seg {
	case "latest", "preview", "exp":
		return true
	}
	return len(seg) >= 2 && allDigits(seg)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Pricer looks a model up in the user's table first, then in the built-in
// one, and remembers the answer per model string (the set of model names in
// a deployment is small; the memo is bounded so junk names cannot grow it).
type Pricer struct {
	user    *Table
	builtin *Table

	mu   sync.RWMutex
	memo map[string]memoEntry
}

type memoEntry struct {
	price Price
	ok    bool
}

const maxMemo = 4096

// NewPricer combines a user table (may be nil) with the built-in table.
func NewPricer(user *Table) *Pricer {
	return &Pricer{user: user, builtin: Builtin(), memo: map[string]memoEntry{}}
}

// Lookup returns the price of model. ":free" OpenRouter variants cost nothing
// unless the user's table prices them.
func (p *Pricer) Lookup(model string) (Price, bool) {
	if model == "" {
		return Price{}, false
	}
	p.mu.RLock()
	e, hit := p.memo[model]
	p.mu.RUnlock()
	if hit {
		return e.price, e.ok
	}
	e.price, e.ok = p.user.Lookup(model)
	if !e.ok && strings.HasSuffix(strings.ToLower(strings.TrimSpace(model)), ":free") {
		e.price, e.ok = Price{HasCacheRead: true, HasCacheWrite: true}, true
	}
	if !e.ok {
		e.price, e.ok = p.builtin.Lookup(model)
	}
	p.mu.Lock()
	if len(p.memo) < maxMemo {
		p.memo[model] = e
	}
	p.mu.Unlock()
	return e.price, e.ok
}

// fileEntry is one model in a pricing file. Prices are USD per token.
type fileEntry struct {
	Input      *float64 `yaml:"input"`
	Output     *float64 `yaml:"output"`
	CacheRead  *float64 `yaml:"cache_read"`
	CacheWrite *float64 `yaml:"cache_write"`
}

type file struct {
	Models map[string]fileEntry `yaml:"models"`
}

// LoadFile reads a user pricing file:
//
//	models:
//	  openai/gpt-4o-mini:          # any model name; matched like the built-in table
//	    input: 0.00000015          # USD per input token (required)
//	    output: 0.0000006          # USD per output token (required)
//	    cache_read: 0.000000075    # optional; defaults to input
//	    cache_write: 0.0           # optional; defaults to input
func LoadFile(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pricing file: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("pricing file %s: %w", path, err)
	}
	return t, nil
}

// Parse parses the content of a pricing file (see LoadFile).
func Parse(data []byte) (*Table, error) {
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a valid pricing file (expected `models:` mapping model names to input/output/cache_read/cache_write USD per token): %w", err)
	}
	if len(f.Models) == 0 {
		return nil, errors.New("no models: expected `models:` with at least one model")
	}
	names := make([]string, 0, len(f.Models))
	for name := range f.Models {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic errors and alias resolution
	t := newTable()
	var errs []error
	for _, name := range names {
		e := f.Models[name]
		if strings.TrimSpace(name) == "" {
			errs = append(errs, errors.New("empty model name"))
			continue
		}
		if e.Input == nil || e.Output == nil {
			errs = append(errs, fmt.Errorf("model %q: input and output prices are required", name))
			continue
		}
		p := Price{Input: *e.Input, Output: *e.Output}
		if e.CacheRead != nil {
			p.CacheRead, p.HasCacheRead = *e.CacheRead, true
		}
		if e.CacheWrite != nil {
			p.CacheWrite, p.HasCacheWrite = *e.CacheWrite, true
		}
		if err := validPrice(p); err != nil {
			errs = append(errs, fmt.Errorf("model %q: %w", name, err))
			continue
		}
		t.add(name, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// A per-token price above this is almost certainly a per-million price typed
// into a per-token field.
const maxPerToken = 0.01

func validPrice(p Price) error {
	for _, v := range []struct {
		name string
		v    float64
	}{{"input", p.Input}, {"output", p.Output}, {"cache_read", p.CacheRead}, {"cache_write", p.CacheWrite}} {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) || v.v < 0 {
			return fmt.Errorf("%s price %v must be a non-negative number (USD per token)", v.name, v.v)
		}
		if v.v > maxPerToken {
			return fmt.Errorf("%s price %v USD per token is implausibly high: prices are per token, not per million tokens", v.name, v.v)
		}
	}
	return nil
}
