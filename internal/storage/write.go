package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Tx is what a backend does inside the one transaction of a write. The
// shared algorithm of WriteGroup drives it. Errors are classified by the
// backend: data that can never be written is permanent (IsPermanent).
type Tx interface {
	// CheckSchema fails (retryably, never permanently) unless the database
	// is at the schema version this collector writes: a collector still on
	// an older schema stops writing once a newer one migrated the database,
	// instead of writing rows or rollups the new schema counts differently.
	CheckSchema(ctx context.Context) error
	// LoadExisting reports, among the keys of rows, the stored rows (their
	// usage fields) and the keys retention deleted (tombstones). A backend
	// that compares content before writing marks the rows whose stored
	// content equals the row given (Identical: exact replays, which are then
	// not written at all) and locks only the rows that will change.
	LoadExisting(ctx context.Context, rows []Span) (map[Key]Existing, error)
	// Upsert inserts the rows that are new and updates the rows whose
	// content differs from the stored one, leaving identical rows untouched,
	// and returns the keys it inserted or updated. With fast set, rows that
	// LoadExisting did not find may be inserted by a statement whose failure
	// aborts the whole transaction (no savepoint is open then).
	Upsert(ctx context.Context, rows []Span, existing map[Key]Existing, fast bool) ([]Changed, error)
	// AddUsage adds deltas to usage_daily, creating missing rows. Counters
	// saturate at the int64 range rather than overflow.
	AddUsage(ctx context.Context, deltas []UsageDelta) error
	// AddHourly adds deltas (in key order) to gen_hourly, creating missing
	// rows, and deletes the rows of Emptied(deltas) left with no
	// generation. Counters saturate as AddUsage's do.
	AddHourly(ctx context.Context, deltas []HourlyDelta) error
	// AddTotals applies a write's changes to session_totals,
	// customer_totals and customer_sessions: inserts the pairs (adding
	// those that were new to their customers' Sessions), upserts the
	// deltas, then recomputes the listed rows from the spans.
	AddTotals(ctx context.Context, changes *TotalsChanges) error
	// Savepoint, RollbackTo and Release manage a named savepoint, so a row
	// the database refuses is undone alone inside the transaction.
	Savepoint(ctx context.Context, name string) error
	RollbackTo(ctx context.Context, name string) error
	Release(ctx context.Context, name string) error
}

// Existing is what LoadExisting found for one key.
type Existing struct {
	Usage UsageFields
	// Tombstoned: retention deleted this span; a replay is acknowledged
	// but neither stored nor counted again.
	Tombstoned bool
	// Identical: the stored row equals the one being written.
	Identical bool
}

// Changed is a row that Upsert inserted or updated.
type Changed struct {
	Key Key
	// InsertedKnown is true when the database reported whether the row was
	// inserted (PostgreSQL can; SQLite's single writer does not need to).
	InsertedKnown bool
	Inserted      bool
}

// UsageFields are the columns of a span that usage_daily and the console's
// rollups aggregate.
type UsageFields struct {
	IsGeneration          bool
	StartTimeUnixNano     int64
	Model                 *string
	CustomerID            *string
	StatusCode            string
	InputTokens           *int64
	OutputTokens          *int64
	TotalTokens           *int64
	CachedInputTokens     *int64
	CacheWriteInputTokens *int64
	ReasoningTokens       *int64
	InputCostUSD          *float64
	OutputCostUSD         *float64
	TotalCostUSD          *float64
	// Read by the console's rollups (the hourly series and the session
	// and customer totals), not by usage_daily.
	EndTimeUnixNano int64
	DurationMs      float64
	Provider        *string
	SessionID       *string
}

// UsageFields returns the columns of s that the rollups aggregate.
func (s *Span) UsageFields() UsageFields {
	return UsageFields{
		IsGeneration: s.IsGeneration, StartTimeUnixNano: s.StartTimeUnixNano,
		Model: s.Model, CustomerID: s.CustomerID, StatusCode: s.StatusCode,
		InputTokens: s.InputTokens, OutputTokens: s.OutputTokens, TotalTokens: s.TotalTokens,
		CachedInputTokens: s.CachedInputTokens, CacheWriteInputTokens: s.CacheWriteInputTokens,
		ReasoningTokens: s.ReasoningTokens,
		InputCostUSD:    s.InputCostUSD, OutputCostUSD: s.OutputCostUSD, TotalCostUSD: s.TotalCostUSD,
		EndTimeUnixNano: s.EndTimeUnixNano, DurationMs: s.DurationMs, Provider: s.Provider, SessionID: s.SessionID,
	}
}

