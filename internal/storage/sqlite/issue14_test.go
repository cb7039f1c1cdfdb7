package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

// holdWriteLock takes the database's write lock from another connection
// (another process, as far as the store can tell) until the returned
// function is called.
func holdWriteLock(t *testing.T, path string) (other *sql.DB, release func()) {
	t.Helper()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
		})
	}
	t.Cleanup(func() { release(); other.Close() })
	return other, release
}

// Issue 14 item 1: the content pass of retention walks a partial index of
// the rows that still hold content. Once 3000 rows are cleared that index
// is a single empty page, so a pass with nothing to do reads one page
// whatever the size of the table (the former query walked the received_at
// index from the oldest row, through every row cleared before, holding the
// write lock).
func TestContentRetentionNoOpPassDoesNotGrow(t *testing.T) {
	// 4 KiB pages: the indexes span several pages with a small fixture.
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "r.db"), PageSize: 4096})
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
	pages := func(index string) int { return pageCount(t, s, index) }
	if n := pages("spans_with_content"); n < 5 {
		t.Fatalf("spans_with_content has %d pages before retention; the fixture is too small", n)
	}
	policy := storage.RetentionPolicy{ContentAfter: 10 * 24 * time.Hour, BatchSize: 500, Now: now}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res.ContentCleared != 3000 {
		t.Fatalf("first pass: %+v %v", res, err)
	}
	if n := pages("spans_with_content"); n != 1 {
		t.Fatalf("spans_with_content has %d pages after every row was cleared, want 1 (an empty root)", n)
	}
	if n := pages("spans_received_at"); n < 5 {
		t.Fatalf("spans_received_at has %d pages: the table is not large enough to show the difference", n)
	}
	var plan, detail string
	var id, parent, unused int
	if err := s.DB().QueryRow("EXPLAIN QUERY PLAN "+contentBatchSQL, now.UnixNano(), 500).Scan(&id, &parent, &unused, &detail); err != nil {
		t.Fatal(err)
	}
	plan = detail
	if !strings.Contains(plan, "spans_with_content") {
		t.Fatalf("the content pass does not use the partial index: %s", plan)
	}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res.ContentCleared != 0 {
		t.Fatalf("no-op pass: %+v %v", res, err)
	}
}

