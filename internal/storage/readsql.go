package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReadDialect is what differs between the backends' read SQL: the SQL text
// is built here once (as the write algorithm is shared in write.go), with
// each backend's placeholders and literals.
type ReadDialect struct {
	// Placeholder returns the n-th (1-based) parameter marker. Markers are
	// numbered so one value can be used twice.
	Placeholder func(n int) string
	// True is the literal of a true boolean column value.
	True string
	// ILike is the case-insensitive LIKE operator.
	ILike string
	// UseIndex returns the FROM term of the spans table read through the
	// named index: SQLite's planner, without statistics, prefers the
	// narrow (project_id, start) index and fetches every row from the
	// table; PostgreSQL's planner chooses by cost (nil: plain "spans").
	UseIndex func(index string) string
	// DistinctBySubquery counts distinct ids as count() of a DISTINCT
	// subquery, one per id, rather than count(DISTINCT id): PostgreSQL
	// sorts the input of every count(DISTINCT) and hashes a DISTINCT (one
	// model's summary: 40 -> 21 ms); SQLite builds the same temporary
	// index either way and reads the rows once for both counts.
	DistinctBySubquery bool
	// TotalsReady reports whether the migrations are done, so the totals
	// tables (migration 8) are there to read (nil: always).
	TotalsReady func() bool
}

// Rows is the part of a result set the reads use (database/sql and pgx
// rows, through a small adapter in each backend).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs one read query.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// SQLReader implements Reader over a Querier in a ReadDialect. The
// backends embed it in their Store.
type SQLReader struct {
	q Querier
	d ReadDialect
}

var _ Reader = (*SQLReader)(nil)

// NewSQLReader returns the reader of one backend.
func NewSQLReader(q Querier, d ReadDialect) *SQLReader { return &SQLReader{q: q, d: d} }

// query accumulates arguments while SQL text is built.
type query struct {
	d    *ReadDialect
	args []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return q.d.Placeholder(len(q.args))
}

// likePattern makes s a LIKE pattern matching any text containing s
// (escape character backslash).
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// genWhere returns the WHERE terms selecting the generations of f. withQ
// false leaves the substring search out (the caller applies it).
func (r *SQLReader) genWhere(q *query, f *Filter, withQ bool) []string {
	w := []string{"project_id = " + q.arg(f.ProjectID), "is_generation = " + r.d.True}
	if f.From != nil {
		w = append(w, "start_time_unix_nano >= "+q.arg(*f.From))
	}
	if f.To != nil {
		w = append(w, "start_time_unix_nano < "+q.arg(*f.To))
	}
	for _, c := range []struct{ col, v string }{
		{"customer_id", f.CustomerID}, {"session_id", f.SessionID}, {"model", f.Model},
		{"provider", f.Provider}, {"status_code", f.StatusCode},
	} {
		if c.v != "" {
			w = append(w, c.col+" = "+q.arg(c.v))
		}
	}
	if withQ && f.Q != "" {
		w = append(w, r.qTerm(q, f.Q))
	}
	return w
}

func (r *SQLReader) qTerm(q *query, s string) string {
	p := q.arg(likePattern(s))
	return "(prompt " + r.d.ILike + " " + p + ` ESCAPE '\' OR completion ` + r.d.ILike + " " + p + ` ESCAPE '\')`
}

func and(terms []string) string { return strings.Join(terms, " AND ") }

// The covering indexes of the generations (migration 5).
const (
	genIndex         = "spans_gen_start"
	genSessionIndex  = "spans_gen_session"
	genCustomerIndex = "spans_gen_customer"
	// The generations without a session or customer (migration 8), the
	// NULL group of a whole project's usage by session or customer.
	noSessionIndex  = "spans_gen_no_session"
	noCustomerIndex = "spans_gen_no_customer"
	// The generations in cost order, and by model (migration 9).
	genCostIndex  = "spans_gen_cost"
	genModelIndex = "spans_gen_model"
)

// genFrom is the FROM term of a read of the generations f selects: through
// the session's or the customer's index when f names one (a few rows), else
// through the covering start-time index.
func (r *SQLReader) genFrom(f *Filter) string {
	switch {
	case r.d.UseIndex == nil:
		return "spans"
	case f.SessionID != "":
		return r.d.UseIndex(genSessionIndex)
	case f.CustomerID != "":
		return r.d.UseIndex(genCustomerIndex)
	}
	return r.d.UseIndex(genIndex)
}

// genListFrom is the FROM term of a page of generations f selects in the
// order of col: in cost order through the cost index when nothing but the
// time range narrows the list (the page is then the first rows of a range
// scan, where through any other index every generation in range is
// sorted). A filter on a column that index lacks keeps genFrom: testing it
// would fetch rows from the table, and the filtered rows are fewer.
func (r *SQLReader) genListFrom(f *Filter, col SortColumn) string {
	unsearched := *f
	unsearched.Q = ""
	if r.d.UseIndex != nil && col.Name == "total_cost_usd" && unsearched.OnlyTime() {
		return r.d.UseIndex(genCostIndex)
	}
	return r.genFrom(f)
}

// sumInt is a token sum as a 64-bit integer in both backends (0 when none).
func sumInt(col string) string { return "CAST(coalesce(sum(" + col + "), 0) AS BIGINT)" }

const errorCount = "sum(CASE WHEN status_code = 'ERROR' THEN 1 ELSE 0 END)"

// Summary implements Reader: the sums, then the distinct counts.
func (r *SQLReader) Summary(ctx context.Context, f Filter) (Summary, error) {
	s, err := r.summarySums(ctx, f)
	if err != nil {
		return s, err
	}
	if f.OnlyTime() && r.totalsReady() {
		s.Sessions, s.Customers, err = r.summaryCounts(ctx, f)
	} else {
		s.Sessions, s.Customers, err = r.spansCounts(ctx, f)
	}
	return s, err
}

