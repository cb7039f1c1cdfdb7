package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Reader is the read side of a backend: what the console and the query API
// (DESIGN 5) ask of the stored spans. Every call is bounded: lists are pages
// of at most MaxPageSize rows reached by keyset cursors, aggregates stream
// through the database and return a handful of rows, and nothing loads a
// table into memory. Every call is scoped to one project (Filter.ProjectID
// or the project argument): a row of another project is never returned, and
// an id of another project is ErrNotFound.
type Reader interface {
	// Summary totals the generations that match f.
	Summary(ctx context.Context, f Filter) (Summary, error)
	// Usage groups the generations that match f by day, model, provider or
	// customer, largest cost first (by day: in day order), at most limit
	// groups.
	Usage(ctx context.Context, f Filter, by UsageGroup, limit int) ([]UsageRow, error)
	// Series buckets the generations that match f by start time into
	// buckets of width nanoseconds starting at origin (a multiple of width
	// is a good origin), with a latency histogram per bucket.
	Series(ctx context.Context, f Filter, origin, width int64) ([]SeriesPoint, error)
	// Generations lists the generation spans that match f.
	Generations(ctx context.Context, f Filter, p Page) ([]Span, *Cursor, error)
	// Span returns one span of the project (ErrNotFound when missing).
	Span(ctx context.Context, project, traceID, spanID string) (Span, error)
	// Trace returns the spans of one trace of the project in start order,
	// at most limit (ErrNotFound when there is none).
	Trace(ctx context.Context, project, traceID string, limit int) ([]Span, error)
	// Sessions lists rows of the sessions view: whole sessions, of which f
	// selects those active in its time range (first seen before To, last
	// seen at or after From) that have a generation matching its other
	// fields.
	Sessions(ctx context.Context, f Filter, p Page) ([]SessionRow, *Cursor, error)
	// Session returns one row of the sessions view (ErrNotFound).
	Session(ctx context.Context, project, sessionID string) (SessionRow, error)
	// Customers lists rows of the customers view, selected as Sessions
	// selects sessions.
	Customers(ctx context.Context, f Filter, p Page) ([]CustomerRow, *Cursor, error)
	// Customer returns one row of the customers view (ErrNotFound).
	Customer(ctx context.Context, project, customerID string) (CustomerRow, error)
}

// ErrNotFound is returned for an id the project does not have.
var ErrNotFound = errors.New("not found")

// Page limits; a page is never larger than MaxPageSize rows.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
	// MaxTraceSpans bounds Trace: a trace with more spans is cut.
	MaxTraceSpans = 10000
	// QScanWindow is how many candidate generations one page of a q
	// (substring) search examines at most. A page of a search can hold
	// fewer than its limit rows and still have a next cursor: the search
	// went through this many rows and goes on from there. Each candidate's
	// prompt and completion are read from the table (kilobytes a row, no
	// index holds them): 5,000 keeps a page near 50 ms at a million spans
	// (BENCHMARKS.md), 20,000 took 190-260 ms.
	QScanWindow = 5000
)

// Filter selects generations (DESIGN 5). Empty strings and nil times do not
// filter. From is inclusive and To exclusive, on the span's start time.
type Filter struct {
	ProjectID  string
	From, To   *int64
	CustomerID string
	SessionID  string
	Model      string
	Provider   string
	StatusCode string
	// Q is a case-insensitive substring of the prompt or the completion.
	Q string
}

// OnlyTime reports whether f filters on nothing but the project and time.
func (f *Filter) OnlyTime() bool {
	return f.CustomerID == "" && f.SessionID == "" && f.Model == "" && f.Provider == "" && f.StatusCode == "" && f.Q == ""
}

// Summary is the result of Reader.Summary. Sessions and Customers count the
// distinct session and customer ids of the matching generations. Costs are
// nil when no matching generation has a known cost.
type Summary struct {
	Generations  int64
	Sessions     int64
	Customers    int64
	Errors       int64
	InputTokens  int64
	OutputTokens int64
	TotalCostUSD *float64
}

// UsageGroup is the grouping of Reader.Usage.
type UsageGroup string

// Usage groupings (the group_by values of the API).
const (
	ByDay      UsageGroup = "day"
	ByModel    UsageGroup = "model"
	ByProvider UsageGroup = "provider"
	ByCustomer UsageGroup = "customer"
	BySession  UsageGroup = "session"
)

