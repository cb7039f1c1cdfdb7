package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// testSDKRetention: retention covers the Fallom SDK tables. content_days
// clears eval_runs.body (the eval inputs and outputs) of runs received
// before the content cutoff and keeps the run (id, scores, times); span_days
// deletes eval runs, session metrics (by updated_at), counted lookups and
// assignments whose last lookup is older than the spans cutoff. Batches of 1
// row, so a pass is many transactions; a second pass finds nothing.
func testSDKRetention(t *testing.T, b Backend) {
	s, _ := b.New(t)
	ctx := context.Background()
	now := Base.Add(100 * day)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }

	var ev storage.Events
	for _, r := range []struct {
		id  string
		age time.Duration
	}{{"run-old", 40 * day}, {"run-mid", 20 * day}, {"run-new", 5 * day}} {
		run := EvalRun(t, "p", r.id, 0)
		run.ReceivedAtUnixNano = ago(r.age)
		ev.EvalRuns = append(ev.EvalRuns, run)
	}
	lookup := func(session string, age time.Duration) storage.Assignment {
		a := Lookup("p", "c", 1, session, "m", 0)
		a.ReceivedAtUnixNano = ago(age)
		return a
	}
	// s-old: every lookup older than 30 days; s-mixed: one old, one recent.
	ev.Assignments = []storage.Assignment{lookup("s-old", 40*day), lookup("s-old", 35*day),
		lookup("s-mixed", 40*day), lookup("s-mixed", 5*day), lookup("s-new", 5*day)}
	for _, m := range []struct {
		session string
		age     time.Duration
	}{{"s-old", 40 * day}, {"s-new", 5 * day}} {
		metric := Metric("p", "c", m.session, "converted", 1, 0)
		metric.UpdatedAtUnixNano = ago(m.age)
		ev.Metrics = append(ev.Metrics, metric)
	}
	writeEvents(t, s, ev)

	// Content only: nothing is deleted.
	res, err := s.ApplyRetention(ctx, storage.RetentionPolicy{ContentAfter: 10 * day, BatchSize: 1, Now: now})
	if err != nil || res != (storage.RetentionResult{EvalContentCleared: 2}) {
		t.Fatalf("content retention: %+v %v; want the bodies of run-old and run-mid cleared", res, err)
	}
	res, err = s.ApplyRetention(ctx, storage.RetentionPolicy{ContentAfter: 10 * day, SpansAfter: 30 * day, BatchSize: 1, Now: now})
	want := storage.RetentionResult{EvalRunsDeleted: 1, SessionMetricsDeleted: 1, AssignmentCallsDeleted: 3, AssignmentsDeleted: 1}
	if err != nil || res != want {
		t.Fatalf("retention: %+v %v; want %+v", res, err, want)
	}
	if res, err := s.ApplyRetention(ctx, storage.RetentionPolicy{ContentAfter: 10 * day, SpansAfter: 30 * day, BatchSize: 1, Now: now}); err != nil || res != (storage.RetentionResult{}) {
		t.Fatalf("second pass: %+v %v; want nothing to do", res, err)
	}

	// A replay of a cleared run does not bring its body back.
	writeEvents(t, s, storage.Events{EvalRuns: ev.EvalRuns[1:2]})
	var runs []string
	var id, scores, body string
	var received, results int64
	b.EachRow(t, s, "SELECT run_id, scores, body, received_at_unix_nano, results FROM eval_runs ORDER BY run_id",
		[]any{&id, &scores, &body, &received, &results}, func() {
			runs = append(runs, fmt.Sprintf("%s body=%d", id, len(body)))
			if scores != ev.EvalRuns[0].Scores || results != 2 {
				t.Errorf("run %s: scores %s, results %d: retention changed them", id, scores, results)
			}
			if want := map[string]int64{"run-mid": ago(20 * day), "run-new": ago(5 * day)}[id]; received != want {
				t.Errorf("run %s received at %d, want %d", id, received, want)
			}
		})
	if got, want := fmt.Sprint(runs), fmt.Sprintf("[run-mid body=0 run-new body=%d]", len(EvalBody)); got != want {
		t.Fatalf("eval runs after retention: %s, want %s", got, want)
	}
	var sessions []string
	var session string
	var calls, first, last int64
	b.EachRow(t, s, "SELECT session_id, calls, first_seen_unix_nano, last_seen_unix_nano FROM assignments ORDER BY session_id",
		[]any{&session, &calls, &first, &last}, func() { sessions = append(sessions, fmt.Sprintf("%s:%d", session, calls)) })
	if got := fmt.Sprint(sessions); got != "[s-mixed:2 s-new:1]" {
		t.Fatalf("assignments after retention: %s, want s-mixed (last lookup 5 days ago, its 2 calls counted) and s-new", got)
	}
	var nCalls, nMetrics int64
	b.QueryRow(t, s, fmt.Sprintf("SELECT count(*) FROM assignment_calls WHERE received_at_unix_nano >= %d", ago(30*day)), &nCalls)
	b.QueryRow(t, s, "SELECT count(*) FROM session_metrics WHERE session_id = 's-new'", &nMetrics)
	var allCalls, allMetrics int64
	b.QueryRow(t, s, "SELECT count(*) FROM assignment_calls", &allCalls)
	b.QueryRow(t, s, "SELECT count(*) FROM session_metrics", &allMetrics)
	if nCalls != 2 || allCalls != 2 || nMetrics != 1 || allMetrics != 1 {
		t.Fatalf("after retention: %d calls (%d recent), %d metrics (%d of s-new); want the 2 recent calls and s-new's metric",
			allCalls, nCalls, allMetrics, nMetrics)
	}
}

// EvalRuns returns n runs of EvalBody (run-0 ... run-n-1) received at
// receivedAt, for the backends' tests of the retention cost.
func EvalRuns(t *testing.T, project string, n int, receivedAt int64) []storage.EvalRun {
	t.Helper()
	runs := make([]storage.EvalRun, n)
	for i := range runs {
		runs[i] = EvalRun(t, project, fmt.Sprintf("run-%d", i), 0)
		runs[i].ReceivedAtUnixNano = receivedAt
	}
	return runs
}
