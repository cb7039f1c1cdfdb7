package storage

import (
	"sort"
	"strings"
)

// The per-session and per-customer totals (migration 8): session_totals
// and customer_totals hold the rows of the sessions and customers views
// (DESIGN 2.5), kept in the write transaction so the console reads a page
// of an index instead of aggregating every generation of the project.
//
// A write adds what its new generations contribute (deltas aggregated in
// Go, one multi-row upsert per table). min/max (first and last seen, the
// session's customer) cannot be undone by a delta, so a write that changes
// or replaces a stored generation recomputes the rows of its old and new
// session and customer from the spans instead, after the upsert, in the
// same transaction; retention does the same for the rows of the
// generations it deleted. A row with no generation left is deleted.

// TotalsKey is the primary key of a session_totals (ID = session id) or
// customer_totals (ID = customer id) row.
type TotalsKey struct {
	ProjectID string
	ID        string
}

func totalsKeyLess(a, b TotalsKey) bool {
	if a.ProjectID != b.ProjectID {
		return a.ProjectID < b.ProjectID
	}
	return a.ID < b.ID
}

// TotalsDelta is what one write adds to one totals row. Sums of tokens and
// costs come with the count of generations that had the value, so a sum
// over none is NULL as in the views. Costs are integer nano-USD.
type TotalsDelta struct {
	Key TotalsKey
	// CustomerID is the largest customer id of the session's new
	// generations (session_totals only).
	CustomerID *string
	// Sessions is the number of the customer's sessions new to it
	// (customer_totals only; set by the backend from customer_sessions).
	Sessions          int64
	Generations       int64
	Errors            int64
	InputTokens       int64
	InputTokensKnown  int64
	OutputTokens      int64
	OutputTokensKnown int64
	TotalCostNanoUSD  int64
	TotalCostKnown    int64
	FirstSeenUnixNano int64
	LastSeenUnixNano  int64
}

// TotalsCounterColumns are the additive columns of both totals tables, in
// the order of TotalsDelta.Counters.
var TotalsCounterColumns = []string{
	"generations", "errors", "input_tokens", "input_tokens_known",
	"output_tokens", "output_tokens_known", "total_cost_nano_usd", "total_cost_known",
}

// Counters returns the additive columns of d in the order of
// TotalsCounterColumns.
func (d *TotalsDelta) Counters() []int64 {
	return []int64{d.Generations, d.Errors, d.InputTokens, d.InputTokensKnown,
		d.OutputTokens, d.OutputTokensKnown, d.TotalCostNanoUSD, d.TotalCostKnown}
}

// CustomerSession is a row of customer_sessions: a session that has a
// generation of the customer.
type CustomerSession struct {
	ProjectID, CustomerID, SessionID string
}

// TotalsChanges is what one write transaction does to the totals: the
// deltas of its new generations, the customer-session pairs they bring,
// and the rows to recompute from the spans (after the deltas). Every list
// is sorted by key, so concurrent writers lock rows in the same order.
type TotalsChanges struct {
	Sessions           []TotalsDelta
	Customers          []TotalsDelta
	Pairs              []CustomerSession
	RecomputeSessions  []TotalsKey
	RecomputeCustomers []TotalsKey
}

// Empty reports whether c changes nothing.
func (c *TotalsChanges) Empty() bool {
	return len(c.Sessions)+len(c.Customers)+len(c.Pairs)+len(c.RecomputeSessions)+len(c.RecomputeCustomers) == 0
}

// totalsAcc accumulates the totals changes of one write.
type totalsAcc struct {
	sessions, customers    map[TotalsKey]*TotalsDelta
	pairs                  map[CustomerSession]struct{}
	recomputeS, recomputeC map[TotalsKey]struct{}
}

func newTotalsAcc() *totalsAcc {
	return &totalsAcc{
		sessions: map[TotalsKey]*TotalsDelta{}, customers: map[TotalsKey]*TotalsDelta{},
		pairs: map[CustomerSession]struct{}{}, recomputeS: map[TotalsKey]struct{}{}, recomputeC: map[TotalsKey]struct{}{},
	}
}

func (a *totalsAcc) delta(m map[TotalsKey]*TotalsDelta, k TotalsKey, f *UsageFields) *TotalsDelta {
	d := m[k]
	if d == nil {
		d = &TotalsDelta{Key: k, FirstSeenUnixNano: f.StartTimeUnixNano, LastSeenUnixNano: f.EndTimeUnixNano}
		m[k] = d
	}
	d.FirstSeenUnixNano = min(d.FirstSeenUnixNano, f.StartTimeUnixNano)
	d.LastSeenUnixNano = max(d.LastSeenUnixNano, f.EndTimeUnixNano)
	add := func(c *int64, v int64) { *c = SaturatingAdd(*c, v) }
	add(&d.Generations, 1)
	if f.StatusCode == "ERROR" {
		add(&d.Errors, 1)
	}
	if f.InputTokens != nil {
		add(&d.InputTokens, *f.InputTokens)
		add(&d.InputTokensKnown, 1)
	}
	if f.OutputTokens != nil {
		add(&d.OutputTokens, *f.OutputTokens)
		add(&d.OutputTokensKnown, 1)
	}
	if f.TotalCostUSD != nil {
		add(&d.TotalCostNanoUSD, NanoUSD(*f.TotalCostUSD))
		add(&d.TotalCostKnown, 1)
	}
	return d
}

