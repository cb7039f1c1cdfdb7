// Package pricing holds per-token model prices: a built-in table of list
// prices for common models and a user pricing file that overrides it. It is
// used only when a span carries no cost of its own (a reported cost always
// wins over a computed one).
package pricing // import "github.com/fallom/fallom-collector/internal/pricing"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Price is what one token costs, in USD. A cache price that is not set falls
// back to the input price: charging cached tokens at the full input price
// over-estimates, which is safer than charging nothing. A 1-hour cache-write
// price that is not set falls back to the (5-minute) cache-write price.
type Price struct {
	Input           float64
	Output          float64
	CacheRead       float64
	CacheWrite      float64 // cache writes of the default (Anthropic: 5-minute) lifetime
	CacheWrite1h    float64 // cache writes kept for 1 hour (Anthropic bills them at 2x input)
	HasCacheRead    bool
	HasCacheWrite   bool
	HasCacheWrite1h bool

	// Source names the table that priced it, stored with a computed cost as
	// fallom.price_source: "builtin@2025-11-30", "prices.yaml:openrouter@2026-12-02"
	// (an imported entry), "prices.yaml@2026-12-02" (a hand-written one).
	Source string
}

// Usage is a token count as stored: inclusive, like OpenRouter and the OTel
// semantic conventions report it. Input includes cached (cache read) and
// cache-write tokens; Output includes reasoning tokens. CacheWrite1hInput is
// the part of CacheWriteInput written with a 1-hour lifetime, when the span
// says (OpenRouter's gen_ai.usage.input_tokens.cache_write_1h).
type Usage struct {
	Input, Output, CachedInput, CacheWriteInput, CacheWrite1hInput int64
}

