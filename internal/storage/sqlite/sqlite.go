// Package sqlite is the embedded SQLite backend of the fallom exporter
// (modernc.org/sqlite, no cgo): WAL journal, one writer connection, batched
// multi-row upserts in one IMMEDIATE transaction per write.
package sqlite // import "github.com/fallom/fallom-collector/internal/storage/sqlite"

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fallom/fallom-collector/internal/storage"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the versioned schema of this backend.
func Migrations() ([]storage.Migration, error) {
	return storage.LoadMigrations(migrationFS, "migrations")
}

// Options configure the SQLite backend.
type Options struct {
	// Path is the database file. Its directory is created when missing.
	Path string
	// BusyTimeout is how long a write waits for another process holding
	// the database lock before failing with a retryable error.
	BusyTimeout time.Duration
	// PageSize is the page size in bytes of a new database file (a power
	// of two from 512 to 65536; 0 = DefaultPageSize). An existing file keeps
	// the page size it was made with: changing it rewrites the whole file
	// (ConvertPageSize, with the collector stopped).
	PageSize int
	// Synchronous is the PRAGMA synchronous level: FULL (default) makes a
	// commit durable against power loss; NORMAL only against a crash of the
	// process (the WAL is not fsynced on every commit).
	Synchronous string
	// Logger reports schema migrations (what failed, when they are ready).
	Logger *zap.Logger
	// MigrateTo stops migrations at this version (0 = all). Tests use it to
	// build a database of an older schema; such a store does not write.
	MigrateTo int
	// Migrations replaces the embedded migrations (tests: a migration that
	// fails or blocks).
	Migrations []storage.Migration
}

// rowsPerStatement bounds a multi-row statement under SQLite's limit of
// 32766 bound variables (43 columns per span row: 21,500 variables).
const rowsPerStatement = 500

// maxGroupSpans bounds the spans of one group commit: larger groups gain
// nothing (the fsync is amortized long before) and hold the write lock
// longer.
const maxGroupSpans = 5000

// pageCacheKiB is the page cache of the writer connection.
const pageCacheKiB = 16 << 10

// DefaultPageSize is the page size of a new database file: SQLite's own
// 4 KiB. Issue 17's experiment on a copy of the write path measured 16 KiB
// pages at 1.36x, but `make bench` on a quiet machine (2026-12-03) measured
// 4 KiB ahead on the real write path at every batch size (spans/s 1.04x at
// 100, 1.13x at 250, 1.14x at 1000) and in the pipeline (ours_sqlite
// side by side, 2 rounds each: 5843-5875 vs 5444-5588 acknowledged spans/s,
// peak RSS 120 vs 188 MiB): each dirtied index leaf is a whole page in the
// WAL, and the pipeline's group commits are small (exporter README "Page
// size").
const DefaultPageSize = 4 << 10

// walAutocheckpointBytes is the WAL size that triggers a checkpoint (set
// in pages, so it is divided by the file's page size).
const walAutocheckpointBytes = 40 << 20

// Store is the SQLite backend.
type Store struct {
	db       *sql.DB
	path     string
	pageSize int // of the file: Options.PageSize for a new one

	migrations []storage.Migration
	want       int // schema version this store writes
	migrator   *storage.Migrator

	// inserts, upserts, lookups, usages, sessionTotals, customerTotals
	// and pairs hold the prepared multi-row statements of the chunk sizes
	// (inserts of new spans, span upserts, key lookups, usage_daily,
	// session_totals and customer_totals upserts, customer_sessions
	// inserts): parsing a statement of hundreds of
	// placeholders for every write cost about a tenth of the write's CPU.
	// Prepared on the store's only connection once the schema is ready,
	// read-only afterwards (stmtsReady).
	inserts, upserts, lookups, usages, hourlies map[int]*sql.Stmt
	sessionTotals, customerTotals, pairs        map[int]*sql.Stmt
	version                                     *sql.Stmt
	stmtsMu                                     sync.Mutex
	stmtsReady                                  atomic.Bool

	// group merges concurrent writes into one transaction (one fsync, one
	// WAL append), each caller answered for its own spans.
	group *storage.GroupCommitter

	// The read side (read.go): its own pool of query_only connections.
	readDB *sql.DB
	*storage.SQLReader

	// transactions counts write transactions (tests: isolating bad rows
	// must not cost a transaction per row).
	transactions atomic.Int64
}

// chunkSizes are the row counts of the cached statements: a batch of n
// rows is cut greedily into chunks of these sizes (largest first), so no
// statement is ever parsed during a write, at the price of a few more
// statement executions for the remainder.
var chunkSizes = []int{rowsPerStatement, 100, 20, 5, 1}

