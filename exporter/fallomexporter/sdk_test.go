package fallomexporter

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

// The contract's six experiment attributes land in their columns and
// leave the attributes JSON; a value of the wrong type stays in the JSON
// and its column is NULL.
func TestSDKSpanExperimentColumns(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startExporter(t, cfg)
	td := ptrace.NewTraces()
	sp := newSpan(td, "acme")
	sp.SetTraceID(traceID(1))
	sp.SetSpanID(spanID(1, 0))
	sp.SetName("chat.completions.create")
	a := sp.Attributes()
	a.PutStr(fallomattr.Source, "fallom")
	a.PutBool(fallomattr.IsGeneration, true)
	a.PutStr(fallomattr.SessionID, "session-123")
	a.PutStr(fallomattr.ConfigKey, "my-agent")
	a.PutInt(fallomattr.ConfigVersion, 2)
	a.PutStr(fallomattr.PromptKey, "onboarding")
	a.PutInt(fallomattr.PromptVersion, 3)
	a.PutStr(fallomattr.PromptABTestKey, "onboarding-test")
	a.PutInt(fallomattr.PromptVariantIndex, 1)
	a.PutStr("fallom.sdk_version", "2")
	other := newSpan(td, "acme")
	other.SetTraceID(traceID(1))
	other.SetSpanID(spanID(1, 1))
	other.Attributes().PutStr(fallomattr.PromptVersion, "latest") // not an int
	other.Attributes().PutInt(fallomattr.PromptVariantIndex, -1)  // not an index
	if err := exp.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	var config, prompt, test, attrs string
	var cv, pv, vi int64
	scan(t, db, `SELECT config_key, config_version, prompt_key, prompt_version, prompt_ab_test_key, prompt_variant_index, attributes
		FROM spans WHERE span_id = '`+spanHex(spanID(1, 0))+`'`, &config, &cv, &prompt, &pv, &test, &vi, &attrs)
	if config != "my-agent" || cv != 2 || prompt != "onboarding" || pv != 3 || test != "onboarding-test" || vi != 1 {
		t.Fatalf("columns: %q %d %q %d %q %d", config, cv, prompt, pv, test, vi)
	}
	if attrs != `{"fallom.sdk_version":"2"}` {
		t.Fatalf("attributes JSON %s: the mapped keys must leave it", attrs)
	}
	var pvNull, viNull sql.NullInt64
	scan(t, db, `SELECT prompt_version, prompt_variant_index, attributes FROM spans WHERE span_id = '`+spanHex(spanID(1, 1))+`'`,
		&pvNull, &viNull, &attrs)
	if pvNull.Valid || viNull.Valid || !strings.Contains(attrs, `"fallom.prompt_version":"latest"`) ||
		!strings.Contains(attrs, `"fallom.prompt_variant_index":-1`) {
		t.Fatalf("badly typed experiment fields: %v %v %s; want NULL columns and the values kept in the JSON", pvNull, viNull, attrs)
	}
}

func startLogsExporter(t testing.TB, cfg *Config) exporter.Logs {
	t.Helper()
	return startSignal(t, cfg, NewFactory().CreateLogs)
}

var receivedAt = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

// sdkLogs returns the records the fallomsdk receiver makes, stamped with
// project (none when ""), as the processor leaves them.
func sdkLogs(project string, add func(plog.LogRecordSlice)) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if project != "" {
		rl.Resource().Attributes().PutStr(fallomattr.ProjectID, project)
	}
	add(rl.ScopeLogs().AppendEmpty().LogRecords())
	return ld
}

func record(records plog.LogRecordSlice, event string, sec int) plog.LogRecord {
	r := records.AppendEmpty()
	r.SetEventName(event)
	ts := pcommon.NewTimestampFromTime(receivedAt.Add(time.Duration(sec) * time.Second))
	r.SetTimestamp(ts)
	r.SetObservedTimestamp(ts)
	return r
}

func assignment(records plog.LogRecordSlice, session, model string, sec int) {
	a := record(records, EventAssignment, sec).Attributes()
	a.PutStr(fallomattr.ConfigKey, "my-agent")
	a.PutInt(fallomattr.ConfigVersion, 2)
	a.PutStr(fallomattr.SessionID, session)
	a.PutStr(attrAssignedModel, model)
}

func sessionMetric(records plog.LogRecordSlice, session, name string, value float64, sec int) {
	a := record(records, EventSessionMetric, sec).Attributes()
	a.PutStr(fallomattr.ConfigKey, "my-agent")
	a.PutStr(fallomattr.SessionID, session)
	a.PutStr(attrMetricName, name)
	a.PutDouble(attrMetricValue, value)
}