// summarySums totals the generations, errors, tokens and cost of f: from
// gen_hourly when it can answer f, else from the spans.
func (r *SQLReader) summarySums(ctx context.Context, f Filter) (Summary, error) {
	var s Summary
	if h, ok := splitHours(&f); ok {
		q := &query{d: &r.d}
		sql := "SELECT " + hourlyTotals + " FROM (" + r.hourlyUnion(q, &f, h, "", hourlySums, spansSums("count(*)")) + ") t"
		var known, nano int64
		var usd *float64
		err := r.one(ctx, sql, q.args, &s.Generations, &s.Errors, &s.InputTokens, &s.OutputTokens, &known, &nano, &usd)
		s.TotalCostUSD = hourlyCost(known, nano, usd)
		return s, err
	}
	q := &query{d: &r.d}
	sql := "SELECT count(*), coalesce(" + errorCount + ", 0), " + sumInt("input_tokens") + ", " + sumInt("output_tokens") +
		", sum(total_cost_usd) FROM " + r.genFrom(&f) + " WHERE " + and(r.genWhere(q, &f, true))
	err := r.one(ctx, sql, q.args, &s.Generations, &s.Errors, &s.InputTokens, &s.OutputTokens, &s.TotalCostUSD)
	return s, err
}

// spansCounts counts the distinct sessions and customers of the
// generations of f (filters the totals cannot answer).
func (r *SQLReader) spansCounts(ctx context.Context, f Filter) (sessions, customers int64, err error) {
	q := &query{d: &r.d}
	from := r.genFrom(&f)
	if r.d.UseIndex != nil && f.Model != "" && f.SessionID == "" && f.CustomerID == "" {
		// That model's generations alone (a session or customer filter
		// selects fewer through its own index).
		from = r.d.UseIndex(genModelIndex)
	}
	var sql string
	if r.d.DistinctBySubquery {
		// count(id) leaves out the NULL group, as count(DISTINCT id) does.
		distinct := func(col string) string {
			return "(SELECT count(" + col + ") FROM (SELECT DISTINCT " + col + " FROM " + from + " WHERE " + and(r.genWhere(q, &f, true)) + ") d)"
		}
		sql = "SELECT " + distinct("session_id") + ", " + distinct("customer_id")
	} else {
		sql = "SELECT count(DISTINCT session_id), count(DISTINCT customer_id) FROM " + from + " WHERE " + and(r.genWhere(q, &f, true))
	}
	err = r.one(ctx, sql, q.args, &sessions, &customers)
	return sessions, customers, err
}

// summaryCounts counts, for a filter of only project and time range, the
// session_totals and customer_totals rows active in the range (first seen
// before To, last seen at or after From): the sessions and customers the
// lists show for the same filter, read from an index instead of counting
// the distinct ids of every generation in range. A session that began
// before the range and has no generation starting in it is thus counted
// (it was active in the range).
func (r *SQLReader) summaryCounts(ctx context.Context, f Filter) (sessions, customers int64, err error) {
	q := &query{d: &r.d}
	count := func(t TotalsTable) string {
		w := []string{"project_id = " + q.arg(f.ProjectID)}
		if f.From != nil {
			w = append(w, "last_seen_unix_nano >= "+q.arg(*f.From))
		}
		if f.To != nil {
			w = append(w, "first_seen_unix_nano < "+q.arg(*f.To))
		}
		return "(SELECT count(*) FROM " + t.Name + " WHERE " + and(w) + ")"
	}
	sql := "SELECT " + count(SessionTotals) + ", " + count(CustomerTotals)
	err = r.one(ctx, sql, q.args, &sessions, &customers)
	return sessions, customers, err
}

// hourSplit cuts a time range into the whole hours gen_hourly answers
// (hour_unix_nano in [lo, hi), nil: unbounded) and the partial hours at
// its edges ([from, lo) and [hi, to)) that the spans answer.
type hourSplit struct {
	lo, hi *int64
	edges  [][2]int64
}

// splitHours reports how f is read from gen_hourly; ok is false when
// gen_hourly cannot answer it exactly (a filter on what it does not keep:
// customer, session, status, text) or when the range holds no whole hour
// (the spans answer it then: at most two hours of rows).
func splitHours(f *Filter) (hourSplit, bool) {
	var h hourSplit
	if f.CustomerID != "" || f.SessionID != "" || f.StatusCode != "" || f.Q != "" {
		return h, false
	}
	if f.From != nil {
		lo := HourStart(*f.From)
		if lo != *f.From {
			if lo > math.MaxInt64-nanosPerHour {
				return h, false
			}
			lo += nanosPerHour
			h.edges = append(h.edges, [2]int64{*f.From, lo})
		}
		h.lo = &lo
	}
	if f.To != nil {
		hi := HourStart(*f.To)
		if hi != *f.To {
			h.edges = append(h.edges, [2]int64{hi, *f.To})
		}
		h.hi = &hi
	}
	if h.lo != nil && h.hi != nil && *h.lo >= *h.hi {
		return h, false
	}
	return h, true
}

// hourlyUnion returns the UNION ALL of a read of gen_hourly's whole hours
// of f (SELECT hourlySel over its rows) and of the generations of each
// partial hour (SELECT spansSel(src), src the spans FROM and WHERE terms),
// each grouped by groupBy when not "". Each partial hour is its own range
// through the covering index.
func (r *SQLReader) hourlyUnion(q *query, f *Filter, h hourSplit, groupBy, hourlySel string, spansSel func(src string) string) string {
	w := hourlyWhere(q, f, h)
	group := ""
	if groupBy != "" {
		group = " GROUP BY " + groupBy
	}
	parts := []string{"SELECT " + hourlySel + " FROM gen_hourly WHERE " + and(w) + group}
	for _, e := range h.edges {
		g := *f
		g.From, g.To = &e[0], &e[1]
		parts = append(parts, "SELECT "+spansSel(r.genFrom(&g)+" WHERE "+and(r.genWhere(q, &g, true)))+group)
	}
	return strings.Join(parts, " UNION ALL ")
}

