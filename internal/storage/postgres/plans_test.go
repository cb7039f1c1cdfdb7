package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

// explainQuerier keeps the plan PostgreSQL chose for each read and
// answers it with no rows, or with one row that scans as nothing (for a
// read of exactly one row, such as the summary's sums, to go on).
type explainQuerier struct {
	q      pgQuerier
	plans  *[]string
	oneRow *bool
}

func (e explainQuerier) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	rows, err := e.q.pool.Query(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		return nil, err
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return nil, err
		}
		plan = append(plan, line)
	}
	rows.Close()
	*e.plans = append(*e.plans, strings.Join(plan, "\n"))
	left := 0
	if *e.oneRow {
		left = 1
	}
	return &fakeRows{left: left}, rows.Err()
}

type fakeRows struct{ left int }

func (r *fakeRows) Next() bool        { r.left--; return r.left >= 0 }
func (r *fakeRows) Scan(...any) error { return nil }
func (r *fakeRows) Err() error        { return nil }
func (r *fakeRows) Close()            {}

// The reads migration 9's indexes are for are planned through them on a
// project large enough that the planner weighs its options (PostgreSQL
// chooses by cost, so an index whose expression differs from the reader's
// by a cast would silently never be used): the generations by cost, one
// model's distinct sessions and customers, the sessions by cost (also
// after a cursor).
func TestReadPlansUseTheirIndexes(t *testing.T) {
	s := open(t, Options{DSN: newDatabase(t)})
	defer s.Close()
	ctx := context.Background()
	var spans []storage.Span
	for i := range 6000 {
		g := storagetest.Generation("p", i)
		session, model := fmt.Sprintf("session-%d", i), fmt.Sprintf("vendor/model-%d", i%12)
		g.SessionID, g.Model = &session, &model
		cost := float64(i%977) / 1e4
		g.TotalCostUSD = &cost
		spans = append(spans, g)
	}
	if _, err := s.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	var plans []string
	var oneRow bool
	r := storage.NewSQLReader(explainQuerier{pgQuerier{pool: s.Pool()}, &plans, &oneRow}, postgresDialect)
	uses := func(what, index string, read func() error) {
		t.Helper()
		plans = nil
		if err := read(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		all := strings.Join(plans, "\n---\n")
		if !strings.Contains(all, " "+index+" ") {
			t.Errorf("%s is not planned through %s:\n%s", what, index, all)
		}
	}
	f := storage.Filter{ProjectID: "p"}
	byCost := storage.Page{Limit: 50, Sort: "total_cost_usd", Desc: true}
	cursor := &storage.Cursor{Sort: "total_cost_usd", Desc: true, Values: []string{"0.05", "session-3000"}}
	uses("generations by cost", "spans_gen_cost", func() error { _, _, err := r.Generations(ctx, f, byCost); return err })
	uses("summary of one model", "spans_gen_model", func() error {
		oneRow = true
		defer func() { oneRow = false }()
		_, err := r.Summary(ctx, storage.Filter{ProjectID: "p", Model: "vendor/model-3"})
		return err
	})
	uses("sessions by cost", "session_totals_cost", func() error { _, _, err := r.Sessions(ctx, f, byCost); return err })
	after := byCost
	after.After = cursor
	uses("sessions by cost after a cursor", "session_totals_cost", func() error { _, _, err := r.Sessions(ctx, f, after); return err })
}
