package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

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
			path := filepath.Join(t.TempDir(), "sub", "fallom.db")
			var current *Store
			reopen := func() storage.Store {
				current = open(t, Options{Path: path})
				return current
			}
			reopen()
			t.Cleanup(func() { current.Close() })
			return current, reopen
		},
		QueryRow: func(t *testing.T, s storage.Store, query string, dest ...any) {
			t.Helper()
			if err := s.(*Store).DB().QueryRow(query).Scan(dest...); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		EachRow: func(t *testing.T, s storage.Store, query string, dest []any, fn func()) {
			t.Helper()
			rows, err := s.(*Store).DB().Query(query)
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
			if _, err := s.(*Store).DB().Exec(query); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		Transactions: func(s storage.Store) int64 { return s.(*Store).transactions.Load() },
		RefusedByDatabase: func(t *testing.T, s storage.Store, project string, i int) storage.Span {
			limitLength(t, s.(*Store), 64<<10)
			sp := storagetest.Generation(project, i)
			huge := strings.Repeat("x", 100<<10)
			sp.Prompt = &huge
			return sp
		},
		SchemaVersion: len(migrations),
		DayExpr:       "date(start_time_unix_nano / 1000000000, 'unixepoch')",
	}
}

// limitLength makes the store's only connection refuse values longer than
// n bytes (SQLITE_TOOBIG), so a row can be refused by SQLite itself.
func limitLength(t *testing.T, s *Store, n int) {
	t.Helper()
	conn, err := s.DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := sqlitedriver.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, n); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) { storagetest.Run(t, backend()) }

func TestPragmas(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "f.db")})
	defer s.Close()
	var mode string
	var busy, sync int
	db := s.DB()
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 5000 {
		t.Fatalf("busy_timeout = %d, %v; want 5000", busy, err)
	}
	if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if _, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "g.db"), Synchronous: "sometimes"}); err == nil {
		t.Fatal("Open accepted synchronous=sometimes")
	}
}

// A v1 database (spans and views, no usage_daily) holding data is upgraded
// to the current schema on open, and usage_daily is backfilled from the stored generations.
func TestUpgradeFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	ctx := context.Background()
	v1 := open(t, Options{Path: path, MigrateTo: 1})
	if v, _ := v1.SchemaVersion(ctx); v != 1 {
		t.Fatalf("version %d, want 1", v)
	}
	var n int
	if err := v1.DB().QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'usage_daily'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("v1 database has usage_daily (%d, %v)", n, err)
	}
	// Write with the v1 schema's statements: only the spans upsert (the
	// v1 collector had no rollup).
	spans := storagetest.Delivery("p", 30)
	tx, err := v1.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	query, args := storagetest.InsertBeforeV4(spans, func(int) string { return "?" })
	for _, a := range args {
		if _, err := tx.ExecContext(ctx, query, a...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	v1.Close()

	s := open(t, Options{Path: path})
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != len(s.migrations) {
		t.Fatalf("version after upgrade %d, want %d", v, len(s.migrations))
	}
	var gens, input int64
	if err := s.DB().QueryRow("SELECT sum(generations), sum(input_tokens) FROM usage_daily").Scan(&gens, &input); err != nil {
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
	// Replaying the v1 data after the upgrade does not count it again.
	if res, err := s.WriteSpans(ctx, spans); err != nil || res.Unchanged != 60 {
		t.Fatalf("replay after upgrade: %+v %v", res, err)
	}
	if err := s.DB().QueryRow("SELECT sum(generations) FROM usage_daily").Scan(&gens); err != nil || gens != 30 {
		t.Fatalf("usage_daily after replay: %d generations, want 30", gens)
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s := open(t, Options{Path: path})
	if _, err := s.DB().Exec("INSERT INTO schema_migrations VALUES (99, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), Options{Path: path})
	if !errors.Is(err, storage.ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("Open of a newer database: %v", err)
	}
}

// Another process holding the write lock makes writes fail with a plain
// (retryable) error once busy_timeout passes; the same write succeeds once
// the lock is released.
func TestBusyIsRetryable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	s := open(t, Options{Path: path, BusyTimeout: 50 * time.Millisecond})
	defer s.Close()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	spans := storagetest.Delivery("p", 3)
	_, err = s.WriteSpans(ctx, spans)
	var se *sqlitedriver.Error
	if err == nil || storage.IsPermanent(err) || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
		t.Fatalf("write under a foreign lock: %v; want a plain SQLITE_BUSY error", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if res, err := s.WriteSpans(ctx, spans); err != nil || res.Inserted != 6 {
		t.Fatalf("retry after the lock is gone: %+v %v", res, err)
	}
}

// A row SQLite can never hold (here: longer than the connection's length
// limit) is rejected with a permanent error naming it, and the other rows
// of the batch are committed.
func TestPermanentRowIsIsolated(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "p.db")})
	defer s.Close()
	ctx := context.Background()
	limitLength(t, s, 64<<10)
	spans := storagetest.Delivery("p", 10)
	huge := strings.Repeat("x", 100<<10)
	spans[7].Prompt = &huge
	res, err := s.WriteSpans(ctx, spans)
	if err == nil || !storage.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if !strings.Contains(err.Error(), spans[7].SpanID) {
		t.Fatalf("error does not name the bad span %s: %v", spans[7].SpanID, err)
	}
	var se *sqlitedriver.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_TOOBIG {
		t.Fatalf("the SQLite error is not reachable from %v", err)
	}
	if res.Inserted != 19 || res.Rejected != 1 {
		t.Fatalf("%+v, want 19 inserted and 1 rejected", res)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM spans").Scan(&n); err != nil || n != 19 {
		t.Fatalf("%d rows stored, want 19", n)
	}
}

// Issue 14 item 7: rows SQLite refuses are isolated per row under
// savepoints inside one transaction: 100 refused rows among good ones cost
// two transactions (the failed fast one and the isolating one), not 2n-1,
// and the error stays small.
func TestIsolatingCostsTwoTransactions(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "p.db")})
	defer s.Close()
	limitLength(t, s, 64<<10)
	spans := storagetest.Delivery("p", 400)
	huge := strings.Repeat("x", 100<<10)
	for i := 0; i < len(spans); i += 8 {
		spans[i].Prompt = &huge
	}
	before := s.transactions.Load()
	res, err := s.WriteSpans(context.Background(), spans)
	if !storage.IsPermanent(err) || res.Rejected != 100 || res.Inserted != 700 {
		t.Fatalf("%+v %v; want 700 inserted, 100 rejected", res, err)
	}
	if n := s.transactions.Load() - before; n != 2 {
		t.Fatalf("%d transactions, want 2", n)
	}
	if len(err.Error()) > 4096 {
		t.Fatalf("error of %d bytes", len(err.Error()))
	}
}

