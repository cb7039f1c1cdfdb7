package reliability

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/postgres"
	"github.com/fallom/fallom-collector/internal/storage/sqlite"
	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

// Issue 14 ("make soak covers retention with replays and a migration on a
// database of a realistic size"), on SQLite and PostgreSQL, through the
// built binary:
//
//  1. a database of the first schema version (v1, before usage_daily) is
//     filled by bulk SQL with N spans over 88 days of received_at (a third
//     of them generations with ~0.5 KB of prompt and completion);
//  2. the binary starts on it and migrates to the current schema in the
//     background (start waits at most 15 s); senders write meanwhile and
//     retry: every answer is 2xx or 503 (never a 4xx: schema errors are no
//     data errors), and every acknowledged span is stored once;
//  3. the migration is timed (per version, from schema_migrations), and the
//     backfilled usage_daily must equal the spans exactly;
//  4. retention (content after 30 days, spans after 60) runs its passes on
//     the migrated database, timed; then deleted and content-cleared spans
//     are replayed: none is stored or counted again, no content returns;
//     usage_daily must equal the stored generations plus what retention
//     deleted, exactly, column by column.
//
// Size: FALLOM_SOAK_SPANS (default 1,000,000 under FALLOM_SOAK=1; 30,000
// in the bounded run).

const (
	largeProject = "soak"
	contentDays  = 30
	spanDays     = 60
	// Costs are multiples of 2^-9 USD: exact in binary floating point and a
	// whole number of nano-USD, so the float sums of the v1/v2 schema and
	// the nano-USD sums of the current one can be compared exactly.
	costUnit = 0.001953125
)

func largeSpans(t *testing.T) int {
	if v := os.Getenv("FALLOM_SOAK_SPANS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "FALLOM_SOAK_SPANS")
		return n - n%3
	}
	return pick(30_000, 1_000_000)
}

// dialect is what differs between the two databases for the bulk SQL.
type dialect struct {
	name    string
	hex     func(expr string, width int) string
	boolean func(cond string) string
	// series is a FROM clause yielding column i over [lo, hi).
	series func(lo, hi int) (with, from string)
	day    string // usage_daily.day as YYYY-MM-DD text
}

var sqliteDialect = dialect{
	name:    "SQLite",
	hex:     func(e string, w int) string { return fmt.Sprintf("printf('%%0%dx', %s)", w, e) },
	boolean: func(c string) string { return fmt.Sprintf("(CASE WHEN %s THEN 1 ELSE 0 END)", c) },
	series: func(lo, hi int) (string, string) {
		return fmt.Sprintf("WITH RECURSIVE s(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM s WHERE i + 1 < %d) ", lo, hi), "s"
	},
	day: "day",
}

var postgresDialect = dialect{
	name:    "PostgreSQL",
	hex:     func(e string, w int) string { return fmt.Sprintf("lpad(to_hex(%s), %d, '0')", e, w) },
	boolean: func(c string) string { return fmt.Sprintf("(%s)", c) },
	series: func(lo, hi int) (string, string) {
		return "", fmt.Sprintf("generate_series(%d::bigint, %d::bigint) AS s(i)", lo, hi-1)
	},
	day: "day::text",
}

