package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

func exec(t *testing.T, dsn, query string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// dbName is the database of a pgtest DSN.
func dbName(dsn string) string {
	return dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
}

// holdInTx runs query in a transaction on its own connection and keeps the
// transaction open (and its locks held) until the returned function is
// called.
func holdInTx(t *testing.T, dsn, query string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// Issue 14 item 1: the content pass of retention walks a partial index of
// the rows that still hold content. With 3000 rows cleared, the selection
// of a pass with nothing to do reads a couple of buffers (it was a
// sequential scan of the table, 1.4 s per pass at 1M cleared rows).
func TestContentRetentionNoOpPassDoesNotGrow(t *testing.T) {
	dsn := newDatabase(t)
	s := open(t, Options{DSN: dsn})
	defer s.Close()
	ctx := context.Background()
	now := storagetest.Base.Add(100 * 24 * time.Hour)
	spans := storagetest.Delivery("p", 1500)
	for i := range spans {
		spans[i].ReceivedAtUnixNano = now.Add(-20 * 24 * time.Hour).UnixNano()
		if spans[i].Prompt == nil {
			spans[i].Prompt = &spans[i].Name
		}
	}
	if _, err := s.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	policy := storage.RetentionPolicy{ContentAfter: 10 * 24 * time.Hour, BatchSize: 500, Now: now}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res.ContentCleared != 3000 {
		t.Fatalf("first pass: %+v %v", res, err)
	}
	exec(t, dsn, "VACUUM ANALYZE spans") // as autovacuum would after a large update
	cutoff := now.Add(-policy.ContentAfter).UnixNano()
	buffers, pages, plan := batchCost(t, s, contentBatchSQL, "spans", cutoff, 500)
	if buffers > 4 || !strings.Contains(plan, "spans_with_content") {
		t.Fatalf("a no-op content pass read %v buffers of a %d-page table; plan: %s", buffers, pages, plan)
	}
	if pages < 50 {
		t.Fatalf("the table has %d pages: too small to show the difference", pages)
	}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res.ContentCleared != 0 {
		t.Fatalf("no-op pass: %+v %v", res, err)
	}
}

// batchCost runs the selection of a retention batch under EXPLAIN ANALYZE
// and returns the buffers it read, the pages of table and the plan.
func batchCost(t *testing.T, s *Store, query, table string, cutoff int64, batch int) (buffers float64, pages int64, plan string) {
	t.Helper()
	ctx := context.Background()
	var out []byte
	if err := s.Pool().QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+query, cutoff, batch).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var parsed []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal(out, &parsed); err != nil {
		t.Fatal(err)
	}
	hit, _ := parsed[0].Plan["Shared Hit Blocks"].(float64)
	read, _ := parsed[0].Plan["Shared Read Blocks"].(float64)
	if err := s.Pool().QueryRow(ctx, "SELECT relpages FROM pg_class WHERE relname = $1", table).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	return hit + read, pages, string(out)
}

// Issue 14 item 12: on a shared database one collector at a time runs a
// retention pass (advisory lock; the others skip theirs), and rows locked
// by writers are skipped rather than waited for, without ending the pass
// while other rows remain.
func TestRetentionOnSharedDatabase(t *testing.T) {
	dsn := newDatabase(t)
	a, b := open(t, Options{DSN: dsn}), open(t, Options{DSN: dsn})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	now := storagetest.Base.Add(100 * 24 * time.Hour)
	spans := storagetest.Delivery("p", 150)
	for i := range spans {
		spans[i].ReceivedAtUnixNano = now.Add(-40*24*time.Hour + time.Duration(i)*time.Second).UnixNano()
	}
	if _, err := a.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	policy := storage.RetentionPolicy{SpansAfter: 30 * 24 * time.Hour, BatchSize: 10, Now: now}

	// Another collector's pass in progress (its lock): this one skips.
	release := holdInTx(t, dsn, fmt.Sprintf("SELECT pg_advisory_lock(%d)", int64(retentionLockID)))
	if res, err := a.ApplyRetention(ctx, policy); err != nil || !res.Skipped || res.SpansDeleted != 0 {
		t.Fatalf("pass while another runs: %+v %v; want skipped", res, err)
	}
	release()

	// Rows a writer holds: skipped, and the pass goes on past the short
	// batches they cause, deleting every other row.
	release = holdInTx(t, dsn, `SELECT 1 FROM spans WHERE span_id IN (SELECT span_id FROM spans ORDER BY received_at_unix_nano LIMIT 15) FOR UPDATE`)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := b.ApplyRetention(pctx, policy)
	if err != nil || res.SpansDeleted != 285 {
		t.Fatalf("pass with 15 rows locked: %+v %v; want 285 deleted without waiting", res, err)
	}
	release()
	// Both collectors at once: every remaining row deleted once.
	var wg sync.WaitGroup
	results := make([]storage.RetentionResult, 2)
	errs := make([]error, 2)
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.ApplyRetention(ctx, policy)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || results[0].SpansDeleted+results[1].SpansDeleted != 15 {
		t.Fatalf("concurrent passes: %+v %+v %v %v; want 15 deleted in all", results[0], results[1], errs[0], errs[1])
	}
	var rows, tombstones int
	if err := a.Pool().QueryRow(ctx, "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM span_tombstones)").Scan(&rows, &tombstones); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || tombstones != 300 {
		t.Fatalf("%d rows and %d tombstones left, want 0 and 300", rows, tombstones)
	}
}

// Issue 14 item 8: writes pin READ COMMITTED, so a server (or database)
// default of REPEATABLE READ or SERIALIZABLE does not fail concurrent
// writers with serialization errors (89 of 960 and 120 of 960 failed).
func TestWritesPinReadCommitted(t *testing.T) {
	for _, level := range []string{"repeatable read", "serializable"} {
		t.Run(level, func(t *testing.T) {
			dsn := newDatabase(t)
			exec(t, dsn, "ALTER DATABASE "+dbName(dsn)+" SET default_transaction_isolation = '"+level+"'")
			ctx := context.Background()
			stores := make([]*Store, 6)
			for i := range stores {
				stores[i] = open(t, Options{DSN: dsn})
				defer stores[i].Close()
			}
			var level2 string
			if err := stores[0].Pool().QueryRow(ctx, "SHOW default_transaction_isolation").Scan(&level2); err != nil || level2 != level {
				t.Fatalf("default isolation %q (%v), want %q", level2, err, level)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failed, total int
			all := storagetest.Delivery("p", 120)
			for w, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for round := range 20 {
						part := append([]storage.Span(nil), all[(round*24+w*12)%200:][:40]...)
						for i := range part {
							if part[i].IsGeneration {
								part[i].ReasoningTokens = ptr(int64(w*100 + round))
							}
						}
						_, err := s.WriteSpans(ctx, part)
						mu.Lock()
						total++
						if err != nil {
							failed++
							t.Logf("writer %d round %d: %v", w, round, err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if failed != 0 {
				t.Fatalf("%d of %d concurrent writes failed", failed, total)
			}
			var gens, usage int64
			if err := stores[0].Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM spans WHERE is_generation),
				(SELECT sum(generations)::bigint FROM usage_daily)`).Scan(&gens, &usage); err != nil || gens != usage {
				t.Fatalf("%d generations stored, %d in usage_daily (%v)", gens, usage, err)
			}
		})
	}
}

// Issue 14 item 11: an exact replay locks and writes nothing: replaying
// 5000 stored spans produces (almost) no WAL (FOR UPDATE on every replayed
// row wrote 280 KB).
func TestExactReplayWritesNoWAL(t *testing.T) {
	s := open(t, Options{DSN: newDatabase(t)})
	defer s.Close()
	ctx := context.Background()
	spans := storagetest.Delivery("p", 2500)
	if _, err := s.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	lsn := func() (v string) {
		if err := s.Pool().QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The WAL position is the server's: keep autovacuum (which a slow,
	// loaded machine gives time to start on 5000 fresh rows) from writing
	// into the measured window, so the figure is the replays' own.
	if _, err := s.Pool().Exec(ctx, `DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
			EXECUTE format('ALTER TABLE %I SET (autovacuum_enabled = false)', r.tablename);
		END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "VACUUM spans"); err != nil {
		t.Fatal(err)
	}
	before := lsn()
	for range 2 {
		if res, err := s.WriteSpans(ctx, spans); err != nil || res.Unchanged != 5000 {
			t.Fatalf("replay: %+v %v", res, err)
		}
	}
	var wal int64
	if err := s.Pool().QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint", lsn(), before).Scan(&wal); err != nil {
		t.Fatal(err)
	}
	// The direct proof that no replayed row was locked or updated: a row
	// lock or an update leaves the writing transaction in xmax.
	var touched int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM spans WHERE xmax::text <> '0'").Scan(&touched); err != nil {
		t.Fatal(err)
	}
	if touched != 0 {
		t.Fatalf("%d of 5000 rows were locked or updated by exact replays", touched)
	}
	if wal > 16<<10 {
		t.Fatalf("two exact replays of 5000 spans wrote %d bytes of WAL, want (almost) none", wal)
	}
	t.Logf("WAL of two exact replays of 5000 spans: %d bytes", wal)
}

// Issue 14 item 3: a migration the server refuses (a constraint error,
// which the data-error classifier calls permanent) fails the start with
// an error naming the migration; it is never a permanent data error.
func TestFailedMigrationFailsStart(t *testing.T) {
	dsn := newDatabase(t)
	migrations, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	broken := append(append([]storage.Migration(nil), migrations...),
		storage.Migration{Version: len(migrations) + 1, Name: "broken", SQL: "INSERT INTO spans (project_id) VALUES (NULL)"})
	_, err = Open(context.Background(), Options{DSN: dsn, Migrations: broken})
	var me *storage.MigrationError
	if err == nil || storage.IsPermanent(err) || !errors.As(err, &me) || !strings.Contains(err.Error(), fmt.Sprintf("migration %d (broken) failed", len(migrations)+1)) ||
		!strings.Contains(err.Error(), "23502") {
		t.Fatalf("Open with a failing migration: %v; want a non-permanent error naming the added migration and its cause", err)
	}
	s := open(t, Options{DSN: dsn})
	defer s.Close()
	if v, _ := s.SchemaVersion(context.Background()); v != len(migrations) {
		t.Fatalf("version %d after the failed migration, want %d", v, len(migrations))
	}
}

// Issue 14 items 3 and 4: a migration waiting longer than Open's context
// (here for a table lock; statement_timeout set on the database) is not
// cancelled: Open returns, writes are answered with a retryable "schema
// not ready" error, and the same attempt completes once the lock is free.
// A migration that then fails is logged with what failed and retried.
func TestMigrationOutlivesStartAndRetries(t *testing.T) {
	dsn := newDatabase(t)
	migrations, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	open(t, Options{DSN: dsn, MigrateTo: 2}).Close() // an older database
	name := dbName(dsn)
	exec(t, dsn, "ALTER DATABASE "+name+" SET statement_timeout = '100ms'")
	release := holdInTx(t, dsn, "LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s, err := Open(ctx, Options{DSN: dsn, Logger: zap.New(core)})
	if s == nil || !errors.Is(err, storage.ErrSchemaNotReady) || storage.IsPermanent(err) {
		t.Fatalf("Open during a long migration: %v", err)
	}
	defer s.Close()
	if _, err := s.WriteSpans(context.Background(), storagetest.Delivery("p", 1)); !errors.Is(err, storage.ErrSchemaNotReady) || storage.IsPermanent(err) {
		t.Fatalf("write during the migration: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // past Open's deadline and the statement timeout
	release()
	if res, err := storagetest.WriteWhenReady(t, s, storagetest.Delivery("p", 1)); err != nil || res.Inserted != 2 {
		t.Fatalf("write after the migration: %+v %v", res, err)
	}
	if a := s.migrator.Attempts(); a != 1 {
		t.Fatalf("%d migration attempts, want 1 (the first was not cancelled); logs %v", a, logs.All())
	}
	s.Close()

	// A further migration that the server refuses after start: logged,
	// answered 503, retried; fixed by hand, it succeeds.
	more := append(append([]storage.Migration(nil), migrations...),
		storage.Migration{Version: len(migrations) + 1, Name: "needs_table", SQL: "INSERT INTO must_exist VALUES (1)"})
	release = holdInTx(t, dsn, "LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	exec(t, dsn, "ALTER DATABASE "+name+" RESET statement_timeout")
	more = append(more[:len(more)-1], storage.Migration{Version: len(migrations) + 1, Name: "needs_table",
		SQL: "LOCK TABLE spans IN SHARE MODE; INSERT INTO must_exist VALUES (1)"})
	s, err = Open(ctx2, Options{DSN: dsn, Migrations: more, Logger: zap.New(core)})
	if s == nil || !errors.Is(err, storage.ErrSchemaNotReady) {
		t.Fatalf("Open while the migration waits: %v", err)
	}
	defer s.Close()
	release()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = s.WriteSpans(context.Background(), storagetest.Delivery("p", 1))
		if err != nil && strings.Contains(err.Error(), "needs_table") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !errors.Is(err, storage.ErrSchemaNotReady) || storage.IsPermanent(err) || !strings.Contains(err.Error(), fmt.Sprintf("migration %d (needs_table) failed", len(migrations)+1)) {
		t.Fatalf("write after the migration failed: %v; want a retryable error naming the migration", err)
	}
	if len(logs.FilterMessageSnippet("migration failed").All()) == 0 {
		t.Fatalf("no error log of the failed migration: %v", logs.All())
	}
	exec(t, dsn, "CREATE TABLE must_exist (x int)")
	if res, err := storagetest.WriteWhenReady(t, s, storagetest.Delivery("p", 1)); err != nil || res.Unchanged != 2 {
		t.Fatalf("write once the migration succeeded: %+v %v", res, err)
	}
}
func ptr[T any](v T) *T { return &v }