// nextChunk returns the size of the next chunk of n (> 0) remaining rows.
func nextChunk(n int) int {
	for _, size := range chunkSizes {
		if n >= size {
			return size
		}
	}
	return n
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating when missing) the database and migrates it in the
// background (storage.Migrator: its own context, retried after a failure).
// Open waits for the first migration attempt until ctx ends:
//   - the schema is ready: (store, nil);
//   - a migration the database refused, or a database migrated by a newer
//     collector: (nil, error) (the collector fails to start, saying what);
//   - still running (a long backfill) or the file locked by another
//     process: (store, retryable error): writes are answered 503 until the
//     schema is ready; the caller logs it and goes on.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	if err := checkPageSize(opts.PageSize); err != nil {
		return nil, err
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" && sync != "EXTRA" {
		return nil, fmt.Errorf("sqlite: synchronous must be FULL, NORMAL or EXTRA, got %q", opts.Synchronous)
	}
	migrations := opts.Migrations
	if migrations == nil {
		var err error
		if migrations, err = Migrations(); err != nil {
			return nil, err
		}
	}
	pageSize, err := filePageSize(opts.Path)
	if err != nil {
		return nil, err
	}
	if pageSize == 0 { // a new file
		pageSize = opts.PageSize
	} else if pageSize != opts.PageSize && opts.Logger != nil {
		opts.Logger.Info("The SQLite database keeps the page size it was made with; converting it rewrites the file (collector stopped)",
			zap.String("path", opts.Path), zap.Int("page_size", pageSize), zap.Int("configured_page_size", opts.PageSize),
			zap.String("convert_with", fmt.Sprintf("fallomcol sqlite page-size --set %d %s", opts.PageSize, opts.Path)))
	}
	if dir := filepath.Dir(opts.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %s: %w", opts.Path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	// The page size of a new file must be set before WAL is enabled (a WAL
	// file's page size is fixed). The driver runs the _pragma values in
	// sorted order, so journal_mode(WAL) among them ran before page_size and
	// every file got 4 KiB pages; the _journal_mode key is applied after the
	// _pragma list (modernc.org/sqlite's documented order). On an existing
	// file page_size changes nothing.
	q.Add("_pragma", fmt.Sprintf("page_size(%d)", opts.PageSize))
	q.Set("_journal_mode", "WAL")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "foreign_keys(1)")
	// The statement journal of a multi-row upsert (to undo the statement
	// alone on a constraint error) stays in memory rather than in a temp
	// file: it was a third of the pwrite calls of a write. It holds at most
	// the pages one statement changes, and is never needed after a crash
	// (the transaction itself is undone by the WAL).
	q.Add("_pragma", "temp_store(MEMORY)")
	// The indexes of spans (primary key, session, customer) and usage_daily
	// are keyed by random ids, so every write touches index pages all over
	// the file; with SQLite's default 2 MiB page cache they were evicted and
	// read back from disk at each write. 16 MiB holds the index pages of
	// a few hundred thousand spans and the upper levels of far more; it is
	// an upper bound, used as the file grows, and costs about twice that in
	// RSS (SQLite's allocator rounds each 4 KiB page up).
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -pageCacheKiB))
	// Checkpoint every 40 MiB of WAL instead of 1000 pages: an index
	// page rewritten by many transactions is copied into the database file
	// once per checkpoint, so rarer checkpoints copy fewer pages per span.
	// Durability is the WAL's (fsynced at commit with synchronous=FULL);
	// the WAL is reset after each checkpoint.
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutocheckpointBytes/pageSize))
	// IMMEDIATE takes the write lock at BEGIN, so the read-then-write of a
	// batch cannot be interleaved with another process writing the file.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", opts.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	// One connection: SQLite has one writer at a time anyway, and a single
	// connection serializes this process's writes without lock contention.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	want := len(migrations)
	if opts.MigrateTo > 0 {
		want = opts.MigrateTo
	}
	s := &Store{db: db, path: opts.Path, pageSize: pageSize, migrations: migrations, want: want,
		inserts: map[int]*sql.Stmt{}, upserts: map[int]*sql.Stmt{}, lookups: map[int]*sql.Stmt{}, usages: map[int]*sql.Stmt{},
		hourlies: map[int]*sql.Stmt{}, sessionTotals: map[int]*sql.Stmt{}, customerTotals: map[int]*sql.Stmt{}, pairs: map[int]*sql.Stmt{}}
	s.group = storage.NewGroupCommitter(1, maxGroupSpans, s.commit)
	s.migrator = &storage.Migrator{
		Describe: "sqlite " + opts.Path, Logger: opts.Logger, Want: want,
		Apply: s.migrate, OnReady: s.prepare,
	}
	if s.readDB, s.SQLReader, err = openReader(opts.Path, opts.BusyTimeout, s.stmtsReady.Load); err != nil {
		s.Close()
		return nil, err
	}
	s.migrator.Start()
	err = s.migrator.WaitFirst(ctx)
	switch {
	case err == nil:
		return s, nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return s, fmt.Errorf("%w: migrations of %s still running (%v); writes are answered 503 until they finish",
			storage.ErrSchemaNotReady, opts.Path, err)
	case isBusy(err):
		return s, fmt.Errorf("%w: %v; retrying in the background", storage.ErrSchemaNotReady, err)
	}
	s.Close()
	return nil, fmt.Errorf("sqlite: %s: %w", opts.Path, err)
}