// add accounts for a generation new to the database.
func (a *totalsAcc) add(project string, f *UsageFields) {
	if !f.IsGeneration {
		return
	}
	if f.SessionID != nil {
		k := TotalsKey{project, *f.SessionID}
		d := a.delta(a.sessions, k, f)
		switch c := f.CustomerID; {
		case c == nil:
		case d.CustomerID == nil:
			d.CustomerID = c
		case *c != *d.CustomerID:
			// The session's largest customer is the database's max() (its
			// collation, which Go's byte order may not be): recompute it.
			a.recomputeS[k] = struct{}{}
		}
	}
	if f.CustomerID != nil {
		a.delta(a.customers, TotalsKey{project, *f.CustomerID}, f)
		if f.SessionID != nil {
			a.pairs[CustomerSession{project, *f.CustomerID, *f.SessionID}] = struct{}{}
		}
	}
}

// replace accounts for a stored generation (prev) replaced by f: the rows
// of both are recomputed from the spans, unless nothing the totals hold
// changed.
func (a *totalsAcc) replace(project string, prev, f *UsageFields) {
	if sameTotals(prev, f) {
		return
	}
	for _, g := range []*UsageFields{prev, f} {
		if !g.IsGeneration {
			continue
		}
		if g.SessionID != nil {
			a.recomputeS[TotalsKey{project, *g.SessionID}] = struct{}{}
		}
		if g.CustomerID != nil {
			a.recomputeC[TotalsKey{project, *g.CustomerID}] = struct{}{}
		}
	}
}

// sameTotals reports whether a and b contribute the same to the totals.
func sameTotals(a, b *UsageFields) bool {
	if !a.IsGeneration && !b.IsGeneration {
		return true
	}
	eqS := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqI := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqC := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || NanoUSD(*x) == NanoUSD(*y)) }
	return a.IsGeneration == b.IsGeneration && eqS(a.SessionID, b.SessionID) && eqS(a.CustomerID, b.CustomerID) &&
		(a.StatusCode == "ERROR") == (b.StatusCode == "ERROR") && eqI(a.InputTokens, b.InputTokens) &&
		eqI(a.OutputTokens, b.OutputTokens) && eqC(a.TotalCostUSD, b.TotalCostUSD) &&
		a.StartTimeUnixNano == b.StartTimeUnixNano && a.EndTimeUnixNano == b.EndTimeUnixNano
}

func (a *totalsAcc) changes() *TotalsChanges {
	c := &TotalsChanges{
		Sessions: sortedTotals(a.sessions), Customers: sortedTotals(a.customers),
		RecomputeSessions: SortedTotalsKeys(a.recomputeS), RecomputeCustomers: SortedTotalsKeys(a.recomputeC),
	}
	for p := range a.pairs {
		c.Pairs = append(c.Pairs, p)
	}
	sort.Slice(c.Pairs, func(i, j int) bool {
		x, y := c.Pairs[i], c.Pairs[j]
		if x.ProjectID != y.ProjectID {
			return x.ProjectID < y.ProjectID
		}
		if x.CustomerID != y.CustomerID {
			return x.CustomerID < y.CustomerID
		}
		return x.SessionID < y.SessionID
	})
	return c
}

func sortedTotals(m map[TotalsKey]*TotalsDelta) []TotalsDelta {
	out := make([]TotalsDelta, 0, len(m))
	for _, d := range m {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return totalsKeyLess(out[i].Key, out[j].Key) })
	return out
}

// SortedTotalsKeys returns the keys of m in key order.
func SortedTotalsKeys(m map[TotalsKey]struct{}) []TotalsKey {
	out := make([]TotalsKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return totalsKeyLess(out[i], out[j]) })
	return out
}

// TotalsTable is one of the totals tables.
type TotalsTable struct {
	Name  string // session_totals or customer_totals
	IDCol string // session_id or customer_id
	// Extra is the column besides the counters: the session's customer_id
	// (the largest) or the customer's sessions (a counter).
	Extra string
}

// The totals tables.
var (
	SessionTotals  = TotalsTable{Name: "session_totals", IDCol: "session_id", Extra: "customer_id"}
	CustomerTotals = TotalsTable{Name: "customer_totals", IDCol: "customer_id", Extra: "sessions"}
)

// Columns is the column list of an upsert of t, in the order of its
// values: project_id, the id, Extra, the counters, first and last seen.
func (t TotalsTable) Columns() string {
	return "project_id, " + t.IDCol + ", " + t.Extra + ", " + strings.Join(TotalsCounterColumns, ", ") +
		", first_seen_unix_nano, last_seen_unix_nano"
}

// TotalsColumnCount is the number of values of one row of Columns.
var TotalsColumnCount = 5 + len(TotalsCounterColumns)