func evalRun(records plog.LogRecordSlice, runID string, sec int) {
	r := record(records, EventEvalRun, sec)
	r.Attributes().PutStr(attrEvalRunID, runID)
	r.Body().SetStr(storagetest.EvalBody)
}

// The logs signal with the default config (queue, batching, wait for the
// result): when ConsumeLogs returns, the events are committed; a
// redelivery counts nothing again; the latest metric wins.
func TestSDKEventsStored(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startLogsExporter(t, cfg)
	ld := sdkLogs("acme", func(r plog.LogRecordSlice) {
		assignment(r, "session-123", "gpt-4o", 1)
		assignment(r, "session-123", "gpt-4o", 2)
		r.At(1).Attributes().PutStr(fallomattr.CustomerID, "cust-1")
		assignment(r, "user-123-convo-456", "claude-3-5-sonnet", 3)
		sessionMetric(r, "session-123", "outlier_score", 0.8, 4)
		sessionMetric(r, "session-123", "outlier_score", 0.3, 2) // older: loses
		evalRun(r, "run-1", 5)
	})
	ctx := context.Background()
	if err := exp.ConsumeLogs(ctx, ld); err != nil {
		t.Fatal(err)
	}
	if err := exp.ConsumeLogs(ctx, ld); err != nil { // a redelivery
		t.Fatal(err)
	}
	db := openDB(t, path)
	var calls, first, last int64
	var model, customer string
	scan(t, db, `SELECT calls, first_seen_unix_nano, last_seen_unix_nano, assigned_model, customer_id FROM assignments
		WHERE project_id = 'acme' AND config_key = 'my-agent' AND config_version = 2 AND session_id = 'session-123'`,
		&calls, &first, &last, &model, &customer)
	if calls != 2 || first != receivedAt.Add(time.Second).UnixNano() || last != receivedAt.Add(2*time.Second).UnixNano() ||
		model != "gpt-4o" || customer != "cust-1" {
		t.Fatalf("assignment: %d calls %d..%d %q %q", calls, first, last, model, customer)
	}
	var n int64
	scan(t, db, "SELECT count(*) FROM assignments", &n)
	if n != 2 {
		t.Fatalf("%d assignment rows, want 2", n)
	}
	var v float64
	scan(t, db, `SELECT value FROM session_metrics WHERE project_id = 'acme' AND config_key = 'my-agent'
		AND session_id = 'session-123' AND name = 'outlier_score'`, &v)
	if v != 0.8 {
		t.Fatalf("outlier_score = %v, want the latest 0.8", v)
	}
	var name, judge, scores string
	var results, size int64
	scan(t, db, `SELECT name, judge_model, dataset_size, results, scores FROM eval_runs WHERE project_id = 'acme' AND run_id = 'run-1'`,
		&name, &judge, &size, &results, &scores)
	if name != "My run" || judge != "openai/gpt-4o-mini" || size != 2 || results != 2 || !strings.Contains(scores, `"answer_relevancy":{"mean":0.7,"n":2}`) {
		t.Fatalf("eval run: %q %q %d %d %s", name, judge, size, results, scores)
	}
}

// Records that can never be stored are refused permanently, naming the
// problem; the valid records of the same batch are committed; a record
// without a project is never stored (under "" or "default").
func TestSDKEventsRefused(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startLogsExporter(t, cfg)
	ctx := context.Background()
	err := exp.ConsumeLogs(ctx, sdkLogs("", func(r plog.LogRecordSlice) { assignment(r, "s1", "m", 1) }))
	if !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "no project") {
		t.Fatalf("record without a project: %v, want a permanent error saying so", err)
	}
	mixed := sdkLogs("acme", func(r plog.LogRecordSlice) {
		assignment(r, "s1", "m", 1)
		record(r, "fallom.sdk.unknown", 2)
		bad := record(r, EventAssignment, 3).Attributes()
		bad.PutStr(fallomattr.ConfigKey, "my-agent")
		bad.PutStr(fallomattr.ConfigVersion, "two")
		bad.PutStr(fallomattr.SessionID, "s2")
		bad.PutStr(attrAssignedModel, "m")
		sessionMetric(r, "s1", "nan", 0, 4)
		r.At(3).Attributes().PutStr(attrMetricValue, "high")
		ev := record(r, EventEvalRun, 5)
		ev.Attributes().PutStr(attrEvalRunID, "run-bad")
		ev.Body().SetStr("[1, 2")
	})
	err = exp.ConsumeLogs(ctx, mixed)
	if !consumererror.IsPermanent(err) {
		t.Fatalf("mixed batch: %v, want a permanent error", err)
	}
	for _, want := range []string{`unknown event "fallom.sdk.unknown"`, "fallom.config_version must be an int",
		"fallom.metric.value must be a number", "not a JSON object"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	db := openDB(t, path)
	var n int64
	scan(t, db, "SELECT count(*) FROM assignments WHERE project_id = 'acme' AND session_id = 's1'", &n)
	if n != 1 {
		t.Fatalf("the valid assignment of the mixed batch was not stored (%d rows)", n)
	}
	scan(t, db, "SELECT (SELECT count(*) FROM assignments) + (SELECT count(*) FROM session_metrics) + (SELECT count(*) FROM eval_runs)", &n)
	if n != 1 {
		t.Fatalf("%d event rows stored, want only the valid assignment", n)
	}
}

