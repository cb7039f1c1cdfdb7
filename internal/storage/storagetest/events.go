package storagetest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// RunEvents runs the conformance tests of the Fallom SDK storage: the
// experiment columns of spans and the EventWriter (assignments, session
// metrics, eval runs).
func RunEvents(t *testing.T, b Backend) {
	t.Run("ExperimentColumns", func(t *testing.T) { testExperimentColumns(t, b) })
	t.Run("AssignmentsCountEachLookupOnce", func(t *testing.T) { testAssignments(t, b) })
	t.Run("AssignmentsConcurrentWriters", func(t *testing.T) { testAssignmentsConcurrent(t, b) })
	t.Run("MetricsLatestWins", func(t *testing.T) { testMetricsLatestWins(t, b) })
	t.Run("EvalRuns", func(t *testing.T) { testEvalRuns(t, b) })
	t.Run("BadEventsAreIsolated", func(t *testing.T) { testBadEvents(t, b) })
	t.Run("Retention", func(t *testing.T) { testSDKRetention(t, b) })
}

func events(t *testing.T, s storage.Store) storage.EventWriter {
	t.Helper()
	w, ok := s.(storage.EventWriter)
	if !ok {
		t.Fatalf("%T does not implement storage.EventWriter", s)
	}
	return w
}

func writeEvents(t *testing.T, s storage.Store, e storage.Events) storage.EventResult {
	t.Helper()
	res, err := events(t, s).WriteEvents(context.Background(), e)
	if err != nil {
		t.Fatalf("WriteEvents: %v", err)
	}
	return res
}

// SDKGeneration is Generation(project, i) as the Fallom SDK's mapping
// stores it: with the experiment fields.
func SDKGeneration(project string, i int, config string, promptVersion int64) storage.Span {
	g := Generation(project, i)
	g.Source = ptr("fallom")
	g.ConfigKey = ptr(config)
	g.ConfigVersion = ptr(int64(2))
	g.PromptKey = ptr("onboarding")
	g.PromptVersion = ptr(promptVersion)
	g.PromptABTestKey = ptr("onboarding-test")
	g.PromptVariantIndex = ptr(int64(i % 2))
	// Empty JSON objects read back the same from jsonb and from text.
	g.Attributes, g.ResourceAttributes = "{}", "{}"
	return g
}

func testExperimentColumns(t *testing.T, b Backend) {
	s, _ := b.New(t)
	r, ok := s.(storage.Reader)
	if !ok {
		t.Fatalf("%T is not a storage.Reader", s)
	}
	ctx := context.Background()
	sdk := SDKGeneration("p", 1, "summarizer", 3)
	plain := Generation("p", 2)
	if res := write(t, s, []storage.Span{sdk, plain}); res.Inserted != 2 {
		t.Fatalf("write: %+v", res)
	}
	got, err := r.Span(ctx, "p", sdk.TraceID, sdk.SpanID)
	if err != nil {
		t.Fatal(err)
	}
	if spanText(got) != spanText(sdk) || fmtp(got.ConfigKey) != "summarizer" || fmtp(got.ConfigVersion) != "2" ||
		fmtp(got.PromptKey) != "onboarding" || fmtp(got.PromptVersion) != "3" ||
		fmtp(got.PromptABTestKey) != "onboarding-test" || fmtp(got.PromptVariantIndex) != "1" {
		t.Fatalf("stored SDK span differs:\n got %s\nwant %s", spanText(got), spanText(sdk))
	}
	got, err = r.Span(ctx, "p", plain.TraceID, plain.SpanID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ConfigKey != nil || got.ConfigVersion != nil || got.PromptKey != nil || got.PromptVersion != nil ||
		got.PromptABTestKey != nil || got.PromptVariantIndex != nil {
		t.Fatalf("span without experiment fields read back with some: %s", spanText(got))
	}
	// An exact replay changes nothing; a replay with another prompt
	// version updates the column (the merge rule of every column).
	if res := write(t, s, []storage.Span{sdk}); res.Unchanged != 1 {
		t.Fatalf("exact replay: %+v", res)
	}
	changed := SDKGeneration("p", 1, "summarizer", 4)
	if res := write(t, s, []storage.Span{changed}); res.Updated != 1 {
		t.Fatalf("changed replay: %+v", res)
	}
	var v int64
	b.QueryRow(t, s, "SELECT prompt_version FROM spans WHERE span_id = '"+sdk.SpanID+"'", &v)
	if v != 4 {
		t.Fatalf("prompt_version after a changed replay = %d, want 4", v)
	}
	// An overlong config key (an index key) is refused in Go, alone.
	long := SDKGeneration("p", 3, strings.Repeat("k", storage.MaxIndexedTextBytes+1), 1)
	res, err := s.WriteSpans(ctx, []storage.Span{long, Generation("p", 4)})
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "config_key") || res.Inserted != 1 || res.Rejected != 1 {
		t.Fatalf("overlong config_key: %+v %v", res, err)
	}
}

