package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Tx is what a backend does inside the one transaction of a write. The
// shared algorithm in WriteBatch drives it.
type Tx interface {
	// LoadExisting returns the usage fields of the rows among keys that
	// already exist, locking them where the database supports it.
	LoadExisting(ctx context.Context, keys []Key) (map[Key]UsageFields, error)
	// Upsert inserts the rows that are new and updates the rows whose
	// content differs from the stored one, leaving identical rows untouched.
	// It returns the keys it inserted or updated.
	Upsert(ctx context.Context, spans []Span) ([]Changed, error)
	// AddUsage adds deltas to usage_daily, creating missing rows.
	AddUsage(ctx context.Context, deltas []UsageDelta) error
}

// Changed is a row that Upsert inserted or updated.
type Changed struct {
	Key Key
	// InsertedKnown is true when the database reported whether the row was
	// inserted (PostgreSQL can; SQLite's single writer does not need to).
	InsertedKnown bool
	Inserted      bool
}

// UsageFields are the columns of a span that usage_daily aggregates.
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
}

// UsageFields returns the columns of s that usage_daily aggregates.
func (s *Span) UsageFields() UsageFields {
	return UsageFields{
		IsGeneration: s.IsGeneration, StartTimeUnixNano: s.StartTimeUnixNano,
		Model: s.Model, CustomerID: s.CustomerID, StatusCode: s.StatusCode,
		InputTokens: s.InputTokens, OutputTokens: s.OutputTokens, TotalTokens: s.TotalTokens,
		CachedInputTokens: s.CachedInputTokens, CacheWriteInputTokens: s.CacheWriteInputTokens,
		ReasoningTokens: s.ReasoningTokens,
		InputCostUSD:    s.InputCostUSD, OutputCostUSD: s.OutputCostUSD, TotalCostUSD: s.TotalCostUSD,
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
// changed replay moved or shrank a generation).
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
	InputCostUSD           float64
	OutputCostUSD          float64
	TotalCostUSD           float64
}

func (d *UsageDelta) isZero() bool {
	return d.Generations == 0 && d.Errors == 0 && d.UnknownCostGenerations == 0 &&
		d.InputTokens == 0 && d.OutputTokens == 0 && d.TotalTokens == 0 &&
		d.CachedInputTokens == 0 && d.CacheWriteInputTokens == 0 && d.ReasoningTokens == 0 &&
		d.InputCostUSD == 0 && d.OutputCostUSD == 0 && d.TotalCostUSD == 0
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
func addUsage(deltas map[UsageKey]*UsageDelta, project string, f UsageFields, sign int64) {
	if !f.IsGeneration {
		return
	}
	k := UsageKey{ProjectID: project, Day: Day(f.StartTimeUnixNano), Model: deref(f.Model), CustomerID: deref(f.CustomerID)}
	d := deltas[k]
	if d == nil {
		d = &UsageDelta{Key: k}
		deltas[k] = d
	}
	fs := float64(sign)
	d.Generations += sign
	if f.StatusCode == "ERROR" {
		d.Errors += sign
	}
	if f.TotalCostUSD == nil {
		d.UnknownCostGenerations += sign
	}
	d.InputTokens += sign * deref(f.InputTokens)
	d.OutputTokens += sign * deref(f.OutputTokens)
	d.TotalTokens += sign * deref(f.TotalTokens)
	d.CachedInputTokens += sign * deref(f.CachedInputTokens)
	d.CacheWriteInputTokens += sign * deref(f.CacheWriteInputTokens)
	d.ReasoningTokens += sign * deref(f.ReasoningTokens)
	d.InputCostUSD += fs * deref(f.InputCostUSD)
	d.OutputCostUSD += fs * deref(f.OutputCostUSD)
	d.TotalCostUSD += fs * deref(f.TotalCostUSD)
}

// errConcurrentFirstWrite is returned when another writer inserted a row
// between our LoadExisting and our Upsert: the usage delta of this
// transaction would be wrong, so it is rolled back and retried.
var errConcurrentFirstWrite = errors.New("storage: another writer stored the same span concurrently; retrying")

// IsConcurrentFirstWrite reports whether a write must be retried because a
// concurrent writer raced it on the same keys.
func IsConcurrentFirstWrite(err error) bool { return errors.Is(err, errConcurrentFirstWrite) }

// WriteBatch runs the shared write algorithm inside one backend transaction:
//
//  1. duplicates within the batch collapse to their last occurrence;
//  2. the usage fields of the rows that already exist are read;
//  3. the upsert inserts new rows and updates changed ones (identical rows
//     are not touched: an exact replay is a no-op);
//  4. usage_daily gets, for every inserted or updated row, the new row's
//     contribution minus the old row's, so it always equals the aggregate
//     of the stored generations and a replay never inflates it.
func WriteBatch(ctx context.Context, tx Tx, spans []Span) (WriteResult, error) {
	return writeBatch(ctx, tx, spans, nil)
}

// Outcome is what a write did to one row.
type Outcome uint8

// Outcomes of a row; a key missing from an outcome map was unchanged.
const (
	OutcomeUnchanged Outcome = iota
	OutcomeInserted
	OutcomeUpdated
)

// WriteBatchOutcomes is WriteBatch that also records in outcomes what it did
// to every row it inserted or updated, so a backend that merges several
// callers' spans into one transaction can tell each caller its own counts.
func WriteBatchOutcomes(ctx context.Context, tx Tx, spans []Span, outcomes map[Key]Outcome) (WriteResult, error) {
	return writeBatch(ctx, tx, spans, outcomes)
}

func writeBatch(ctx context.Context, tx Tx, spans []Span, outcomes map[Key]Outcome) (WriteResult, error) {
	var res WriteResult
	rows := Dedupe(spans)
	keys := make([]Key, len(rows))
	byKey := make(map[Key]*Span, len(rows))
	for i := range rows {
		keys[i] = rows[i].Key()
		byKey[keys[i]] = &rows[i]
	}
	old, err := tx.LoadExisting(ctx, keys)
	if err != nil {
		return res, err
	}
	changed, err := tx.Upsert(ctx, rows)
	if err != nil {
		return res, err
	}
	deltas := map[UsageKey]*UsageDelta{}
	for _, c := range changed {
		row := byKey[c.Key]
		if row == nil {
			return res, fmt.Errorf("storage: upsert reported a key that was not written: %+v", c.Key)
		}
		prev, existed := old[c.Key]
		if c.InsertedKnown && c.Inserted == existed {
			return res, errConcurrentFirstWrite
		}
		if existed {
			res.Updated++
			addUsage(deltas, c.Key.ProjectID, prev, -1)
		} else {
			res.Inserted++
		}
		if outcomes != nil {
			outcomes[c.Key] = OutcomeUpdated
			if !existed {
				outcomes[c.Key] = OutcomeInserted
			}
		}
		addUsage(deltas, c.Key.ProjectID, row.UsageFields(), +1)
	}
	res.Unchanged = len(rows) - len(changed)
	if list := sortedDeltas(deltas); len(list) > 0 {
		if err := tx.AddUsage(ctx, list); err != nil {
			return res, err
		}
	}
	return res, nil
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

// WriteIsolating calls write on spans; when it fails with a permanent error
// it bisects, so every row that can be written is committed and only the
// rows that can never be written are reported (as one permanent error). A
// retryable error from any part is returned as is: the caller retries the
// whole request, which is safe because writes are idempotent.
func WriteIsolating(ctx context.Context, spans []Span, write func(context.Context, []Span) (WriteResult, error)) (WriteResult, error) {
	res, err := write(ctx, spans)
	if err == nil || !IsPermanent(err) {
		return res, err
	}
	if len(spans) == 1 {
		s := &spans[0]
		return WriteResult{Rejected: 1}, NewPermanent(fmt.Errorf("span trace_id=%s span_id=%s of project %q cannot be stored: %w",
			s.TraceID, s.SpanID, s.ProjectID, err))
	}
	var total WriteResult
	var permanent []error
	mid := len(spans) / 2
	for _, part := range [][]Span{spans[:mid], spans[mid:]} {
		r, err := WriteIsolating(ctx, part, write)
		total.add(r)
		if err != nil {
			if !IsPermanent(err) {
				return total, err
			}
			permanent = append(permanent, err)
		}
	}
	if len(permanent) == 0 {
		// The whole batch failed but every half succeeded: the failure was
		// not about a row (e.g. a statement too large); nothing is lost.
		return total, nil
	}
	return total, NewPermanent(errors.Join(permanent...))
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