// hourlyWhere is the WHERE terms of gen_hourly's whole hours of f.
func hourlyWhere(q *query, f *Filter, h hourSplit) []string {
	w := []string{"project_id = " + q.arg(f.ProjectID)}
	if h.lo != nil {
		w = append(w, "hour_unix_nano >= "+q.arg(*h.lo))
	}
	if h.hi != nil {
		w = append(w, "hour_unix_nano < "+q.arg(*h.hi))
	}
	if f.Model != "" {
		w = append(w, "model = "+q.arg(f.Model))
	}
	if f.Provider != "" {
		w = append(w, "provider = "+q.arg(f.Provider))
	}
	return w
}

// hourlySums is the gen_hourly part of a rollup read of the sums, and
// hourlyTotals the sums of the union (generations, errors, input and output
// tokens, known-cost generations, nano-USD of the whole hours, USD of the
// partial ones). The NULL is typed: PostgreSQL takes an untyped NULL of a
// union's first part for text.
const (
	hourlySums = "sum(generations) AS g, sum(errors) AS e, sum(input_tokens) AS i, sum(output_tokens) AS o, " +
		"sum(known_cost_generations) AS kc, sum(total_cost_nano_usd) AS n, CAST(NULL AS DOUBLE PRECISION) AS u"
	hourlyTotals = "CAST(coalesce(sum(g), 0) AS BIGINT), CAST(coalesce(sum(e), 0) AS BIGINT), CAST(coalesce(sum(i), 0) AS BIGINT), " +
		"CAST(coalesce(sum(o), 0) AS BIGINT), CAST(coalesce(sum(kc), 0) AS BIGINT), CAST(coalesce(sum(n), 0) AS BIGINT), sum(u)"
)

// spansSums is the spans part of a rollup read of the sums: lead (the
// group key and the count), then errors, tokens, known-cost count, 0
// nano-USD and the USD sum, in the columns of the gen_hourly part.
func spansSums(lead string) func(src string) string {
	return func(src string) string {
		return lead + ", " + errorCount + ", " + sumInt("input_tokens") + ", " + sumInt("output_tokens") +
			", count(total_cost_usd), 0, sum(total_cost_usd) FROM " + src
	}
}

// hourlyCost is the cost of a rollup read: nano-USD of the whole hours
// plus the USD of the partial ones, nil when no generation had a known
// cost (as sum(total_cost_usd) over the spans).
func hourlyCost(known, nano int64, usd *float64) *float64 {
	if known == 0 {
		return nil
	}
	c := float64(nano)/1e9 + deref(usd)
	return &c
}

// one runs a query expected to return one row and scans it.
func (r *SQLReader) one(ctx context.Context, sql string, args []any, dest ...any) error {
	rows, err := r.q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return ErrNotFound
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}

const nanosPerDay = int64(24 * time.Hour)

// dayOf is the day number (floor division, also before 1970) of a
// unix-nano column.
func dayOf(col string) string {
	d := strconv.FormatInt(nanosPerDay, 10)
	return "CASE WHEN " + col + " >= 0 THEN " + col + " / " + d + " ELSE (" + col + " + 1) / " + d + " - 1 END"
}

// Usage implements Reader.
func (r *SQLReader) Usage(ctx context.Context, f Filter, by UsageGroup, limit int) ([]UsageRow, error) {
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	var key, hourlyKey, order string
	switch by {
	case ByDay:
		key, hourlyKey = dayOf("start_time_unix_nano"), dayOf("hour_unix_nano")
		order = "1"
	case ByModel:
		key, hourlyKey = "model", "nullif(model, '')"
	case ByProvider:
		key, hourlyKey = "provider", "nullif(provider, '')"
	case ByCustomer:
		key = "customer_id"
	case BySession:
		key = "session_id"
	default:
		return nil, fmt.Errorf("storage: unknown usage group %q", by)
	}
	if (by == ByCustomer || by == BySession) && f.OnlyTime() && f.From == nil && f.To == nil && r.totalsReady() {
		return r.usageFromTotals(ctx, f.ProjectID, by, limit)
	}
	q := &query{d: &r.d}
	if h, ok := splitHours(&f); ok && hourlyKey != "" {
		if order == "" {
			order = "coalesce(sum(n), 0) * 1e-9 + coalesce(sum(u), 0) DESC, sum(g) DESC, 1"
		}
		sql := "SELECT k, " + hourlyTotals + " FROM (" + r.hourlyUnion(q, &f, h, "1", hourlyKey+" AS k, "+hourlySums, spansSums(key+", count(*)")) +
			") t GROUP BY k ORDER BY " + order + " LIMIT " + strconv.Itoa(limit)
		return r.usageRows(ctx, sql, q.args, by, true)
	}
	if order == "" {
		order = "coalesce(sum(total_cost_usd), 0) DESC, count(*) DESC, 1"
	}
	sql := "SELECT " + key + ", count(*), coalesce(" + errorCount + ", 0), " + sumInt("input_tokens") + ", " + sumInt("output_tokens") +
		", sum(total_cost_usd) FROM " + r.genFrom(&f) + " WHERE " + and(r.genWhere(q, &f, true)) +
		" GROUP BY 1 ORDER BY " + order + " LIMIT " + strconv.Itoa(limit)
	return r.usageRows(ctx, sql, q.args, by, false)
}

