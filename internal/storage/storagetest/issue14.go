package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

const day = 24 * time.Hour

// Issue 14 item 2: what an old replay does after retention. A replay of a
// span retention deleted is acknowledged as expired and neither stored nor
// counted again (a tombstone keeps its key); a replay of a span whose
// content was cleared keeps it cleared (its other columns still follow a
// changed replay). usage_daily = the stored generations + what retention
// removed, exactly, before and after the replays.
func testReplayAfterRetention(t *testing.T, b Backend) {
	s, _ := b.New(t)
	ctx := context.Background()
	now := Base.Add(100 * day)
	ages := []time.Duration{5 * day, 5 * day, 20 * day, 20 * day, 40 * day, 40 * day}
	var all []storage.Span
	for i, age := range ages {
		for _, sp := range []storage.Span{Generation("p", i), Child("p", i)} {
			sp.ReceivedAtUnixNano = now.Add(-age).UnixNano()
			all = append(all, sp)
		}
	}
	write(t, s, all)
	spanCutoff := now.Add(-30 * day).UnixNano()
	removed := aggregate(t, b, s, fmt.Sprintf("received_at_unix_nano < %d", spanCutoff))
	if len(removed) == 0 {
		t.Fatal("the fixture removes no generation")
	}
	res, err := s.ApplyRetention(ctx, storage.RetentionPolicy{ContentAfter: 10 * day, SpansAfter: 30 * day, BatchSize: 3, Now: now})
	if err != nil || res.SpansDeleted != 4 || res.ContentCleared != 4 {
		t.Fatalf("retention: %+v %v; want 4 deleted, 4 cleared (the generations older than 10 days)", res, err)
	}
	checkRollupPlus(t, b, s, removed)

	// Everything again, later, exactly.
	replay := append([]storage.Span(nil), all...)
	for i := range replay {
		replay[i].ReceivedAtUnixNano = now.UnixNano()
	}
	got := write(t, s, replay)
	if got != (storage.WriteResult{Unchanged: 8, Expired: 4}) {
		t.Fatalf("replay after retention: %+v, want 8 unchanged and 4 expired", got)
	}
	checkRollupPlus(t, b, s, removed)
	var rows, withContent, tombstones int64
	b.QueryRow(t, s, "SELECT count(*), count(prompt) FROM spans", &rows, &withContent)
	b.QueryRow(t, s, "SELECT count(*) FROM span_tombstones", &tombstones)
	if rows != 8 || withContent != 2 || tombstones != 4 {
		t.Fatalf("after the replay: %d rows, %d with a prompt, %d tombstones; want 8, 2 (the recent generations), 4", rows, withContent, tombstones)
	}

	// A changed replay of a content-cleared generation updates its other
	// columns, not its content; one of a deleted generation stays expired.
	cleared := Generation("p", 2)
	cleared.OutputTokens = ptr(int64(999))
	gone := Generation("p", 4)
	gone.OutputTokens = ptr(int64(555))
	if got := write(t, s, []storage.Span{cleared, gone}); got != (storage.WriteResult{Updated: 1, Expired: 1}) {
		t.Fatalf("changed replays: %+v, want 1 updated and 1 expired", got)
	}
	var prompt, completion *string
	var out int64
	b.QueryRow(t, s, "SELECT prompt, completion, output_tokens FROM spans WHERE span_id = '"+cleared.SpanID+"'", &prompt, &completion, &out)
	if prompt != nil || completion != nil || out != 999 {
		t.Fatalf("content-cleared span after a changed replay: prompt %v completion %v output_tokens %d; want NULL, NULL, 999", prompt, completion, out)
	}
	checkRollupPlus(t, b, s, removed)
}

