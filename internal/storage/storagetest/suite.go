// Package storagetest is the conformance suite every storage backend runs
// against a real database (a SQLite file, a real PostgreSQL server): schema,
// idempotent replay, the merge rule for a changed replay, the usage_daily
// rollup, the views and retention. SQL in this file is portable between the
// two backends.
package storagetest // import "github.com/fallom/fallom-collector/internal/storage/storagetest"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// Backend adapts one storage backend to the suite.
type Backend struct {
	// New opens a store on a new, empty database. Reopen opens the same
	// database again (after the first store was closed).
	New func(t *testing.T) (s storage.Store, reopen func() storage.Store)
	// QueryRow runs a one-row query on the store's database and scans it.
	QueryRow func(t *testing.T, s storage.Store, query string, dest ...any)
	// EachRow runs query and calls fn after scanning each row into dest.
	EachRow func(t *testing.T, s storage.Store, query string, dest []any, fn func())
	// Exec runs a statement on the store's database.
	Exec func(t *testing.T, s storage.Store, query string)
	// Transactions counts the write transactions the store has begun.
	Transactions func(s storage.Store) int64
	// RefusedByDatabase returns a span that passes the checks in Go but
	// that the database of s refuses (setting s up for it if needed).
	RefusedByDatabase func(t *testing.T, s storage.Store, project string, i int) storage.Span
	// SchemaVersion is the number of migrations of the backend.
	SchemaVersion int
	// DayExpr is the SQL text of the UTC day ('YYYY-MM-DD') of
	// start_time_unix_nano, which differs between dialects.
	DayExpr string
}

// Run runs every conformance test.
func Run(t *testing.T, b Backend) {
	t.Run("MigratesFromEmpty", func(t *testing.T) { testMigratesFromEmpty(t, b) })
	t.Run("IdempotentReplay", func(t *testing.T) { testIdempotentReplay(t, b) })
	t.Run("DuplicatesInOneBatch", func(t *testing.T) { testDuplicatesInOneBatch(t, b) })
	t.Run("ChangedReplay", func(t *testing.T) { testChangedReplay(t, b) })
	t.Run("MixedBatch", func(t *testing.T) { testMixedBatch(t, b) })
	t.Run("RollupMatchesSpans", func(t *testing.T) { testRollupMatchesSpans(t, b) })
	t.Run("Views", func(t *testing.T) { testViews(t, b) })
	t.Run("TotalsMatchSpans", func(t *testing.T) { testTotalsMatchSpans(t, b) })
	t.Run("NullsAndPlainSpans", func(t *testing.T) { testNullsAndPlainSpans(t, b) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, b) })
	t.Run("LargeBatch", func(t *testing.T) { testLargeBatch(t, b) })
	// Issue 14.
	t.Run("ReplayAfterRetention", func(t *testing.T) { testReplayAfterRetention(t, b) })
	t.Run("MoneyIsExact", func(t *testing.T) { testMoneyIsExact(t, b) })
	t.Run("CountsAreCapped", func(t *testing.T) { testCountsAreCapped(t, b) })
	t.Run("RollupSaturates", func(t *testing.T) { testRollupSaturates(t, b) })
	t.Run("DeepNestingIsNeverRetried", func(t *testing.T) { testDeepNestingIsNeverRetried(t, b) })
	t.Run("OverlongKeysRejectedInGo", func(t *testing.T) { testOverlongKeysRejectedInGo(t, b) })
	t.Run("LongestKeysStored", func(t *testing.T) { testLongestKeysStored(t, b) })
	t.Run("OlderCollectorStopsOnNewerSchema", func(t *testing.T) { testOlderCollectorStops(t, b) })
	t.Run("GroupCommitPerRequestOutcomes", func(t *testing.T) { testGroupCommitPerRequest(t, b) })
	// Issue 11.7.
	t.Run("HourlyRollupMatchesSpans", func(t *testing.T) { testHourlyConsistent(t, b) })
}