// Lookup returns one assignment lookup received at second sec of Base.
func Lookup(project, config string, version int64, session, model string, sec int) storage.Assignment {
	return storage.Assignment{
		ProjectID: project, ConfigKey: config, ConfigVersion: version, SessionID: session, AssignedModel: model,
		ReceivedAtUnixNano: Base.Add(time.Duration(sec) * time.Second).UnixNano(),
	}
}

type assignmentRow struct {
	model              string
	customer           *string
	first, last, calls int64
}

func readAssignment(t *testing.T, b Backend, s storage.Store, project, config string, version int64, session string) assignmentRow {
	t.Helper()
	var a assignmentRow
	b.QueryRow(t, s, fmt.Sprintf(`SELECT assigned_model, customer_id, first_seen_unix_nano, last_seen_unix_nano, calls
		FROM assignments WHERE project_id = '%s' AND config_key = '%s' AND config_version = %d AND session_id = '%s'`,
		project, config, version, session), &a.model, &a.customer, &a.first, &a.last, &a.calls)
	return a
}

func testAssignments(t *testing.T, b Backend) {
	s, reopen := b.New(t)
	at := func(sec int) int64 { return Base.Add(time.Duration(sec) * time.Second).UnixNano() }
	batch := []storage.Assignment{
		Lookup("p", "summarizer", 1, "s1", "openai/gpt-4o-mini", 10),
		Lookup("p", "summarizer", 1, "s1", "openai/gpt-4o-mini", 20),
		Lookup("p", "summarizer", 1, "s1", "openai/gpt-4o-mini", 20), // the same lookup twice in one batch
		Lookup("p", "summarizer", 1, "s2", "anthropic/claude-haiku-4.5", 15),
		Lookup("p", "summarizer", 2, "s1", "anthropic/claude-haiku-4.5", 30), // another version: another row
		Lookup("q", "summarizer", 1, "s1", "model-of-q", 5),                  // another project
	}
	batch[1].CustomerID = ptr("cust-1")
	res := writeEvents(t, s, storage.Events{Assignments: batch})
	if res.Stored != 5 || res.Unchanged != 1 || res.Rejected != 0 {
		t.Fatalf("first write: %+v, want 5 stored, 1 unchanged", res)
	}
	want := assignmentRow{model: "openai/gpt-4o-mini", customer: ptr("cust-1"), first: at(10), last: at(20), calls: 2}
	if got := readAssignment(t, b, s, "p", "summarizer", 1, "s1"); fmt.Sprint(got.model, fmtp(got.customer), got.first, got.last, got.calls) !=
		fmt.Sprint(want.model, fmtp(want.customer), want.first, want.last, want.calls) {
		t.Fatalf("p/summarizer/1/s1 = %+v, want %+v", got, want)
	}
	if got := readAssignment(t, b, s, "p", "summarizer", 2, "s1"); got.calls != 1 || got.model != "anthropic/claude-haiku-4.5" {
		t.Fatalf("version 2 row: %+v", got)
	}
	if got := readAssignment(t, b, s, "q", "summarizer", 1, "s1"); got.calls != 1 || got.model != "model-of-q" {
		t.Fatalf("project q row: %+v", got)
	}

	// A redelivery of the whole batch (a retry, a queue replay after a
	// crash) counts nothing again, also after reopening the database.
	s.Close()
	s = reopen()
	if res := writeEvents(t, s, storage.Events{Assignments: batch}); res.Stored != 0 || res.Unchanged != 6 {
		t.Fatalf("redelivery: %+v, want 6 unchanged", res)
	}
	if got := readAssignment(t, b, s, "p", "summarizer", 1, "s1"); got.calls != 2 {
		t.Fatalf("calls after a redelivery = %d, want 2", got.calls)
	}

	// A later lookup counts and takes over the model; an older one that
	// arrives late counts and widens first_seen but changes no model.
	later := Lookup("p", "summarizer", 1, "s1", "anthropic/claude-haiku-4.5", 40)
	older := Lookup("p", "summarizer", 1, "s1", "old-model", 1)
	writeEvents(t, s, storage.Events{Assignments: []storage.Assignment{later}})
	writeEvents(t, s, storage.Events{Assignments: []storage.Assignment{older}})
	got := readAssignment(t, b, s, "p", "summarizer", 1, "s1")
	if got.calls != 4 || got.first != at(1) || got.last != at(40) || got.model != "anthropic/claude-haiku-4.5" || fmtp(got.customer) != "cust-1" {
		t.Fatalf("after a later and a late older lookup: %+v", got)
	}
	var n int64
	b.QueryRow(t, s, "SELECT count(*) FROM assignments", &n)
	if n != 4 {
		t.Fatalf("%d assignment rows, want 4", n)
	}
}