// Values returns the values of one row of t's upsert for d.
func (t TotalsTable) Values(d *TotalsDelta) []any {
	out := make([]any, 0, TotalsColumnCount)
	out = append(out, d.Key.ProjectID, d.Key.ID)
	if t.Extra == "customer_id" {
		out = append(out, d.CustomerID)
	} else {
		out = append(out, d.Sessions)
	}
	for _, v := range d.Counters() {
		out = append(out, v)
	}
	return append(out, d.FirstSeenUnixNano, d.LastSeenUnixNano)
}

// TotalsDialect is what differs between the backends' totals SQL.
type TotalsDialect struct {
	// Least and Greatest are the two-argument min and max functions.
	Least, Greatest string
	// True is the literal of a true boolean column value.
	True string
	// NanoUSD is total_cost_usd in integer nano-USD, rounded as NanoUSD
	// rounds (half away from zero).
	NanoUSD string
	// Spans is the FROM term of the spans read through the named index
	// (SQLite's planner, without statistics, walks the whole project
	// through (project_id, start) instead of probing the keys).
	Spans func(index string) string
}

// UpsertSQL adds the rows of source (a SELECT or VALUES of Columns) to t:
// counters saturate, first and last seen widen, the session's customer is
// the larger one.
func (t TotalsTable) UpsertSQL(source string, d TotalsDialect) string {
	set := make([]string, 0, len(TotalsCounterColumns)+3)
	for _, c := range TotalsCounterColumns {
		set = append(set, c+" = "+SaturatingSum(t.Name, "excluded", c))
	}
	if t.Extra == "customer_id" {
		a, b := t.Name+".customer_id", "excluded.customer_id"
		set = append(set, "customer_id = CASE WHEN "+a+" IS NULL OR "+b+" > "+a+" THEN coalesce("+b+", "+a+") ELSE "+a+" END")
	} else {
		set = append(set, "sessions = "+SaturatingSum(t.Name, "excluded", "sessions"))
	}
	set = append(set,
		"first_seen_unix_nano = "+d.Least+"("+t.Name+".first_seen_unix_nano, excluded.first_seen_unix_nano)",
		"last_seen_unix_nano = "+d.Greatest+"("+t.Name+".last_seen_unix_nano, excluded.last_seen_unix_nano)")
	return "INSERT INTO " + t.Name + " (" + t.Columns() + ") " + source +
		" ON CONFLICT (project_id, " + t.IDCol + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// RecomputeSQL returns the statements that set the rows of t whose keys
// keys yields (a FROM term of (project_id, id) rows; each statement binds
// it once) to the aggregate of the stored generations, deleting those with
// none left. The first statement creates or resets the rows, which locks
// them (PostgreSQL: waiting for writers holding them), so the aggregate,
// a statement of its own, sees what those writers committed.
func (t TotalsTable) RecomputeSQL(keys string, d TotalsDialect) []string {
	in := "(project_id, " + t.IDCol + ") IN (SELECT * FROM " + keys + ")"
	extra, index := "max(customer_id)", genSessionIndex
	if t.Extra == "sessions" {
		extra, index = "count(DISTINCT session_id)", genCustomerIndex
	}
	spans := d.Spans(index)
	agg := "SELECT project_id, " + t.IDCol + ", " + extra + ", count(*), " + errorCount + ", " +
		sumInt("input_tokens") + ", count(input_tokens), " + sumInt("output_tokens") + ", count(output_tokens), " +
		sumInt(d.NanoUSD) + ", count(total_cost_usd), min(start_time_unix_nano), max(end_time_unix_nano)" +
		" FROM " + spans + " WHERE is_generation = " + d.True + " AND " + t.IDCol + " IS NOT NULL AND " + in +
		" GROUP BY project_id, " + t.IDCol
	set := make([]string, 0, len(TotalsCounterColumns)+3)
	for _, c := range append([]string{t.Extra, "first_seen_unix_nano", "last_seen_unix_nano"}, TotalsCounterColumns...) {
		set = append(set, c+" = excluded."+c)
	}
	conflict := " ON CONFLICT (project_id, " + t.IDCol + ") DO UPDATE SET "
	stmts := []string{
		// WHERE true: SQLite's parser needs it between a SELECT and ON CONFLICT.
		"INSERT INTO " + t.Name + " (project_id, " + t.IDCol + ", first_seen_unix_nano, last_seen_unix_nano) SELECT k.*, 0, 0 FROM " +
			keys + " k WHERE true" + conflict + "generations = 0",
		"INSERT INTO " + t.Name + " (" + t.Columns() + ") " + agg + conflict + strings.Join(set, ", "),
		"DELETE FROM " + t.Name + " WHERE " + in + " AND generations = 0",
	}
	if t.Extra == "sessions" {
		stmts = append(stmts,
			"DELETE FROM customer_sessions WHERE "+in,
			"INSERT INTO customer_sessions (project_id, customer_id, session_id) SELECT DISTINCT project_id, customer_id, session_id"+
				" FROM "+spans+" WHERE is_generation = "+d.True+" AND customer_id IS NOT NULL AND session_id IS NOT NULL AND "+in)
	}
	return stmts
}