// Cost returns the input and output cost of usage. Every token is priced
// exactly once: the input price applies to input - cached - cache_write, the
// cache prices to those two (1-hour writes at the 1-hour price, the other
// writes at the cache-write price), and the output price to all output tokens
// (reasoning tokens are output tokens, billed at the output price).
func (p Price) Cost(u Usage) (input, output float64) {
	cached := max(u.CachedInput, 0)
	write := max(u.CacheWriteInput, 0)
	write1h := min(max(u.CacheWrite1hInput, 0), write)
	plain := max(u.Input-cached-write, 0)
	readPrice, writePrice := p.Input, p.Input
	if p.HasCacheRead {
		readPrice = p.CacheRead
	}
	if p.HasCacheWrite {
		writePrice = p.CacheWrite
	}
	write1hPrice := writePrice
	if p.HasCacheWrite1h {
		write1hPrice = p.CacheWrite1h
	}
	input = float64(plain)*p.Input + float64(cached)*readPrice +
		float64(write-write1h)*writePrice + float64(write1h)*write1hPrice
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
	// OpenRouter writes versions with dots (claude-opus-4.6), Anthropic's
	// API and Bedrock with dashes (claude-opus-4-6-20260205): an imported
	// slug also answers to the dashed name, unless that name is priced.
	if strings.Contains(bare, ".") {
		dashed := strings.ReplaceAll(bare, ".", "-")
		if _, ok := t.bare[dashed]; !ok {
			t.bare[dashed] = p
		}
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
//	"us.anthropic.claude-3-5-haiku-20241022-v1:0" (Bedrock) -> "us.claude-3-5-haiku-20241022",
//	                                    "claude-3-5-haiku-20241022", "us.claude-3-5-haiku", "claude-3-5-haiku"
//	"claude-3-5-haiku@20241022" (Vertex) -> "claude-3-5-haiku"
//
// Only trailing segments of two or more digits (dates, versions like -002)
// and the words latest/preview/exp are stripped, so "claude-sonnet-4-5" is
// never shortened to "claude-sonnet-4". A Bedrock geographic region is kept
// as a "us."-style prefix on the bare names, tried before the name without
// it: the built-in table prices the models whose regional profiles cost
// more under those names (see builtinRow.geoPremium).
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
	region, bare := stripBedrock(bare)
	for {
		if region != "" && !try(region+bare, true) {
			return
		}
		if !try(bare, true) {
			return
		}
		i := strings.LastIndexByte(bare, '-')
		if i <= 0 || !strippable(bare[i+1:]) {
			return
		}
		bare = bare[:i]
	}
}

func lastSegment(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// bedrockRegions are the prefixes of Bedrock cross-region inference
// profiles. geoRegions are the geographic ones (all but global and GovCloud):
// for the models that charge a premium there, the built-in table has
// region-prefixed names.
var (
	bedrockRegions = []string{"us.", "eu.", "apac.", "jp.", "au.", "global.", "us-gov."}
	geoRegions     = []string{"us.", "eu.", "apac.", "jp.", "au."}
	bedrockVendors = []string{"anthropic.", "meta.", "mistral.", "deepseek.", "amazon.", "cohere.", "ai21.", "openai.", "xai."}
)

// stripBedrock turns "us.anthropic.claude-3-5-haiku-20241022-v1" into
// ("us.", "claude-3-5-haiku-20241022"). The region is returned only for a
// geographic profile of a Bedrock model id (a vendor follows it).
func stripBedrock(name string) (geoRegion, bare string) {
	region := ""
	for _, p := range bedrockRegions {
		if strings.HasPrefix(name, p) {
			region, name = p, name[len(p):]
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
	if !vendor {
		return "", name
	}
	if i := strings.LastIndex(name, "-v"); i > 0 && allDigits(name[i+2:]) {
		name = name[:i]
	}
	if !slices.Contains(geoRegions, region) {
		region = ""
	}
	return region, name
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

// FreeVariantSource is the price source of OpenRouter ":free" variants that
// the user's table does not price: they cost nothing.
const FreeVariantSource = "openrouter:free"

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
		e.price, e.ok = Price{HasCacheRead: true, HasCacheWrite: true, HasCacheWrite1h: true, Source: FreeVariantSource}, true
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
	Input        *float64 `yaml:"input"`
	Output       *float64 `yaml:"output"`
	CacheRead    *float64 `yaml:"cache_read"`
	CacheWrite   *float64 `yaml:"cache_write"`
	CacheWrite1h *float64 `yaml:"cache_write_1h"`
	Source       string   `yaml:"source"`
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
//	    cache_write_1h: 0.0000003  # optional; 1-hour cache writes; defaults to cache_write
//	    source: openrouter@2026-12-02  # optional; set by `fallomcol prices import`
//
// Each price records its source (Price.Source): the file's name, then the
// entry's source ("prices.yaml:openrouter@2026-12-02"), or for an entry
// without one the file's modification date ("prices.yaml@2026-12-02").
func LoadFile(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pricing file: %w", err)
	}
	label := filepath.Base(path)
	if fi, err := os.Stat(path); err == nil {
		label += "@" + fi.ModTime().UTC().Format(time.DateOnly)
	}
	t, err := parse(data, filepath.Base(path), label)
	if err != nil {
		return nil, fmt.Errorf("pricing file %s: %w", path, err)
	}
	return t, nil
}

// Parse parses the content of a pricing file (see LoadFile); its prices
// are labelled "pricing file".
func Parse(data []byte) (*Table, error) {
	return parse(data, "pricing file", "pricing file")
}

// maxSourceLen bounds an entry's source label (it is stored with every span
// the entry prices).
const maxSourceLen = 128

// parse reads a pricing file; an entry's price source is fileName:source,
// or plainLabel for entries without a source.
func parse(data []byte, fileName, plainLabel string) (*Table, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a valid pricing file (expected `models:` mapping model names to input/output/cache_read/cache_write/cache_write_1h USD per token): %w", err)
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
		p := Price{Input: *e.Input, Output: *e.Output, Source: plainLabel}
		if e.CacheRead != nil {
			p.CacheRead, p.HasCacheRead = *e.CacheRead, true
		}
		if e.CacheWrite != nil {
			p.CacheWrite, p.HasCacheWrite = *e.CacheWrite, true
		}
		if e.CacheWrite1h != nil {
			p.CacheWrite1h, p.HasCacheWrite1h = *e.CacheWrite1h, true
		}
		if src := strings.TrimSpace(e.Source); src != "" {
			if len(src) > maxSourceLen || !utf8.ValidString(src) || strings.ContainsFunc(src, unicode.IsControl) {
				errs = append(errs, fmt.Errorf("model %q: source must be printable text of at most %d bytes", name, maxSourceLen))
				continue
			}
			p.Source = fileName + ":" + src
		}
		if err := checkPrice(name, p); err != nil {
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

// MaxPerToken is the highest per-token price accepted: USD 1,000 per million
// tokens. The dearest list price known (o1-pro output, USD 600 per million)
// is below it; a per-million price typed into a per-token field is far above
// it, and so is a per-1K price of any model that costs over USD 1 per million
// tokens.
const MaxPerToken = 0.001

// unitMistakeRatio: a price this many times the built-in price of the same
// model is a unit mistake (per 1K tokens is 1000x, per million 1,000,000x),
// not a different price list. It catches per-1K prices of cheap models,
// which MaxPerToken alone cannot tell from the dearest real prices. It
// applies to every field, cache prices included (a cache price the table
// does not list is compared with the price that applies instead).
const unitMistakeRatio = 100

// The dearest list prices known (o1-pro: USD 150 / 600 per million tokens),
// and the margin above them that a price of a model the built-in table does
// not know may reach. A per-1K price typed as per-token is 1000x the real
// one: for a model under USD 1 per million tokens it stays under
// MaxPerToken, and nothing but its size tells it from a real price. So an
// unknown model's input (and cache) price above 1.25 x USD 150 per million,
// or output price above 1.25 x USD 600 per million, is refused: that refuses
// the per-1K prices of every model over about USD 0.19 / 0.75 per million.
// Below that, a per-1K typo of an unknown model looks like a price between
// today's dearest ones and is accepted (known models have the 100x check).
const (
	dearestKnownInput  = 150e-6
	dearestKnownOutput = 600e-6
	dearestMargin      = 1.25
	maxInputPerToken   = dearestMargin * dearestKnownInput
	maxOutputPerToken  = dearestMargin * dearestKnownOutput
)

// maxCacheWriteRatio: a cache write costs at most this many times the input
// price (Anthropic: 1.25x for 5 minutes, 2x for 1 hour). A cache read costs
// at most the input price (it is a discount on input).
const maxCacheWriteRatio = 2.5

// namedPrice is one price of a Price under its pricing-file name.
type namedPrice struct {
	name string
	v    float64
}

// fields lists p's prices by their pricing-file names.
func (p Price) fields() [5]namedPrice {
	return [5]namedPrice{{"input", p.Input}, {"output", p.Output}, {"cache_read", p.CacheRead},
		{"cache_write", p.CacheWrite}, {"cache_write_1h", p.CacheWrite1h}}
}

// validPrice checks that every price of p is a plausible USD per-token price.
func validPrice(p Price) error {
	for _, v := range p.fields() {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) || v.v < 0 {
			return fmt.Errorf("%s price %v must be a non-negative number (USD per token)", v.name, v.v)
		}
		if v.v > MaxPerToken {
			return fmt.Errorf("%s price %v USD per token is implausibly high (over USD %g per million tokens): prices are per token, not per million or per 1K tokens", v.name, v.v, MaxPerToken*1e6)
		}
	}
	return nil
}

// checkPrice is validPrice plus the checks that catch per-1K prices below
// MaxPerToken: against the built-in price of the same model (every field),
// against the dearest known prices (models the table does not know), and
// the cache prices against the model's own input price.
func checkPrice(name string, p Price) error {
	if err := validPrice(p); err != nil {
		return err
	}
	if b, ok := Builtin().Lookup(name); ok {
		for i, f := range p.fields() {
			if f.v == 0 || !p.has(i) {
				continue
			}
			ref := b.effective(i)
			// The tolerance keeps an exact 100x (0.0006 against 6e-06)
			// from slipping through float rounding.
			if ref > 0 && f.v >= unitMistakeRatio*ref*(1-1e-9) {
				return fmt.Errorf("%s price %v USD per token is %.0fx the built-in price of this model (%v): prices are per token, not per 1K tokens", f.name, f.v, f.v/ref, ref)
			}
		}
	} else {
		for i, f := range p.fields() {
			limit, of := maxInputPerToken, "input"
			if i == 1 {
				limit, of = maxOutputPerToken, "output"
			}
			if p.has(i) && f.v > limit {
				return fmt.Errorf("%s price %v USD per token is above the dearest known %s price (USD %g per million tokens) by more than %gx: prices are per token, not per 1K tokens", f.name, f.v, of, limit/dearestMargin*1e6, dearestMargin)
			}
		}
	}
	if p.HasCacheRead && p.CacheRead > p.Input {
		return fmt.Errorf("cache_read price %v USD per token is above its input price %v: a cache read is discounted input (is one of them per 1K tokens?)", p.CacheRead, p.Input)
	}
	for _, w := range []struct {
		name string
		v    float64
		has  bool
	}{{"cache_write", p.CacheWrite, p.HasCacheWrite}, {"cache_write_1h", p.CacheWrite1h, p.HasCacheWrite1h}} {
		if w.has && w.v > maxCacheWriteRatio*p.Input {
			return fmt.Errorf("%s price %v USD per token is %.3gx its input price %v: cache writes cost at most %gx input (Anthropic: 1.25x for 5 minutes, 2x for 1 hour; is one of them per 1K tokens?)", w.name, w.v, w.v/p.Input, p.Input, maxCacheWriteRatio)
		}
	}
	return nil
}

// has reports whether the i-th price of fields() was given (input and
// output always are).
func (p Price) has(i int) bool {
	switch i {
	case 2:
		return p.HasCacheRead
	case 3:
		return p.HasCacheWrite
	case 4:
		return p.HasCacheWrite1h
	}
	return true
}

// effective is the price that applies to the tokens of the i-th field of
// fields(): a cache price not listed falls back as Cost does (reads and
// writes to input, 1-hour writes to the cache-write price).
func (p Price) effective(i int) float64 {
	switch i {
	case 1:
		return p.Output
	case 2:
		if p.HasCacheRead {
			return p.CacheRead
		}
	case 4:
		if p.HasCacheWrite1h {
			return p.CacheWrite1h
		}
		fallthrough
	case 3:
		if p.HasCacheWrite {
			return p.CacheWrite
		}
	}
	return p.Input
}