// ParseUsageGroup validates a group_by value.
func ParseUsageGroup(s string) (UsageGroup, error) {
	switch g := UsageGroup(s); g {
	case ByDay, ByModel, ByProvider, ByCustomer, BySession:
		return g, nil
	}
	return "", fmt.Errorf("group_by must be day, model, provider, customer or session, got %q", s)
}

// UsageRow is one group of Reader.Usage. Key is the day (YYYY-MM-DD, UTC),
// model, provider, customer id or session id; nil when the generations have
// none.
type UsageRow struct {
	Key          *string
	Generations  int64
	Errors       int64
	InputTokens  int64
	OutputTokens int64
	TotalCostUSD *float64
}

// LatencyBoundsMs are the upper bounds (exclusive, in milliseconds) of the
// latency histogram buckets of SeriesPoint; one more bucket holds the rest.
// Each bound is 2^(1/3) (26%) above the one before, from 4 ms to about 2.5
// minutes, so a quantile read from the histogram is within 13% of the truth.
var LatencyBoundsMs = func() []float64 {
	var b []float64
	for i := 0; i <= 45; i++ {
		v := 4 * math.Pow(2, float64(i)/3)
		b = append(b, float64(int64(v*1000+0.5))/1000)
	}
	return b
}()

// SeriesPoint is one time bucket of Reader.Series.
type SeriesPoint struct {
	BucketStartUnixNano int64
	Generations         int64
	Errors              int64
	InputTokens         int64
	OutputTokens        int64
	TotalCostUSD        float64
	// Latency counts generations by duration_ms: Latency[i] counts those
	// under LatencyBoundsMs[i] (and not under the bound before); the last
	// element counts the rest.
	Latency []int64
}

// SessionRow is a row of the sessions view (DESIGN 2.5).
type SessionRow struct {
	ProjectID         string
	SessionID         string
	CustomerID        *string
	Generations       int64
	Errors            int64
	InputTokens       *int64
	OutputTokens      *int64
	TotalCostUSD      *float64
	FirstSeenUnixNano int64
	LastSeenUnixNano  int64
}

// CustomerRow is a row of the customers view (DESIGN 2.5).
type CustomerRow struct {
	ProjectID         string
	CustomerID        string
	Sessions          int64
	Generations       int64
	InputTokens       *int64
	OutputTokens      *int64
	TotalCostUSD      *float64
	FirstSeenUnixNano int64
	LastSeenUnixNano  int64
}

// Page asks for one page of a list.
type Page struct {
	// Limit is the page size (DefaultPageSize when 0, at most MaxPageSize).
	Limit int
	// Sort is a sortable column of the list (the list's default when
	// empty); Desc sorts it descending. Ties are broken by the row's key.
	Sort string
	Desc bool
	// After continues from the cursor of the previous page.
	After *Cursor
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}

// Cursor is the position after the last row of a page: the sort, and the
// sort value and key of that row (as text, so int64 values keep every
// digit). It travels as an opaque string (Encode, ParseCursor).
type Cursor struct {
	Sort   string   `json:"s"`
	Desc   bool     `json:"d,omitempty"`
	Values []string `json:"v"`
}