// DB exposes the connection for tests and tools that read the tables.
func (s *Store) DB() *sql.DB { return s.db }

// Close stops the migrations, checkpoints the WAL into the main file and
// closes the database.
func (s *Store) Close() error {
	s.migrator.Stop()
	s.stmtsMu.Lock()
	for _, cache := range []map[int]*sql.Stmt{s.inserts, s.upserts, s.lookups, s.usages, s.hourlies, s.sessionTotals, s.customerTotals, s.pairs} {
		for _, st := range cache {
			st.Close()
		}
	}
	if s.readDB != nil {
		_ = s.readDB.Close()
	}
	if s.version != nil {
		s.version.Close()
	}
	s.stmtsMu.Unlock()
	_, _ = s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return s.db.Close()
}

// prepare prepares the cached statements once the schema is ready.
func (s *Store) prepare(ctx context.Context) error {
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	if s.stmtsReady.Load() || s.want != len(s.migrations) {
		return nil
	}
	for _, n := range chunkSizes {
		for _, p := range []struct {
			cache map[int]*sql.Stmt
			query string
		}{{s.inserts, insertSQL(n)}, {s.upserts, upsertSQL(n)}, {s.lookups, lookupSQL(n)}, {s.usages, usageSQL(n)}, {s.hourlies, hourlySQL(n)},
			{s.sessionTotals, sessionTotalsSQL(n)}, {s.customerTotals, customerTotalsSQL(n)}, {s.pairs, pairsSQL(n)}} {
			st, err := s.db.PrepareContext(ctx, p.query)
			if err != nil {
				return fmt.Errorf("sqlite: prepare statement: %w", err)
			}
			p.cache[n] = st
		}
	}
	st, err := s.db.PrepareContext(ctx, versionSQL)
	if err != nil {
		return fmt.Errorf("sqlite: prepare statement: %w", err)
	}
	s.version = st
	s.stmtsReady.Store(true)
	return nil
}

const versionSQL = "SELECT coalesce(max(version), 0) FROM schema_migrations"