// bulkInsert is one INSERT of the rows [lo, hi) in the v1 schema. Row i is
// span n = i%3 of trace tr = i/3; all spans of a trace share its age: day
// d of 0..83, mapped around the retention cutoffs (no span is within a day
// of 30 or 60 days old, so the test and the collector agree on which
// spans a pass takes, whatever minutes pass between them).
func bulkInsert(d dialect, lo, hi int, now int64) string {
	with, from := d.series(lo, hi)
	ageDay := "(tr % 84 + CASE WHEN tr % 84 >= 29 THEN 2 ELSE 0 END + CASE WHEN tr % 84 >= 57 THEN 2 ELSE 0 END)"
	received := fmt.Sprintf("(%d - (%s * 86400 + (tr * 37) %% 86400) * 1000000000)", now, ageDay)
	gen := "n = 0"
	genOnly := func(v string) string { return fmt.Sprintf("CASE WHEN %s THEN %s END", gen, v) }
	return with + `INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, name, kind, status_code,
	start_time_unix_nano, end_time_unix_nano, duration_ms, received_at_unix_nano, is_generation,
	session_id, customer_id, model, provider, operation, input_tokens, output_tokens, total_tokens,
	input_cost_usd, output_cost_usd, total_cost_usd, cost_source, prompt, completion, source,
	attributes, resource_attributes)
SELECT '` + largeProject + `',
	` + d.hex("(tr * 2654435761) % 4294967296", 8) + ` || ` + d.hex("(tr * 40503 + 7) % 4294967296", 8) + ` || ` + d.hex("tr + 1", 16) + `,
	` + d.hex("(i * 2654435761) % 281474976710656", 12) + ` || ` + d.hex("n + 1", 4) + `,
	CASE WHEN n = 0 THEN NULL ELSE ` + d.hex("(tr * 3 * 2654435761) % 281474976710656", 12) + ` || '0001' END,
	CASE WHEN n = 0 THEN 'chat' ELSE 'tool' END, 'CLIENT',
	CASE WHEN i % 50 = 0 THEN 'ERROR' ELSE 'OK' END,
	recv - 2000000000, recv - 1000000000, 1000.0, recv, ` + d.boolean(gen) + `,
	` + genOnly("'sess-' || (tr % 50000)") + `, ` + genOnly("'cust-' || (tr % 200)") + `,
	` + genOnly("CASE WHEN tr % 3 = 0 THEN 'claude-sonnet-4-5' ELSE 'gpt-4o-mini' END") + `,
	` + genOnly("'openrouter'") + `, ` + genOnly("'chat'") + `,
	` + genOnly("100 + i % 900") + `, ` + genOnly("10 + i % 90") + `, ` + genOnly("110 + i % 900 + i % 90") + `,
	` + genOnly(fmt.Sprintf("(1 + tr %% 4) * %v", costUnit)) + `, ` + genOnly(fmt.Sprintf("(tr %% 3) * %v", costUnit)) + `,
	` + genOnly(fmt.Sprintf("(1 + tr %% 4 + tr %% 3) * %v", costUnit)) + `, ` + genOnly("'reported'") + `,
	` + genOnly(`'[{"role":"system","content":"You are a support agent for order ' || tr || '. Answer briefly and cite the order history when you can."},{"role":"user","content":"Where is my order ' || tr || '? It was due three days ago and the tracking page has not changed since Monday."}]'`) + `,
	` + genOnly(`'[{"role":"assistant","content":"Order ' || tr || ' left the warehouse on Tuesday; the carrier reports a delay of two days. You will get an email when it moves."}]'`) + `,
	'openrouter', '{}', '{"service.name":"soak"}'
FROM (SELECT i, tr, n, ` + received + ` AS recv FROM (SELECT i, i / 3 AS tr, i % 3 AS n FROM ` + from + `) a) q`
}

// usageRow is one usage_daily row's counters (costs in nano-USD).
type usageRow struct {
	generations, errors, unknownCost, inTok, outTok, totTok int64
	inCost, outCost, totCost                                int64
}

func (u *usageRow) add(o usageRow) {
	u.generations += o.generations
	u.errors += o.errors
	u.unknownCost += o.unknownCost
	u.inTok += o.inTok
	u.outTok += o.outTok
	u.totTok += o.totTok
	u.inCost += o.inCost
	u.outCost += o.outCost
	u.totCost += o.totCost
}

// largeDB is one database of the test: an admin connection for the bulk
// load and the checks, and the collector's storage section.
type largeDB struct {
	d       dialect
	db      *sql.DB
	storage string // the exporter's storage section (YAML)
}

