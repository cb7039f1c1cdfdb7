package fallomexporter

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Benchmarks of the storage write path: realistic OpenRouter deliveries
// (root generation with ~60 attributes and ~4 KB of prompt and completion,
// plus its two children) already mapped by the processor, converted and
// written in one transaction per batch, each batch new data (inserts, not
// replays). Run with:
//
//	go test -run '^$' -bench 'BenchmarkWrite|BenchmarkAckModes|BenchmarkBytesPerSpan' ./exporter/fallomexporter/

func newBenchExporter(b *testing.B, cfg *Config) *fallomExporter {
	b.Helper()
	exp, err := newFallomExporter(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = exp.shutdown(context.Background()) })
	return exp
}

func benchWrite(b *testing.B, cfg *Config) {
	for _, spans := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", spans), func(b *testing.B) {
			exp := newBenchExporter(b, cfg)
			perBatch := spans / 3 // deliveries of 3 spans
			next := 0
			written := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				td := mappedDeliveries("acme", next, perBatch)
				next += perBatch
				b.StartTimer()
				if err := exp.pushTraces(context.Background(), td); err != nil {
					b.Fatal(err)
				}
				written += td.SpanCount()
			}
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

func BenchmarkWriteSQLite(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			cfg, _ := sqliteConfig(b)
			cfg.Storage.SQLite.Synchronous = sync
			benchWrite(b, cfg)
		})
	}
}

func BenchmarkWritePostgres(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.Driver = DriverPostgres
	cfg.Storage.DSN = configopaque.String(postgresDSN(b))
	benchWrite(b, cfg)
}

// BenchmarkAckModes compares the two configurations that acknowledge only
// after commit, with 32 concurrent clients each sending one OpenRouter
// delivery per request (what a busy Broadcast destination sees): the
// default (queue with wait_for_result, 64 consumers, no batching) and the
// queue disabled. In both, concurrent requests share transactions through
// the storage's group commit (README "Durability").
func BenchmarkAckModes(b *testing.B) {
	modes := map[string]func(*Config){
		"queue_wait": func(*Config) {},
		"no_queue":   func(c *Config) { c.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]() },
	}
	for _, driver := range []string{DriverSQLite, DriverPostgres} {
		for _, mode := range []string{"queue_wait", "no_queue"} {
			b.Run(driver+"/"+mode, func(b *testing.B) {
				cfg, _ := sqliteConfig(b)
				if driver == DriverPostgres {
					cfg.Storage.Driver, cfg.Storage.DSN = DriverPostgres, configopaque.String(postgresDSN(b))
				}
				modes[mode](cfg)
				exp := startExporter(b, cfg)
				var next atomic.Int64
				var spans atomic.Int64
				b.SetParallelism(16) // x GOMAXPROCS clients
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						td := mappedDeliveries("acme", int(next.Add(1)), 1)
						if err := exp.ConsumeTraces(context.Background(), td); err != nil {
							b.Error(err)
							return
						}
						spans.Add(int64(td.SpanCount()))
					}
				})
				b.ReportMetric(float64(spans.Load())/b.Elapsed().Seconds(), "spans/s")
			})
		}
	}
}

// storedSize writes n deliveries and returns the OTLP JSON bytes that
// carried them (one request per delivery, as OpenRouter sends them), the
// bytes the database uses for them, and the number of spans.
func storedSize(tb testing.TB, driver string, n int) (jsonBytes, storedBytes int64, spans int) {
	tb.Helper()
	cfg, path := sqliteConfig(tb)
	if driver == DriverPostgres {
		cfg.Storage.Driver, cfg.Storage.DSN = DriverPostgres, configopaque.String(postgresDSN(tb))
	}
	exp, err := newFallomExporter(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		tb.Fatal(err)
	}
	if err := exp.start(context.Background(), componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	// An empty database is not free: measure the growth.
	base := dbSize(tb, exp, driver, path)
	var m ptrace.JSONMarshaler
	const perBatch = 100
	for first := 0; first < n; first += perBatch {
		batch := ptrace.NewTraces()
		for i := first; i < first+perBatch && i < n; i++ {
			raw, mapped := deliveries("acme", i, 1, 4096)
			body, err := m.MarshalTraces(raw)
			if err != nil {
				tb.Fatal(err)
			}
			jsonBytes += int64(len(body))
			mapped.ResourceSpans().MoveAndAppendTo(batch.ResourceSpans())
		}
		spans += batch.SpanCount()
		if err := exp.pushTraces(context.Background(), batch); err != nil {
			tb.Fatal(err)
		}
	}
	storedBytes = dbSize(tb, exp, driver, path) - base
	if err := exp.shutdown(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return jsonBytes, storedBytes, spans
}

// dbSize is the SQLite file after a WAL checkpoint (so every committed page
// is in the main file and the WAL is empty), or for PostgreSQL the total
// size of the tables, their indexes and TOAST data.
func dbSize(tb testing.TB, exp *fallomExporter, driver, path string) int64 {
	tb.Helper()
	ctx := context.Background()
	if driver == DriverSQLite {
		db := exp.store.(interface{ DB() *sqlDB }).DB()
		if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			tb.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			tb.Fatal(err)
		}
		if wal, err := os.Stat(path + "-wal"); err == nil {
			return st.Size() + wal.Size()
		}
		return st.Size()
	}
	pool := exp.store.(interface{ Pool() *pgPool }).Pool()
	var size int64
	if err := pool.QueryRow(ctx, `SELECT pg_total_relation_size('spans') + pg_total_relation_size('usage_daily')`).Scan(&size); err != nil {
		tb.Fatal(err)
	}
	return size
}

func BenchmarkBytesPerSpan(b *testing.B) {
	for _, driver := range []string{DriverSQLite, DriverPostgres} {
		b.Run(driver, func(b *testing.B) {
			var jsonBytes, stored int64
			var spans int
			for b.Loop() {
				jsonBytes, stored, spans = storedSize(b, driver, 2000)
			}
			b.ReportMetric(float64(jsonBytes)/float64(spans), "json_B/span")
			b.ReportMetric(float64(stored)/float64(spans), "stored_B/span")
			b.ReportMetric(float64(stored)/float64(jsonBytes), "stored/json")
		})
	}
}

// The goal of the storage design: a stored OpenRouter span takes less disk
// than the OTLP JSON that delivered it.
func TestStoredSmallerThanJSON(t *testing.T) {
	for _, driver := range []string{DriverSQLite, DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			jsonBytes, stored, spans := storedSize(t, driver, 600)
			t.Logf("%s: OTLP JSON %.0f B/span, stored %.0f B/span (%.2f)", driver,
				float64(jsonBytes)/float64(spans), float64(stored)/float64(spans), float64(stored)/float64(jsonBytes))
			if stored <= 0 || stored >= jsonBytes {
				t.Fatalf("stored %d bytes for %d bytes of JSON", stored, jsonBytes)
			}
		})
	}
}

type (
	sqlDB  = sql.DB
	pgPool = pgxpool.Pool
)