// startLogsReceiver runs the stock OTLP receiver (HTTP) for logs in front
// of next and returns its logs URL.
func startLogsReceiver(t *testing.T, next consumer.Logs) string {
	t.Helper()
	return "http://" + startOTLPHTTP(t, func(f receiver.Factory, set receiver.Settings, cfg component.Config) (component.Component, error) {
		return f.CreateLogs(context.Background(), set, cfg, next)
	}) + "/v1/logs"
}

// Through a real receiver: a client sees 200 once the events are
// committed, 400 (do not retry) for events that can never be stored.
func TestSDKEventsReceiverStatusCodes(t *testing.T) {
	cfg, path := sqliteConfig(t)
	cfg.RetryConfig.Enabled = false
	url := startLogsReceiver(t, startLogsExporter(t, cfg))
	post := func(ld plog.Logs) (int, string) {
		return postMarshaled(t, url, func() ([]byte, error) { return (&plog.JSONMarshaler{}).MarshalLogs(ld) })
	}
	if code, body := post(sdkLogs("acme", func(r plog.LogRecordSlice) { assignment(r, "s1", "m", 1) })); code != http.StatusOK {
		t.Fatalf("valid assignment: %d %s", code, body)
	}
	var n int64
	scan(t, openDB(t, path), "SELECT calls FROM assignments WHERE project_id = 'acme' AND session_id = 's1'", &n)
	if n != 1 {
		t.Fatalf("after a 200 the assignment has %d calls, want 1", n)
	}
	if code, body := post(sdkLogs("", func(r plog.LogRecordSlice) { assignment(r, "s2", "m", 2) })); code != http.StatusBadRequest ||
		!strings.Contains(body, "no project") {
		t.Fatalf("record without a project: %d %s, want 400 saying so", code, body)
	}
}

// Retention configured in days covers the Fallom SDK tables: content_days
// clears an eval run's body (the eval inputs and outputs) and keeps the run;
// span_days deletes the events older than the spans.
func TestRetentionCoversSDKEvents(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startRetentionExporter(t, cfg)
	if err := exp.pushLogs(context.Background(), sdkLogs("acme", func(r plog.LogRecordSlice) {
		assignment(r, "session-123", "gpt-4o", 1)
		sessionMetric(r, "session-123", "outlier_score", 0.8, 2)
		evalRun(r, "run-1", 3)
	})); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	count := func() (n int64) {
		scan(t, db, `SELECT (SELECT count(*) FROM assignments) + (SELECT count(*) FROM assignment_calls)
			+ (SELECT count(*) FROM session_metrics) + (SELECT count(*) FROM eval_runs)`, &n)
		return n
	}

	exp.now = func() time.Time { return receivedAt.Add(10 * 24 * time.Hour) }
	exp.applyRetention(context.Background())
	var body, scores string
	scan(t, db, "SELECT body, scores FROM eval_runs WHERE project_id = 'acme' AND run_id = 'run-1'", &body, &scores)
	if body != "" || !strings.Contains(scores, "answer_relevancy") || count() != 4 {
		t.Fatalf("after 10 days: body %q, scores %s, %d rows; want the body cleared, the run and the other events kept", body, scores, count())
	}

	exp.now = func() time.Time { return receivedAt.Add(31 * 24 * time.Hour) }
	exp.applyRetention(context.Background())
	if n := count(); n != 0 {
		t.Fatalf("after 31 days: %d SDK rows left, want none", n)
	}
}