// pageCount checkpoints the WAL and counts the pages of a table or index.
func pageCount(t *testing.T, s *Store, name string) (n int) {
	t.Helper()
	if _, err := s.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRow("SELECT count(*) FROM dbstat WHERE name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Issue 14 item 3: a migration the database refuses (here a constraint
// error, which the data-error classifier would call permanent) fails the
// start with an error that says which migration and why; it is never a
// permanent data error, and the database stays at the version before.
func TestFailedMigrationFailsStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	migrations, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	broken := append(append([]storage.Migration(nil), migrations...),
		storage.Migration{Version: len(migrations) + 1, Name: "broken", SQL: "INSERT INTO spans (project_id) VALUES (NULL)"})
	_, err = Open(context.Background(), Options{Path: path, Migrations: broken})
	var me *storage.MigrationError
	if err == nil || storage.IsPermanent(err) || !errors.As(err, &me) || me.Version != len(migrations)+1 ||
		!strings.Contains(err.Error(), fmt.Sprintf("migration %d (broken) failed", len(migrations)+1)) || !strings.Contains(err.Error(), "NOT NULL") {
		t.Fatalf("Open with a failing migration: %v; want a non-permanent error naming the added migration and its cause", err)
	}
	s := open(t, Options{Path: path})
	defer s.Close()
	if v, _ := s.SchemaVersion(context.Background()); v != len(migrations) {
		t.Fatalf("version %d after the failed migration, want %d", v, len(migrations))
	}
}

// Issue 14 items 3 and 4: migrations run in their own context. Open waits
// for them only as long as its context allows, then the store answers
// writes with a retryable "schema not ready" error while they go on; a
// migration that then fails is logged with what failed, answered 503 and
// retried until it succeeds.
func TestMigrationOutlivesStartAndRetries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	migrations, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	open(t, Options{Path: path}).Close()
	more := append(append([]storage.Migration(nil), migrations...),
		storage.Migration{Version: len(migrations) + 1, Name: "needs_table", SQL: "INSERT INTO must_exist VALUES (1)"})
	other, release := holdWriteLock(t, path)
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s, err := Open(ctx, Options{Path: path, BusyTimeout: 2 * time.Second, Migrations: more, Logger: zap.New(core)})
	if s == nil || !errors.Is(err, storage.ErrSchemaNotReady) {
		t.Fatalf("Open while the file is locked: %v; want a store and a schema-not-ready error", err)
	}
	defer s.Close()
	_, err = s.WriteSpans(context.Background(), storagetest.Delivery("p", 1))
	if !errors.Is(err, storage.ErrSchemaNotReady) || storage.IsPermanent(err) {
		t.Fatalf("write during the migration: %v; want a retryable schema-not-ready error", err)
	}
	release()
	// The migration, no longer blocked, is refused: writes say which one.
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
	logged := false
	for _, e := range logs.FilterMessageSnippet("migration failed").All() {
		if strings.Contains(e.ContextMap()["error"].(string), fmt.Sprintf("migration %d (needs_table) failed: ", len(migrations)+1)) {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("no error log says which migration failed: %v", logs.All())
	}
	// Fixed by hand: the next attempt succeeds and writes go through.
	if _, err := other.Exec("CREATE TABLE must_exist (x)"); err != nil {
		t.Fatal(err)
	}
	if res, err := storagetest.WriteWhenReady(t, s, storagetest.Delivery("p", 1)); err != nil || res.Inserted != 2 {
		t.Fatalf("write once the migration succeeded: %+v %v", res, err)
	}
	if v, _ := s.SchemaVersion(context.Background()); v != len(more) {
		t.Fatalf("version %d, want %d", v, len(more))
	}
}

// Issue 14 item 4: a migration longer than Open's context is not cancelled
// by it: the same attempt completes once the lock it waited for is free.
func TestLongMigrationIsNotCancelledByStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	open(t, Options{Path: path, MigrateTo: 2}).Close() // an older database
	_, release := holdWriteLock(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	core, logs := observer.New(zap.InfoLevel)
	s, err := Open(ctx, Options{Path: path, BusyTimeout: 30 * time.Second, Logger: zap.New(core)})
	if s == nil || !errors.Is(err, storage.ErrSchemaNotReady) {
		t.Fatalf("Open during a long migration: %v", err)
	}
	defer s.Close()
	time.Sleep(200 * time.Millisecond) // past Open's deadline
	release()
	if res, err := storagetest.WriteWhenReady(t, s, storagetest.Delivery("p", 1)); err != nil || res.Inserted != 2 {
		t.Fatalf("write after the migration: %+v %v", res, err)
	}
	s.migrator.Stop()
	if a := s.migrator.Attempts(); a != 1 {
		t.Fatalf("%d migration attempts, want 1 (the first was not cancelled); logs: %v", a, logs.All())
	}
}

// Issue 14 item 9: with SQLite's group commit, the context of the caller
// that leads a group governs only that caller. Two callers queue while
// another process holds the lock; one of them gives up; the other's spans
// are committed and it is answered without error. A third caller whose
// deadline passes while waiting for the lock gets its context's error, not
// the lock's.
func TestGroupCommitCallerContexts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s := open(t, Options{Path: path, BusyTimeout: 30 * time.Second})
	defer s.Close()
	_, release := holdWriteLock(t, path)
	for round := range 6 {
		actx, cancelA := context.WithCancel(context.Background())
		aDone, bDone := make(chan error, 1), make(chan error, 1)
		go func() {
			_, err := s.WriteSpans(actx, storagetest.Delivery("a", 1+round))
			aDone <- err
		}()
		go func() {
			res, err := s.WriteSpans(context.Background(), storagetest.Delivery("b", 1+round))
			if err == nil && res.Inserted+res.Unchanged != 2*(1+round) {
				err = errors.New("wrong counts")
			}
			bDone <- err
		}()
		waitTransactions(t, s, int64(round+1)) // a group is waiting for the lock
		if round == 0 {
			cctx, cancelC := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, err := s.WriteSpans(cctx, storagetest.Delivery("c", 1))
			cancelC()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("caller waiting for the lock past its deadline: %v", err)
			}
		}
		cancelA()
		if round == 0 {
			time.Sleep(50 * time.Millisecond)
			release()
		}
		if err := <-bDone; err != nil {
			t.Fatalf("round %d: the caller that stayed: %v", round, err)
		}
		if err := <-aDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: the caller that left: %v", round, err)
		}
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM spans WHERE project_id = 'b'").Scan(&n); err != nil || n != 12 {
		t.Fatalf("%d spans of the caller that stayed, want 12", n)
	}
}

func waitTransactions(t *testing.T, s *Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.transactions.Load() < n {
		if time.Now().After(deadline) {
			t.Fatal("no write transaction started")
		}
		time.Sleep(time.Millisecond)
	}
}