// Issue 14 item 10: rollup money is exact. Costs that do not add up in
// floating point (0.1 + 0.2) are summed as integer nano-USD, and a rollup
// row whose generations were all removed holds exactly zero.
func testMoneyIsExact(t *testing.T, b Backend) {
	s, _ := b.New(t)
	g0, g1 := Generation("p", 0), Generation("p", 2) // same day, model and customer
	g0.InputCostUSD, g0.OutputCostUSD, g0.TotalCostUSD = ptr(0.1), ptr(0.0000001), ptr(0.1)
	g1.InputCostUSD, g1.OutputCostUSD, g1.TotalCostUSD = ptr(0.2), ptr(0.0000002), ptr(0.2)
	write(t, s, []storage.Span{g0})
	write(t, s, []storage.Span{g1})
	var gens, total, output int64
	b.QueryRow(t, s, "SELECT generations, total_cost_nano_usd, output_cost_nano_usd FROM usage_daily", &gens, &total, &output)
	if gens != 2 || total != 300_000_000 || output != 300 {
		t.Fatalf("usage_daily: %d generations, %d nano-USD total, %d nano-USD output; want 2, 300000000, 300", gens, total, output)
	}
	checkRollup(t, b, s)
	// Both stop being generations (changed replays), one after the other:
	// in floating point the row kept 2.78e-17 USD.
	for _, g := range []storage.Span{g0, g1} {
		g.IsGeneration = false
		write(t, s, []storage.Span{g})
	}
	var c [12]int64
	dest := make([]any, len(c))
	for i := range c {
		dest[i] = &c[i]
	}
	b.QueryRow(t, s, "SELECT "+strings.Join(storage.UsageDeltaColumns, ", ")+" FROM usage_daily", dest...)
	if c != ([12]int64{}) {
		t.Fatalf("usage_daily after both generations left it: %v, want all zero", c)
	}
	checkRollup(t, b, s)
}

// Issue 14 item 5: token counts and costs are capped at ingest (2^40
// tokens, USD 1,000,000), so a huge value is refused for its own span and
// never poisons the usage_daily row of its project, day, model and
// customer.
func testCountsAreCapped(t *testing.T, b Backend) {
	s, _ := b.New(t)
	ctx := context.Background()
	huge := Generation("p", 1)
	huge.InputTokens = ptr(int64(math.MaxInt64 - 10))
	pricey := Generation("p", 3)
	pricey.TotalCostUSD = ptr(1e7)
	res, err := s.WriteSpans(ctx, []storage.Span{huge, pricey, Child("p", 1)})
	if !storage.IsPermanent(err) || res.Rejected != 2 || res.Inserted != 1 ||
		!strings.Contains(err.Error(), huge.SpanID) || !strings.Contains(err.Error(), pricey.SpanID) {
		t.Fatalf("spans over the caps: %+v %v; want both rejected permanently by name, the child stored", res, err)
	}
	// Ordinary spans of the same rollup row are stored, and the cap itself
	// is accepted.
	ordinary := Generation("p", 5)
	atCap := Generation("p", 7)
	atCap.InputTokens = ptr(storage.MaxTokenCount)
	if got := write(t, s, []storage.Span{ordinary, atCap}); got.Inserted != 2 {
		t.Fatalf("ordinary spans after the refused one: %+v", got)
	}
	checkRollup(t, b, s)
}

// Issue 14 item 5: a usage_daily counter saturates at the int64 range
// instead of failing every later span of its row (PostgreSQL 22003) or
// turning into a REAL (SQLite).
func testRollupSaturates(t *testing.T, b Backend) {
	s, _ := b.New(t)
	write(t, s, []storage.Span{Generation("p", 1)})
	b.Exec(t, s, "UPDATE usage_daily SET input_tokens = 9223372036854775000, total_cost_nano_usd = 9223372036854775000")
	next := Generation("p", 3) // same project, day, model, customer
	next.TotalCostUSD = ptr(5.0)
	if got := write(t, s, []storage.Span{next}); got.Inserted != 1 {
		t.Fatalf("write into a nearly full rollup row: %+v", got)
	}
	var in, cost, gens int64
	b.QueryRow(t, s, "SELECT input_tokens, total_cost_nano_usd, generations FROM usage_daily", &in, &cost, &gens)
	if in != math.MaxInt64 || cost != math.MaxInt64 || gens != 2 {
		t.Fatalf("usage_daily: input_tokens %d, total_cost_nano_usd %d, generations %d; want both saturated at 2^63-1 and 2", in, cost, gens)
	}
}