// UsageKey is the primary key of usage_daily. Model and customer are ""
// when unknown (primary key columns cannot be NULL in PostgreSQL).
type UsageKey struct {
	ProjectID  string
	Day        string // YYYY-MM-DD (UTC) of the span's start time
	Model      string
	CustomerID string
}

// UsageDelta is what one write adds to one usage_daily row (negative when a
// changed replay moved or shrank a generation). Costs are integer nano-USD.
type UsageDelta struct {
	Key                    UsageKey
	Generations            int64
	Errors                 int64
	UnknownCostGenerations int64
	InputTokens            int64
	OutputTokens           int64
	TotalTokens            int64
	CachedInputTokens      int64
	CacheWriteInputTokens  int64
	ReasoningTokens        int64
	InputCostNanoUSD       int64
	OutputCostNanoUSD      int64
	TotalCostNanoUSD       int64
}

func (d *UsageDelta) isZero() bool {
	for _, v := range d.counters() {
		if *v != 0 {
			return false
		}
	}
	return true
}

func (d *UsageDelta) counters() [12]*int64 {
	return [12]*int64{
		&d.Generations, &d.Errors, &d.UnknownCostGenerations,
		&d.InputTokens, &d.OutputTokens, &d.TotalTokens,
		&d.CachedInputTokens, &d.CacheWriteInputTokens, &d.ReasoningTokens,
		&d.InputCostNanoUSD, &d.OutputCostNanoUSD, &d.TotalCostNanoUSD,
	}
}

