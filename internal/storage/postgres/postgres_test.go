package postgres

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

// One server for the package; every test gets its own database.
var (
	server   *pgtest.Server
	dbSerial atomic.Int64
)

func TestMain(m *testing.M) {
	s, err := pgtest.StartServer("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	_ = s.Stop()
	_ = os.RemoveAll(s.Dir())
	os.Exit(code)
}

func newDatabase(t *testing.T) string {
	t.Helper()
	dsn, err := server.CreateDatabase(fmt.Sprintf("t%d", dbSerial.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func open(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func backend() storagetest.Backend {
	migrations, _ := Migrations()
	return storagetest.Backend{
		New: func(t *testing.T) (storage.Store, func() storage.Store) {
			dsn := newDatabase(t)
			var current *Store
			reopen := func() storage.Store {
				current = open(t, Options{DSN: dsn})
				return current
			}
			reopen()
			t.Cleanup(func() { current.Close() })
			return current, reopen
		},
		QueryRow: func(t *testing.T, s storage.Store, query string, dest ...any) {
			t.Helper()
			if err := s.(*Store).Pool().QueryRow(context.Background(), query).Scan(dest...); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		EachRow: func(t *testing.T, s storage.Store, query string, dest []any, fn func()) {
			t.Helper()
			rows, err := s.(*Store).Pool().Query(context.Background(), query)
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			defer rows.Close()
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					t.Fatalf("%s: %v", query, err)
				}
				fn()
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		Exec: func(t *testing.T, s storage.Store, query string) {
			t.Helper()
			if _, err := s.(*Store).Pool().Exec(context.Background(), query); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		Transactions: func(s storage.Store) int64 { return s.(*Store).transactions.Load() },
		RefusedByDatabase: func(t *testing.T, _ storage.Store, project string, i int) storage.Span {
			sp := storagetest.Generation(project, i)
			sp.Attributes = `{"not json` // 22P02 invalid input syntax for type json
			return sp
		},
		SchemaVersion: len(migrations),
		DayExpr:       "CAST((to_timestamp(start_time_unix_nano / 1000000000) AT TIME ZONE 'UTC') AS DATE)",
	}
}
func TestConformance(t *testing.T) { storagetest.Run(t, backend()) }

func TestUpgradeFromV1(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	v1 := open(t, Options{DSN: dsn, MigrateTo: 1})
	if v, _ := v1.SchemaVersion(ctx); v != 1 {
		t.Fatalf("version %d, want 1", v)
	}
	spans := storagetest.Delivery("p", 30)
	query, args := storagetest.InsertBeforeV4(spans, func(n int) string { return fmt.Sprintf("$%d", n) })
	for _, a := range args {
		if _, err := v1.Pool().Exec(ctx, query, a...); err != nil {
			t.Fatal(err)
		}
	}
	v1.Close()

	s := open(t, Options{DSN: dsn})
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != len(s.migrations) {
		t.Fatalf("version after upgrade %d, want %d", v, len(s.migrations))
	}
	var gens, input int64
	if err := s.Pool().QueryRow(ctx, "SELECT sum(generations)::bigint, sum(input_tokens)::bigint FROM usage_daily").Scan(&gens, &input); err != nil {
		t.Fatal(err)
	}
	var wantInput int64
	for _, sp := range spans {
		if sp.IsGeneration {
			wantInput += *sp.InputTokens
		}
	}
	if gens != 30 || input != wantInput {
		t.Fatalf("backfilled usage_daily: %d generations %d input tokens, want 30 and %d", gens, input, wantInput)
	}
	if res, err := s.WriteSpans(ctx, spans); err != nil || res.Unchanged != 60 {
		t.Fatalf("replay after upgrade: %+v %v", res, err)
	}
	if err := s.Pool().QueryRow(ctx, "SELECT sum(generations)::bigint FROM usage_daily").Scan(&gens); err != nil || gens != 30 {
		t.Fatalf("usage_daily after replay: %d generations, want 30", gens)
	}
}

// Collectors starting together on one database apply each migration once.
func TestConcurrentMigrations(t *testing.T) {
	dsn := newDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Options{DSN: dsn})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, Options{DSN: dsn})
	defer s.Close()
	var n int
	if err := s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(s.migrations) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(s.migrations))
	}
}

// Several writers (as several collectors would) storing overlapping
// deliveries at once: every span once, and the rollup exact.
func TestConcurrentWriters(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	stores := make([]*Store, 4)
	for i := range stores {
		stores[i] = open(t, Options{DSN: dsn})
		defer stores[i].Close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			all := storagetest.Delivery("p", 200)
			for round := range 5 {
				// Each writer replays overlapping windows; one writer
				// changes the content of what it writes (the cost: the
				// session and customer totals are recomputed while the
				// others add to them).
				part := all[(round*40+w*20)%300:][:100]
				if w == 3 {
					part = append([]storage.Span(nil), part...)
					for i := range part {
						if part[i].IsGeneration {
							v, c := int64(round), float64(round)/1000
							part[i].ReasoningTokens, part[i].TotalCostUSD = &v, &c
						}
					}
				}
				if _, err := s.WriteSpans(ctx, part); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var rows, gens, usageGens, reasoning, usageReasoning int64
	pool := stores[0].Pool()
	if err := pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE is_generation), coalesce(sum(reasoning_tokens),0)::bigint FROM spans").Scan(&rows, &gens, &reasoning); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT sum(generations)::bigint, sum(reasoning_tokens)::bigint FROM usage_daily").Scan(&usageGens, &usageReasoning); err != nil {
		t.Fatal(err)
	}
	if gens != usageGens || reasoning != usageReasoning || rows != 2*gens {
		t.Fatalf("spans: %d rows %d generations %d reasoning; usage_daily: %d generations %d reasoning", rows, gens, reasoning, usageGens, usageReasoning)
	}
	storagetest.CheckTotals(t, backend(), stores[0], "after concurrent writers")
}

// A row PostgreSQL can never hold (a session id too large for its btree
// index) is rejected with a permanent error naming it; the rest of the
// batch is committed.
func TestPermanentRowIsIsolated(t *testing.T) {
	s := open(t, Options{DSN: newDatabase(t)})
	defer s.Close()
	spans := storagetest.Delivery("p", 10)
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "%x", i*2654435761) // incompressible enough to exceed the index row limit
	}
	huge := b.String()
	spans[4].SessionID = &huge
	res, err := s.WriteSpans(context.Background(), spans)
	if err == nil || !storage.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if !strings.Contains(err.Error(), spans[4].SpanID) {
		t.Fatalf("error does not name the bad span: %v", err)
	}
	if res.Inserted != 19 || res.Rejected != 1 {
		t.Fatalf("%+v, want 19 inserted, 1 rejected", res)
	}
}

// While the server is down writes fail with a plain (retryable) error; once
// it is back the same store writes again.
func TestServerDownIsRetryable(t *testing.T) {
	srv := pgtest.Start(t)
	dsn, err := srv.CreateDatabase("down")
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, Options{DSN: dsn})
	defer s.Close()
	ctx := context.Background()
	if _, err := s.WriteSpans(ctx, storagetest.Delivery("p", 2)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = s.WriteSpans(ctx, storagetest.Delivery("p", 4))
	if err == nil || storage.IsPermanent(err) {
		t.Fatalf("write with the server down: %v, want a plain error", err)
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	res, err := s.WriteSpans(ctx, storagetest.Delivery("p", 4))
	if err != nil || res.Inserted != 4 || res.Unchanged != 4 {
		t.Fatalf("write after restart: %+v %v", res, err)
	}
}

// A store opened while the server is down returns a retryable error but
// works (and migrates) once the server is up.
func TestOpenBeforeServer(t *testing.T) {
	srv := pgtest.Start(t)
	dsn, err := srv.CreateDatabase("late")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, Options{DSN: dsn})
	if err == nil || storage.IsPermanent(err) || s == nil {
		t.Fatalf("Open with the server down: %v, want a store and a plain error", err)
	}
	defer s.Close()
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	// Answered 503 until the migrations, retried in the background, are in.
	if res, err := storagetest.WriteWhenReady(t, s, storagetest.Delivery("p", 1)); err != nil || res.Inserted != 2 {
		t.Fatalf("write once the server is up: %+v %v", res, err)
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	ctx := context.Background()
	// Nothing listens on port 1: the connection error must not echo the
	// password.
	const secret = "s3cr3t-Pa55word"
	s, err := Open(ctx, Options{DSN: "postgres://fallom:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error leaks the password: %v", err)
	}
	if s != nil {
		s.Close()
	}
	_, err = Open(ctx, Options{DSN: "postgres://fallom:" + secret + "@127.0.0.1:notaport/db"})
	if err == nil || !storage.IsPermanent(err) || strings.Contains(err.Error(), secret) {
		t.Fatalf("invalid DSN: %v; want a permanent error without the password", err)
	}
}

// A version-7 database holding spans is upgraded: migration 8 backfills
// session_totals, customer_totals and customer_sessions from the stored
// generations, and the write path goes on from there.
func TestTotalsBackfillFromV7(t *testing.T) {
	dsn := newDatabase(t)
	v7 := open(t, Options{DSN: dsn, MigrateTo: 7})
	exec := func(query string, args ...any) error {
		_, err := v7.Pool().Exec(context.Background(), query, args...)
		return err
	}
	storagetest.TotalsBackfill(t, backend(), exec, func(n int) string { return fmt.Sprintf("$%d", n) }, func() storage.Store {
		v7.Close()
		s := open(t, Options{DSN: dsn})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestHourlyBackfill: a database at version 6 holding spans gets gen_hourly
// backfilled from them by the migration (issue 11.7), and replaying the
// spans afterwards changes nothing.
func TestHourlyBackfill(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	v6 := open(t, Options{DSN: dsn, MigrateTo: 6})
	spans, query, args := storagetest.HourlyBackfillSpans(func(n int) string { return fmt.Sprintf("$%d", n) })
	for _, a := range args {
		if _, err := v6.Pool().Exec(ctx, query, a...); err != nil {
			t.Fatal(err)
		}
	}
	v6.Close()

	s := open(t, Options{DSN: dsn})
	defer s.Close()
	storagetest.CheckHourly(t, backend(), s)
	if res, err := s.WriteSpans(ctx, spans); err != nil || res.Unchanged != len(spans) {
		t.Fatalf("replay after upgrade: %+v %v", res, err)
	}
	storagetest.CheckHourly(t, backend(), s)
}
