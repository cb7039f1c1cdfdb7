package fallomexporter

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Benchmarks of the storage write path: realistic OpenRouter deliveries
// (root generation with ~60 attributes and ~4 KB of prompt and completion,
// plus its two children) already mapped by the processor, converted and
// written in one transaction per batch. They write as production does:
// random trace and span ids (sequential ids would make every insert an
// append at the end of the primary key, ~28% faster than real traffic), each
// batch new data, into a fresh database for every run of a benchmark
// function (a rerun, a larger b.N or -count never reopens a file holding
// the same keys). What a replayed delivery costs is measured separately
// (BenchmarkWriteSQLiteReplay). Run with:
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

// randomIDs gives every trace in td a random trace id and every span a
// random span id (parents follow their span), as real traces have.
func randomIDs(td ptrace.Traces) ptrace.Traces {
	traces := map[pcommon.TraceID]pcommon.TraceID{}
	spans := map[pcommon.SpanID]pcommon.SpanID{}
	trace := func(old pcommon.TraceID) pcommon.TraceID {
		id, ok := traces[old]
		if !ok {
			binary.BigEndian.PutUint64(id[:8], rand.Uint64())
			binary.BigEndian.PutUint64(id[8:], rand.Uint64())
			traces[old] = id
		}
		return id
	}
	span := func(old pcommon.SpanID) pcommon.SpanID {
		id, ok := spans[old]
		if !ok {
			binary.BigEndian.PutUint64(id[:], rand.Uint64()|1) // never the invalid all-zero id
			spans[old] = id
		}
		return id
	}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				sp.SetTraceID(trace(sp.TraceID()))
				sp.SetSpanID(span(sp.SpanID()))
				if p := sp.ParentSpanID(); !p.IsEmpty() {
					sp.SetParentSpanID(span(p))
				}
			}
		}
	}
	return td
}

// randomDeliveries is mappedDeliveries with random ids.
func randomDeliveries(project string, first, n int) ptrace.Traces {
	return randomIDs(mappedDeliveries(project, first, n))
}

// benchWrite writes batches of new spans; newConfig names a fresh database
// on each call.
func benchWrite(b *testing.B, newConfig func(testing.TB) *Config) {
	benchWriteSizes(b, newConfig, 100, 1000)
}

func benchWriteSizes(b *testing.B, newConfig func(testing.TB) *Config, batches ...int) {
	for _, spans := range batches {
		b.Run(fmt.Sprintf("batch=%d", spans), func(b *testing.B) {
			exp := newBenchExporter(b, newConfig(b))
			perBatch := spans / 3 // deliveries of 3 spans
			next := 0
			written := 0
			var cpu time.Duration
			var wrote int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				td := randomDeliveries("acme", next, perBatch)
				next += perBatch
				b.StartTimer()
				before, wroteBefore := processCPU(b), bytesWritten(b)
				if err := exp.pushTraces(context.Background(), td); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU(b) - before
				wrote += bytesWritten(b) - wroteBefore
				written += td.SpanCount()
			}
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(written), "cpu_ns/span")
			b.ReportMetric(float64(wrote)/float64(written), "written_B/span")
		})
	}
}

// processCPU is the CPU time (user + system, all threads) this process has
// used. Per span it is the write benchmarks' figure least disturbed by other
// work on a shared machine, where wall time also counts waiting for a core.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bytesWritten is what this process has written through write calls
// (/proc/self/io wchar: WAL frames at commit, pages copied at checkpoints):
// a figure of the I/O per span that does not depend on the machine's load.
func bytesWritten(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("/proc/self/io has no wchar line")
	return 0
}

func sqliteWith(sync string, pageSize int) func(testing.TB) *Config {
	return func(tb testing.TB) *Config {
		cfg, _ := sqliteConfig(tb) // a new temp dir on every call
		cfg.Storage.SQLite.Synchronous = sync
		cfg.Storage.SQLite.PageSize = pageSize
		return cfg
	}
}