// spanUsage aggregates the stored generations of the project the way the
// write path does (storage.Day of the start, storage.NanoUSD per span),
// restricted by where.
func (l *largeDB) spanUsage(t *testing.T, where string) map[string]usageRow {
	t.Helper()
	q := `SELECT start_time_unix_nano, coalesce(model, ''), coalesce(customer_id, ''), status_code,
		coalesce(input_tokens, 0), coalesce(output_tokens, 0), coalesce(total_tokens, 0),
		input_cost_usd, output_cost_usd, total_cost_usd
		FROM spans WHERE project_id = '` + largeProject + `' AND is_generation = ` + l.d.boolean("1 = 1")
	if where != "" {
		q += " AND " + where
	}
	rows, err := l.db.Query(q)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]usageRow{}
	for rows.Next() {
		var start, in, outT, tot int64
		var model, customer, status string
		var inC, outC, totC sql.NullFloat64
		require.NoError(t, rows.Scan(&start, &model, &customer, &status, &in, &outT, &tot, &inC, &outC, &totC))
		r := usageRow{generations: 1, inTok: in, outTok: outT, totTok: tot,
			inCost: storage.NanoUSD(inC.Float64), outCost: storage.NanoUSD(outC.Float64), totCost: storage.NanoUSD(totC.Float64)}
		if status == "ERROR" {
			r.errors = 1
		}
		if !totC.Valid {
			r.unknownCost = 1
		}
		k := storage.Day(start) + "|" + model + "|" + customer
		u := out[k]
		u.add(r)
		out[k] = u
	}
	require.NoError(t, rows.Err())
	return out
}

func (l *largeDB) usageDaily(t *testing.T) map[string]usageRow {
	t.Helper()
	rows, err := l.db.Query(`SELECT ` + l.d.day + `, model, customer_id, generations, errors, unknown_cost_generations,
		input_tokens, output_tokens, total_tokens, input_cost_nano_usd, output_cost_nano_usd, total_cost_nano_usd
		FROM usage_daily WHERE project_id = '` + largeProject + `'`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]usageRow{}
	for rows.Next() {
		var day, model, customer string
		var u usageRow
		require.NoError(t, rows.Scan(&day, &model, &customer, &u.generations, &u.errors, &u.unknownCost,
			&u.inTok, &u.outTok, &u.totTok, &u.inCost, &u.outCost, &u.totCost))
		out[day+"|"+model+"|"+customer] = u
	}
	require.NoError(t, rows.Err())
	return out
}

// compareUsage reports the keys where usage_daily differs from want (rows
// of all zeros count as absent).
func compareUsage(got, want map[string]usageRow) (keys int, diffs []string) {
	all := map[string]bool{}
	for k, v := range got {
		if v != (usageRow{}) {
			all[k] = true
		}
	}
	for k, v := range want {
		if v != (usageRow{}) {
			all[k] = true
		}
	}
	for k := range all {
		if got[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s: usage_daily %+v, want %+v", k, got[k], want[k]))
		}
	}
	sort.Strings(diffs)
	return len(all), diffs
}

func (l *largeDB) count(t *testing.T, q string) int {
	t.Helper()
	var n int
	require.NoError(t, l.db.QueryRow(q).Scan(&n))
	return n
}