// Concurrent writes committed in one transaction (group commit) report
// each caller's own counts: a key sent by several callers counts for the
// last of them (whose row is stored) and as unchanged for the others; the
// rollup equals the aggregate of the stored generations.
func TestGroupCommitCounts(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "g.db")})
	defer s.Close()
	ctx := context.Background()
	all := storagetest.Delivery("p", 10) // gen0, child0, gen1, child1, ...
	if res, err := s.WriteSpans(ctx, all[:10]); err != nil || res.Inserted != 10 {
		t.Fatalf("first write: %+v %v", res, err)
	}
	changedGen6 := all[12]
	changedGen6.OutputTokens = ptr(int64(999))
	changedGen0 := all[0]
	changedGen0.OutputTokens = ptr(int64(777))
	w1 := &storage.Request{Spans: all[:14]}                                         // 10 stored + gen5, child5, gen6, child6
	w2 := &storage.Request{Spans: append([]storage.Span{changedGen6}, all[13:]...)} // gen6 (changed), child6 .. child9
	w3 := &storage.Request{Spans: []storage.Span{changedGen0, all[1], changedGen0}} // gen0 changed (twice), child0
	s.commit(ctx, []*storage.Request{w1, w2, w3})
	for i, c := range []struct {
		w    *storage.Request
		want storage.WriteResult
	}{
		// w1: gen5, child5 new; gen6 and child6 are claimed by w2, gen0
		// and child0 by w3; the rest was stored before.
		{w1, storage.WriteResult{Inserted: 2, Unchanged: 12}},
		{w2, storage.WriteResult{Inserted: 8}},
		{w3, storage.WriteResult{Updated: 1, Unchanged: 1}},
	} {
		if c.w.Err != nil || c.w.Result != c.want {
			t.Errorf("write %d: err=%v %+v, want %+v", i+1, c.w.Err, c.w.Result, c.want)
		}
	}
	var rows, gens, out, rollGens, rollOut int64
	db := s.DB()
	if err := db.QueryRow("SELECT count(*), sum(is_generation), sum(CASE WHEN is_generation THEN output_tokens END) FROM spans").Scan(&rows, &gens, &out); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT sum(generations), sum(output_tokens) FROM usage_daily").Scan(&rollGens, &rollOut); err != nil {
		t.Fatal(err)
	}
	if wantOut := int64(8*48 + 999 + 777); rows != 20 || gens != 10 || out != wantOut || rollGens != gens || rollOut != out {
		t.Fatalf("spans: %d rows %d generations %d output tokens (want 20, 10, %d); usage_daily: %d generations %d output tokens",
			rows, gens, out, wantOut, rollGens, rollOut)
	}
}