func BenchmarkWriteSQLite(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) { benchWrite(b, sqliteWith(sync, 0)) })
	}
}

// BenchmarkWriteSQLitePageSize compares page sizes of a new file at
// synchronous=FULL (the default is DefaultPageSize), for batches of 100,
// 250 (about the group commits of the pipeline benchmark's ours_sqlite
// under load) and 1000 spans.
func BenchmarkWriteSQLitePageSize(b *testing.B) {
	for _, size := range []int{4096, 8192, 16384} {
		b.Run(fmt.Sprintf("page_size=%d", size), func(b *testing.B) { benchWriteSizes(b, sqliteWith("FULL", size), 100, 250, 1000) })
	}
}

func BenchmarkWritePostgres(b *testing.B) {
	benchWrite(b, func(tb testing.TB) *Config {
		cfg := createDefaultConfig().(*Config)
		cfg.Storage.Driver = DriverPostgres
		cfg.Storage.DSN = configopaque.String(postgresDSN(tb)) // a new database on every call
		return cfg
	})
}

// BenchmarkWriteSQLiteReplay writes deliveries the database holds already,
// unchanged (OpenRouter redelivering after a lost answer, an exporter
// retrying): each key is looked up and the upsert leaves the row alone.
// The database is fresh on every run and holds replayBatches batches of
// random ids, written before the timer starts; the timed loop writes them
// again in turn.
func BenchmarkWriteSQLiteReplay(b *testing.B) {
	const replayBatches = 10
	for _, spans := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", spans), func(b *testing.B) {
			exp := newBenchExporter(b, sqliteWith("FULL", 0)(b))
			perBatch := spans / 3
			stored := make([]ptrace.Traces, replayBatches)
			for i := range stored {
				stored[i] = randomDeliveries("acme", i*perBatch, perBatch)
				if err := exp.pushTraces(context.Background(), stored[i]); err != nil {
					b.Fatal(err)
				}
			}
			written := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				td := ptrace.NewTraces() // pushTraces may consume its input: write a copy
				stored[i%replayBatches].CopyTo(td)
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
						td := randomDeliveries("acme", int(next.Add(1)), 1)
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
			randomIDs(mapped).ResourceSpans().MoveAndAppendTo(batch.ResourceSpans())
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

// The write benchmarks' ids are random like real ones: the same delivery
// number gets other ids on each call, every span of a delivery shares its
// trace id, and the children still point at their root.
func TestRandomIDs(t *testing.T) {
	a, b := randomDeliveries("acme", 7, 2), randomDeliveries("acme", 7, 2)
	seen := map[pcommon.TraceID]bool{}
	for _, td := range []ptrace.Traces{a, b} {
		rss := td.ResourceSpans()
		if rss.Len() != 6 {
			t.Fatalf("%d resource spans, want 6 (2 deliveries of 3 spans)", rss.Len())
		}
		for d := 0; d < rss.Len(); d += 3 {
			root := rss.At(d).ScopeSpans().At(0).Spans().At(0)
			if seen[root.TraceID()] {
				t.Fatalf("trace id %s drawn twice", root.TraceID())
			}
			seen[root.TraceID()] = true
			for c := 1; c <= 2; c++ {
				child := rss.At(d + c).ScopeSpans().At(0).Spans().At(0)
				if child.TraceID() != root.TraceID() || child.ParentSpanID() != root.SpanID() || child.SpanID() == root.SpanID() {
					t.Fatalf("delivery %d span %d: trace %s parent %s, root trace %s span %s", d/3, c,
						child.TraceID(), child.ParentSpanID(), root.TraceID(), root.SpanID())
				}
			}
		}
	}
	if fixed := mappedDeliveries("acme", 7, 1); seen[fixed.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()] {
		t.Fatal("randomDeliveries kept the fixture's trace id")
	}
}
