package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

// Content retention of eval runs walks eval_runs_with_body (runs that still
// hold a body): once every body is cleared that index is a single empty
// page, so a pass with nothing to do reads one page however many runs the
// table keeps.
func TestEvalContentRetentionNoOpPassDoesNotGrow(t *testing.T) {
	s := open(t, Options{Path: filepath.Join(t.TempDir(), "r.db"), PageSize: 4096})
	defer s.Close()
	ctx := context.Background()
	now := storagetest.Base.Add(100 * 24 * time.Hour)
	runs := storagetest.EvalRuns(t, "p", 1000, now.Add(-20*24*time.Hour).UnixNano())
	if res, err := s.WriteEvents(ctx, storage.Events{EvalRuns: runs}); err != nil || res.Stored != 1000 {
		t.Fatalf("WriteEvents: %+v %v", res, err)
	}
	pages := func(name string) int { return pageCount(t, s, name) }
	if n := pages("eval_runs_with_body"); n < 3 {
		t.Fatalf("eval_runs_with_body has %d pages before retention; the fixture is too small", n)
	}
	policy := storage.RetentionPolicy{ContentAfter: 10 * 24 * time.Hour, BatchSize: 300, Now: now}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res != (storage.RetentionResult{EvalContentCleared: 1000}) {
		t.Fatalf("first pass: %+v %v", res, err)
	}
	if n := pages("eval_runs_with_body"); n != 1 {
		t.Fatalf("eval_runs_with_body has %d pages after every body was cleared, want 1 (an empty root)", n)
	}
	if n := pages("eval_runs"); n < 10 {
		t.Fatalf("eval_runs has %d pages: the table is not large enough to show the difference", n)
	}
	var id, parent, unused int
	var detail string
	if err := s.DB().QueryRow("EXPLAIN QUERY PLAN "+evalBodyBatchSQL, now.UnixNano(), 300).Scan(&id, &parent, &unused, &detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "eval_runs_with_body") {
		t.Fatalf("the eval content pass does not use the partial index: %s", detail)
	}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res != (storage.RetentionResult{}) {
		t.Fatalf("no-op pass: %+v %v", res, err)
	}
}