// SaturatingAdd returns a + b, clamped to the int64 range instead of
// wrapping. Under the limits of RowProblem no write comes near it; it keeps
// a corrupted input from turning a counter negative.
func SaturatingAdd(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Day returns the UTC calendar day of a unix-nano timestamp.
func Day(unixNano int64) string {
	return time.Unix(0, unixNano).UTC().Format("2006-01-02")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// addUsage adds sign times the contribution of one span to deltas. Only
// generation spans count.
func addUsage(deltas map[UsageKey]*UsageDelta, project string, f *UsageFields, sign int64) {
	if !f.IsGeneration {
		return
	}
	k := UsageKey{ProjectID: project, Day: Day(f.StartTimeUnixNano), Model: deref(f.Model), CustomerID: deref(f.CustomerID)}
	d := deltas[k]
	if d == nil {
		d = &UsageDelta{Key: k}
		deltas[k] = d
	}
	add := func(c *int64, v int64) { *c = SaturatingAdd(*c, sign*v) }
	add(&d.Generations, 1)
	if f.StatusCode == "ERROR" {
		add(&d.Errors, 1)
	}
	if f.TotalCostUSD == nil {
		add(&d.UnknownCostGenerations, 1)
	}
	add(&d.InputTokens, deref(f.InputTokens))
	add(&d.OutputTokens, deref(f.OutputTokens))
	add(&d.TotalTokens, deref(f.TotalTokens))
	add(&d.CachedInputTokens, deref(f.CachedInputTokens))
	add(&d.CacheWriteInputTokens, deref(f.CacheWriteInputTokens))
	add(&d.ReasoningTokens, deref(f.ReasoningTokens))
	add(&d.InputCostNanoUSD, NanoUSD(deref(f.InputCostUSD)))
	add(&d.OutputCostNanoUSD, NanoUSD(deref(f.OutputCostUSD)))
	add(&d.TotalCostNanoUSD, NanoUSD(deref(f.TotalCostUSD)))
}

// errConcurrentFirstWrite is returned when another writer inserted a row
// between our LoadExisting and our Upsert: the usage delta of this
// transaction would be wrong, so it is rolled back and retried.
var errConcurrentFirstWrite = errors.New("storage: another writer stored the same span concurrently; retrying")

// IsConcurrentFirstWrite reports whether a write must be retried because a
// concurrent writer raced it on the same keys.
func IsConcurrentFirstWrite(err error) bool { return errors.Is(err, errConcurrentFirstWrite) }

// Outcome is what a write did to one row.
type Outcome uint8

// Outcomes of a row; a key missing from an outcome map was unchanged.
const (
	OutcomeUnchanged Outcome = iota
	OutcomeInserted
	OutcomeUpdated
	OutcomeExpired
)

// Request is one caller's spans in a write that may serve several callers
// in one transaction (group commit). After WriteGroup, Result and Err are
// that caller's own answer: its counts, and a permanent error naming its
// own spans that can never be stored (the other callers' answers do not
// depend on them).
type Request struct {
	Spans  []Span
	Result WriteResult
	Err    error

	prepared bool
	valid    []Span      // deduped, sorted, storable
	invalid  []rejection // refused in Go before any statement
	rejected []rejection // refused by the database (isolating write)
}

// prepare checks the rows in Go once per request.
func (r *Request) prepare() {
	if r.prepared {
		return
	}
	r.prepared = true
	rows := Dedupe(r.Spans)
	r.valid = rows
	for i := range rows {
		if p := RowProblem(&rows[i]); p != "" {
			r.invalid = append(r.invalid, rejection{key: rows[i].Key(), reason: p})
		}
	}
	if len(r.invalid) == 0 {
		return // the usual case: no copy
	}
	r.valid = make([]Span, 0, len(rows)-len(r.invalid))
	for i := range rows {
		if RowProblem(&rows[i]) == "" {
			r.valid = append(r.valid, rows[i])
		}
	}
}

// WriteBatch writes spans as one request in the transaction of tx (the fast
// path: a row the database refuses fails the whole write).
func WriteBatch(ctx context.Context, tx Tx, spans []Span) (WriteResult, error) {
	req := &Request{Spans: spans}
	if err := WriteGroup(ctx, tx, []*Request{req}, false); err != nil {
		return WriteResult{}, err
	}
	return req.Result, req.Err
}

// WriteGroup runs the shared write algorithm for reqs inside one backend
// transaction:
//
//  1. each request's rows are checked in Go (RowProblem): a row that can
//     never be stored is refused before any statement, for that request only;
//  2. duplicates collapse to their last occurrence (across requests too);
//  3. the stored rows and the tombstones of the keys are read;
//  4. the upsert inserts new rows and updates changed ones (identical rows
//     are not touched: an exact replay is a no-op; a tombstoned key is not
//     written: a replay after retention is not counted again);
//  5. usage_daily gets, for every inserted or updated row, the new row's
//     contribution minus the old row's, so it always equals the aggregate
//     of the stored generations plus what retention removed; gen_hourly
//     gets the same difference (retention subtracts from it, so it always
//     equals the aggregate of the stored generations);
//  6. session_totals and customer_totals get the deltas of the inserted
//     generations, and the rows of replaced generations (old and new
//     session and customer) are recomputed from the spans (totals.go).
//
// Without isolating, a row the database refuses fails the whole transaction
// with a permanent error: the caller rolls back and calls again with
// isolating set, which writes each request under a savepoint and, when one
// fails, bisects it down to single rows under savepoints, so only the rows
// the database refuses are left out, each reported to its own request.
//
// A plain (retryable) error means nothing of the transaction may be kept;
// otherwise every request's Result and Err are set.
func WriteGroup(ctx context.Context, tx Tx, reqs []*Request, isolating bool) error {
	if err := tx.CheckSchema(ctx); err != nil {
		return err
	}
	var n int
	for _, r := range reqs {
		r.prepare()
		r.Result, r.Err, r.rejected = WriteResult{}, nil, nil
		n += len(r.valid)
	}
	rows := reqs[0].valid // one request: already deduped, no copy
	if len(reqs) > 1 {
		all := make([]Span, 0, n)
		for _, r := range reqs {
			all = append(all, r.valid...)
		}
		rows = Dedupe(all)
	}
	var existing map[Key]Existing
	if len(rows) > 0 {
		var err error
		if existing, err = tx.LoadExisting(ctx, rows); err != nil {
			return err
		}
	}
	w := &groupWrite{tx: tx, existing: existing, deltas: map[UsageKey]*UsageDelta{}, hourly: HourlyDeltas{}, totals: newTotalsAcc()}
	var outcomes map[Key]Outcome
	if isolating {
		if err := w.isolating(ctx, reqs, rows); err != nil {
			return err
		}
	} else {
		var err error
		if outcomes, err = w.fast(ctx, rows); err != nil {
			return err
		}
	}
	if list := sortedDeltas(w.deltas); len(list) > 0 {
		if err := tx.AddUsage(ctx, list); err != nil {
			return err
		}
	}
	if list := w.hourly.Sorted(); len(list) > 0 {
		if err := tx.AddHourly(ctx, list); err != nil {
			return err
		}
	}
	if ch := w.totals.changes(); !ch.Empty() {
		if err := tx.AddTotals(ctx, ch); err != nil {
			return err
		}
	}
	if !isolating {
		attributeOutcomes(reqs, outcomes)
	}
	for _, r := range reqs {
		bad := append(r.invalid[:len(r.invalid):len(r.invalid)], r.rejected...)
		r.Result.Rejected = len(bad)
		r.Err = rejectionError(bad, w.firstCause)
	}
	return nil
}

// CommitGroup writes group with writeTx, which runs WriteGroup in one
// transaction: first on the fast path; when a row is refused (a permanent
// error, and the transaction rolled back), once more isolating each
// request under savepoints, so only the request that sent the row gets the
// permanent error. A transaction-level error goes to every request.
func CommitGroup(group []*Request, writeTx func(isolating bool) error) {
	err := writeTx(false)
	if IsPermanent(err) {
		err = writeTx(true)
	}
	if err != nil {
		for _, r := range group {
			r.Result, r.Err = WriteResult{}, err
		}
	}
}

type groupWrite struct {
	tx         Tx
	existing   map[Key]Existing
	deltas     map[UsageKey]*UsageDelta
	hourly     HourlyDeltas
	totals     *totalsAcc
	firstCause error
}

// applyChanged accounts for the rows an upsert inserted or updated: their
// usage delta against the stored row (cur, updated as rows are written),
// and what happened to each.
func (w *groupWrite) applyChanged(changed []Changed, byKey map[Key]*Span, cur map[Key]UsageFields, record func(Key, Outcome)) error {
	for _, c := range changed {
		row := byKey[c.Key]
		if row == nil {
			return fmt.Errorf("storage: upsert reported a key that was not written: %+v", c.Key)
		}
		prev, existed := cur[c.Key]
		if c.InsertedKnown && c.Inserted == existed {
			return errConcurrentFirstWrite
		}
		f := row.UsageFields()
		if existed {
			addUsage(w.deltas, c.Key.ProjectID, &prev, -1)
			w.hourly.Add(c.Key.ProjectID, &prev, -1)
			w.totals.replace(c.Key.ProjectID, &prev, &f)
			record(c.Key, OutcomeUpdated)
		} else {
			w.totals.add(c.Key.ProjectID, &f)
			record(c.Key, OutcomeInserted)
		}
		addUsage(w.deltas, c.Key.ProjectID, &f, +1)
		w.hourly.Add(c.Key.ProjectID, &f, +1)
		cur[c.Key] = f
	}
	return nil
}

func (w *groupWrite) current() map[Key]UsageFields {
	cur := make(map[Key]UsageFields, len(w.existing))
	for k, e := range w.existing {
		if !e.Tombstoned {
			cur[k] = e.Usage
		}
	}
	return cur
}

// fast writes every row in one upsert.
func (w *groupWrite) fast(ctx context.Context, rows []Span) (map[Key]Outcome, error) {
	outcomes := make(map[Key]Outcome)
	write := rows
	if len(w.existing) > 0 { // else (the usual case) all are new: no copy
		write = make([]Span, 0, len(rows))
		for i := range rows {
			k := rows[i].Key()
			e, ok := w.existing[k]
			switch {
			case ok && e.Tombstoned:
				outcomes[k] = OutcomeExpired
			case ok && e.Identical:
			default:
				write = append(write, rows[i])
			}
		}
	}
	if len(write) == 0 {
		return outcomes, nil
	}
	changed, err := w.tx.Upsert(ctx, write, w.existing, true)
	if err != nil {
		return nil, err
	}
	byKey := make(map[Key]*Span, len(write))
	for i := range write {
		byKey[write[i].Key()] = &write[i]
	}
	err = w.applyChanged(changed, byKey, w.current(), func(k Key, o Outcome) { outcomes[k] = o })
	return outcomes, err
}

// isolateBisectAbove is the size above which a failing part is split in
// halves; at or below it, each row is tried under its own savepoint (an
// all-bad part then costs one statement per row rather than 2n-1).
const isolateBisectAbove = 32

// isolating writes each request under its own savepoint, isolating the
// rows the database refuses.
func (w *groupWrite) isolating(ctx context.Context, reqs []*Request, rows []Span) error {
	// A key sent by several requests is written by each in turn (last
	// write wins); content comparisons made before the first of them are
	// stale for the later ones.
	seen := make(map[Key]int, len(rows))
	for _, r := range reqs {
		for i := range r.valid {
			seen[r.valid[i].Key()]++
		}
	}
	cur := w.current()
	for _, r := range reqs {
		var write []Span
		for i := range r.valid {
			k := r.valid[i].Key()
			e, ok := w.existing[k]
			switch {
			case ok && e.Tombstoned:
				r.Result.Expired++
			case ok && e.Identical && seen[k] == 1:
				r.Result.Unchanged++
			default:
				write = append(write, r.valid[i])
			}
		}
		if len(write) == 0 {
			continue
		}
		byKey := make(map[Key]*Span, len(write))
		for i := range write {
			byKey[write[i].Key()] = &write[i]
		}
		written := 0
		record := func(_ Key, o Outcome) {
			written++
			if o == OutcomeInserted {
				r.Result.Inserted++
			} else {
				r.Result.Updated++
			}
		}
		err := w.isolate(ctx, write, 0, func(changed []Changed) error {
			return w.applyChanged(changed, byKey, cur, record)
		}, func(rej rejection) { r.rejected = append(r.rejected, rej) })
		if err != nil {
			return err
		}
		r.Result.Unchanged += len(write) - written - len(r.rejected)
	}
	return nil
}

// isolate upserts rows under a savepoint; when the database refuses them
// permanently it undoes the savepoint and retries smaller parts. ok is
// called with what each successful part changed, reject with each row that
// fails alone.
func (w *groupWrite) isolate(ctx context.Context, rows []Span, depth int,
	ok func([]Changed) error, reject func(rejection)) error {
	name := fmt.Sprintf("fallom_isolate_%d", depth)
	if err := w.tx.Savepoint(ctx, name); err != nil {
		return err
	}
	changed, err := w.tx.Upsert(ctx, rows, w.existing, false)
	if err == nil {
		if err := w.tx.Release(ctx, name); err != nil {
			return err
		}
		return ok(changed)
	}
	if !IsPermanent(err) {
		return err
	}
	if err := w.tx.RollbackTo(ctx, name); err != nil {
		return err
	}
	if err := w.tx.Release(ctx, name); err != nil {
		return err
	}
	switch {
	case len(rows) == 1:
		if w.firstCause == nil {
			w.firstCause = err
		}
		reject(rejection{key: rows[0].Key(), reason: err.Error()})
		return nil
	case len(rows) <= isolateBisectAbove:
		for i := range rows {
			if err := w.isolate(ctx, rows[i:i+1], depth+1, ok, reject); err != nil {
				return err
			}
		}
		return nil
	}
	mid := len(rows) / 2
	if err := w.isolate(ctx, rows[:mid], depth+1, ok, reject); err != nil {
		return err
	}
	return w.isolate(ctx, rows[mid:], depth+1, ok, reject)
}

// attributeOutcomes gives each request the counts of its own rows. A key
// sent by several requests of the group is counted for the last of them
// (whose row was stored, as Dedupe keeps the last occurrence) and as
// unchanged for the others, so the counts add up to what sequential writes
// report.
func attributeOutcomes(reqs []*Request, outcomes map[Key]Outcome) {
	if len(reqs) == 1 {
		r := reqs[0]
		for _, o := range outcomes {
			count(&r.Result, o)
		}
		r.Result.Unchanged += len(r.valid) - len(outcomes)
		return
	}
	claimed := make(map[Key]struct{})
	for i := len(reqs) - 1; i >= 0; i-- {
		r := reqs[i]
		for j := range r.valid {
			k := r.valid[j].Key()
			if _, later := claimed[k]; later {
				r.Result.Unchanged++
				continue
			}
			count(&r.Result, outcomes[k])
		}
		for j := range r.valid {
			claimed[r.valid[j].Key()] = struct{}{}
		}
	}
}

func count(res *WriteResult, o Outcome) {
	switch o {
	case OutcomeInserted:
		res.Inserted++
	case OutcomeUpdated:
		res.Updated++
	case OutcomeExpired:
		res.Expired++
	default:
		res.Unchanged++
	}
}

// Dedupe returns spans with one row per key (the last occurrence wins),
// sorted by key so concurrent writers lock rows in the same order.
func Dedupe(spans []Span) []Span {
	last := make(map[Key]int, len(spans))
	for i := range spans {
		last[spans[i].Key()] = i
	}
	out := make([]Span, 0, len(last))
	for i := range spans {
		if last[spans[i].Key()] == i {
			out = append(out, spans[i])
		}
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].Key(), out[j].Key()) })
	return out
}

func keyLess(a, b Key) bool {
	if a.ProjectID != b.ProjectID {
		return a.ProjectID < b.ProjectID
	}
	if a.TraceID != b.TraceID {
		return a.TraceID < b.TraceID
	}
	return a.SpanID < b.SpanID
}

func sortedDeltas(m map[UsageKey]*UsageDelta) []UsageDelta {
	out := make([]UsageDelta, 0, len(m))
	for _, d := range m {
		if !d.isZero() {
			out = append(out, *d)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Key, out[j].Key
		if a.ProjectID != b.ProjectID {
			return a.ProjectID < b.ProjectID
		}
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.CustomerID < b.CustomerID
	})
	return out
}

// CleanText makes s storable in every backend: invalid UTF-8 becomes U+FFFD
// and NUL (which PostgreSQL text cannot hold) becomes U+FFFD too.
func CleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