// Encode returns the cursor as an opaque URL-safe string.
func (c *Cursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadCursor is returned for a cursor that is not one of ours or belongs
// to another sort.
var ErrBadCursor = errors.New("invalid cursor: pass the next_cursor of the previous page, with the same sort")

// ParseCursor decodes a cursor made by Encode.
func ParseCursor(s string) (*Cursor, error) {
	if len(s) > 4096 {
		return nil, ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadCursor
	}
	var c Cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Sort == "" || len(c.Values) == 0 {
		return nil, ErrBadCursor
	}
	return &c, nil
}

// SortColumn is a column a list can be sorted by.
type SortColumn struct {
	Name string
	// Expr is the SQL expression sorted on (NULL mapped to -1, so keyset
	// comparisons never meet a NULL).
	Expr string
	Type ColumnType // Int or Real
}

// ListSpec describes a sortable list: its columns and its default sort.
type ListSpec struct {
	Sorts       []SortColumn
	DefaultSort string
	DefaultDesc bool
	// Keys are the columns that make the order total (ascending or
	// descending with the sort).
	Keys []string
}

// Sort returns the sort column named name ("" = default).
func (l *ListSpec) Sort(name string) (SortColumn, bool) {
	if name == "" {
		name = l.DefaultSort
	}
	for _, c := range l.Sorts {
		if c.Name == name {
			return c, true
		}
	}
	return SortColumn{}, false
}

// SortNames lists the sortable columns, for error messages.
func (l *ListSpec) SortNames() string {
	names := make([]string, len(l.Sorts))
	for i, c := range l.Sorts {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// ParseSort reads an API sort value ("column" or "-column") for list l.
func (l *ListSpec) ParseSort(s string) (name string, desc bool, err error) {
	if s == "" {
		return l.DefaultSort, l.DefaultDesc, nil
	}
	desc = strings.HasPrefix(s, "-")
	name = strings.TrimPrefix(s, "-")
	if _, ok := l.Sort(name); !ok {
		return "", false, fmt.Errorf("sort %q is not supported here: use one of %s, with - for descending", s, l.SortNames())
	}
	return name, desc, nil
}

func coalesced(col string) string { return "coalesce(" + col + ", -1)" }

// The sortable lists.
var (
	GenerationsList = ListSpec{
		Sorts: []SortColumn{
			{"start_time_unix_nano", "start_time_unix_nano", Int},
			{"duration_ms", "duration_ms", Real},
			{"total_cost_usd", coalesced("total_cost_usd"), Real},
			{"total_tokens", coalesced("total_tokens"), Int},
			{"input_tokens", coalesced("input_tokens"), Int},
			{"output_tokens", coalesced("output_tokens"), Int},
			{"time_to_first_token_ms", coalesced("time_to_first_token_ms"), Real},
		},
		DefaultSort: "start_time_unix_nano", DefaultDesc: true,
		Keys: []string{"trace_id", "span_id"},
	}
	SessionsList = ListSpec{
		Sorts: []SortColumn{
			{"last_seen_unix_nano", "last_seen_unix_nano", Int},
			{"first_seen_unix_nano", "first_seen_unix_nano", Int},
			{"total_cost_usd", coalesced("total_cost_usd"), Real},
			{"generations", "generations", Int},
			{"errors", "errors", Int},
			{"input_tokens", coalesced("input_tokens"), Int},
			{"output_tokens", coalesced("output_tokens"), Int},
		},
		DefaultSort: "last_seen_unix_nano", DefaultDesc: true,
		Keys: []string{"session_id"},
	}
	CustomersList = ListSpec{
		Sorts: []SortColumn{
			{"last_seen_unix_nano", "last_seen_unix_nano", Int},
			{"first_seen_unix_nano", "first_seen_unix_nano", Int},
			{"total_cost_usd", coalesced("total_cost_usd"), Real},
			{"generations", "generations", Int},
			{"sessions", "sessions", Int},
			{"input_tokens", coalesced("input_tokens"), Int},
			{"output_tokens", coalesced("output_tokens"), Int},
		},
		DefaultSort: "last_seen_unix_nano", DefaultDesc: true,
		Keys: []string{"customer_id"},
	}
)

// cursorArgs checks that c belongs to sort col of list l and returns its
// values typed for the query: the sort value, then the keys.
func cursorArgs(l *ListSpec, col SortColumn, desc bool, c *Cursor) ([]any, error) {
	if c.Sort != col.Name || c.Desc != desc || len(c.Values) != 1+len(l.Keys) {
		return nil, ErrBadCursor
	}
	out := make([]any, 0, len(c.Values))
	switch col.Type {
	case Int:
		v, err := strconv.ParseInt(c.Values[0], 10, 64)
		if err != nil {
			return nil, ErrBadCursor
		}
		out = append(out, v)
	default:
		v, err := strconv.ParseFloat(c.Values[0], 64)
		if err != nil {
			return nil, ErrBadCursor
		}
		out = append(out, v)
	}
	for _, k := range c.Values[1:] {
		out = append(out, k)
	}
	return out, nil
}

// sortValueText formats a sort value for a cursor.
func sortValueText(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case *int64:
		if x == nil {
			return "-1"
		}
		return strconv.FormatInt(*x, 10)
	case *float64:
		if x == nil {
			return "-1"
		}
		return strconv.FormatFloat(*x, 'g', -1, 64)
	}
	panic(fmt.Sprintf("storage: unsupported sort value %T", v))
}
