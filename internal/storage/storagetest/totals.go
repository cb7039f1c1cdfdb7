package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// testTotalsMatchSpans writes a random mix through every path that changes
// session_totals, customer_totals and customer_sessions (new generations and
// non-generations, exact replays, changed replays that move a generation to
// another session or customer, change its cost, tokens, times or status or
// make it a plain span and back, retention, replays of deleted spans) and
// compares every totals row with the sessions and customers views over the
// spans after each step.
func testTotalsMatchSpans(t *testing.T, b Backend) {
	s, _ := b.New(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	now := Base.Add(60 * 24 * time.Hour)
	pick := func(prefix string, n int) *string {
		if rng.IntN(6) == 0 {
			return nil
		}
		return ptr(fmt.Sprintf("%s-%d", prefix, rng.IntN(n)))
	}
	mutate := func(g *storage.Span) {
		switch rng.IntN(8) {
		case 0:
			g.SessionID = pick("s", 12)
		case 1:
			g.CustomerID = pick("c", 5)
		case 2:
			g.TotalCostUSD = ptr(float64(rng.IntN(90000)) / 1e6)
		case 3:
			g.TotalCostUSD, g.InputTokens = nil, nil
		case 4:
			g.StartTimeUnixNano -= int64(rng.IntN(3600)) * int64(time.Second)
			g.EndTimeUnixNano += int64(rng.IntN(3600)) * int64(time.Second)
		case 5:
			g.StatusCode = map[string]string{"OK": "ERROR", "ERROR": "OK"}[g.StatusCode]
		case 6:
			g.IsGeneration = !g.IsGeneration
		default:
			g.OutputTokens = ptr(int64(rng.IntN(500)))
		}
	}
	var all []storage.Span
	for i := range 240 {
		project := []string{"p1", "p2"}[i%2]
		g := Generation(project, i)
		g.SessionID, g.CustomerID = pick("s", 12), pick("c", 5)
		g.StartTimeUnixNano += int64(rng.IntN(40*24*3600)) * int64(time.Second)
		g.EndTimeUnixNano = g.StartTimeUnixNano + int64(rng.IntN(20000))*int64(time.Millisecond)
		g.TotalCostUSD = ptr(float64(rng.IntN(90000)) / 1e6)
		if rng.IntN(5) == 0 {
			g.TotalCostUSD, g.CostSource = nil, ptr("unknown")
		}
		if rng.IntN(6) == 0 {
			g.InputTokens, g.OutputTokens = nil, nil
		}
		if rng.IntN(8) == 0 {
			g.StatusCode = "ERROR"
		}
		// A third is old enough for retention.
		g.ReceivedAtUnixNano = now.Add(-time.Duration(rng.IntN(45)) * 24 * time.Hour).UnixNano()
		c := Child(project, i)
		c.SessionID, c.CustomerID, c.ReceivedAtUnixNano = g.SessionID, g.CustomerID, g.ReceivedAtUnixNano
		all = append(all, g, c)
	}
	writeRandomBatches := func(spans []storage.Span) {
		for start := 0; start < len(spans); {
			n := 1 + rng.IntN(40)
			write(t, s, spans[start:min(start+n, len(spans))])
			start += n
		}
	}
	writeRandomBatches(all)
	checkTotals(t, b, s, "after new spans")

	// Replays: a third exact, the rest changed (one field each, sometimes
	// two), in random batches, twice.
	for round := range 2 {
		var replay []storage.Span
		for i := range all {
			switch rng.IntN(3) {
			case 0:
				replay = append(replay, all[i])
			case 1:
				mutate(&all[i])
				if rng.IntN(3) == 0 {
					mutate(&all[i])
				}
				replay = append(replay, all[i])
			}
		}
		rng.Shuffle(len(replay), func(i, j int) { replay[i], replay[j] = replay[j], replay[i] })
		writeRandomBatches(replay)
		checkTotals(t, b, s, fmt.Sprintf("after replay round %d", round))
	}

	res, err := s.ApplyRetention(ctx, storage.RetentionPolicy{SpansAfter: 30 * 24 * time.Hour, BatchSize: 7, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.SpansDeleted == 0 {
		t.Fatal("retention deleted nothing: the test does not cover it")
	}
	checkTotals(t, b, s, "after retention")

	// Replays after retention: the deleted spans are tombstoned (not
	// stored again), the others change once more.
	for i := range all {
		mutate(&all[i])
	}
	writeRandomBatches(all)
	checkTotals(t, b, s, "after replays of deleted spans")
}

// CheckTotals fails t unless every session_totals and customer_totals row
// of s equals its sessions or customers view row (and no row is missing).
func CheckTotals(t *testing.T, b Backend, s storage.Store, step string) {
	t.Helper()
	checkTotals(t, b, s, step)
}

// checkTotals compares every session_totals and customer_totals row with
// the views over the spans, costs to the nano-USD.
func checkTotals(t *testing.T, b Backend, s storage.Store, step string) {
	t.Helper()
	read := func(query string) []string {
		var project, id, extra string
		var gens, errs, in, out, first, last int64
		var cost float64
		var rows []string
		b.EachRow(t, s, query, []any{&project, &id, &extra, &gens, &errs, &in, &out, &cost, &first, &last}, func() {
			rows = append(rows, fmt.Sprintf("%s/%s %s g=%d e=%d in=%d out=%d cost=%.9f first=%d last=%d",
				project, id, extra, gens, errs, in, out, cost, first, last))
		})
		return rows
	}
	const known = "CASE WHEN input_tokens_known > 0 THEN input_tokens ELSE -1 END, " +
		"CASE WHEN output_tokens_known > 0 THEN output_tokens ELSE -1 END, " +
		"CASE WHEN total_cost_known > 0 THEN CAST(total_cost_nano_usd AS DOUBLE PRECISION) / 1e9 ELSE -1 END, " +
		"first_seen_unix_nano, last_seen_unix_nano"
	const viewSums = "coalesce(input_tokens, -1), coalesce(output_tokens, -1), coalesce(total_cost_usd, -1), " +
		"first_seen_unix_nano, last_seen_unix_nano"
	for _, c := range []struct{ name, got, want string }{
		{"session_totals",
			"SELECT project_id, session_id, coalesce(customer_id, '-'), generations, errors, " + known +
				" FROM session_totals ORDER BY project_id, session_id",
			"SELECT project_id, session_id, coalesce(customer_id, '-'), generations, errors, " + viewSums +
				" FROM sessions ORDER BY project_id, session_id"},
		{"customer_totals",
			"SELECT project_id, customer_id, CAST(sessions AS TEXT), generations, 0, " + known +
				" FROM customer_totals ORDER BY project_id, customer_id",
			"SELECT project_id, customer_id, CAST(sessions AS TEXT), generations, 0, " + viewSums +
				" FROM customers ORDER BY project_id, customer_id"},
	} {
		got, want := read(c.got), read(c.want)
		if len(want) == 0 {
			t.Fatalf("%s: the views are empty: the test checks nothing", step)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: %s differs from the view:\n got %s\nwant %s", step, c.name,
				strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	}
}

// TotalsFixture is a mix for the backfill of migration 8: generations with
// and without session, customer, tokens and cost, errors, sessions with
// several customers, and plain spans (which the totals do not count).
func TotalsFixture() []storage.Span {
	var out []storage.Span
	for i := range 60 {
		g := Generation([]string{"p1", "p2"}[i%2], i)
		g.SessionID = ptr(fmt.Sprintf("s-%d", i%7))
		g.CustomerID = ptr(fmt.Sprintf("c-%d", i%4))
		switch i % 9 {
		case 0:
			g.SessionID = nil
		case 1:
			g.CustomerID = nil
		case 2:
			g.TotalCostUSD, g.InputTokens = nil, nil
		case 3:
			g.StatusCode = "ERROR"
		case 4:
			g.TotalCostUSD = ptr(0.0123456)
		}
		g.EndTimeUnixNano += int64(i%5) * int64(time.Minute)
		out = append(out, g, Child(g.ProjectID, i))
	}
	return out
}

// InsertSpans returns the statement that inserts one span with every
// column of the current schema, and the arguments of each span.
func InsertSpans(spans []storage.Span, mark func(n int) string) (query string, args [][]any) {
	marks := make([]string, len(storage.Columns))
	for i := range marks {
		marks[i] = mark(i + 1)
	}
	for i := range spans {
		args = append(args, spans[i].Values())
	}
	return "INSERT INTO spans (" + storage.ColumnNames() + ") VALUES (" + strings.Join(marks, ", ") + ")", args
}

// TotalsBackfill checks migration 8 on a database at schema version 7:
// exec inserts spans into it with that schema (mark is the n-th parameter
// marker), upgrade closes it and opens it at the current schema. The
// backfilled totals must equal the views, and the write path go on from
// them.
func TotalsBackfill(t *testing.T, b Backend, exec func(query string, args ...any) error, mark func(n int) string,
	upgrade func() storage.Store) {
	spans := TotalsFixture()
	query, args := InsertSpans(spans, mark)
	for _, a := range args {
		if err := exec(query, a...); err != nil {
			t.Fatal(err)
		}
	}
	s := upgrade()
	checkTotals(t, b, s, "after the backfill")
	more := Delivery("p1", 70)[120:] // generations 60..69, new
	if _, err := s.WriteSpans(context.Background(), append(spans, more...)); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, b, s, "after writes on the backfilled tables")
}