func ptr[T any](v T) *T { return &v }

// Base is the start time of the fixtures: 2026-11-02 10:00:00 UTC.
var Base = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// Generation returns a realistic OpenRouter generation row (as the exporter
// builds it from a mapped span), i numbering the span.
func Generation(project string, i int) storage.Span {
	start := Base.Add(time.Duration(i) * time.Second)
	end := start.Add(1890 * time.Millisecond)
	prompt := fmt.Sprintf(`[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Question %d: %s"}]`, i, strings.Repeat("lorem ipsum ", 20))
	return storage.Span{
		ProjectID: project, TraceID: fmt.Sprintf("%032x", 0x5f2c0000+i), SpanID: fmt.Sprintf("%016x", 0xa000+i),
		Name: "LLM Generation", Kind: "CLIENT", StatusCode: "OK",
		StartTimeUnixNano: start.UnixNano(), EndTimeUnixNano: end.UnixNano(), DurationMs: 1890,
		ReceivedAtUnixNano: end.Add(time.Second).UnixNano(),
		IsGeneration:       true,
		SessionID:          ptr(fmt.Sprintf("session-%d", i%3)), CustomerID: ptr(fmt.Sprintf("customer-%d", i%2)),
		Model: ptr("openai/gpt-4o-mini"), RequestedModel: ptr("openai/gpt-4o-mini"), Provider: ptr("OpenAI"), Operation: ptr("chat"),
		InputTokens: ptr(int64(1200 + i)), OutputTokens: ptr(int64(48)), TotalTokens: ptr(int64(1248 + i)),
		CachedInputTokens: ptr(int64(100)), CacheWriteInputTokens: ptr(int64(0)), ReasoningTokens: ptr(int64(0)),
		InputCostUSD: ptr(0.00015), OutputCostUSD: ptr(0.0000288), TotalCostUSD: ptr(0.0001788), CostSource: ptr("reported"),
		FinishReason: ptr("stop"), TimeToFirstTokenMs: ptr(412.0), Streamed: ptr(true),
		Prompt: ptr(prompt), Completion: ptr(`{"role":"assistant","content":"Paris."}`), Source: ptr("openrouter"),
		Attributes:         `{"span.type":"generation","gen_ai.response.id":"gen-1794000000-x"}`,
		ResourceAttributes: `{"service.name":"openrouter","service.version":"1.0.0"}`,
	}
}

// Child returns a non-generation child of Generation(project, i).
func Child(project string, i int) storage.Span {
	g := Generation(project, i)
	return storage.Span{
		ProjectID: project, TraceID: g.TraceID, SpanID: fmt.Sprintf("%016x", 0xc000+i), ParentSpanID: ptr(g.SpanID),
		Name: "provider attempt 1: OpenAI", Kind: "INTERNAL", StatusCode: "UNSET",
		StartTimeUnixNano: g.StartTimeUnixNano, EndTimeUnixNano: g.EndTimeUnixNano, DurationMs: g.DurationMs,
		ReceivedAtUnixNano: g.ReceivedAtUnixNano, Operation: ptr("chat"), Source: ptr("openrouter"),
		Attributes: `{"span.type":"span"}`, ResourceAttributes: g.ResourceAttributes,
	}
}

// Delivery returns n generations with one child each.
func Delivery(project string, n int) []storage.Span {
	var out []storage.Span
	for i := range n {
		out = append(out, Generation(project, i), Child(project, i))
	}
	return out
}

type totals struct {
	rows, generations, inputTokens int64
	costNano                       int64
}

// spanTotals aggregates the stored spans; costs are summed in Go as
// integer nano-USD of each span (storage.NanoUSD), as the rollup does.
func spanTotals(t *testing.T, b Backend, s storage.Store) totals {
	t.Helper()
	var r totals
	var isGen bool
	var in *int64
	var cost *float64
	b.EachRow(t, s, "SELECT is_generation, input_tokens, total_cost_usd FROM spans", []any{&isGen, &in, &cost}, func() {
		r.rows++
		if isGen {
			r.generations++
		}
		if in != nil {
			r.inputTokens += *in
		}
		if cost != nil {
			r.costNano += storage.NanoUSD(*cost)
		}
	})
	return r
}