func (l *largeDB) version(t *testing.T) int {
	t.Helper()
	var v int
	require.NoError(t, l.db.QueryRow(`SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v))
	return v
}

func TestLargeDatabaseSQLite(t *testing.T) {
	fig := newCase(t, "large database (SQLite): migration from v1, retention with replays")
	dir := t.TempDir()
	path := filepath.Join(dir, "fallom.db")
	ctx := context.Background()
	old, err := sqlite.Open(ctx, sqlite.Options{Path: path, MigrateTo: 1})
	require.NoError(t, err)
	require.NoError(t, old.Close())
	// The bulk load is the test's setup, not the collector's work: no fsync.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(60000)&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	migrations, err := sqlite.Migrations()
	require.NoError(t, err)
	runLargeDatabase(t, fig, &largeDB{d: sqliteDialect, db: db,
		storage: fmt.Sprintf("driver: sqlite\n      dsn: %s", path)}, dir, len(migrations), func() int64 {
		var total int64
		for _, f := range []string{path, path + "-wal"} {
			if st, err := os.Stat(f); err == nil {
				total += st.Size()
			}
		}
		return total
	})
}

func TestLargeDatabasePostgres(t *testing.T) {
	fig := newCase(t, "large database (PostgreSQL): migration from v1, retention with replays")
	pg := pgtest.Start(t)
	dsn, err := pg.CreateDatabase("fallom")
	require.NoError(t, err)
	ctx := context.Background()
	old, err := postgres.Open(ctx, postgres.Options{DSN: dsn, MigrateTo: 1})
	require.NoError(t, err)
	require.NoError(t, old.Close())
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(2)
	t.Cleanup(func() { db.Close() })
	migrations, err := postgres.Migrations()
	require.NoError(t, err)
	runLargeDatabase(t, fig, &largeDB{d: postgresDialect, db: db,
		storage: fmt.Sprintf("driver: postgres\n      dsn: %s", dsn)}, t.TempDir(), len(migrations), func() int64 {
		var n int64
		require.NoError(t, db.QueryRow(`SELECT pg_database_size(current_database())`).Scan(&n))
		return n
	})
}

func largeConfig(l *largeDB, ep collectortest.Endpoints, keysFile string) string {
	return fmt.Sprintf(`
extensions:
  fallomauth:
    keys_file: %s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
        auth:
          authenticator: fallomauth
processors:
  openroutermapping: {}
exporters:
  fallom:
    storage:
      %s
    retention:
      content_days: %d
      span_days: %d
      # A pass that meets the migration still running fails and waits
      # for the next interval.
      interval: 20s
    # Retryable errors (the schema still migrating) go back to the sender
    # as 503 at once instead of after minutes of retries inside.
    retry_on_failure:
      enabled: false
service:
  extensions: [fallomauth]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [openroutermapping]
      exporters: [fallom]
`, keysFile, ep.HTTP, l.storage, contentDays, spanDays)
}

// generation is one OTLP generation span of the project, with the given
// ids and start time.
func appendGeneration(ss ptrace.ScopeSpans, trace pcommon.TraceID, span pcommon.SpanID, start time.Time, tokens int64) {
	sp := ss.Spans().AppendEmpty()
	sp.SetName("chat")
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetTraceID(trace)
	sp.SetSpanID(span)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	a := sp.Attributes()
	a.PutStr("gen_ai.operation.name", "chat")
	a.PutStr("gen_ai.provider.name", "openai")
	a.PutStr("gen_ai.request.model", "gpt-4o-mini")
	a.PutStr("gen_ai.conversation.id", "sess-replay")
	a.PutInt("gen_ai.usage.input_tokens", tokens)
	a.PutInt("gen_ai.usage.output_tokens", 7)
	a.PutStr("gen_ai.prompt", `[{"role":"user","content":"REPLAYED-CONTENT"}]`)
}

func mustDecodeHex(t *testing.T, s string, dst []byte) {
	t.Helper()
	var b []byte
	_, err := fmt.Sscanf(s, "%x", &b)
	require.NoError(t, err)
	require.Len(t, b, len(dst), s)
	copy(dst, b)
}

func runLargeDatabase(t *testing.T, fig *caseFigures, l *largeDB, dir string, want int, size func() int64) {
	n := largeSpans(t)
	now := time.Now().UnixNano()

	// 1. The old database, by bulk SQL in chunks.
	begin := time.Now()
	const chunk = 100_000
	for lo := 0; lo < n; lo += chunk {
		_, err := l.db.Exec(bulkInsert(l.d, lo, min(lo+chunk, n), now))
		require.NoError(t, err, "bulk insert at %d", lo)
	}
	if l.d.name == "PostgreSQL" {
		_, err := l.db.Exec(`ANALYZE spans`)
		require.NoError(t, err)
	}
	require.Equal(t, n, l.count(t, `SELECT count(*) FROM spans`))
	require.Equal(t, 1, l.version(t))
	loadTime := time.Since(begin)
	sizeBefore := size()
	t.Logf("%s: %d spans in schema v1 loaded in %v (%d MiB)", l.d.name, n, loadTime.Round(time.Second), sizeBefore>>20)

	// What retention will delete, aggregated before the collector starts
	// (nothing within a day of the cutoffs: see bulkInsert).
	spanCutoff := now - int64(spanDays*24*time.Hour)
	contentCutoff := now - int64(contentDays*24*time.Hour)
	deletedUsage := l.spanUsage(t, fmt.Sprintf("received_at_unix_nano < %d", spanCutoff))
	toDelete := l.count(t, fmt.Sprintf(`SELECT count(*) FROM spans WHERE received_at_unix_nano < %d`, spanCutoff))
	toClear := l.count(t, fmt.Sprintf(`SELECT count(*) FROM spans WHERE received_at_unix_nano >= %d AND received_at_unix_nano < %d AND prompt IS NOT NULL`, spanCutoff, contentCutoff))
	// Sample ids to replay after retention: deleted and cleared spans.
	sample := func(where string) [][2]string {
		rows, err := l.db.Query(`SELECT trace_id, span_id FROM spans WHERE is_generation = ` + l.d.boolean("1 = 1") + ` AND ` + where + ` ORDER BY trace_id LIMIT 200`)
		require.NoError(t, err)
		defer rows.Close()
		var out [][2]string
		for rows.Next() {
			var k [2]string
			require.NoError(t, rows.Scan(&k[0], &k[1]))
			out = append(out, k)
		}
		require.NoError(t, rows.Err())
		return out
	}
	deletedSample := sample(fmt.Sprintf("received_at_unix_nano < %d", spanCutoff))
	clearedSample := sample(fmt.Sprintf("received_at_unix_nano >= %d AND received_at_unix_nano < %d", spanCutoff, contentCutoff))

	// 2. The binary on it; senders write while it migrates.
	keysFile := filepath.Join(dir, "keys.yaml")
	key := collectortest.CreateKey(t, keysFile, largeProject, "soak")
	ep := collectortest.NewEndpoints(t)
	started := time.Now()
	c := startConfig(t, fig, dir, largeConfig(l, ep, keysFile), ep)
	ready := time.Since(started)

	type answer struct {
		at   time.Time
		code int
	}
	var mu sync.Mutex
	var answered []answer
	var acked []spanKey
	var migrated sync.WaitGroup
	done := make(chan struct{})
	const senders = 4
	for s := range senders {
		migrated.Add(1)
		go func() {
			defer migrated.Done()
			for r := 0; ; r++ {
				select {
				case <-done:
					return
				default:
				}
				td := ptrace.NewTraces()
				rs := td.ResourceSpans().AppendEmpty()
				rs.Resource().Attributes().PutStr("service.name", "soak-live")
				var tid pcommon.TraceID
				binary.BigEndian.PutUint64(tid[:8], 0x11fe000000000000|uint64(s))
				binary.BigEndian.PutUint64(tid[8:], uint64(r)+1)
				var keys []spanKey
				ss := rs.ScopeSpans().AppendEmpty()
				for k := range 3 {
					var sid pcommon.SpanID
					binary.BigEndian.PutUint64(sid[:], uint64(k)+1)
					appendGeneration(ss, tid, sid, time.Now().Add(-time.Minute), int64(10+k))
					keys = append(keys, keyOf(ss.Spans().At(k)))
				}
				body := jsonBody(td)
				for { // retry until acknowledged, as an OTLP client does
					resp := post(c.url, body, "application/json", bearer(key))
					mu.Lock()
					answered = append(answered, answer{time.Now(), resp.code})
					if resp.ok() {
						acked = append(acked, keys...)
					}
					mu.Unlock()
					if resp.ok() {
						break
					}
					if resp.code != http.StatusServiceUnavailable && resp.err == nil {
						t.Errorf("write during the migration answered %d (only 2xx or 503 may be): %s", resp.code, resp.body)
						return
					}
					select {
					case <-done:
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}
		}()
	}

	waitFor(t, 60*time.Minute, "the migration to the current schema", func() bool {
		c.requireUp(t)
		if l.version(t) < want {
			time.Sleep(200 * time.Millisecond)
			return false
		}
		return true
	})
	var migratedAtNano int64
	require.NoError(t, l.db.QueryRow(`SELECT max(applied_at_unix_nano) FROM schema_migrations`).Scan(&migratedAtNano))
	migratedAt := time.Unix(0, migratedAtNano)
	migrationTime := migratedAt.Sub(started)
	// A few more requests after the migration, then stop the senders.
	afterMigration := func() (during, after map[int]int) {
		during, after = map[int]int{}, map[int]int{}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range answered {
			if a.at.Before(migratedAt) {
				during[a.code]++
			} else {
				after[a.code]++
			}
		}
		return during, after
	}
	waitFor(t, 5*time.Minute, "writes acknowledged after the migration", func() bool {
		_, after := afterMigration()
		return after[http.StatusOK] >= 20
	})
	close(done)
	migrated.Wait()
	answers, answersAfter := afterMigration()
	if migrationTime > ready+time.Second {
		// The collector listened while migrating (start waits at most 15 s):
		// writes then must have been answered 503 (retry), not taken.
		assert.Positive(t, answers[http.StatusServiceUnavailable], "no 503 while the schema was migrating: %v", answers)
		assert.Zero(t, answers[http.StatusOK], "writes acknowledged before the schema was ready: %v", answers)
	}

	var perVersion []string
	rows, err := l.db.Query(`SELECT version, name, applied_at_unix_nano FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	prev := started.UnixNano()
	for rows.Next() {
		var v int
		var name string
		var at int64
		require.NoError(t, rows.Scan(&v, &name, &at))
		if v > 1 { // v1 was applied before the bulk load
			perVersion = append(perVersion, fmt.Sprintf("%d %s %s", v, name, time.Duration(at-prev).Round(100*time.Millisecond)))
			prev = at
		}
	}
	require.NoError(t, rows.Err())
	rows.Close()

	// Every acknowledged span stored once.
	live := map[spanKey]int{}
	lrows, err := l.db.Query(`SELECT trace_id, span_id FROM spans WHERE trace_id LIKE '11fe%'`)
	require.NoError(t, err)
	for lrows.Next() {
		var k spanKey
		require.NoError(t, lrows.Scan(&k.traceID, &k.spanID))
		live[k]++
	}
	require.NoError(t, lrows.Err())
	lrows.Close()
	var lost int
	for _, k := range acked {
		if live[k] != 1 {
			lost++
		}
	}
	assert.Zero(t, lost, "acknowledged spans written during the migration not stored once")
	fig.add(1, len(acked), lost, 0)

	// 3. Retention passes (the first 10 s after start, then every 20 s;
	// those meeting the migration fail and wait): until nothing is left.
	// The backfilled usage_daily is checked at the end, where it must equal
	// the spans still stored plus those retention deleted.
	waitFor(t, 60*time.Minute, "retention passes over the migrated database", func() bool {
		c.requireUp(t)
		left := l.count(t, fmt.Sprintf(`SELECT count(*) FROM spans WHERE received_at_unix_nano < %d`, spanCutoff)) +
			l.count(t, fmt.Sprintf(`SELECT count(*) FROM spans WHERE received_at_unix_nano < %d AND (prompt IS NOT NULL OR completion IS NOT NULL)`, contentCutoff))
		if left > 0 {
			time.Sleep(time.Second)
		}
		return left == 0
	})
	// From the end of the migration (includes up to one interval before
	// the first pass that found the schema ready).
	retentionTime := time.Since(started) - migrationTime
	tombstones := l.count(t, `SELECT count(*) FROM span_tombstones`)
	assert.Equal(t, toDelete, tombstones, "one tombstone per deleted span")

	// 4. Replays of deleted and of content-cleared spans.
	replay := func(keys [][2]string) (codes map[int]int) {
		codes = map[int]int{}
		for i := 0; i < len(keys); i += 50 {
			td := ptrace.NewTraces()
			ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
			for _, k := range keys[i:min(i+50, len(keys))] {
				var tid pcommon.TraceID
				var sid pcommon.SpanID
				mustDecodeHex(t, k[0], tid[:])
				mustDecodeHex(t, k[1], sid[:])
				appendGeneration(ss, tid, sid, time.Now().Add(-time.Hour), 1000)
			}
			resp := post(c.url, jsonBody(td), "application/json", bearer(key))
			codes[resp.code]++
			require.True(t, resp.ok(), "replay answered %s", resp)
		}
		return codes
	}
	replay(deletedSample)
	replay(clearedSample)
	for _, k := range deletedSample {
		assert.Zero(t, l.count(t, fmt.Sprintf(`SELECT count(*) FROM spans WHERE project_id = '%s' AND trace_id = '%s' AND span_id = '%s'`, largeProject, k[0], k[1])),
			"a replay of deleted span %v stored it again", k)
	}
	restored := l.count(t, fmt.Sprintf(`SELECT count(*) FROM spans WHERE prompt IS NOT NULL AND received_at_unix_nano < %d`, contentCutoff))
	for _, k := range clearedSample {
		restored += l.count(t, fmt.Sprintf(`SELECT count(*) FROM spans WHERE trace_id = '%s' AND span_id = '%s' AND (prompt IS NOT NULL OR completion IS NOT NULL)`, k[0], k[1]))
	}
	assert.Zero(t, restored, "content returned by a replay")

	// usage_daily = the stored generations + what retention deleted,
	// exactly, every key and counter.
	wantUsage := l.spanUsage(t, "")
	for k, v := range deletedUsage {
		u := wantUsage[k]
		u.add(v)
		wantUsage[k] = u
	}
	usageKeys, diffs := compareUsage(l.usageDaily(t), wantUsage)
	assert.Empty(t, diffs, "usage_daily differs from the spans plus what retention deleted (%d of %d keys)", len(diffs), usageKeys)
	c.requireUp(t)
	sizeAfter := size()

	note := fmt.Sprintf("%d spans (%d MiB) in schema v1, bulk-loaded in %s; the binary started (ready %s) and migrated v1 -> v%d in %s (%s); "+
		"writes meanwhile: %s, after: %s, %d spans acknowledged, %d not stored once; retention (content %dd, spans %dd, batch 1000) "+
		"cleared %d and deleted %d spans (%d tombstones) within %s of the migration's end; 200+200 replays of deleted and cleared spans: none stored or counted again, no content returned; "+
		"usage_daily equals stored + deleted generations exactly over %d keys (%d differ); size after %d MiB",
		n, sizeBefore>>20, loadTime.Round(time.Second), ready.Round(time.Second), want, migrationTime.Round(time.Second), strings.Join(perVersion, ", "),
		fmtCodes(answers), fmtCodes(answersAfter), len(acked), lost, contentDays, spanDays,
		toClear, toDelete, tombstones, retentionTime.Round(time.Second), usageKeys, len(diffs), sizeAfter>>20)
	t.Log(note)
	fig.note("%s", note)
	fig.section(fmt.Sprintf("Large database on %s (issue 14)", l.d.name), fmt.Sprintf(
		"Run %s, %d CPUs, load average at the end %s. `make soak` runs it with 1,000,000 spans; a chosen size: "+
			"`make build && FALLOM_SOAK=1 FALLOM_SOAK_SPANS=%d go test -count=1 -timeout 120m -run TestLargeDatabase ./test/reliability/` "+
			"(`-run` updates only these sections of RELIABILITY.md).\n\n"+
			"| figure | value |\n| --- | --- |\n"+
			"| spans in schema v1 (a third generations, ~0.5 KB of content each) | %d (%d MiB) |\n"+
			"| bulk load (test setup, not the collector) | %s |\n"+
			"| collector start to listening (start waits at most 15 s for migrations) | %s |\n"+
			"| migration v1 -> v%d (from the process start to the last commit) | %s |\n"+
			"| per migration | %s |\n"+
			"| answers to writes sent while it ran (4 senders retrying every 200 ms) | %s |\n"+
			"| answers after it | %s |\n"+
			"| spans acknowledged / not stored once | %d / %d |\n"+
			"| retention: content cleared (> %d days) / spans deleted (> %d days) | %d / %d |\n"+
			"| retention: from the end of the migration until nothing was left (passes every 20 s) | %s |\n"+
			"| replays of 200 deleted + 200 cleared spans | none stored or counted again, no content returned |\n"+
			"| usage_daily = stored + deleted generations | %d keys, %d differ |\n"+
			"| size after | %d MiB |\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), loadAverage(), n,
		n, sizeBefore>>20, loadTime.Round(time.Second), ready.Round(time.Second), want, migrationTime.Round(time.Second),
		strings.Join(perVersion, "; "), fmtCodes(answers), fmtCodes(answersAfter), len(acked), lost,
		contentDays, spanDays, toClear, toDelete, retentionTime.Round(time.Second), usageKeys, len(diffs), sizeAfter>>20))
	if len(diffs) > 0 {
		t.Logf("first differences: %s", strings.Join(diffs[:min(5, len(diffs))], "\n"))
	}
}

// loadAverage is the 1-minute load average (the machine is shared).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

func fmtCodes(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	var codes []int
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		label := strconv.Itoa(c)
		if c == 0 {
			label = "transport error"
		}
		parts = append(parts, fmt.Sprintf("%s x%d", label, m[c]))
	}
	return strings.Join(parts, ", ")
}
