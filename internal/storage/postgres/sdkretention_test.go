package postgres

import (
	"context"
	"fmt"
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

// The SDK tables' batches skip rows a writer holds (FOR UPDATE SKIP
// LOCKED) instead of waiting, delete the others, and a later pass takes the
// rest; they run inside the advisory-locked pass (another collector's pass
// in progress skips them too).
func TestSDKRetentionSkipsLockedRows(t *testing.T) {
	dsn := newDatabase(t)
	s := open(t, Options{DSN: dsn})
	defer s.Close()
	ctx := context.Background()
	now := storagetest.Base.Add(100 * 24 * time.Hour)
	old := now.Add(-40 * 24 * time.Hour).UnixNano()
	ev := storage.Events{EvalRuns: storagetest.EvalRuns(t, "p", 20, old)}
	for i := range 20 {
		a := storagetest.Lookup("p", "c", 1, fmt.Sprintf("s-%d", i), "m", 0)
		a.ReceivedAtUnixNano = old
		m := storagetest.Metric("p", "c", fmt.Sprintf("s-%d", i), "converted", 1, 0)
		m.UpdatedAtUnixNano = old
		ev.Assignments, ev.Metrics = append(ev.Assignments, a), append(ev.Metrics, m)
	}
	if res, err := s.WriteEvents(ctx, ev); err != nil || res.Stored != 60 {
		t.Fatalf("WriteEvents: %+v %v", res, err)
	}
	policy := storage.RetentionPolicy{ContentAfter: 10 * 24 * time.Hour, SpansAfter: 30 * 24 * time.Hour, BatchSize: 4, Now: now}

	release := holdInTx(t, dsn, fmt.Sprintf("SELECT pg_advisory_lock(%d)", int64(retentionLockID)))
	if res, err := s.ApplyRetention(ctx, policy); err != nil || res != (storage.RetentionResult{Skipped: true}) {
		t.Fatalf("pass while another runs: %+v %v; want skipped", res, err)
	}
	release()

	release = holdInTx(t, dsn, `SELECT 1 FROM eval_runs, session_metrics, assignment_calls, assignments
		WHERE eval_runs.run_id IN ('run-0', 'run-1') AND session_metrics.session_id IN ('s-0', 's-1')
		AND assignment_calls.session_id IN ('s-0', 's-1') AND assignments.session_id IN ('s-0', 's-1') FOR UPDATE`)
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	res, err := s.ApplyRetention(pctx, policy)
	want := storage.RetentionResult{EvalContentCleared: 18, EvalRunsDeleted: 18, SessionMetricsDeleted: 18,
		AssignmentCallsDeleted: 18, AssignmentsDeleted: 18}
	if err != nil || res != want {
		t.Fatalf("pass with 2 rows of each table locked: %+v %v; want %+v without waiting", res, err, want)
	}
	release()
	res, err = s.ApplyRetention(ctx, policy)
	want = storage.RetentionResult{EvalContentCleared: 2, EvalRunsDeleted: 2, SessionMetricsDeleted: 2,
		AssignmentCallsDeleted: 2, AssignmentsDeleted: 2}
	if err != nil || res != want {
		t.Fatalf("pass after the writer's commit: %+v %v; want %+v", res, err, want)
	}
}