// Writers racing on the same lookups (several collectors, or retries
// overlapping a slow commit) count each lookup once.
func testAssignmentsConcurrent(t *testing.T, b Backend) {
	s, _ := b.New(t)
	const writers, lookups = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []storage.Assignment
			// Each writer sends every lookup, starting at its own offset.
			for i := range lookups {
				sec := (i + w*13) % lookups
				batch = append(batch, Lookup("p", "c", 1, fmt.Sprintf("s%d", sec%5), "m", sec))
			}
			for len(batch) > 0 {
				n := min(7, len(batch))
				if _, err := events(t, s).WriteEvents(context.Background(), storage.Events{Assignments: batch[:n]}); err != nil {
					errs <- err
					return
				}
				batch = batch[n:]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent WriteEvents: %v", err)
	}
	var rows, calls int64
	b.QueryRow(t, s, "SELECT count(*), sum(calls) FROM assignments", &rows, &calls)
	if rows != 5 || calls != lookups {
		t.Fatalf("%d rows with %d calls, want 5 rows with %d calls", rows, calls, lookups)
	}
	b.QueryRow(t, s, "SELECT count(*) FROM assignment_calls", &calls)
	if calls != lookups {
		t.Fatalf("%d recorded lookups, want %d", calls, lookups)
	}
}

// Metric returns a value of metric name of session s received at second sec.
func Metric(project, config, session, name string, value float64, sec int) storage.SessionMetric {
	return storage.SessionMetric{ProjectID: project, ConfigKey: config, SessionID: session, Name: name, Value: value,
		UpdatedAtUnixNano: Base.Add(time.Duration(sec) * time.Second).UnixNano()}
}

func readMetric(t *testing.T, b Backend, s storage.Store, config, session, name string) (float64, int64) {
	t.Helper()
	var v float64
	var at int64
	b.QueryRow(t, s, fmt.Sprintf(`SELECT value, updated_at_unix_nano FROM session_metrics
		WHERE project_id = 'p' AND config_key = '%s' AND session_id = '%s' AND name = '%s'`, config, session, name), &v, &at)
	return v, at
}