// migrate applies the pending migrations, each in its own IMMEDIATE
// transaction (which holds the file's write lock, so another process
// migrating the same file waits and then finds them applied).
func (s *Store) migrate(ctx context.Context) (int, error) {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at_unix_nano INTEGER NOT NULL)`); err != nil {
		return 0, fmt.Errorf("sqlite: create schema_migrations in %s: %w", s.path, err)
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return 0, err
	}
	if current > len(s.migrations) {
		return current, fmt.Errorf("%w: %s is at schema version %d, this collector knows up to %d; upgrade the collector",
			storage.ErrSchemaTooNew, s.path, current, len(s.migrations))
	}
	for _, m := range s.migrations {
		if m.Version <= current || m.Version > s.want {
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return current, err
		}
		current = m.Version
	}
	return current, nil
}

func (s *Store) apply(ctx context.Context, m storage.Migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	// Another process may have applied it while we waited for the lock.
	var done int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&done); err != nil {
		return err
	}
	if done > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		if isBusy(err) {
			return err
		}
		return &storage.MigrationError{Version: m.Version, Name: m.Name, Err: err}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at_unix_nano) VALUES (?, ?, ?)",
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

func isBusy(err error) bool {
	var se *sqlitedriver.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// SchemaVersion returns the highest applied migration (0 for an empty file).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, classify(err)
	}
	return int(v.Int64), nil
}

// WriteSpans implements storage.Store. Concurrent calls are committed
// together (group commit); each returns once the transaction holding its
// spans has committed or failed, with its own counts and its own rejected
// spans.
func (s *Store) WriteSpans(ctx context.Context, spans []storage.Span) (storage.WriteResult, error) {
	if len(spans) == 0 {
		return storage.WriteResult{}, nil
	}
	if err := s.writable(); err != nil {
		return storage.WriteResult{}, err
	}
	return s.group.Write(ctx, spans)
}

// writable fails (retryably) until the schema this store writes is in.
func (s *Store) writable() error {
	if err := s.migrator.Ready(); err != nil {
		return err
	}
	if !s.stmtsReady.Load() {
		return fmt.Errorf("%w: %s is opened at schema version %d of %d (a test store): it does not write",
			storage.ErrSchemaNotReady, s.path, s.want, len(s.migrations))
	}
	return nil
}

// commit writes one group (storage.CommitGroup: one transaction; when a
// row is refused, once more isolating, so only the caller that sent it
// gets the permanent error).
func (s *Store) commit(ctx context.Context, group []*storage.Request) {
	storage.CommitGroup(group, func(isolating bool) error { return s.writeTx(ctx, group, isolating) })
}

func (s *Store) writeTx(ctx context.Context, group []*storage.Request, isolating bool) error {
	s.transactions.Add(1)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := storage.WriteGroup(ctx, &sqliteTx{tx: tx, store: s}, group, isolating); err != nil {
		return classify(err)
	}
	return classify(tx.Commit())
}

type sqliteTx struct {
	tx    *sql.Tx
	store *Store // nil: no statement cache (tests writing an old schema)
}

// stmt returns the statement of rows rows, bound to the transaction: the
// cached one for the chunk sizes, else (no store: tests) a new one.
func (t *sqliteTx) stmt(ctx context.Context, cache func(*Store) map[int]*sql.Stmt, rows int, query func(int) string) (*sql.Stmt, error) {
	if t.store != nil {
		if st := cache(t.store)[rows]; st != nil {
			return t.tx.StmtContext(ctx, st), nil
		}
	}
	return t.tx.PrepareContext(ctx, query(rows))
}

func insertsOf(s *Store) map[int]*sql.Stmt  { return s.inserts }
func upsertsOf(s *Store) map[int]*sql.Stmt  { return s.upserts }
func lookupsOf(s *Store) map[int]*sql.Stmt  { return s.lookups }
func usagesOf(s *Store) map[int]*sql.Stmt   { return s.usages }
func hourliesOf(s *Store) map[int]*sql.Stmt { return s.hourlies }

// CheckSchema implements storage.Tx. The transaction holds the file's
// write lock (IMMEDIATE), so no migration can run between this check and
// the commit.
func (t *sqliteTx) CheckSchema(ctx context.Context) error {
	var v int
	var err error
	if t.store != nil && t.store.version != nil {
		err = t.tx.StmtContext(ctx, t.store.version).QueryRowContext(ctx).Scan(&v)
	} else {
		err = t.tx.QueryRowContext(ctx, versionSQL).Scan(&v)
	}
	if err != nil {
		return classify(err)
	}
	want := len(migrationsOf(t.store))
	if v != want {
		if v < want && t.store != nil {
			t.store.migrator.Behind()
		}
		return storage.SchemaMismatch(v, want)
	}
	return nil
}

func migrationsOf(s *Store) []storage.Migration {
	if s == nil {
		m, _ := Migrations()
		return m
	}
	return s.migrations
}

// lookupSQL finds, among keys keys, the stored rows and the tombstones.
// The keys are bound twice (plain ? placeholders: numbered ones reused in
// both halves cost a linear name lookup per parameter when the statement
// is bound).
func lookupSQL(keys int) string {
	list := valuesList(keys, 3)
	nulls := strings.TrimSuffix(strings.Repeat("NULL, ", strings.Count(storage.UsageColumns, ",")+1), ", ")
	return "SELECT 0, project_id, trace_id, span_id, " + storage.UsageColumns +
		" FROM spans WHERE (project_id, trace_id, span_id) IN (VALUES " + list + ")" +
		" UNION ALL SELECT 1, project_id, trace_id, span_id, " + nulls +
		" FROM span_tombstones WHERE (project_id, trace_id, span_id) IN (VALUES " + list + ")"
}

func usageSQL(rows int) string {
	cols := storage.UsageDeltaColumns
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = " + storage.SaturatingSum("usage_daily", "excluded", c)
	}
	return "INSERT INTO usage_daily (project_id, day, model, customer_id, " + strings.Join(cols, ", ") +
		") VALUES " + valuesList(rows, 4+len(cols)) +
		" ON CONFLICT (project_id, day, model, customer_id) DO UPDATE SET " + strings.Join(set, ", ")
}

func hourlySQL(rows int) string {
	cols := storage.HourlyDeltaColumns
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = " + storage.SaturatingSum("gen_hourly", "excluded", c)
	}
	return "INSERT INTO gen_hourly (project_id, hour_unix_nano, model, provider, " + strings.Join(cols, ", ") +
		") VALUES " + valuesList(rows, 4+len(cols)) +
		" ON CONFLICT (project_id, hour_unix_nano, model, provider) DO UPDATE SET " + strings.Join(set, ", ")
}

// insertSQL inserts rows known to be new. OR ROLLBACK: a failing row
// aborts the whole transaction rather than the statement alone, so SQLite
// keeps no statement journal (a copy of every page the statement changes,
// to undo the statement alone), which was a third of the CPU of the
// upsert; nothing is lost, as a failed write is rolled back and written
// again isolating (where rows go through upsertSQL under savepoints).
// Without ON CONFLICT ... RETURNING, SQLite also does not buffer the
// statement's result rows.
func insertSQL(rows int) string {
	return "INSERT OR ROLLBACK INTO spans (" + storage.ColumnNames() + ") VALUES " + valuesList(rows, len(storage.Columns))
}

func upsertSQL(rows int) string {
	return "INSERT INTO spans (" + storage.ColumnNames() + ") VALUES " + valuesList(rows, len(storage.Columns)) + upsertTail
}

// LoadExisting implements storage.Tx: stored rows and tombstones among the
// keys of rows. Content is not compared here: the transaction holds the
// write lock, and the upsert leaves identical rows untouched by itself.
func (t *sqliteTx) LoadExisting(ctx context.Context, spans []storage.Span) (map[storage.Key]storage.Existing, error) {
	out := map[storage.Key]storage.Existing{}
	args := make([]any, 0, 6*min(len(spans), rowsPerStatement))
	for start := 0; start < len(spans); {
		chunk := spans[start : start+nextChunk(len(spans)-start)]
		start += len(chunk)
		st, err := t.stmt(ctx, lookupsOf, len(chunk), lookupSQL)
		if err != nil {
			return nil, classify(err)
		}
		args = args[:0]
		for range 2 {
			for i := range chunk {
				args = append(args, chunk[i].ProjectID, chunk[i].TraceID, chunk[i].SpanID)
			}
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, classify(err)
		}
		for rows.Next() {
			k, e, err := scanExisting(rows)
			if err != nil {
				rows.Close()
				return nil, classify(err)
			}
			out[k] = e
		}
		if err := rows.Close(); err != nil {
			return nil, classify(err)
		}
		if err := rows.Err(); err != nil {
			return nil, classify(err)
		}
	}
	return out, nil
}

func scanExisting(rows *sql.Rows) (storage.Key, storage.Existing, error) {
	var k storage.Key
	var e storage.Existing
	var isGen sql.NullBool
	var start sql.NullInt64
	var model, customer, status sql.NullString
	var tokens [6]sql.NullInt64
	var costs [3]sql.NullFloat64
	var end sql.NullInt64
	var duration sql.NullFloat64
	var provider, session sql.NullString
	err := rows.Scan(&e.Tombstoned, &k.ProjectID, &k.TraceID, &k.SpanID, &isGen, &start, &model, &customer, &status,
		&tokens[0], &tokens[1], &tokens[2], &tokens[3], &tokens[4], &tokens[5], &costs[0], &costs[1], &costs[2],
		&end, &duration, &provider, &session)
	if err != nil {
		return k, e, err
	}
	f := &e.Usage
	f.IsGeneration, f.StartTimeUnixNano, f.StatusCode = isGen.Bool, start.Int64, status.String
	f.Model, f.CustomerID = nullString(model), nullString(customer)
	f.InputTokens, f.OutputTokens, f.TotalTokens = nullInt(tokens[0]), nullInt(tokens[1]), nullInt(tokens[2])
	f.CachedInputTokens, f.CacheWriteInputTokens, f.ReasoningTokens = nullInt(tokens[3]), nullInt(tokens[4]), nullInt(tokens[5])
	f.InputCostUSD, f.OutputCostUSD, f.TotalCostUSD = nullFloat(costs[0]), nullFloat(costs[1]), nullFloat(costs[2])
	f.EndTimeUnixNano, f.DurationMs = end.Int64, duration.Float64
	f.Provider, f.SessionID = nullString(provider), nullString(session)
	return k, e, nil
}

func nullString(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	return &v.String
}

func nullInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

func nullFloat(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

// upsertTail is the ON CONFLICT clause: update every column but the key and
// the received time, and only when some value differs (IS NOT compares NULLs
// as values), so an exact replay writes nothing and returns no row. Content
// that retention cleared stays cleared.
var upsertTail = func() string {
	cols := storage.UpdatableColumns()
	set := make([]string, len(cols))
	diff := make([]string, len(cols))
	for i, c := range cols {
		v := "excluded." + c
		if slices.Contains(storage.ContentColumns, c) {
			v = "CASE WHEN spans.content_cleared THEN NULL ELSE excluded." + c + " END"
		}
		set[i] = c + " = " + v
		diff[i] = "spans." + c + " IS NOT " + v
	}
	return " ON CONFLICT (project_id, trace_id, span_id) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE " + strings.Join(diff, " OR ") + " RETURNING project_id, trace_id, span_id"
}()

func valuesList(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// Upsert implements storage.Tx. On the fast path the rows LoadExisting did
// not find are inserted with insertSQL (the transaction holds the write
// lock, so they are new) and only the others go through the upsert (a
// changed replay updates, an exact replay is left alone). Under a
// savepoint every row goes through the upsert, whose failure undoes only
// the statement.
func (t *sqliteTx) Upsert(ctx context.Context, spans []storage.Span, existing map[storage.Key]storage.Existing, fast bool) ([]storage.Changed, error) {
	if !fast {
		changed, err := t.upsert(ctx, spans)
		return changed, classify(err)
	}
	fresh, replayed := spans, []storage.Span(nil)
	if len(existing) > 0 { // else (the usual case) all are new: no copies
		fresh = make([]storage.Span, 0, len(spans))
		for i := range spans {
			if _, ok := existing[spans[i].Key()]; ok {
				replayed = append(replayed, spans[i])
			} else {
				fresh = append(fresh, spans[i])
			}
		}
	}
	changed, err := t.upsert(ctx, replayed)
	if err != nil {
		return nil, classify(err)
	}
	if err := t.insert(ctx, fresh); err != nil {
		return nil, classify(err)
	}
	changed = slices.Grow(changed, len(fresh))
	for i := range fresh {
		changed = append(changed, storage.Changed{Key: fresh[i].Key(), InsertedKnown: true, Inserted: true})
	}
	return changed, nil
}

func (t *sqliteTx) insert(ctx context.Context, spans []storage.Span) error {
	ncol := len(storage.Columns)
	args := make([]any, 0, ncol*min(len(spans), rowsPerStatement))
	for start := 0; start < len(spans); {
		chunk := spans[start : start+nextChunk(len(spans)-start)]
		start += len(chunk)
		stmt, err := t.stmt(ctx, insertsOf, len(chunk), insertSQL)
		if err != nil {
			return err
		}
		args = args[:0]
		for i := range chunk {
			args = append(args, chunk[i].Values()...)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

func (t *sqliteTx) upsert(ctx context.Context, spans []storage.Span) ([]storage.Changed, error) {
	var changed []storage.Changed
	ncol := len(storage.Columns)
	args := make([]any, 0, ncol*min(len(spans), rowsPerStatement))
	for start := 0; start < len(spans); {
		chunk := spans[start : start+nextChunk(len(spans)-start)]
		start += len(chunk)
		stmt, err := t.stmt(ctx, upsertsOf, len(chunk), upsertSQL)
		if err != nil {
			return nil, err
		}
		args = args[:0]
		for i := range chunk {
			args = append(args, chunk[i].Values()...)
		}
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k storage.Key
			if err := rows.Scan(&k.ProjectID, &k.TraceID, &k.SpanID); err != nil {
				rows.Close()
				return nil, err
			}
			changed = append(changed, storage.Changed{Key: k})
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return changed, nil
}

// AddUsage implements storage.Tx.
func (t *sqliteTx) AddUsage(ctx context.Context, deltas []storage.UsageDelta) error {
	ncol := 4 + len(storage.UsageDeltaColumns)
	args := make([]any, 0, ncol*min(len(deltas), rowsPerStatement))
	for start := 0; start < len(deltas); {
		chunk := deltas[start : start+nextChunk(len(deltas)-start)]
		start += len(chunk)
		st, err := t.stmt(ctx, usagesOf, len(chunk), usageSQL)
		if err != nil {
			return classify(err)
		}
		args = args[:0]
		for i := range chunk {
			d := &chunk[i]
			args = append(args, d.Key.ProjectID, d.Key.Day, d.Key.Model, d.Key.CustomerID)
			for _, v := range d.Values() {
				args = append(args, v)
			}
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return classify(err)
		}
	}
	return nil
}

// AddHourly implements storage.Tx.
func (t *sqliteTx) AddHourly(ctx context.Context, deltas []storage.HourlyDelta) error {
	return classify(addHourly(ctx, t.tx, t.store, deltas))
}

// addHourly applies deltas to gen_hourly inside tx (a write or a retention
// batch): the cached statements of store when it has them.
func addHourly(ctx context.Context, tx *sql.Tx, store *Store, deltas []storage.HourlyDelta) error {
	t := &sqliteTx{tx: tx, store: store}
	ncol := 4 + len(storage.HourlyDeltaColumns)
	args := make([]any, 0, ncol*min(len(deltas), rowsPerStatement))
	for start := 0; start < len(deltas); {
		chunk := deltas[start : start+nextChunk(len(deltas)-start)]
		start += len(chunk)
		st, err := t.stmt(ctx, hourliesOf, len(chunk), hourlySQL)
		if err != nil {
			return err
		}
		args = args[:0]
		for i := range chunk {
			d := &chunk[i]
			args = append(args, d.Key.ProjectID, d.Key.HourUnixNano, d.Key.Model, d.Key.Provider)
			for _, v := range d.Values() {
				args = append(args, v)
			}
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	// Rare (a changed replay that moved a generation, retention): not
	// worth a cached statement.
	emptied := storage.Emptied(deltas)
	for start := 0; start < len(emptied); start += rowsPerStatement {
		chunk := emptied[start:min(start+rowsPerStatement, len(emptied))]
		args = args[:0]
		for _, k := range chunk {
			args = append(args, k.ProjectID, k.HourUnixNano, k.Model, k.Provider)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM gen_hourly WHERE (project_id, hour_unix_nano, model, provider) IN (VALUES "+
			valuesList(len(chunk), 4)+") AND generations = 0", args...); err != nil {
			return err
		}
	}
	return nil
}

// Savepoint implements storage.Tx.
func (t *sqliteTx) Savepoint(ctx context.Context, name string) error {
	_, err := t.tx.ExecContext(ctx, "SAVEPOINT "+name)
	return classify(err)
}

// RollbackTo implements storage.Tx.
func (t *sqliteTx) RollbackTo(ctx context.Context, name string) error {
	_, err := t.tx.ExecContext(ctx, "ROLLBACK TO "+name)
	return classify(err)
}

// Release implements storage.Tx.
func (t *sqliteTx) Release(ctx context.Context, name string) error {
	_, err := t.tx.ExecContext(ctx, "RELEASE "+name)
	return classify(err)
}

// Retention statements. The content pass walks spans_with_content (rows
// that still hold content, by age), so a pass with nothing to do reads a
// leaf of an empty index instead of every row cleared before.
const (
	contentBatchSQL = `SELECT rowid FROM spans INDEXED BY spans_with_content
		WHERE received_at_unix_nano < ? AND (prompt IS NOT NULL OR completion IS NOT NULL) LIMIT ?`
	clearContentSQL = `UPDATE spans SET prompt = NULL, completion = NULL, content_cleared = 1 WHERE rowid IN (` + contentBatchSQL + `)`
	oldSpansSQL     = `SELECT rowid FROM spans INDEXED BY spans_received_at WHERE received_at_unix_nano < ? LIMIT ?`
	tombstoneSQL    = `INSERT OR IGNORE INTO span_tombstones (project_id, trace_id, span_id, deleted_at_unix_nano)
		SELECT project_id, trace_id, span_id, ? FROM spans WHERE rowid IN (SELECT value FROM json_each(?))`
	// The deleted rows' usage comes back to be subtracted from gen_hourly,
	// and their sessions and customers, whose totals are recomputed.
	deleteSpansSQL = `DELETE FROM spans WHERE rowid IN (SELECT value FROM json_each(?)) RETURNING ` + storage.DeletedColumns
)

// Retention of the Fallom SDK tables (migration 6). Each statement takes
// one batch through the index of its cutoff column, so a pass with nothing
// to do reads an empty range. The eval body is cleared to the empty string
// (the column is NOT NULL); eval_runs_with_body holds only runs that still
// have one.
// WITHOUT ROWID tables are deleted by primary key.
const (
	evalBodyBatchSQL = `SELECT rowid FROM eval_runs INDEXED BY eval_runs_with_body
		WHERE received_at_unix_nano < ? AND body <> '' LIMIT ?`
	clearEvalBodySQL  = `UPDATE eval_runs SET body = '' WHERE rowid IN (` + evalBodyBatchSQL + `)`
	deleteEvalRunsSQL = `DELETE FROM eval_runs WHERE rowid IN (SELECT rowid FROM eval_runs INDEXED BY eval_runs_received
		WHERE received_at_unix_nano < ? LIMIT ?)`
	deleteSessionMetricsSQL = `DELETE FROM session_metrics WHERE (project_id, config_key, session_id, name) IN (
		SELECT project_id, config_key, session_id, name FROM session_metrics INDEXED BY session_metrics_updated
		WHERE updated_at_unix_nano < ? LIMIT ?)`
	deleteAssignmentCallsSQL = `DELETE FROM assignment_calls WHERE (project_id, config_key, config_version, session_id, received_at_unix_nano) IN (
		SELECT project_id, config_key, config_version, session_id, received_at_unix_nano FROM assignment_calls
		INDEXED BY assignment_calls_received WHERE received_at_unix_nano < ? LIMIT ?)`
	deleteAssignmentsSQL = `DELETE FROM assignments WHERE (project_id, config_key, config_version, session_id) IN (
		SELECT project_id, config_key, config_version, session_id FROM assignments INDEXED BY assignments_last_seen
		WHERE last_seen_unix_nano < ? LIMIT ?)`
)

// ApplyRetention implements storage.Store. Each batch is its own short
// transaction, so writes interleave with a long retention pass. Deleted
// spans leave tombstones in the same transaction.
func (s *Store) ApplyRetention(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionResult, error) {
	var res storage.RetentionResult
	if err := s.writable(); err != nil {
		return res, err
	}
	batch := p.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	if p.ContentAfter > 0 {
		cutoff := p.Now.Add(-p.ContentAfter).UnixNano()
		var err error
		if res.ContentCleared, err = s.retentionPass(ctx, clearContentSQL, cutoff, batch); err != nil {
			return res, err
		}
		if res.EvalContentCleared, err = s.retentionPass(ctx, clearEvalBodySQL, cutoff, batch); err != nil {
			return res, err
		}
	}
	if p.SpansAfter > 0 {
		cutoff := p.Now.Add(-p.SpansAfter).UnixNano()
		for {
			var n int64
			err := s.retentionTx(ctx, func(tx *sql.Tx) error {
				var err error
				n, err = s.deleteBatch(ctx, tx, cutoff, batch, p.Now.UnixNano())
				return err
			})
			if err != nil {
				return res, err
			}
			res.SpansDeleted += n
			if n == 0 {
				break
			}
		}
		for _, step := range []struct {
			query string
			count *int64
		}{
			{deleteEvalRunsSQL, &res.EvalRunsDeleted},
			{deleteSessionMetricsSQL, &res.SessionMetricsDeleted},
			{deleteAssignmentCallsSQL, &res.AssignmentCallsDeleted},
			{deleteAssignmentsSQL, &res.AssignmentsDeleted},
		} {
			var err error
			if *step.count, err = s.retentionPass(ctx, step.query, cutoff, batch); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// retentionPass runs query (cutoff, batch), one batch per transaction,
// until a batch changes nothing, and returns the rows it changed.
func (s *Store) retentionPass(ctx context.Context, query string, cutoff int64, batch int) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.retentionTx(ctx, func(tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, query, cutoff, batch)
			if err == nil {
				n, err = r.RowsAffected()
			}
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// deleteBatch deletes up to batch spans received before cutoff, leaves a
// tombstone of each, subtracts the deleted generations from gen_hourly and
// recomputes the totals of their sessions and customers from the spans
// left.
func (s *Store) deleteBatch(ctx context.Context, tx *sql.Tx, cutoff int64, batch int, now int64) (int64, error) {
	rows, err := tx.QueryContext(ctx, oldSpansSQL, cutoff, batch)
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, tombstoneSQL, now, string(list)); err != nil {
		return 0, err
	}
	rows, err = tx.QueryContext(ctx, deleteSpansSQL, string(list))
	if err != nil {
		return 0, err
	}
	gone, err := storage.ScanDeleted(rows.Next, rows.Scan)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return 0, err
	}
	if err := addHourly(ctx, tx, s, gone.Hourly); err != nil {
		return 0, err
	}
	return gone.Spans, recomputeTotals(ctx, tx, gone.Sessions, gone.Customers)
}

func (s *Store) retentionTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := (&sqliteTx{tx: tx, store: s}).CheckSchema(ctx); err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return classify(err)
	}
	return classify(tx.Commit())
}

// classify marks errors that retrying cannot fix as permanent. Busy,
// locked, I/O, full disk and interrupted (timeout) stay plain: they may pass.
func classify(err error) error {
	if err == nil || storage.IsPermanent(err) {
		return err
	}
	var se *sqlitedriver.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
			return storage.NewPermanent(err)
		}
	}
	return err
}

// checkPageSize accepts the page sizes SQLite supports.
func checkPageSize(n int) error {
	if n < 512 || n > 65536 || n&(n-1) != 0 {
		return fmt.Errorf("sqlite: page size %d is not supported: use a power of two from 512 to 65536 (default %d)", n, DefaultPageSize)
	}
	return nil
}