// usageFromTotals is the usage of a whole project by customer or session:
// the totals rows, and the group of the generations without one (NULL key)
// aggregated from the spans through a partial index of just those.
func (r *SQLReader) usageFromTotals(ctx context.Context, project string, by UsageGroup, limit int) ([]UsageRow, error) {
	t, none := CustomerTotals, noCustomerIndex
	if by == BySession {
		t, none = SessionTotals, noSessionIndex
	}
	from := "spans"
	if r.d.UseIndex != nil {
		from = r.d.UseIndex(none)
	}
	q := &query{d: &r.d}
	sql := "SELECT " + t.IDCol + ", generations, errors, input_tokens, output_tokens, total_cost_usd FROM (" +
		"SELECT " + t.IDCol + ", generations, errors, input_tokens, output_tokens, " +
		"CASE WHEN total_cost_known > 0 THEN CAST(total_cost_nano_usd AS DOUBLE PRECISION) / 1e9 END AS total_cost_usd FROM " + t.Name +
		" WHERE project_id = " + q.arg(project) +
		" UNION ALL SELECT NULL, count(*), coalesce(" + errorCount + ", 0), " + sumInt("input_tokens") + ", " + sumInt("output_tokens") +
		", sum(total_cost_usd) FROM " + from + " WHERE project_id = " + q.arg(project) + " AND is_generation = " + r.d.True +
		" AND " + t.IDCol + " IS NULL HAVING count(*) > 0) u" +
		" ORDER BY coalesce(total_cost_usd, 0) DESC, generations DESC, 1 LIMIT " + strconv.Itoa(limit)
	return r.usageRows(ctx, sql, q.args, by, false)
}