func testMetricsLatestWins(t *testing.T, b Backend) {
	s, _ := b.New(t)
	at := func(sec int) int64 { return Base.Add(time.Duration(sec) * time.Second).UnixNano() }
	// In one batch, the latest value of a key wins whatever its position.
	res := writeEvents(t, s, storage.Events{Metrics: []storage.SessionMetric{
		Metric("p", "c", "s1", "outlier_score", 0.9, 20),
		Metric("p", "c", "s1", "outlier_score", 0.5, 10),
		Metric("p", "", "s1", "outlier_score", 0.1, 5), // no config key: a key of its own
		Metric("p", "c", "s2", "resolved", 1, 10),
	}})
	if res.Stored != 3 || res.Unchanged != 1 {
		t.Fatalf("first write: %+v", res)
	}
	if v, ts := readMetric(t, b, s, "c", "s1", "outlier_score"); v != 0.9 || ts != at(20) {
		t.Fatalf("outlier_score = %v at %d, want 0.9 at %d", v, ts, at(20))
	}
	if v, _ := readMetric(t, b, s, "", "s1", "outlier_score"); v != 0.1 {
		t.Fatalf("outlier_score without config = %v, want 0.1", v)
	}
	// An older value arriving later loses; a newer one wins.
	if res := writeEvents(t, s, storage.Events{Metrics: []storage.SessionMetric{Metric("p", "c", "s1", "outlier_score", 0.2, 15)}}); res.Unchanged != 1 {
		t.Fatalf("older value: %+v, want unchanged", res)
	}
	if v, _ := readMetric(t, b, s, "c", "s1", "outlier_score"); v != 0.9 {
		t.Fatalf("an older value arriving later replaced the latest: %v", v)
	}
	if res := writeEvents(t, s, storage.Events{Metrics: []storage.SessionMetric{Metric("p", "c", "s1", "outlier_score", 0.3, 30)}}); res.Stored != 1 {
		t.Fatalf("newer value: %+v, want stored", res)
	}
	if v, ts := readMetric(t, b, s, "c", "s1", "outlier_score"); v != 0.3 || ts != at(30) {
		t.Fatalf("outlier_score = %v at %d, want 0.3 at %d", v, ts, at(30))
	}
	// Two values of the same time: the same winner in either order.
	for _, order := range [][]float64{{4, 7}, {7, 4}} {
		for _, v := range order {
			writeEvents(t, s, storage.Events{Metrics: []storage.SessionMetric{Metric("p", "c", "tie-"+fmt.Sprint(order[0]), "m", v, 50)}})
		}
	}
	for _, sid := range []string{"tie-4", "tie-7"} {
		if v, _ := readMetric(t, b, s, "c", sid, "m"); v != 7 {
			t.Fatalf("%s: equal times kept %v, want 7 whatever the order", sid, v)
		}
	}
}

// EvalBody is an eval upload of FALLOM_SDK.md 5.1 with two results.
const EvalBody = `{"name":"My run","description":null,"dataset_size":2,"judge_model":"openai/gpt-4o-mini",
 "results":[{"input":"q","model":"m","output":"a","is_production":false,"answer_relevancy":0.9,"hallucination":null,
   "toxicity":0,"faithfulness":null,"reasoning":{"answer_relevancy":"..."},"latency_ms":12},
  {"input":"q2","model":"m","output":"b","answer_relevancy":0.5,"hallucination":0.25,"latency_ms":20}]}`

