package fallomexporter

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fallom/fallom-collector/internal/testutil/freeport"
	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

// startReceiver runs the stock OTLP receiver (HTTP only) in front of next
// and returns its traces URL.
func startReceiver(t *testing.T, next consumer.Traces) string {
	t.Helper()
	return "http://" + startOTLPHTTP(t, func(f receiver.Factory, set receiver.Settings, cfg component.Config) (component.Component, error) {
		return f.CreateTraces(context.Background(), set, cfg, next)
	}) + "/v1/traces"
}

// startOTLPHTTP runs the stock OTLP receiver (HTTP only) made by create
// and returns its address.
func startOTLPHTTP(t *testing.T, create func(receiver.Factory, receiver.Settings, component.Config) (component.Component, error)) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpcServerConfig]()
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
	r, err := create(f, receivertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return addr
}

func postJSON(t *testing.T, url string, td ptrace.Traces) (int, string) {
	t.Helper()
	return postMarshaled(t, url, func() ([]byte, error) { return (&ptrace.JSONMarshaler{}).MarshalTraces(td) })
}

// postMarshaled POSTs the JSON that marshal makes and returns the answer.
func postMarshaled(t *testing.T, url string, marshal func() ([]byte, error)) (int, string) {
	t.Helper()
	body, err := marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// The error classes as an OTLP/HTTP client sees them: 200 when committed,
// 503 (retry) when the database is busy, 400 (do not retry) for data that
// can never be stored.
func TestReceiverStatusCodes(t *testing.T) {
	cfg, path := sqliteConfig(t)
	cfg.Storage.SQLite.BusyTimeout = 50 * time.Millisecond
	cfg.RetryConfig.Enabled = false
	exp := startExporter(t, cfg)
	url := startReceiver(t, exp)

	if code, body := postJSON(t, url, mappedDeliveries("acme", 0, 2)); code != http.StatusOK {
		t.Fatalf("valid delivery: %d %s", code, body)
	}

	invalid := mappedDeliveries("acme", 10, 1)
	invalid.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetSpanID(pcommon.NewSpanIDEmpty())
	if code, body := postJSON(t, url, invalid); code != http.StatusBadRequest || !strings.Contains(body, "span_id") {
		t.Fatalf("span without id: %d %s, want 400 naming the problem", code, body)
	}

	// Another process holds the write lock: retryable.
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if code, body := postJSON(t, url, mappedDeliveries("acme", 20, 1)); code != http.StatusServiceUnavailable {
		t.Fatalf("database locked: %d %s, want 503", code, body)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if code, body := postJSON(t, url, mappedDeliveries("acme", 20, 1)); code != http.StatusOK {
		t.Fatalf("after the lock is released: %d %s", code, body)
	}
	var rows int
	scan(t, openDB(t, path), "SELECT count(*) FROM spans", &rows)
	if rows != 6+2+3 {
		t.Fatalf("%d rows, want 11", rows)
	}
}

var (
	pgOnce   sync.Once
	pgServer *pgtest.Server
	pgErr    error
	pgSerial atomic.Int64
)

// postgresDSN returns a new database on the package's PostgreSQL server.
func postgresDSN(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgServer, pgErr = pgtest.StartServer("") })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	dsn, err := pgServer.CreateDatabase(fmt.Sprintf("exp%d_%d", os.Getpid(), pgSerial.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		_ = pgServer.Stop()
		_ = os.RemoveAll(pgServer.Dir())
	}
	os.Exit(code)
}

func TestPostgresStoresMappedDelivery(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.Driver, cfg.Storage.DSN = DriverPostgres, configopaque.String(postgresDSN(t))
	exp := startExporter(t, cfg)
	for range 3 {
		if err := exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", 0, 5)); err != nil {
			t.Fatal(err)
		}
	}
	conn := pgConnect(t, string(cfg.Storage.DSN))
	var rows, gens, usage, sessions int64
	var cost int64
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM spans WHERE is_generation),
		(SELECT sum(generations)::bigint FROM usage_daily), (SELECT sum(total_cost_nano_usd)::bigint FROM usage_daily), (SELECT count(*) FROM sessions)`).
		Scan(&rows, &gens, &usage, &cost, &sessions); err != nil {
		t.Fatal(err)
	}
	if rows != 15 || gens != 5 || usage != 5 || sessions != 5 || cost != 20_245_000 {
		t.Fatalf("after three deliveries of the same payload: %d rows %d generations %d usage %v cost %d sessions", rows, gens, usage, cost, sessions)
	}
	var attrs, kind string
	if err := conn.QueryRow(context.Background(), "SELECT attributes->>'trace.metadata.openrouter.provider_slug', kind FROM spans WHERE span_id = $1",
		spanID(0, 0).String()).Scan(&attrs, &kind); err != nil {
		t.Fatal(err)
	}
	if attrs != "amazon-bedrock/global" || kind != "CLIENT" {
		t.Fatalf("attributes jsonb: %q, kind %q", attrs, kind)
	}
}

func pgConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// PostgreSQL stopped (fast shutdown) and later crashed (SIGKILL) while four
// clients keep writing through the exporter with its stock retry: every
// request that was acknowledged is stored, once, and the rollup matches.
func TestPostgresRestartUnderLoad(t *testing.T) {
	srv := pgtest.Start(t)
	dsn, err := srv.CreateDatabase("restart")
	if err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.Driver, cfg.Storage.DSN = DriverPostgres, configopaque.String(dsn)
	cfg.Timeout = 5 * time.Second
	cfg.RetryConfig.InitialInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 300 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 2 * time.Minute
	exp := startExporter(t, cfg)

	const perRequest = 2 // deliveries, 6 spans
	var (
		mu      sync.Mutex
		acked   []int // first delivery index of each acknowledged request
		failed  int
		next    atomic.Int64
		stop    atomic.Bool
		writers sync.WaitGroup
	)
	for range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for !stop.Load() {
				first := int(next.Add(1)-1) * perRequest
				err := exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", first, perRequest))
				mu.Lock()
				if err == nil {
					acked = append(acked, first)
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	waitAcked := func(n int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				stop.Store(true)
				t.Fatalf("only %d requests acknowledged, waiting for %d", got, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAcked(20)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // writes pile up in retry while the server is down
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitAcked(before + 20)
	srv.Kill()
	time.Sleep(500 * time.Millisecond)
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before = len(acked)
	mu.Unlock()
	waitAcked(before + 20)
	stop.Store(true)
	writers.Wait()

	sort.Ints(acked)
	t.Logf("%d requests acknowledged, %d failed after retries", len(acked), failed)
	conn := pgConnect(t, dsn)
	for _, first := range acked {
		var n int
		lo, hi := traceID(first).String(), traceID(first+perRequest-1).String()
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM spans WHERE trace_id BETWEEN $1 AND $2", lo, hi).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 3*perRequest {
			t.Fatalf("acknowledged request %d has %d of its %d spans", first, n, 3*perRequest)
		}
	}
	var gens, usage int64
	if err := conn.QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM spans WHERE is_generation), (SELECT coalesce(sum(generations), 0)::bigint FROM usage_daily)").Scan(&gens, &usage); err != nil {
		t.Fatal(err)
	}
	if gens != usage || gens < int64(len(acked)*perRequest) {
		t.Fatalf("%d generation spans, usage_daily counts %d, acknowledged %d", gens, usage, len(acked)*perRequest)
	}
}

type configgrpcServerConfig = configgrpc.ServerConfig
