package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

// Content retention of eval runs walks eval_runs_with_body (runs that still
// hold a body): with every body cleared, the selection of a pass with
// nothing to do reads a couple of buffers, not the table.
func TestEvalContentRetentionNoOpPassDoesNotGrow(t *testing.T) {
	dsn := newDatabase(t)
	s := open(t, Options{DSN: dsn})
	defer s.Close()
	ctx := context.Background()
	now := storagetest.Base.Add(100 * 24 * time.Hour)
	runs := storagetest.EvalRuns(t, "p", 1000, now.Add(-20*24*time.Hour).UnixNano())
	if res, err := s.WriteEvents(ctx, storage.Events{EvalRuns: runs}); err != nil || res.Stored != 1000 {
		t.Fatalf("WriteEvents: %+v %v", res, err)
	}
	policy := storage.RetentionPolicy{ContentAfter: 10 * 24 * time.Hour, BatchSize: 300, Now: now}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res != (storage.RetentionResult{EvalContentCleared: 1000}) {
		t.Fatalf("first pass: %+v %v", res, err)
	}
	exec(t, dsn, "VACUUM ANALYZE eval_runs") // as autovacuum would after a large update
	cutoff := now.Add(-policy.ContentAfter).UnixNano()
	buffers, pages, plan := batchCost(t, s, evalBodyBatchSQL, "eval_runs", cutoff, 300)
	if buffers > 4 || !strings.Contains(plan, "eval_runs_with_body") {
		t.Fatalf("a no-op eval content pass read %v buffers of a %d-page table; plan: %s", buffers, pages, plan)
	}
	if pages < 20 {
		t.Fatalf("eval_runs has %d pages: too small to show the difference", pages)
	}
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res != (storage.RetentionResult{}) {
		t.Fatalf("no-op pass: %+v %v", res, err)
	}
}