// When the group's transaction fails permanently, it is written again
// isolating each caller: only the caller that sent the row SQLite can never
// hold gets the permanent error; the others' rows are committed and they
// are answered without error.
func TestGroupCommitIsolatesPermanentErrors(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "g.db")})
	defer s.Close()
	ctx := context.Background()
	limitLength(t, s, 64<<10)
	good := &storage.Request{Spans: storagetest.Delivery("good", 3)}
	badSpans := storagetest.Delivery("bad", 3)
	huge := strings.Repeat("x", 100<<10)
	badSpans[2].Prompt = &huge
	bad := &storage.Request{Spans: badSpans}
	s.commit(ctx, []*storage.Request{good, bad})
	if good.Err != nil || good.Result != (storage.WriteResult{Inserted: 6}) {
		t.Fatalf("good write: %+v %v", good.Result, good.Err)
	}
	if !storage.IsPermanent(bad.Err) || !strings.Contains(bad.Err.Error(), badSpans[2].SpanID) || bad.Result != (storage.WriteResult{Inserted: 5, Rejected: 1}) {
		t.Fatalf("bad write: %+v %v; want 5 inserted, 1 rejected, a permanent error naming %s", bad.Result, bad.Err, badSpans[2].SpanID)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM spans").Scan(&n); err != nil || n != 11 {
		t.Fatalf("%d rows stored, want 11", n)
	}
}

// Many concurrent callers: every span is stored once, the counts add up
// and the rollup matches (run under -race by make test).
func TestConcurrentWrites(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "c.db")})
	defer s.Close()
	ctx := context.Background()
	const callers, per = 16, 5
	results := make(chan storage.WriteResult, callers)
	errs := make(chan error, callers)
	for c := range callers {
		go func() {
			res, err := s.WriteSpans(ctx, storagetest.Delivery(fmt.Sprintf("p%d", c), per))
			results <- res
			errs <- err
		}()
	}
	var inserted int
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		inserted += (<-results).Inserted
	}
	var rows, gens int
	if err := s.DB().QueryRow("SELECT count(*) FROM spans").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRow("SELECT sum(generations) FROM usage_daily").Scan(&gens); err != nil {
		t.Fatal(err)
	}
	if inserted != callers*per*2 || rows != inserted || gens != callers*per {
		t.Fatalf("inserted %d, rows %d, usage generations %d; want %d, %d, %d", inserted, rows, gens, callers*per*2, callers*per*2, callers*per)
	}
}

func ptr[T any](v T) *T { return &v }

// A version-7 database holding spans is upgraded: migration 8 backfills
// session_totals, customer_totals and customer_sessions from the stored
// generations, and the write path goes on from there.
func TestTotalsBackfillFromV7(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v7.db")
	v7 := open(t, Options{Path: path, MigrateTo: 7})
	exec := func(query string, args ...any) error { _, err := v7.DB().Exec(query, args...); return err }
	storagetest.TotalsBackfill(t, backend(), exec, func(int) string { return "?" }, func() storage.Store {
		v7.Close()
		s := open(t, Options{Path: path})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestHourlyBackfill: a database at version 6 holding spans gets gen_hourly
// backfilled from them by the migration (issue 11.7), and replaying the
// spans afterwards changes nothing.
func TestHourlyBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v6.db")
	ctx := context.Background()
	v6 := open(t, Options{Path: path, MigrateTo: 6})
	spans, query, args := storagetest.HourlyBackfillSpans(func(int) string { return "?" })
	for _, a := range args {
		if _, err := v6.DB().ExecContext(ctx, query, a...); err != nil {
			t.Fatal(err)
		}
	}
	v6.Close()

	s := open(t, Options{Path: path})
	defer s.Close()
	storagetest.CheckHourly(t, backend(), s)
	if res, err := s.WriteSpans(ctx, spans); err != nil || res.Unchanged != len(spans) {
		t.Fatalf("replay after upgrade: %+v %v", res, err)
	}
	storagetest.CheckHourly(t, backend(), s)
}