// Issue 14 item 6: a row whose JSON the database cannot hold (nesting
// beyond what jsonb parses) is refused permanently, for that row alone; it
// is never a retryable error (which made senders resend it forever).
func testDeepNestingIsNeverRetried(t *testing.T, b Backend) {
	s, _ := b.New(t)
	deep := Generation("p", 1)
	deep.Attributes = `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	spans := []storage.Span{Generation("p", 0), deep, Child("p", 0)}
	res, err := s.WriteSpans(context.Background(), spans)
	switch {
	case err == nil:
		if res.Inserted != 3 {
			t.Fatalf("%+v, want 3 inserted", res)
		}
	case storage.IsPermanent(err):
		if res.Inserted != 2 || res.Rejected != 1 || !strings.Contains(err.Error(), deep.SpanID) {
			t.Fatalf("%+v %v; want the deep span rejected by name, the others stored", res, err)
		}
	default:
		t.Fatalf("deeply nested attributes: retryable error %v; it can never succeed", err)
	}
	checkRollup(t, b, s)
}

// Issue 14 item 7: rows whose indexed text is too long for an index entry
// are refused in Go, before any statement: 2000 such spans cost at most
// the one transaction of the write (bisecting cost 2n-1 and took 17 s),
// and the error returned to the sender stays small (it was 440 KB) while
// naming spans.
func testOverlongKeysRejectedInGo(t *testing.T, b Backend) {
	s, _ := b.New(t)
	long := strings.Repeat("s", 5000)
	var spans []storage.Span
	for i := range 2000 {
		g := Generation("p", i)
		g.SessionID = &long
		spans = append(spans, g)
	}
	before := b.Transactions(s)
	res, err := s.WriteSpans(context.Background(), spans)
	if !storage.IsPermanent(err) || res.Rejected != 2000 || res.Inserted != 0 {
		t.Fatalf("%+v %v; want 2000 rejected permanently", res, err)
	}
	if n := b.Transactions(s) - before; n > 1 {
		t.Fatalf("refusing 2000 rows took %d transactions, want at most 1", n)
	}
	if len(err.Error()) > 4096 || !strings.Contains(err.Error(), spans[0].SpanID) || !strings.Contains(err.Error(), "and 1990 more") {
		t.Fatalf("error of %d bytes: %.300s...; want at most 4 KiB naming the first spans and the count of the rest", len(err.Error()), err)
	}
	// Good rows beside bad ones are stored.
	mixed := append(Delivery("q", 3), spans[:2]...)
	res, err = s.WriteSpans(context.Background(), mixed)
	if !storage.IsPermanent(err) || res.Inserted != 6 || res.Rejected != 2 {
		t.Fatalf("mixed: %+v %v; want 6 inserted, 2 rejected", res, err)
	}
	checkRollup(t, b, s)
}

// Issue 14 item 4: a collector whose schema is older than the database's
// (another collector was upgraded and migrated it) stops writing, with a
// retryable error saying so, instead of writing rows the new schema would
// count differently.
func testOlderCollectorStops(t *testing.T, b Backend) {
	s, _ := b.New(t)
	write(t, s, Delivery("p", 1))
	b.Exec(t, s, "INSERT INTO schema_migrations (version, name, applied_at_unix_nano) VALUES (99, 'from_the_future', 0)")
	_, err := s.WriteSpans(context.Background(), Delivery("p", 3))
	if err == nil || storage.IsPermanent(err) || !errors.Is(err, storage.ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("write on a newer schema: %v; want a retryable error naming version 99", err)
	}
	if got := spanTotals(t, b, s); got.rows != 2 {
		t.Fatalf("%d rows, want the 2 of before", got.rows)
	}
	b.Exec(t, s, "DELETE FROM schema_migrations WHERE version = 99")
	if got := write(t, s, Delivery("p", 3)); got.Inserted != 4 {
		t.Fatalf("write once the schema matches again: %+v", got)
	}
}

// Issue 13 item 2 at the storage level: concurrent requests are committed
// together (group commit), and each one gets the answer its own spans
// earned: a span the database refuses fails only the request that sent it;
// every other request is stored exactly once and answered without error.
func testGroupCommitPerRequest(t *testing.T, b Backend) {
	s, _ := b.New(t)
	ctx := context.Background()
	for round := range 3 {
		const good = 12
		type answer struct {
			res storage.WriteResult
			err error
		}
		answers := make([]answer, good+1)
		requests := make([][]storage.Span, good+1)
		for i := range good {
			requests[i] = Delivery(fmt.Sprintf("good-%d-%d", round, i), 2)
		}
		requests[good] = append(Delivery(fmt.Sprintf("bad-%d", round), 3), b.RefusedByDatabase(t, s, fmt.Sprintf("bad-%d", round), 100))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range good + 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				answers[i].res, answers[i].err = s.WriteSpans(ctx, requests[i])
			}()
		}
		close(start)
		wg.Wait()
		for i, a := range answers[:good] {
			if a.err != nil || a.res != (storage.WriteResult{Inserted: 4}) {
				t.Fatalf("round %d: good request %d: %+v %v; want 4 inserted, no error", round, i, a.res, a.err)
			}
		}
		bad := answers[good]
		if !storage.IsPermanent(bad.err) || bad.res != (storage.WriteResult{Inserted: 6, Rejected: 1}) {
			t.Fatalf("round %d: bad request: %+v %v; want its 6 good spans inserted and the refused one rejected", round, bad.res, bad.err)
		}
		if strings.Contains(bad.err.Error(), "good-") {
			t.Fatalf("the bad request's error names another request's spans: %v", bad.err)
		}
	}
	if got := spanTotals(t, b, s); got.rows != 3*(12*4+6) {
		t.Fatalf("%d rows, want %d", got.rows, 3*(12*4+6))
	}
	checkRollup(t, b, s)
}

// The longest keys the limits let through are stored on both backends: a
// generation whose session, customer, model and provider each hold
// storage.MaxIndexedTextBytes of text that does not compress (PostgreSQL
// compresses an index entry over its size limit before refusing it), with
// a project id of storage.MaxProjectIDBytes, is in every index of the
// generations (spans_gen_start holds all four) and in the rollups.
func testLongestKeysStored(t *testing.T, b Backend) {
	s, _ := b.New(t)
	incompressible := func(seed uint64, n int) string {
		// xorshift64*: random letters and digits, deterministic per seed.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		x := seed
		out := make([]byte, n)
		for i := range out {
			x ^= x >> 12
			x ^= x << 25
			x ^= x >> 27
			out[i] = alphabet[(x*2685821657736338717)>>58%uint64(len(alphabet))]
		}
		return string(out)
	}
	project := incompressible(1, storage.MaxProjectIDBytes)
	session, customer, model, provider := incompressible(2, storage.MaxIndexedTextBytes), incompressible(3, storage.MaxIndexedTextBytes),
		incompressible(4, storage.MaxIndexedTextBytes), incompressible(5, storage.MaxIndexedTextBytes)
	var spans []storage.Span
	for i := range 3 {
		g := Generation(project, i)
		g.SessionID, g.CustomerID, g.Model, g.Provider = &session, &customer, &model, &provider
		spans = append(spans, g)
	}
	res, err := s.WriteSpans(context.Background(), spans)
	if err != nil || res.Inserted != 3 {
		t.Fatalf("generations with the longest keys: %+v %v; want 3 inserted", res, err)
	}
	checkRollup(t, b, s)
	r, ok := s.(storage.Reader)
	if !ok {
		return
	}
	sum, err := r.Summary(context.Background(), storage.Filter{ProjectID: project, Model: model})
	if err != nil || sum.Generations != 3 || sum.Sessions != 1 || sum.Customers != 1 {
		t.Fatalf("summary of the longest model: %+v %v; want 3 generations of 1 session and 1 customer", sum, err)
	}
	rows, _, err := r.Generations(context.Background(), storage.Filter{ProjectID: project}, storage.Page{Sort: "total_cost_usd", Desc: true, Limit: 2})
	if err != nil || len(rows) != 2 {
		t.Fatalf("generations by cost: %d rows, %v; want 2", len(rows), err)
	}
}
