package fallomexporter

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fallom/fallom-collector/exporter/fallomexporter/internal/metadata"
	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

func sqliteConfig(t testing.TB) (*Config, string) {
	path := filepath.Join(t.TempDir(), "data", "fallom.db")
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.DSN = configopaque.String(path)
	return cfg, path
}

func startExporter(t testing.TB, cfg *Config) exporter.Traces {
	t.Helper()
	return startSignal(t, cfg, NewFactory().CreateTraces)
}

// startSignal creates the exporter of one signal from cfg, starts it and
// shuts it down at the end of the test.
func startSignal[E component.Component](t testing.TB, cfg *Config,
	create func(context.Context, exporter.Settings, component.Config) (E, error)) E {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exp, err := create(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return exp
}

// openDB opens a second, independent connection to the exporter's SQLite
// file, as a user's query tool would.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func scan(t testing.TB, db *sql.DB, query string, dest ...any) {
	t.Helper()
	if err := db.QueryRow(query).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestStoresMappedDelivery(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startExporter(t, cfg)
	if err := exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", 0, 3)); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	var rows, gens int
	scan(t, db, "SELECT count(*), sum(is_generation) FROM spans", &rows, &gens)
	if rows != 9 || gens != 3 {
		t.Fatalf("%d rows %d generations, want 9 and 3", rows, gens)
	}

	root := traceID(1)
	rootSpan := spanID(1, 0)
	var (
		project, trace, span, name, kind, status, session, customer, model, reqModel, provider, op, costSource, finish, source string
		prompt, completion, attrs, resAttrs                                                                                    string
		parent, statusMsg                                                                                                      sql.NullString
		start, end, received, in, out, total, cached, cacheWrite, reasoning                                                    int64
		duration, inCost, outCost, totalCost, ttft                                                                             float64
		isGen, streamed                                                                                                        bool
	)
	scan(t, db, `SELECT project_id, trace_id, span_id, parent_span_id, name, kind, status_code, status_message,
		start_time_unix_nano, end_time_unix_nano, duration_ms, received_at_unix_nano, is_generation, session_id, customer_id,
		model, requested_model, provider, operation, input_tokens, output_tokens, total_tokens, cached_input_tokens,
		cache_write_input_tokens, reasoning_tokens, input_cost_usd, output_cost_usd, total_cost_usd, cost_source,
		finish_reason, time_to_first_token_ms, streamed, prompt, completion, source, attributes, resource_attributes
		FROM spans WHERE span_id = '`+rootSpan.String()+`'`,
		&project, &trace, &span, &parent, &name, &kind, &status, &statusMsg, &start, &end, &duration, &received, &isGen,
		&session, &customer, &model, &reqModel, &provider, &op, &in, &out, &total, &cached, &cacheWrite, &reasoning,
		&inCost, &outCost, &totalCost, &costSource, &finish, &ttft, &streamed, &prompt, &completion, &source, &attrs, &resAttrs)
	if project != "acme" || trace != root.String() || span != rootSpan.String() || parent.Valid || statusMsg.Valid {
		t.Fatalf("ids: %s %s %s %v %v", project, trace, span, parent, statusMsg)
	}
	if trace != strings.ToLower(trace) || len(trace) != 32 || len(span) != 16 {
		t.Fatalf("ids are not lowercase hex: %s %s", trace, span)
	}
	if name != "LLM Generation" || kind != "CLIENT" || status != "OK" || !isGen {
		t.Fatalf("span fields: %s %s %s %v", name, kind, status, isGen)
	}
	if start != int64(baseUnixNano+1_000_000_000) || end-start != 1_890_000_000 || duration != 1890 || received <= 0 {
		t.Fatalf("timing: %d %d %v %d", start, end, duration, received)
	}
	if session != "conversation-1" || customer != "customer-1" || model != "anthropic/claude-haiku-4.5" ||
		reqModel != model || provider != "Amazon Bedrock" || op != "chat" || source != "openrouter" {
		t.Fatalf("grouping: %s %s %s %s %s %s %s", session, customer, model, reqModel, provider, op, source)
	}
	if in != 2489 || out != 312 || total != 2801 || cached != 1024 || cacheWrite != 0 || reasoning != 0 {
		t.Fatalf("tokens: %d %d %d %d %d %d", in, out, total, cached, cacheWrite, reasoning)
	}
	if inCost != 0.002489 || outCost != 0.00156 || totalCost != 0.004049 || costSource != "reported" || finish != "stop" ||
		ttft != 412 || !streamed {
		t.Fatalf("cost and timing: %v %v %v %s %s %v %v", inCost, outCost, totalCost, costSource, finish, ttft, streamed)
	}
	if !strings.HasPrefix(prompt, `[{"role":"system"`) || !strings.HasPrefix(completion, `{"completion":`) {
		t.Fatalf("content: %.60s / %.60s", prompt, completion)
	}
	var a, r map[string]any
	if err := json.Unmarshal([]byte(attrs), &a); err != nil {
		t.Fatalf("attributes is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(resAttrs), &r); err != nil {
		t.Fatalf("resource_attributes is not JSON: %v", err)
	}
	for k := range a {
		if strings.HasPrefix(k, fallomattr.Prefix) {
			t.Errorf("canonical attribute %s stored twice (column and attributes)", k)
		}
	}
	if a["trace.metadata.openrouter.provider_slug"] != "amazon-bedrock/global" || a["gen_ai.usage.input_tokens"] != 2489.0 ||
		a["trace.metadata.openrouter.inter_token_latency_ms"] != 4.6 || len(a) != 44 {
		t.Fatalf("attributes JSON lost data (%d keys): %s", len(a), attrs)
	}
	if r["service.name"] != "openrouter" || r[fallomattr.ProjectID] != nil || len(r) != 3 {
		t.Fatalf("resource_attributes: %s", resAttrs)
	}

	var childParent string
	var childGen bool
	var childModel sql.NullString
	scan(t, db, "SELECT parent_span_id, is_generation, model FROM spans WHERE span_id = '"+spanID(1, 1).String()+"'",
		&childParent, &childGen, &childModel)
	if childParent != rootSpan.String() || childGen || childModel.Valid {
		t.Fatalf("child: parent %s generation %v model %v", childParent, childGen, childModel)
	}
	var sessions, usageGens int
	scan(t, db, "SELECT count(*) FROM sessions", &sessions)
	scan(t, db, "SELECT sum(generations) FROM usage_daily", &usageGens)
	if sessions != 3 || usageGens != 3 {
		t.Fatalf("%d sessions %d usage generations, want 3 and 3", sessions, usageGens)
	}
}

// A span that never met the processor is stored whole: project "default",
// not a generation, canonical columns NULL, every attribute in JSON -
// including values JSON cannot carry directly.
func TestStoresPlainSpan(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startExporter(t, cfg)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{0xAB, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	sp.SetSpanID(pcommon.SpanID{0xCD, 1, 2, 3, 4, 5, 6, 7})
	sp.SetParentSpanID(pcommon.SpanID{0xEF, 1, 2, 3, 4, 5, 6, 7})
	sp.SetName("POST /pay")
	sp.SetKind(ptrace.SpanKindServer)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("card declined")
	sp.SetStartTimestamp(2_000_000_000)
	sp.SetEndTimestamp(1_000_000_000) // end before start: kept, duration 0
	a := sp.Attributes()
	a.PutStr("http.method", "POST")
	a.PutDouble("nan", math.NaN())
	a.PutDouble("inf", math.Inf(-1))
	a.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
	a.PutStr("bad\x00key", "bad utf8 \xff and nul \x00 and <html> & \"quotes\"")
	m := a.PutEmptyMap("nested")
	m.PutInt("n", 1)
	m.PutEmptySlice("list").AppendEmpty().SetBool(true)
	a.PutEmpty("empty")
	if err := exp.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	var project, trace, parent, kind, status, msg, attrs string
	var isGen bool
	var duration float64
	var nulls int
	scan(t, db, `SELECT project_id, trace_id, parent_span_id, kind, status_code, status_message, is_generation, duration_ms, attributes,
		(session_id IS NULL) + (model IS NULL) + (input_tokens IS NULL) + (total_cost_usd IS NULL) + (cost_source IS NULL) + (prompt IS NULL) + (source IS NULL) + (streamed IS NULL)
		FROM spans`, &project, &trace, &parent, &kind, &status, &msg, &isGen, &duration, &attrs, &nulls)
	if project != fallomattr.DefaultProjectID || trace != "ab0102030405060708090a0b0c0d0e0f" || parent != "ef01020304050607" ||
		kind != "SERVER" || status != "ERROR" || msg != "card declined" || isGen || duration != 0 || nulls != 8 {
		t.Fatalf("plain span: %s %s %s %s %s %s %v %v %d", project, trace, parent, kind, status, msg, isGen, duration, nulls)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(attrs), &got); err != nil {
		t.Fatalf("attributes is not valid JSON: %v\n%s", err, attrs)
	}
	if got["nan"] != "NaN" || got["inf"] != "-Infinity" || got["raw"] != "AAEC" || got["empty"] != nil ||
		got["bad\uFFFDkey"] != "bad utf8 \uFFFD and nul \uFFFD and <html> & \"quotes\"" {
		t.Fatalf("attributes: %s", attrs)
	}
	if nested, _ := got["nested"].(map[string]any); nested["n"] != 1.0 || len(nested["list"].([]any)) != 1 {
		t.Fatalf("nested: %s", attrs)
	}
	if strings.Contains(attrs, `\u003c`) {
		t.Fatalf("attributes are HTML-escaped (wasted bytes): %s", attrs)
	}
}

// Canonical attributes of a type their column cannot hold stay in the
// attributes JSON; convertible ones are converted; non-column fallom.* flags
// stay in the JSON.
func TestCanonicalTypes(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startExporter(t, cfg)
	td := mappedDeliveries("p", 0, 1)
	a := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	a.PutStr(fallomattr.OutputTokens, " 77 ")
	a.PutStr(fallomattr.InputTokens, "many")
	a.PutDouble(fallomattr.TotalCostUSD, math.NaN())
	a.PutDouble(fallomattr.ReasoningTokens, 5)
	a.PutStr(fallomattr.IsGeneration, "true")
	a.PutEmptySlice(fallomattr.FlagTruncated).AppendEmpty().SetStr("prompt")
	a.PutEmptyMap(fallomattr.SessionID).PutStr("weird", "map")
	if err := exp.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	var out, reasoning int64
	var in sql.NullInt64
	var cost sql.NullFloat64
	var session sql.NullString
	var isGen bool
	var attrs string
	scan(t, db, "SELECT output_tokens, input_tokens, total_cost_usd, reasoning_tokens, is_generation, session_id, attributes FROM spans WHERE span_id = '"+spanID(0, 0).String()+"'",
		&out, &in, &cost, &reasoning, &isGen, &session, &attrs)
	if out != 77 || in.Valid || cost.Valid || reasoning != 5 || !isGen || session.Valid {
		t.Fatalf("columns: out %d in %v cost %v reasoning %d gen %v session %v", out, in, cost, reasoning, isGen, session)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(attrs), &got); err != nil {
		t.Fatal(err)
	}
	if got[fallomattr.InputTokens] != "many" || got[fallomattr.TotalCostUSD] != "NaN" || got[fallomattr.SessionID] == nil ||
		got[fallomattr.FlagTruncated] == nil || got[fallomattr.OutputTokens] != nil {
		t.Fatalf("attributes: %s", attrs)
	}
	var unknown int
	scan(t, db, "SELECT unknown_cost_generations FROM usage_daily", &unknown)
	if unknown != 1 {
		t.Fatalf("unknown_cost_generations = %d, want 1", unknown)
	}
}

func TestReplayIsANoOp(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startExporter(t, cfg)
	for range 4 {
		if err := exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", 0, 10)); err != nil {
			t.Fatal(err)
		}
	}
	db := openDB(t, path)
	var rows, gens int
	var cost int64
	scan(t, db, "SELECT count(*), (SELECT sum(generations) FROM usage_daily), (SELECT sum(total_cost_nano_usd) FROM usage_daily) FROM spans", &rows, &gens, &cost)
	if rows != 30 || gens != 10 || cost != 40_490_000 {
		t.Fatalf("after 4 deliveries of the same payload: %d rows %d generations %v cost", rows, gens, cost)
	}
}

// Spans without ids are rejected with a permanent error that names them;
// the rest of the request is stored.
func TestInvalidSpanIsPermanent(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startExporter(t, cfg)
	td := mappedDeliveries("acme", 0, 2)
	bad := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0)
	bad.SetTraceID(pcommon.NewTraceIDEmpty())
	err := exp.ConsumeTraces(context.Background(), td)
	if err == nil || !consumererror.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if !strings.Contains(err.Error(), "empty (all-zero) trace_id") || !strings.Contains(err.Error(), bad.Name()) {
		t.Fatalf("error does not explain: %v", err)
	}
	var rows int
	scan(t, openDB(t, path), "SELECT count(*) FROM spans", &rows)
	if rows != 5 {
		t.Fatalf("%d rows stored, want the 5 valid spans", rows)
	}
}

// With the default config, ConsumeTraces returns only once the spans are
// committed: a separate connection sees every span of every request the
// moment its call returns, while many requests run concurrently (and are
// merged into shared transactions).
func TestDefaultConfigAcksAfterCommit(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startExporter(t, cfg)
	db := openDB(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 10 {
				first := (w*10 + r) * 5
				if err := exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", first, 5)); err != nil {
					errs <- err
					return
				}
				var n int
				lo, hi := traceID(first).String(), traceID(first+4).String()
				if err := db.QueryRow("SELECT count(*) FROM spans WHERE trace_id BETWEEN ? AND ?", lo, hi).Scan(&n); err != nil {
					errs <- err
					return
				}
				if n != 15 {
					errs <- errorf("request %d acknowledged but only %d of its 15 spans are committed", first, n)
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
	var rows int
	scan(t, db, "SELECT count(*) FROM spans", &rows)
	if rows != 8*10*15 {
		t.Fatalf("%d rows, want %d", rows, 8*10*15)
	}
}

// With the queue disabled each request is its own transaction; the ack is
// after commit too.
func TestNoQueueAcksAfterCommit(t *testing.T) {
	cfg, path := sqliteConfig(t)
	cfg.QueueConfig = configoptional.None[QueueBatchConfigAlias]()
	exp := startExporter(t, cfg)
	if err := exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", 0, 4)); err != nil {
		t.Fatal(err)
	}
	var rows int
	scan(t, openDB(t, path), "SELECT count(*) FROM spans", &rows)
	if rows != 12 {
		t.Fatalf("%d rows, want 12", rows)
	}
}

type QueueBatchConfigAlias = exporterhelper.QueueBatchConfig

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Retention configured in days clears content, then deletes spans, by the
// time the collector stored them; usage_daily stays.
func TestRetentionFromConfig(t *testing.T) {
	cfg, path := sqliteConfig(t)
	exp := startRetentionExporter(t, cfg)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i, age := range []int{1, 10, 40} {
		exp.now = func() time.Time { return now.Add(-time.Duration(age) * 24 * time.Hour) }
		if err := exp.pushTraces(context.Background(), mappedDeliveries("acme", i*10, 2)); err != nil {
			t.Fatal(err)
		}
	}
	exp.now = func() time.Time { return now }
	exp.applyRetention(context.Background())
	db := openDB(t, path)
	var rows, withPrompt, gens int
	scan(t, db, "SELECT count(*), count(prompt), (SELECT sum(generations) FROM usage_daily) FROM spans", &rows, &withPrompt, &gens)
	if rows != 12 || withPrompt != 2 || gens != 6 {
		t.Fatalf("after retention: %d rows, %d with a prompt, %d generations in usage_daily; want 12, 2, 6", rows, withPrompt, gens)
	}
}

// startRetentionExporter starts the exporter of cfg with retention of
// content after 7 days and spans after 30, in batches of 2; the test runs
// its passes (applyRetention) at the times it sets.
func startRetentionExporter(t *testing.T, cfg *Config) *fallomExporter {
	t.Helper()
	cfg.Retention = RetentionConfig{ContentDays: 7, SpanDays: 30, Interval: time.Hour, BatchSize: 2}
	exp, err := newFallomExporter(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exp.shutdown(context.Background()) }) //nolint:errcheck // the test is over
	return exp
}

// A PostgreSQL that is not there yet does not stop the collector from
// starting, and neither the logs nor the write errors show the password.
func TestPostgresUnreachableAtStartRedactsPassword(t *testing.T) {
	const secret = "pa55-w0rd-never-logged"
	port, err := freeport.Port() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.Driver = DriverPostgres
	cfg.Storage.DSN = configopaque.String(fmt.Sprintf("postgres://fallom:%s@127.0.0.1:%d/fallom?sslmode=disable&connect_timeout=2", secret, port))
	cfg.RetryConfig.Enabled = false
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	core, logs := observer.New(zap.DebugLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	exp, err := NewFactory().CreateTraces(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start with PostgreSQL down: %v", err)
	}
	defer exp.Shutdown(context.Background())
	err = exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", 0, 1))
	if err == nil || consumererror.IsPermanent(err) {
		t.Fatalf("write with PostgreSQL down: %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("write error shows the password: %v", err)
	}
	var warned bool
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += fmt.Sprintf(" %s=%v", k, v)
		}
		if strings.Contains(line, secret) {
			t.Fatalf("log shows the password: %s", line)
		}
		if strings.Contains(line, "not reachable yet") && strings.Contains(line, "fallom:xxxxx@") {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warning naming the (redacted) database; logs: %v", logs.All())
	}
}

// Two fallom exporters (two pipelines) naming one database share one
// backend: one connection pool, one migration run, one SQLite writer.
func TestExportersShareOneBackend(t *testing.T) {
	cfg, path := sqliteConfig(t)
	var exps [2]*fallomExporter
	for i := range exps {
		exp, err := newFallomExporter(cfg, componenttest.NewNopTelemetrySettings())
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		exps[i] = exp
	}
	if exps[0].store != exps[1].store {
		t.Fatal("two exporters on one database opened two backends")
	}
	for i, exp := range exps {
		if err := exp.pushTraces(context.Background(), mappedDeliveries("acme", i*10, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := exps[0].shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The other exporter still writes after the first shut down.
	if err := exps[1].pushTraces(context.Background(), mappedDeliveries("acme", 20, 2)); err != nil {
		t.Fatal(err)
	}
	if err := exps[1].shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rows int
	scan(t, openDB(t, path), "SELECT count(*) FROM spans", &rows)
	if rows != 18 {
		t.Fatalf("%d rows, want 18", rows)
	}
}