// EvalRun returns the run of EvalBody as the exporter builds it.
func EvalRun(t *testing.T, project, runID string, sec int) storage.EvalRun {
	t.Helper()
	n, scores, err := storage.EvalScores([]byte(EvalBody))
	if err != nil {
		t.Fatal(err)
	}
	return storage.EvalRun{ProjectID: project, RunID: runID, Name: ptr("My run"), DatasetSize: ptr(int64(2)),
		JudgeModel: ptr("openai/gpt-4o-mini"), Results: n, Scores: scores, Body: EvalBody,
		ReceivedAtUnixNano: Base.Add(time.Duration(sec) * time.Second).UnixNano()}
}

func testEvalRuns(t *testing.T, b Backend) {
	s, _ := b.New(t)
	run := EvalRun(t, "p", "run-1", 1)
	if run.Results != 2 || !strings.Contains(run.Scores, `"answer_relevancy":{"mean":0.7,"n":2}`) ||
		!strings.Contains(run.Scores, `"hallucination":{"mean":0.25,"n":1}`) || !strings.Contains(run.Scores, `"toxicity":{"mean":0,"n":1}`) ||
		strings.Contains(run.Scores, "faithfulness") {
		t.Fatalf("EvalScores: %d results, %s", run.Results, run.Scores)
	}
	if res := writeEvents(t, s, storage.Events{EvalRuns: []storage.EvalRun{run, EvalRun(t, "q", "run-1", 2)}}); res.Stored != 2 {
		t.Fatalf("first write: %+v", res)
	}
	if res := writeEvents(t, s, storage.Events{EvalRuns: []storage.EvalRun{run}}); res.Unchanged != 1 || res.Stored != 0 {
		t.Fatalf("redelivery: %+v, want unchanged", res)
	}
	var name, judge, scores, body string
	var results, size int64
	var desc *string
	b.QueryRow(t, s, `SELECT name, description, dataset_size, judge_model, results, scores, body FROM eval_runs
		WHERE project_id = 'p' AND run_id = 'run-1'`, &name, &desc, &size, &judge, &results, &scores, &body)
	if name != "My run" || desc != nil || size != 2 || judge != "openai/gpt-4o-mini" || results != 2 || scores != run.Scores || body != EvalBody {
		t.Fatalf("stored run: %q %v %d %q %d %s", name, desc, size, judge, results, scores)
	}
}

func testBadEvents(t *testing.T, b Backend) {
	s, _ := b.New(t)
	good := Lookup("p", "c", 1, "s1", "m", 1)
	noProject := Lookup("", "c", 1, "s2", "m", 1)
	noSession := Lookup("p", "c", 1, "", "m", 2)
	nan := Metric("p", "c", "s1", "score", math.NaN(), 1)
	inf := Metric("p", "c", "s1", "other", math.Inf(1), 1)
	okMetric := Metric("p", "c", "s1", "resolved", 1, 1)
	badRun := EvalRun(t, "p", "run-x", 1)
	badRun.Body = "{not json"
	res, err := events(t, s).WriteEvents(context.Background(), storage.Events{
		Assignments: []storage.Assignment{good, noProject, noSession},
		Metrics:     []storage.SessionMetric{nan, okMetric, inf},
		EvalRuns:    []storage.EvalRun{badRun},
	})
	if !storage.IsPermanent(err) || res.Stored != 2 || res.Rejected != 5 {
		t.Fatalf("WriteEvents with bad events: %+v %v; want 2 stored, 5 rejected, a permanent error", res, err)
	}
	for _, want := range []string{"no project", "empty session_id", "not a finite number", "not JSON"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var n int64
	b.QueryRow(t, s, "SELECT count(*) FROM assignments WHERE project_id = ''", &n)
	if n != 0 {
		t.Fatal("an assignment was stored under an empty project")
	}
	b.QueryRow(t, s, "SELECT count(*) FROM session_metrics", &n)
	if n != 1 {
		t.Fatalf("%d metrics stored, want 1", n)
	}
	b.QueryRow(t, s, "SELECT count(*) FROM eval_runs", &n)
	if n != 0 {
		t.Fatalf("%d eval runs stored, want 0", n)
	}
}