// usageRows runs a usage query; hourly: its costs are the known-cost
// count, nano-USD and USD of a rollup read (hourlyCost).
func (r *SQLReader) usageRows(ctx context.Context, sql string, args []any, by UsageGroup, hourly bool) ([]UsageRow, error) {
	rows, err := r.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var u UsageRow
		var day *int64
		keyDest := any(&u.Key)
		if by == ByDay {
			keyDest = &day
		}
		if hourly {
			var known, nano int64
			var usd *float64
			if err := rows.Scan(keyDest, &u.Generations, &u.Errors, &u.InputTokens, &u.OutputTokens, &known, &nano, &usd); err != nil {
				return nil, err
			}
			u.TotalCostUSD = hourlyCost(known, nano, usd)
		} else if err := rows.Scan(keyDest, &u.Generations, &u.Errors, &u.InputTokens, &u.OutputTokens, &u.TotalCostUSD); err != nil {
			return nil, err
		}
		if day != nil {
			s := time.Unix(0, *day*nanosPerDay).UTC().Format("2006-01-02")
			u.Key = &s
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// latencyBucketExpr maps duration_ms to its LatencyBoundsMs bucket.
var latencyBucketExpr = func() string {
	var b strings.Builder
	b.WriteString("CASE")
	for i, v := range LatencyBoundsMs {
		fmt.Fprintf(&b, " WHEN duration_ms < %s THEN %d", strconv.FormatFloat(v, 'f', -1, 64), i)
	}
	fmt.Fprintf(&b, " ELSE %d END", len(LatencyBoundsMs))
	return b.String()
}()

// Series implements Reader.
func (r *SQLReader) Series(ctx context.Context, f Filter, origin, width int64) ([]SeriesPoint, error) {
	if width <= 0 {
		return nil, errors.New("storage: series bucket width must be positive")
	}
	if f.From == nil || *f.From < origin {
		f.From = &origin
	}
	if width%nanosPerHour == 0 && HourStart(origin) == origin {
		if h, ok := splitHours(&f); ok {
			return r.hourlySeries(ctx, f, h, origin, width)
		}
	}
	return r.spansSeries(ctx, f, origin, width)
}

// spansSeries is Series aggregated from the generations (f.From set).
func (r *SQLReader) spansSeries(ctx context.Context, f Filter, origin, width int64) ([]SeriesPoint, error) {
	q := &query{d: &r.d}
	bucket := "(start_time_unix_nano - " + q.arg(origin) + ") / " + q.arg(width)
	sql := "SELECT " + bucket + ", " + latencyBucketExpr + ", count(*), coalesce(" + errorCount + ", 0), " +
		sumInt("input_tokens") + ", " + sumInt("output_tokens") + ", coalesce(sum(total_cost_usd), 0) FROM " + r.genFrom(&f) + " WHERE " +
		and(r.genWhere(q, &f, true)) + " GROUP BY 1, 2 ORDER BY 1, 2"
	rows, err := r.q.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SeriesPoint
	for rows.Next() {
		var b, lb, n, errs, in, outTok int64
		var cost float64
		if err := rows.Scan(&b, &lb, &n, &errs, &in, &outTok, &cost); err != nil {
			return nil, err
		}
		start := origin + b*width
		if len(out) == 0 || out[len(out)-1].BucketStartUnixNano != start {
			out = append(out, SeriesPoint{BucketStartUnixNano: start, Latency: make([]int64, len(LatencyBoundsMs)+1)})
		}
		p := &out[len(out)-1]
		p.Generations += n
		p.Errors += errs
		p.InputTokens += in
		p.OutputTokens += outTok
		p.TotalCostUSD += cost
		if lb >= 0 && int(lb) < len(p.Latency) {
			p.Latency[lb] += n
		}
	}
	return out, rows.Err()
}

// hourlySeries is Series from gen_hourly (width a whole number of hours,
// origin on an hour: every hour falls in one bucket) and, for the partial
// hours at the edges, from the spans, merged here. They are separate
// queries rather than one UNION ALL: the spans' part then needed its
// latency buckets pivoted into the 47 lat_NN columns, and PostgreSQL spent
// 10 of the union's 12 ms on that part (2 ms for the whole hours alone).
func (r *SQLReader) hourlySeries(ctx context.Context, f Filter, h hourSplit, origin, width int64) ([]SeriesPoint, error) {
	q := &query{d: &r.d}
	n := len(LatencyBoundsMs) + 1
	lat := make([]string, n)
	for i := range n {
		lat[i] = sumInt(LatencyColumn(i))
	}
	sql := "SELECT (hour_unix_nano - " + q.arg(origin) + ") / " + q.arg(width) + " AS b, " + sumInt("generations") + ", " +
		sumInt("errors") + ", " + sumInt("input_tokens") + ", " + sumInt("output_tokens") + ", " + sumInt("total_cost_nano_usd") + ", " +
		strings.Join(lat, ", ") + " FROM gen_hourly WHERE " + and(hourlyWhere(q, &f, h)) + " GROUP BY b ORDER BY b"
	rows, err := r.q.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SeriesPoint
	for rows.Next() {
		var b, nano int64
		p := SeriesPoint{Latency: make([]int64, n)}
		dest := []any{&b, &p.Generations, &p.Errors, &p.InputTokens, &p.OutputTokens, &nano}
		for i := range p.Latency {
			dest = append(dest, &p.Latency[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		p.BucketStartUnixNano = origin + b*width
		p.TotalCostUSD = float64(nano) / 1e9
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Released before the edge reads, which may need the same connection.
	rows.Close()
	for _, e := range h.edges {
		g := f
		g.From, g.To = &e[0], &e[1]
		edge, err := r.spansSeries(ctx, g, origin, width)
		if err != nil {
			return nil, err
		}
		out = mergeSeries(out, edge)
	}
	return out, nil
}

// mergeSeries adds the points of b into a, both in bucket order.
func mergeSeries(a, b []SeriesPoint) []SeriesPoint {
	for _, p := range b {
		i, found := slices.BinarySearchFunc(a, p.BucketStartUnixNano, func(x SeriesPoint, t int64) int {
			return cmp.Compare(x.BucketStartUnixNano, t)
		})
		if !found {
			a = slices.Insert(a, i, p)
			continue
		}
		x := &a[i]
		x.Generations += p.Generations
		x.Errors += p.Errors
		x.InputTokens += p.InputTokens
		x.OutputTokens += p.OutputTokens
		x.TotalCostUSD += p.TotalCostUSD
		for k := range x.Latency {
			x.Latency[k] += p.Latency[k]
		}
	}
	return a
}

// scanTargets returns pointers to the fields of s in the order of Columns.
func (s *Span) scanTargets() []any {
	return []any{
		&s.ProjectID, &s.TraceID, &s.SpanID, &s.ParentSpanID,
		&s.Name, &s.Kind, &s.StatusCode, &s.StatusMessage,
		&s.StartTimeUnixNano, &s.EndTimeUnixNano, &s.DurationMs, &s.ReceivedAtUnixNano,
		&s.IsGeneration, &s.SessionID, &s.CustomerID,
		&s.Model, &s.RequestedModel, &s.Provider, &s.Operation,
		&s.InputTokens, &s.OutputTokens, &s.TotalTokens,
		&s.CachedInputTokens, &s.CacheWriteInputTokens, &s.ReasoningTokens,
		&s.InputCostUSD, &s.OutputCostUSD, &s.TotalCostUSD, &s.CostSource,
		&s.FinishReason, &s.TimeToFirstTokenMs, &s.Streamed,
		&s.Prompt, &s.Completion, &s.Source,
		&s.ConfigKey, &s.ConfigVersion, &s.PromptKey, &s.PromptVersion,
		&s.PromptABTestKey, &s.PromptVariantIndex,
		&s.Attributes, &s.ResourceAttributes,
	}
}

// spanColumns is the select list of a whole span row.
var spanColumns = ColumnNames()

func (r *SQLReader) spans(ctx context.Context, sql string, args []any, capHint int) ([]Span, error) {
	rows, err := r.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Span, 0, capHint)
	for rows.Next() {
		out = append(out, Span{})
		if err := rows.Scan(out[len(out)-1].scanTargets()...); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// keyset returns the ORDER BY clause of a list sorted by col and, when the
// page continues a cursor, the WHERE term that starts after it.
func keyset(q *query, l *ListSpec, col SortColumn, desc bool, after *Cursor) (where, orderBy string, err error) {
	dir, cmp := " ASC", ">"
	if desc {
		dir, cmp = " DESC", "<"
	}
	cols := append([]string{col.Expr}, l.Keys...)
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c + dir
	}
	orderBy = strings.Join(parts, ", ")
	if after == nil {
		return "", orderBy, nil
	}
	vals, err := cursorArgs(l, col, desc, after)
	if err != nil {
		return "", "", err
	}
	marks := make([]string, len(vals))
	for i, v := range vals {
		marks[i] = q.arg(v)
	}
	// The bound on the sort column alone is implied by the row comparison;
	// it is spelled out because SQLite seeks an index on an expression
	// (spans_gen_cost) by such a bound but not by a row value: without it a
	// deep page scans every row before the cursor.
	where = "(" + col.Expr + " " + cmp + "= " + marks[0] + " AND (" + strings.Join(cols, ", ") + ") " + cmp + " (" + strings.Join(marks, ", ") + "))"
	return where, orderBy, nil
}

func resolveSort(l *ListSpec, p Page) (SortColumn, bool, error) {
	desc := p.Desc
	if p.Sort == "" {
		desc = l.DefaultDesc
	}
	col, ok := l.Sort(p.Sort)
	if !ok {
		return col, false, fmt.Errorf("storage: unknown sort %q", p.Sort)
	}
	return col, desc, nil
}

// spanSortValue is the value of a generations sort column of s, as the
// SQL expression computes it.
func spanSortValue(s *Span, col string) any {
	switch col {
	case "start_time_unix_nano":
		return s.StartTimeUnixNano
	case "duration_ms":
		return s.DurationMs
	case "total_cost_usd":
		return s.TotalCostUSD
	case "total_tokens":
		return s.TotalTokens
	case "input_tokens":
		return s.InputTokens
	case "output_tokens":
		return s.OutputTokens
	case "time_to_first_token_ms":
		return s.TimeToFirstTokenMs
	}
	panic("storage: no sort value for " + col)
}

// Generations implements Reader.
func (r *SQLReader) Generations(ctx context.Context, f Filter, p Page) ([]Span, *Cursor, error) {
	col, desc, err := resolveSort(&GenerationsList, p)
	if err != nil {
		return nil, nil, err
	}
	if f.Q != "" {
		return r.searchGenerations(ctx, f, p, col, desc)
	}
	limit := p.limit()
	q := &query{d: &r.d}
	where := r.genWhere(q, &f, true)
	after, orderBy, err := keyset(q, &GenerationsList, col, desc, p.After)
	if err != nil {
		return nil, nil, err
	}
	if after != "" {
		where = append(where, after)
	}
	// The page is chosen by its keys alone (in the covering index, without
	// the rows' prompts), then only its rows are read.
	pageKeys := "SELECT project_id, trace_id, span_id FROM " + r.genListFrom(&f, col) + " WHERE " + and(where) + " ORDER BY " + orderBy +
		" LIMIT " + strconv.Itoa(limit+1)
	sql := "SELECT " + spanColumns + " FROM spans WHERE (project_id, trace_id, span_id) IN (" + pageKeys + ") ORDER BY " + orderBy
	rows, err := r.spans(ctx, sql, q.args, limit+1)
	if err != nil {
		return nil, nil, err
	}
	var next *Cursor
	if len(rows) > limit {
		rows = rows[:limit]
		next = spanCursor(&rows[limit-1], col, desc)
	}
	return rows, next, nil
}

func spanCursor(s *Span, col SortColumn, desc bool) *Cursor {
	return &Cursor{Sort: col.Name, Desc: desc, Values: []string{sortValueText(spanSortValue(s, col.Name)), s.TraceID, s.SpanID}}
}

// searchGenerations serves a page of a substring search: it walks at most
// QScanWindow candidate rows in list order, keeping those whose prompt or
// completion holds f.Q, then reads the whole rows of the hits.
func (r *SQLReader) searchGenerations(ctx context.Context, f Filter, p Page, col SortColumn, desc bool) ([]Span, *Cursor, error) {
	limit := p.limit()
	q := &query{d: &r.d}
	where := r.genWhere(q, &f, false)
	after, orderBy, err := keyset(q, &GenerationsList, col, desc, p.After)
	if err != nil {
		return nil, nil, err
	}
	if after != "" {
		where = append(where, after)
	}
	sql := "SELECT trace_id, span_id, " + col.Expr + ", CASE WHEN " + r.qTerm(q, f.Q) + " THEN 1 ELSE 0 END FROM " + r.genListFrom(&f, col) + " WHERE " +
		and(where) + " ORDER BY " + orderBy + " LIMIT " + strconv.Itoa(QScanWindow)
	rows, err := r.q.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, nil, err
	}
	type hit struct{ trace, span string }
	var hits []hit
	var examined int
	var last Cursor
	var next *Cursor
	for rows.Next() {
		var h hit
		var sortVal any
		var isHit int64
		if col.Type == Int {
			var v int64
			sortVal = &v
		} else {
			var v float64
			sortVal = &v
		}
		if err := rows.Scan(&h.trace, &h.span, sortVal, &isHit); err != nil {
			rows.Close()
			return nil, nil, err
		}
		examined++
		var text string
		switch v := sortVal.(type) {
		case *int64:
			text = sortValueText(*v)
		case *float64:
			text = sortValueText(*v)
		}
		if isHit == 1 {
			if len(hits) == limit {
				// One more hit exists: the page ends at the previous one.
				next = &last
				break
			}
			hits = append(hits, h)
		}
		last = Cursor{Sort: col.Name, Desc: desc, Values: []string{text, h.trace, h.span}}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, nil, err
	}
	if next == nil && examined == QScanWindow {
		next = &last
	}
	if next != nil {
		c := *next
		next = &c
	}
	if len(hits) == 0 {
		return nil, next, nil
	}
	q = &query{d: &r.d}
	keys := make([]string, len(hits))
	for i, h := range hits {
		keys[i] = "(" + q.arg(h.trace) + ", " + q.arg(h.span) + ")"
	}
	sql = "SELECT " + spanColumns + " FROM spans WHERE project_id = " + q.arg(f.ProjectID) +
		" AND (trace_id, span_id) IN (VALUES " + strings.Join(keys, ", ") + ")"
	found, err := r.spans(ctx, sql, q.args, len(hits))
	if err != nil {
		return nil, nil, err
	}
	byKey := make(map[hit]*Span, len(found))
	for i := range found {
		byKey[hit{found[i].TraceID, found[i].SpanID}] = &found[i]
	}
	out := make([]Span, 0, len(hits))
	for _, h := range hits {
		if s := byKey[h]; s != nil {
			out = append(out, *s)
		}
	}
	return out, next, nil
}

// Span implements Reader.
func (r *SQLReader) Span(ctx context.Context, project, traceID, spanID string) (Span, error) {
	q := &query{d: &r.d}
	sql := "SELECT " + spanColumns + " FROM spans WHERE project_id = " + q.arg(project) +
		" AND trace_id = " + q.arg(traceID) + " AND span_id = " + q.arg(spanID)
	rows, err := r.spans(ctx, sql, q.args, 1)
	if err != nil {
		return Span{}, err
	}
	if len(rows) == 0 {
		return Span{}, ErrNotFound
	}
	return rows[0], nil
}

// Trace implements Reader. The sort key is an expression (+ 0) so the
// planner finds the trace by the primary key instead of walking the
// (project_id, start_time) index in order.
func (r *SQLReader) Trace(ctx context.Context, project, traceID string, limit int) ([]Span, error) {
	if limit <= 0 || limit > MaxTraceSpans {
		limit = MaxTraceSpans
	}
	q := &query{d: &r.d}
	sql := "SELECT " + spanColumns + " FROM spans WHERE project_id = " + q.arg(project) + " AND trace_id = " + q.arg(traceID) +
		" ORDER BY start_time_unix_nano + 0, span_id LIMIT " + strconv.Itoa(limit)
	rows, err := r.spans(ctx, sql, q.args, 16)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return rows, nil
}

// totalsColumns are the views' sums read from a totals row: NULL when no
// generation of the group had the value (as sum() over none), costs back
// from nano-USD to USD.
const totalsColumns = "generations, errors, " +
	"CASE WHEN input_tokens_known > 0 THEN input_tokens END AS input_tokens, " +
	"CASE WHEN output_tokens_known > 0 THEN output_tokens END AS output_tokens, " +
	"CASE WHEN total_cost_known > 0 THEN CAST(total_cost_nano_usd AS DOUBLE PRECISION) / 1e9 END AS total_cost_usd, " +
	"first_seen_unix_nano, last_seen_unix_nano"

// totalsSource is the sessions or customers view of one project (DESIGN
// 2.5) as a subquery over its totals table (migration 8, kept by the write
// path and retention), optionally one id, optionally the groups selectIn
// selects. On SQLite the table has no index but its primary key (migration
// 10), so a list walks the project's rows in key order, or seeks the
// selected ids; PostgreSQL's planner also has the last-seen and cost
// indexes.
func (r *SQLReader) totalsSource(q *query, t TotalsTable, project, id, selectIn string) string {
	w := "project_id = " + q.arg(project)
	if id != "" {
		w += " AND " + t.IDCol + " = " + q.arg(id)
	}
	if selectIn != "" {
		w += " AND " + selectIn
	}
	return "(SELECT project_id, " + t.IDCol + ", " + t.Extra + ", " + totalsColumns + " FROM " + t.Name + " WHERE " + w + ") v"
}

// totalsReady reports whether the totals tables can be read: false while
// an upgrade is still migrating (and backfilling) them, when the reads
// aggregate the spans instead.
func (r *SQLReader) totalsReady() bool { return r.d.TotalsReady == nil || r.d.TotalsReady() }

// sessionsSource is the sessions view of one project, from session_totals.
func (r *SQLReader) sessionsSource(q *query, project string, sessionID string, selectIn string) string {
	if !r.totalsReady() {
		return r.viewSource(q, SessionTotals, project, sessionID, selectIn)
	}
	return r.totalsSource(q, SessionTotals, project, sessionID, selectIn)
}

// customersSource is the customers view of one project, from
// customer_totals.
func (r *SQLReader) customersSource(q *query, project string, customerID string, selectIn string) string {
	if !r.totalsReady() {
		return r.viewSource(q, CustomerTotals, project, customerID, selectIn)
	}
	return r.totalsSource(q, CustomerTotals, project, customerID, selectIn)
}

// viewSource is the sessions or customers view aggregated from the spans
// (before the totals are ready), the project and id terms reaching the
// spans indexes in both backends.
func (r *SQLReader) viewSource(q *query, t TotalsTable, project, id, selectIn string) string {
	w := "project_id = " + q.arg(project) + " AND is_generation = " + r.d.True + " AND " + t.IDCol + " IS NOT NULL"
	if id != "" {
		w += " AND " + t.IDCol + " = " + q.arg(id)
	}
	if selectIn != "" {
		w += " AND " + selectIn
	}
	extra := "max(customer_id) AS customer_id"
	if t.Extra == "sessions" {
		extra = "count(DISTINCT session_id) AS sessions"
	}
	return "(SELECT project_id, " + t.IDCol + ", " + extra + ", count(*) AS generations, " +
		errorCount + " AS errors, CAST(sum(input_tokens) AS BIGINT) AS input_tokens, CAST(sum(output_tokens) AS BIGINT) AS output_tokens, " +
		"sum(total_cost_usd) AS total_cost_usd, min(start_time_unix_nano) AS first_seen_unix_nano, " +
		"max(end_time_unix_nano) AS last_seen_unix_nano FROM spans WHERE " + w + " GROUP BY project_id, " + t.IDCol + ") v"
}

const sessionColumns = "project_id, session_id, customer_id, generations, errors, input_tokens, output_tokens, total_cost_usd, first_seen_unix_nano, last_seen_unix_nano"

const customerColumns = "project_id, customer_id, sessions, generations, input_tokens, output_tokens, total_cost_usd, first_seen_unix_nano, last_seen_unix_nano"

func (s *SessionRow) scanTargets() []any {
	return []any{&s.ProjectID, &s.SessionID, &s.CustomerID, &s.Generations, &s.Errors, &s.InputTokens, &s.OutputTokens,
		&s.TotalCostUSD, &s.FirstSeenUnixNano, &s.LastSeenUnixNano}
}

func (c *CustomerRow) scanTargets() []any {
	return []any{&c.ProjectID, &c.CustomerID, &c.Sessions, &c.Generations, &c.InputTokens, &c.OutputTokens,
		&c.TotalCostUSD, &c.FirstSeenUnixNano, &c.LastSeenUnixNano}
}

// groupSelect returns the term that selects, inside the sessions or
// customers source (before aggregation, so only the selected groups are
// aggregated), the groups with a generation matching f's fields other than
// the time range and the id column's own filter ("" when none), and the
// terms on the aggregated rows that keep those active in f's time range
// (first seen before To, last seen at or after From).
func (r *SQLReader) groupSelect(q *query, f *Filter, idCol string) (selectIn string, where []string) {
	inner := *f
	inner.From, inner.To = nil, nil
	if idCol == "session_id" {
		inner.SessionID = ""
	} else {
		inner.CustomerID = ""
	}
	if !inner.OnlyTime() {
		selectIn = idCol + " IN (SELECT " + idCol + " FROM " + r.genFrom(&inner) + " WHERE " + and(r.genWhere(q, &inner, true)) + ")"
	}
	if f.From != nil {
		where = append(where, "last_seen_unix_nano >= "+q.arg(*f.From))
	}
	if f.To != nil {
		where = append(where, "first_seen_unix_nano < "+q.arg(*f.To))
	}
	return selectIn, where
}

func pageOf[T any](rows []T, limit int, cursor func(*T) *Cursor) ([]T, *Cursor) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	return rows, cursor(&rows[limit-1])
}

// Sessions implements Reader.
func (r *SQLReader) Sessions(ctx context.Context, f Filter, p Page) ([]SessionRow, *Cursor, error) {
	col, desc, err := resolveSort(&SessionsList, p)
	if err != nil {
		return nil, nil, err
	}
	limit := p.limit()
	q := &query{d: &r.d}
	selectIn, where := r.groupSelect(q, &f, "session_id")
	src := r.sessionsSource(q, f.ProjectID, f.SessionID, selectIn)
	after, orderBy, err := keyset(q, &SessionsList, col, desc, p.After)
	if err != nil {
		return nil, nil, err
	}
	if after != "" {
		where = append(where, after)
	}
	sql := "SELECT " + sessionColumns + " FROM " + src
	if len(where) > 0 {
		sql += " WHERE " + and(where)
	}
	sql += " ORDER BY " + orderBy + " LIMIT " + strconv.Itoa(limit+1)
	rows, err := collect(ctx, r.q, sql, q.args, func(s *SessionRow) []any { return s.scanTargets() })
	if err != nil {
		return nil, nil, err
	}
	page, next := pageOf(rows, limit, func(s *SessionRow) *Cursor {
		return &Cursor{Sort: col.Name, Desc: desc, Values: []string{sortValueText(sessionSortValue(s, col.Name)), s.SessionID}}
	})
	return page, next, nil
}

func sessionSortValue(s *SessionRow, col string) any {
	switch col {
	case "last_seen_unix_nano":
		return s.LastSeenUnixNano
	case "first_seen_unix_nano":
		return s.FirstSeenUnixNano
	case "total_cost_usd":
		return s.TotalCostUSD
	case "generations":
		return s.Generations
	case "errors":
		return s.Errors
	case "input_tokens":
		return s.InputTokens
	case "output_tokens":
		return s.OutputTokens
	}
	panic("storage: no sort value for " + col)
}

func customerSortValue(c *CustomerRow, col string) any {
	switch col {
	case "last_seen_unix_nano":
		return c.LastSeenUnixNano
	case "first_seen_unix_nano":
		return c.FirstSeenUnixNano
	case "total_cost_usd":
		return c.TotalCostUSD
	case "generations":
		return c.Generations
	case "sessions":
		return c.Sessions
	case "input_tokens":
		return c.InputTokens
	case "output_tokens":
		return c.OutputTokens
	}
	panic("storage: no sort value for " + col)
}

func collect[T any](ctx context.Context, qr Querier, sql string, args []any, targets func(*T) []any) ([]T, error) {
	rows, err := qr.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(targets(&v)...); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Session implements Reader.
func (r *SQLReader) Session(ctx context.Context, project, sessionID string) (SessionRow, error) {
	q := &query{d: &r.d}
	sql := "SELECT " + sessionColumns + " FROM " + r.sessionsSource(q, project, sessionID, "")
	var s SessionRow
	err := r.one(ctx, sql, q.args, s.scanTargets()...)
	return s, err
}

// Customers implements Reader.
func (r *SQLReader) Customers(ctx context.Context, f Filter, p Page) ([]CustomerRow, *Cursor, error) {
	col, desc, err := resolveSort(&CustomersList, p)
	if err != nil {
		return nil, nil, err
	}
	limit := p.limit()
	q := &query{d: &r.d}
	selectIn, where := r.groupSelect(q, &f, "customer_id")
	src := r.customersSource(q, f.ProjectID, f.CustomerID, selectIn)
	after, orderBy, err := keyset(q, &CustomersList, col, desc, p.After)
	if err != nil {
		return nil, nil, err
	}
	if after != "" {
		where = append(where, after)
	}
	sql := "SELECT " + customerColumns + " FROM " + src
	if len(where) > 0 {
		sql += " WHERE " + and(where)
	}
	sql += " ORDER BY " + orderBy + " LIMIT " + strconv.Itoa(limit+1)
	rows, err := collect(ctx, r.q, sql, q.args, func(c *CustomerRow) []any { return c.scanTargets() })
	if err != nil {
		return nil, nil, err
	}
	page, next := pageOf(rows, limit, func(c *CustomerRow) *Cursor {
		return &Cursor{Sort: col.Name, Desc: desc, Values: []string{sortValueText(customerSortValue(c, col.Name)), c.CustomerID}}
	})
	return page, next, nil
}

// Customer implements Reader.
func (r *SQLReader) Customer(ctx context.Context, project, customerID string) (CustomerRow, error) {
	q := &query{d: &r.d}
	sql := "SELECT " + customerColumns + " FROM " + r.customersSource(q, project, customerID, "")
	var c CustomerRow
	err := r.one(ctx, sql, q.args, c.scanTargets()...)
	return c, err
}