func usageTotals(t *testing.T, b Backend, s storage.Store) totals {
	t.Helper()
	var r totals
	b.QueryRow(t, s, `SELECT count(*), CAST(coalesce(sum(generations), 0) AS BIGINT),
		CAST(coalesce(sum(input_tokens), 0) AS BIGINT), CAST(coalesce(sum(total_cost_nano_usd), 0) AS BIGINT) FROM usage_daily`,
		&r.rows, &r.generations, &r.inputTokens, &r.costNano)
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// Rollup is usage_daily as a map, each row's twelve counters in the order
// of storage.UsageDeltaColumns.
type Rollup map[storage.UsageKey][12]int64

// add adds the contribution of one generation span, computed here
// independently of the storage package's own delta code.
func (r Rollup) add(project string, start int64, model, customer *string, status string,
	tokens [6]*int64, costs [3]*float64) {
	k := storage.UsageKey{ProjectID: project, Day: storage.Day(start), Model: deref(model), CustomerID: deref(customer)}
	c := r[k]
	c[0]++
	if status == "ERROR" {
		c[1]++
	}
	if costs[2] == nil {
		c[2]++
	}
	for i, v := range tokens {
		c[3+i] += deref(v)
	}
	for i, v := range costs {
		c[9+i] += storage.NanoUSD(deref(v))
	}
	r[k] = c
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// aggregate returns the rollup of the stored generation spans matching
// where (SQL, "" for all).
func aggregate(t *testing.T, b Backend, s storage.Store, where string) Rollup {
	t.Helper()
	r := Rollup{}
	var project, status string
	var start int64
	var model, customer *string
	var tokens [6]*int64
	var costs [3]*float64
	q := `SELECT project_id, start_time_unix_nano, model, customer_id, status_code,
		input_tokens, output_tokens, total_tokens, cached_input_tokens, cache_write_input_tokens, reasoning_tokens,
		input_cost_usd, output_cost_usd, total_cost_usd FROM spans WHERE is_generation`
	if where != "" {
		q += " AND (" + where + ")"
	}
	b.EachRow(t, s, q, []any{&project, &start, &model, &customer, &status,
		&tokens[0], &tokens[1], &tokens[2], &tokens[3], &tokens[4], &tokens[5], &costs[0], &costs[1], &costs[2]}, func() {
		r.add(project, start, model, customer, status, tokens, costs)
	})
	return r
}

func (r Rollup) plus(o Rollup) Rollup {
	out := Rollup{}
	for _, m := range []Rollup{r, o} {
		for k, c := range m {
			sum := out[k]
			for i := range c {
				sum[i] += c[i]
			}
			out[k] = sum
		}
	}
	return out
}

// checkRollup asserts that usage_daily equals, exactly (integers, costs in
// nano-USD), the aggregate of the stored generation spans; a row whose
// generations were all removed holds zeros only.
func checkRollup(t *testing.T, b Backend, s storage.Store) {
	t.Helper()
	checkRollupPlus(t, b, s, nil)
}

// checkRollupPlus asserts usage_daily = the stored generations + removed
// (what retention deleted), exactly.
func checkRollupPlus(t *testing.T, b Backend, s storage.Store, removed Rollup) {
	t.Helper()
	want := aggregate(t, b, s, "").plus(removed)
	var k storage.UsageKey
	var c [12]int64
	dest := []any{&k.ProjectID, &k.Day, &k.Model, &k.CustomerID}
	for i := range c {
		dest = append(dest, &c[i])
	}
	got := Rollup{}
	b.EachRow(t, s, "SELECT project_id, CAST(day AS TEXT), model, customer_id, "+strings.Join(storage.UsageDeltaColumns, ", ")+
		" FROM usage_daily", dest, func() { got[k] = c })
	for key, counters := range got {
		if _, ok := want[key]; !ok && counters != ([12]int64{}) {
			t.Errorf("usage_daily %+v = %v, but no generation is stored or was removed there", key, counters)
		}
	}
	for key, counters := range want {
		if got[key] != counters {
			t.Errorf("usage_daily %+v = %v, want %v (columns %v)", key, got[key], counters, storage.UsageDeltaColumns)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// WriteWhenReady writes spans, retrying for up to a minute while the store
// answers that its schema is not ready yet (a migration in progress or
// waiting for the database), as a sender retries 503s.
func WriteWhenReady(t *testing.T, s storage.Store, spans []storage.Span) (storage.WriteResult, error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := s.WriteSpans(context.Background(), spans)
		if !errors.Is(err, storage.ErrSchemaNotReady) || time.Now().After(deadline) {
			return res, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func write(t *testing.T, s storage.Store, spans []storage.Span) storage.WriteResult {
	t.Helper()
	res, err := s.WriteSpans(context.Background(), spans)
	if err != nil {
		t.Fatalf("WriteSpans: %v", err)
	}
	return res
}

func testMigratesFromEmpty(t *testing.T, b Backend) {
	s, reopen := b.New(t)
	ctx := context.Background()
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != b.SchemaVersion {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, b.SchemaVersion)
	}
	var n int64
	b.QueryRow(t, s, "SELECT count(*) FROM schema_migrations", &n)
	if n != int64(b.SchemaVersion) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, b.SchemaVersion)
	}
	for _, table := range []string{"spans", "usage_daily", "sessions", "customers", "span_tombstones"} {
		b.QueryRow(t, s, "SELECT count(*) FROM "+table, &n)
		if n != 0 {
			t.Fatalf("%s has %d rows in a new database", table, n)
		}
	}
	write(t, s, Delivery("p", 2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening again applies nothing and keeps the data.
	s = reopen()
	b.QueryRow(t, s, "SELECT count(*) FROM schema_migrations", &n)
	if n != int64(b.SchemaVersion) {
		t.Fatalf("schema_migrations has %d rows after reopening, want %d", n, b.SchemaVersion)
	}
	if got := spanTotals(t, b, s); got.rows != 4 {
		t.Fatalf("%d spans after reopening, want 4", got.rows)
	}
}

func testIdempotentReplay(t *testing.T, b Backend) {
	s, _ := b.New(t)
	delivery := append(Delivery("p1", 20), Delivery("p2", 5)...)
	res := write(t, s, delivery)
	if res.Inserted != 50 || res.Updated != 0 || res.Unchanged != 0 {
		t.Fatalf("first write: %+v, want 50 inserted", res)
	}
	wantSpans, wantUsage := spanTotals(t, b, s), usageTotals(t, b, s)
	if wantSpans.rows != 50 || wantSpans.generations != 25 || wantUsage.generations != 25 {
		t.Fatalf("after first write: spans %+v usage %+v", wantSpans, wantUsage)
	}
	var receivedBefore int64
	b.QueryRow(t, s, "SELECT CAST(sum(received_at_unix_nano % 1000003) AS BIGINT) FROM spans", &receivedBefore)
	for i := range 5 {
		replay := Delivery("p1", 20)
		for j := range replay {
			// A replay arrives later: only received_at differs, and it is
			// not part of the content.
			replay[j].ReceivedAtUnixNano += int64(i+1) * int64(time.Hour)
		}
		res := write(t, s, append(replay, Delivery("p2", 5)...))
		if res.Inserted != 0 || res.Updated != 0 || res.Unchanged != 50 {
			t.Fatalf("replay %d: %+v, want 50 unchanged", i, res)
		}
	}
	gotSpans, gotUsage := spanTotals(t, b, s), usageTotals(t, b, s)
	if gotSpans.rows != wantSpans.rows || gotSpans.generations != wantSpans.generations ||
		gotSpans.inputTokens != wantSpans.inputTokens || gotSpans.costNano != wantSpans.costNano {
		t.Fatalf("spans changed by replays: %+v, want %+v", gotSpans, wantSpans)
	}
	if gotUsage != wantUsage {
		t.Fatalf("usage_daily changed by replays: %+v, want %+v", gotUsage, wantUsage)
	}
	var receivedAfter int64
	b.QueryRow(t, s, "SELECT CAST(sum(received_at_unix_nano % 1000003) AS BIGINT) FROM spans", &receivedAfter)
	if receivedAfter != receivedBefore {
		t.Fatal("a replay moved received_at_unix_nano (the retention clock)")
	}
	checkRollup(t, b, s)
}

func testDuplicatesInOneBatch(t *testing.T, b Backend) {
	s, _ := b.New(t)
	g := Generation("p", 1)
	changed := g
	changed.OutputTokens = ptr(int64(999))
	res := write(t, s, []storage.Span{g, g, Child("p", 1), changed})
	if res.Inserted != 2 {
		t.Fatalf("%+v, want 2 inserted", res)
	}
	var out int64
	b.QueryRow(t, s, "SELECT output_tokens FROM spans WHERE is_generation", &out)
	if out != 999 {
		t.Fatalf("output_tokens = %d, want the last occurrence (999)", out)
	}
	checkRollup(t, b, s)
}

func testChangedReplay(t *testing.T, b Backend) {
	s, _ := b.New(t)
	write(t, s, Delivery("p", 4))
	// The same span again with new content: another model, more tokens,
	// another cost, an error status. Last write wins; usage_daily moves the
	// generation from the old (model, customer) row to the new one.
	g := Generation("p", 0)
	g.Model = ptr("anthropic/claude-haiku-4.5")
	g.InputTokens = ptr(int64(5000))
	g.TotalCostUSD = ptr(0.5)
	g.StatusCode = "ERROR"
	g.ReceivedAtUnixNano += int64(time.Hour)
	res := write(t, s, []storage.Span{g})
	if res.Updated != 1 || res.Inserted != 0 {
		t.Fatalf("%+v, want 1 updated", res)
	}
	var model string
	var input int64
	var cost float64
	b.QueryRow(t, s, "SELECT model, input_tokens, total_cost_usd FROM spans WHERE span_id = '"+g.SpanID+"'", &model, &input, &cost)
	if model != "anthropic/claude-haiku-4.5" || input != 5000 || cost != 0.5 {
		t.Fatalf("row = %s %d %v, want the replayed values", model, input, cost)
	}
	var gens, errs int64
	b.QueryRow(t, s, "SELECT CAST(sum(generations) AS BIGINT), CAST(sum(errors) AS BIGINT) FROM usage_daily WHERE model = 'anthropic/claude-haiku-4.5'", &gens, &errs)
	if gens != 1 || errs != 1 {
		t.Fatalf("usage_daily for the new model: %d generations %d errors, want 1 and 1", gens, errs)
	}
	if u := usageTotals(t, b, s); u.generations != 4 {
		t.Fatalf("usage_daily counts %d generations, want 4 (a changed replay is not a new generation)", u.generations)
	}
	checkRollup(t, b, s)

	// A generation that turns into a non-generation leaves the rollup.
	g.IsGeneration = false
	write(t, s, []storage.Span{g})
	if u := usageTotals(t, b, s); u.generations != 3 {
		t.Fatalf("usage_daily counts %d generations, want 3", u.generations)
	}
	checkRollup(t, b, s)
}

// One batch holding new spans, a changed replay and exact replays: each row
// takes its own path (a backend may insert the rows it knows to be new
// differently from the ones that exist) and the counts and the rollup are
// those of the rows one by one.
func testMixedBatch(t *testing.T, b Backend) {
	s, _ := b.New(t)
	write(t, s, Delivery("p", 4))
	all := Delivery("p", 7)               // 0-3 stored (exact replays), 4-6 new
	all[2].OutputTokens = ptr(int64(777)) // generation 1: a changed replay
	all[2].ReceivedAtUnixNano += int64(time.Hour)
	res := write(t, s, all)
	if res.Inserted != 6 || res.Updated != 1 || res.Unchanged != 7 {
		t.Fatalf("%+v, want 6 inserted, 1 updated, 7 unchanged", res)
	}
	var out int64
	b.QueryRow(t, s, "SELECT output_tokens FROM spans WHERE span_id = '"+all[2].SpanID+"'", &out)
	if out != 777 {
		t.Fatalf("output_tokens of the changed replay = %d, want 777", out)
	}
	if st, u := spanTotals(t, b, s), usageTotals(t, b, s); st.rows != 14 || st.generations != 7 || u.generations != 7 {
		t.Fatalf("spans %+v usage %+v, want 14 rows and 7 generations", st, u)
	}
	checkRollup(t, b, s)
}

func testRollupMatchesSpans(t *testing.T, b Backend) {
	s, _ := b.New(t)
	var all []storage.Span
	for i := range 60 {
		g := Generation(fmt.Sprintf("p%d", i%3), i)
		g.StartTimeUnixNano += int64(i%4) * int64(24*time.Hour) // four days
		if i%5 == 0 {
			g.TotalCostUSD, g.CostSource = nil, ptr("unknown")
		}
		if i%7 == 0 {
			g.Model = nil
		}
		if i%6 == 0 {
			g.CustomerID = nil
		}
		if i%9 == 0 {
			g.StatusCode = "ERROR"
		}
		all = append(all, g, Child(g.ProjectID, i))
	}
	for start := 0; start < len(all); start += 17 {
		write(t, s, all[start:min(start+17, len(all))])
	}
	// Replay everything, half of it changed.
	for i := range all {
		if i%4 == 0 && all[i].IsGeneration {
			all[i].OutputTokens = ptr(int64(7 + i))
			all[i].TotalCostUSD = ptr(float64(i) / 1000)
		}
	}
	write(t, s, all)
	checkRollup(t, b, s)
	var unknown int64
	b.QueryRow(t, s, "SELECT CAST(sum(unknown_cost_generations) AS BIGINT) FROM usage_daily", &unknown)
	var wantUnknown int64
	b.QueryRow(t, s, "SELECT count(*) FROM spans WHERE is_generation AND total_cost_usd IS NULL", &wantUnknown)
	if unknown != wantUnknown || unknown == 0 {
		t.Fatalf("unknown_cost_generations = %d, want %d (> 0)", unknown, wantUnknown)
	}
}

func testViews(t *testing.T, b Backend) {
	s, _ := b.New(t)
	mk := func(i int, session, customer *string, gen bool, status string, in, out int64, cost *float64) storage.Span {
		g := Generation("acme", i)
		g.SessionID, g.CustomerID, g.IsGeneration, g.StatusCode = session, customer, gen, status
		g.InputTokens, g.OutputTokens, g.TotalCostUSD = ptr(in), ptr(out), cost
		return g
	}
	spans := []storage.Span{
		mk(0, ptr("s1"), ptr("alice"), true, "OK", 100, 10, ptr(0.5)),
		mk(1, ptr("s1"), ptr("alice"), true, "ERROR", 200, 20, nil),
		mk(2, ptr("s1"), ptr("alice"), false, "OK", 1000, 1000, ptr(9.0)), // not a generation: not counted
		mk(3, ptr("s2"), ptr("alice"), true, "OK", 300, 30, ptr(0.25)),
		mk(4, ptr("s3"), ptr("bob"), true, "OK", 400, 40, ptr(1.0)),
		mk(5, nil, ptr("bob"), true, "OK", 500, 50, ptr(2.0)), // no session: in customers only
		mk(6, ptr("s4"), nil, true, "OK", 600, 60, ptr(4.0)),  // no customer: in sessions only
		Child("acme", 0),
	}
	write(t, s, spans)

	var customer string
	var gens, errs, in, out, first, last int64
	var cost float64
	b.QueryRow(t, s, `SELECT customer_id, generations, errors, input_tokens, output_tokens, total_cost_usd,
		first_seen_unix_nano, last_seen_unix_nano FROM sessions WHERE project_id = 'acme' AND session_id = 's1'`,
		&customer, &gens, &errs, &in, &out, &cost, &first, &last)
	if customer != "alice" || gens != 2 || errs != 1 || in != 300 || out != 30 || !near(cost, 0.5) ||
		first != spans[0].StartTimeUnixNano || last != spans[1].EndTimeUnixNano {
		t.Fatalf("sessions s1 = %s %d %d %d %d %v %d %d", customer, gens, errs, in, out, cost, first, last)
	}
	var n int64
	b.QueryRow(t, s, "SELECT count(*) FROM sessions", &n)
	if n != 4 {
		t.Fatalf("sessions has %d rows, want 4 (s1..s4)", n)
	}
	var sessions int64
	b.QueryRow(t, s, `SELECT sessions, generations, input_tokens, output_tokens, total_cost_usd, first_seen_unix_nano, last_seen_unix_nano
		FROM customers WHERE project_id = 'acme' AND customer_id = 'alice'`, &sessions, &gens, &in, &out, &cost, &first, &last)
	if sessions != 2 || gens != 3 || in != 600 || out != 60 || !near(cost, 0.75) ||
		first != spans[0].StartTimeUnixNano || last != spans[3].EndTimeUnixNano {
		t.Fatalf("customers alice = %d %d %d %d %v %d %d", sessions, gens, in, out, cost, first, last)
	}
	b.QueryRow(t, s, `SELECT sessions, generations, total_cost_usd FROM customers WHERE customer_id = 'bob'`, &sessions, &gens, &cost)
	if sessions != 1 || gens != 2 || !near(cost, 3.0) {
		t.Fatalf("customers bob = %d sessions %d generations %v cost", sessions, gens, cost)
	}
	b.QueryRow(t, s, "SELECT count(*) FROM customers", &n)
	if n != 2 {
		t.Fatalf("customers has %d rows, want 2", n)
	}
}

func testNullsAndPlainSpans(t *testing.T, b Backend) {
	s, _ := b.New(t)
	plain := storage.Span{
		ProjectID: "default", TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("cd", 8),
		Name: "GET /health", Kind: "SERVER", StatusCode: "UNSET",
		StartTimeUnixNano: 1, EndTimeUnixNano: 2, ReceivedAtUnixNano: 3,
		Attributes: `{"http.method":"GET"}`, ResourceAttributes: `{}`,
	}
	write(t, s, []storage.Span{plain})
	var nulls, gen int64
	b.QueryRow(t, s, `SELECT count(*) FILTER (WHERE parent_span_id IS NULL AND status_message IS NULL AND session_id IS NULL
		AND customer_id IS NULL AND model IS NULL AND input_tokens IS NULL AND total_cost_usd IS NULL AND cost_source IS NULL
		AND streamed IS NULL AND prompt IS NULL AND completion IS NULL AND source IS NULL),
		count(*) FILTER (WHERE is_generation) FROM spans`, &nulls, &gen)
	if nulls != 1 || gen != 0 {
		t.Fatalf("plain span: %d rows with NULL canonical columns, %d generations; want 1 and 0", nulls, gen)
	}
	var usage int64
	b.QueryRow(t, s, "SELECT count(*) FROM usage_daily", &usage)
	if usage != 0 {
		t.Fatalf("a plain span created %d usage_daily rows", usage)
	}
	// A replay of the plain span is a no-op too (NULLs compare equal).
	if res := write(t, s, []storage.Span{plain}); res.Unchanged != 1 {
		t.Fatalf("replay of a span with NULLs: %+v, want unchanged", res)
	}
}

func testRetention(t *testing.T, b Backend) {
	s, _ := b.New(t)
	now := Base.Add(100 * 24 * time.Hour)
	var spans []storage.Span
	ages := []int{1, 5, 15, 15, 40, 40, 40, 60}
	for i, days := range ages {
		for _, sp := range []storage.Span{Generation("p", i), Child("p", i)} {
			sp.ReceivedAtUnixNano = now.Add(-time.Duration(days) * 24 * time.Hour).UnixNano()
			if !sp.IsGeneration {
				sp.Prompt = ptr("child prompt")
			}
			spans = append(spans, sp)
		}
	}
	write(t, s, spans)
	usageBefore := usageTotals(t, b, s)

	res, err := s.ApplyRetention(context.Background(), storage.RetentionPolicy{
		ContentAfter: 10 * 24 * time.Hour, SpansAfter: 30 * 24 * time.Hour, BatchSize: 3, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Older than 30 days: 4 pairs deleted. 10..30 days: 2 pairs cleared.
	if res.SpansDeleted != 8 {
		t.Fatalf("deleted %d spans, want 8", res.SpansDeleted)
	}
	if res.ContentCleared != 12 {
		// Content is cleared first, on everything older than 10 days
		// (including what is then deleted): 6 pairs.
		t.Fatalf("cleared content of %d spans, want 12", res.ContentCleared)
	}
	var rows, withContent, generations int64
	b.QueryRow(t, s, `SELECT count(*), count(*) FILTER (WHERE prompt IS NOT NULL OR completion IS NOT NULL),
		count(*) FILTER (WHERE is_generation AND input_tokens IS NOT NULL AND total_cost_usd IS NOT NULL) FROM spans`,
		&rows, &withContent, &generations)
	if rows != 8 || withContent != 4 || generations != 4 {
		t.Fatalf("after retention: %d rows, %d with content, %d generations with tokens and cost; want 8, 4, 4", rows, withContent, generations)
	}
	if u := usageTotals(t, b, s); u != usageBefore {
		t.Fatalf("retention changed usage_daily: %+v, want %+v", u, usageBefore)
	}
	// A second pass finds nothing.
	res, err = s.ApplyRetention(context.Background(), storage.RetentionPolicy{
		ContentAfter: 10 * 24 * time.Hour, SpansAfter: 30 * 24 * time.Hour, BatchSize: 3, Now: now,
	})
	if err != nil || res.SpansDeleted != 0 || res.ContentCleared != 0 {
		t.Fatalf("second pass: %+v %v, want nothing", res, err)
	}
}

func testLargeBatch(t *testing.T, b Backend) {
	s, _ := b.New(t)
	// Larger than one multi-row statement, to cover chunking.
	spans := Delivery("big", 1300)
	res := write(t, s, spans)
	if res.Inserted != 2600 {
		t.Fatalf("%+v, want 2600 inserted", res)
	}
	res = write(t, s, spans)
	if res.Unchanged != 2600 {
		t.Fatalf("replay: %+v, want 2600 unchanged", res)
	}
	checkRollup(t, b, s)
}

// InsertBeforeV4 returns an INSERT of one span into a database of a schema
// before version 4 (without the experiment columns), with placeholders
// made by mark (1-based), and the arguments of each span: tests build old
// databases with it.
func InsertBeforeV4(spans []storage.Span, mark func(n int) string) (query string, args [][]any) {
	var names, marks []string
	var keep []int
	for i, c := range storage.Columns {
		if slices.Contains(storage.ExperimentColumns, c.Name) {
			continue
		}
		keep = append(keep, i)
		names = append(names, c.Name)
		marks = append(marks, mark(len(marks)+1))
	}
	for i := range spans {
		vals := spans[i].Values()
		row := make([]any, len(keep))
		for j, k := range keep {
			row[j] = vals[k]
		}
		args = append(args, row)
	}
	return "INSERT INTO spans (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")", args
}
