// Package sqlite is the embedded SQLite backend of the fallom exporter
// (modernc.org/sqlite, no cgo): WAL journal, one writer connection, batched
// multi-row upserts in one IMMEDIATE transaction per write.
package sqlite // import "github.com/fallom/fallom-collector/internal/storage/sqlite"

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

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
	// Synchronous is the PRAGMA synchronous level: FULL (default) makes a
	// commit durable against power loss; NORMAL only against a crash of the
	// process (the WAL is not fsynced on every commit).
	Synchronous string
	// MigrateTo stops migrations at this version (0 = all). Tests use it to
	// build a database of an older schema.
	MigrateTo int
}

// rowsPerStatement bounds a multi-row statement under SQLite's limit of
// 32766 bound variables (37 columns per span row).
const rowsPerStatement = 500

// pageCacheKiB is the page cache of the writer connection.
const pageCacheKiB = 16 << 10

// walAutocheckpointPages is the WAL size (in pages) that triggers a checkpoint.
const walAutocheckpointPages = 10000

// Store is the SQLite backend.
type Store struct {
	db   *sql.DB
	path string

	// inserts, upserts, lookups and usages hold the prepared multi-row
	// statements of the chunk sizes (inserts of new spans, span upserts,
	// key lookups, usage_daily upserts): parsing a statement of hundreds of
	// placeholders for every write cost about a tenth of the write's CPU.
	// Prepared at open, on the store's only connection, read-only
	// afterwards.
	inserts, upserts, lookups, usages map[int]*sql.Stmt

	// Group commit: concurrent WriteSpans calls queue in pending; whoever
	// holds writeMu takes every pending write and commits them in one
	// transaction (one fsync, one WAL append), so the single writer's
	// batches grow with the load instead of each caller's small batch
	// waiting for its own transaction.
	pendingMu sync.Mutex
	pending   []*pendingWrite
	writeMu   sync.Mutex

	// The read side (read.go): its own pool of query_only connections.
	readDB *sql.DB
	*storage.SQLReader
}

// pendingWrite is one caller's WriteSpans waiting for a group commit. res,
// err and done are written and read under Store.writeMu.
type pendingWrite struct {
	spans []storage.Span
	res   storage.WriteResult
	err   error
	done  bool
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

// Open opens (creating when missing) and migrates the database.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" && sync != "EXTRA" {
		return nil, fmt.Errorf("sqlite: synchronous must be FULL, NORMAL or EXTRA, got %q", opts.Synchronous)
	}
	if dir := filepath.Dir(opts.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %s: %w", opts.Path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
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
	// Checkpoint every 10000 WAL pages (40 MiB) instead of 1000: an index
	// page rewritten by many transactions is copied into the database file
	// once per checkpoint, so rarer checkpoints copy fewer pages per span.
	// Durability is the WAL's (fsynced at commit with synchronous=FULL);
	// the WAL is reset after each checkpoint.
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutocheckpointPages))
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
	s := &Store{db: db, path: opts.Path,
		inserts: map[int]*sql.Stmt{}, upserts: map[int]*sql.Stmt{}, lookups: map[int]*sql.Stmt{}, usages: map[int]*sql.Stmt{}}
	if err := s.migrate(ctx, opts.MigrateTo); err != nil {
		db.Close()
		return nil, err
	}
	if s.readDB, s.SQLReader, err = openReader(opts.Path, opts.BusyTimeout); err != nil {
		s.Close()
		return nil, err
	}
	if opts.MigrateTo == 0 {
		for _, n := range chunkSizes {
			for _, p := range []struct {
				cache map[int]*sql.Stmt
				query string
			}{{s.inserts, insertSQL(n)}, {s.upserts, upsertSQL(n)}, {s.lookups, lookupSQL(n)}, {s.usages, usageSQL(n)}} {
				st, err := db.PrepareContext(ctx, p.query)
				if err != nil {
					s.Close()
					return nil, classify(fmt.Errorf("sqlite: prepare statement: %w", err))
				}
				p.cache[n] = st
			}
		}
	}
	return s, nil
}

// DB exposes the connection for tests and tools that read the tables.
func (s *Store) DB() *sql.DB { return s.db }

// Close checkpoints the WAL into the main file and closes the database.
func (s *Store) Close() error {
	for _, cache := range []map[int]*sql.Stmt{s.inserts, s.upserts, s.lookups, s.usages} {
		for _, st := range cache {
			st.Close()
		}
	}
	if s.readDB != nil {
		_ = s.readDB.Close()
	}
	_, _ = s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return s.db.Close()
}

func (s *Store) migrate(ctx context.Context, target int) error {
	migrations, err := Migrations()
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at_unix_nano INTEGER NOT NULL)`); err != nil {
		return classify(fmt.Errorf("sqlite: create schema_migrations in %s: %w", s.path, err))
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if current > len(migrations) {
		return fmt.Errorf("%w: %s is at schema version %d, this collector knows up to %d; upgrade the collector",
			storage.ErrSchemaTooNew, s.path, current, len(migrations))
	}
	for _, m := range migrations {
		if m.Version <= current || (target > 0 && m.Version > target) {
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, m storage.Migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	// Another process may have applied it while we waited for the lock.
	var done int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&done); err != nil {
		return classify(err)
	}
	if done > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlite: migration %d (%s): %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at_unix_nano) VALUES (?, ?, ?)",
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return classify(err)
	}
	return classify(tx.Commit())
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
// together (group commit, see Store); each returns once the transaction
// holding its spans has committed or failed, with its own counts.
func (s *Store) WriteSpans(ctx context.Context, spans []storage.Span) (storage.WriteResult, error) {
	if len(spans) == 0 {
		return storage.WriteResult{}, nil
	}
	w := &pendingWrite{spans: spans}
	s.pendingMu.Lock()
	s.pending = append(s.pending, w)
	s.pendingMu.Unlock()

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if !w.done { // no earlier leader took it: lead a group with everything pending
		s.pendingMu.Lock()
		group := s.pending
		s.pending = nil
		s.pendingMu.Unlock()
		s.writeGroup(ctx, group)
	}
	return w.res, w.err
}

// writeGroup commits the spans of every write of group in one transaction.
// When that fails permanently nothing was committed, and each write is
// retried on its own (bisecting), so only the caller that sent a row the
// database can never hold gets the permanent error.
func (s *Store) writeGroup(ctx context.Context, group []*pendingWrite) {
	defer func() {
		for _, w := range group {
			w.done = true
		}
	}()
	if len(group) == 1 {
		w := group[0]
		w.res, w.err = storage.WriteIsolating(ctx, w.spans, s.writeOnce)
		return
	}
	n := 0
	for _, w := range group {
		n += len(w.spans)
	}
	all := make([]storage.Span, 0, n)
	for _, w := range group {
		all = append(all, w.spans...)
	}
	outcomes := make(map[storage.Key]storage.Outcome)
	_, err := s.writeTx(ctx, all, outcomes)
	switch {
	case err == nil:
		attributeOutcomes(group, outcomes)
	case storage.IsPermanent(err):
		for _, w := range group {
			w.res, w.err = storage.WriteIsolating(ctx, w.spans, s.writeOnce)
		}
	default:
		for _, w := range group {
			w.err = err
		}
	}
}

// attributeOutcomes gives each write the counts of its own rows. A key sent
// by several writes of the group is counted for the last of them (whose row
// was stored, as storage.Dedupe keeps the last occurrence) and as unchanged
// for the others, so the counts add up to what sequential writes report.
func attributeOutcomes(group []*pendingWrite, outcomes map[storage.Key]storage.Outcome) {
	claimed := make(map[storage.Key]struct{})
	for i := len(group) - 1; i >= 0; i-- {
		w := group[i]
		var res storage.WriteResult
		mine := make(map[storage.Key]struct{}, len(w.spans))
		for j := range w.spans {
			k := w.spans[j].Key()
			if _, dup := mine[k]; dup {
				continue
			}
			mine[k] = struct{}{}
			if _, later := claimed[k]; later {
				res.Unchanged++
				continue
			}
			switch outcomes[k] {
			case storage.OutcomeInserted:
				res.Inserted++
			case storage.OutcomeUpdated:
				res.Updated++
			default:
				res.Unchanged++
			}
		}
		for k := range mine {
			claimed[k] = struct{}{}
		}
		w.res = res
	}
}

func (s *Store) writeOnce(ctx context.Context, spans []storage.Span) (storage.WriteResult, error) {
	return s.writeTx(ctx, spans, nil)
}

func (s *Store) writeTx(ctx context.Context, spans []storage.Span, outcomes map[storage.Key]storage.Outcome) (storage.WriteResult, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return storage.WriteResult{}, classify(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	res, err := storage.WriteBatchOutcomes(ctx, &sqliteTx{tx: tx, store: s}, spans, outcomes)
	if err != nil {
		return storage.WriteResult{}, classify(err)
	}
	if err := tx.Commit(); err != nil {
		return storage.WriteResult{}, classify(err)
	}
	return res, nil
}

type sqliteTx struct {
	tx    *sql.Tx
	store *Store // nil: no statement cache

	// existing holds what LoadExisting found (nil before it ran). The
	// transaction holds the database's write lock from BEGIN (IMMEDIATE),
	// so no other writer can add a row between LoadExisting and Upsert:
	// the keys it did not find are new, and Upsert inserts them with a
	// plain INSERT (see insertSQL).
	existing map[storage.Key]storage.UsageFields
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

func insertsOf(s *Store) map[int]*sql.Stmt { return s.inserts }
func upsertsOf(s *Store) map[int]*sql.Stmt { return s.upserts }
func lookupsOf(s *Store) map[int]*sql.Stmt { return s.lookups }
func usagesOf(s *Store) map[int]*sql.Stmt  { return s.usages }

func lookupSQL(keys int) string {
	return "SELECT project_id, trace_id, span_id, " + storage.UsageColumns +
		" FROM spans WHERE (project_id, trace_id, span_id) IN (VALUES " + valuesList(keys, 3) + ")"
}

func usageSQL(rows int) string {
	cols := storage.UsageDeltaColumns
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = " + c + " + excluded." + c
	}
	return "INSERT INTO usage_daily (project_id, day, model, customer_id, " + strings.Join(cols, ", ") +
		") VALUES " + valuesList(rows, 4+len(cols)) +
		" ON CONFLICT (project_id, day, model, customer_id) DO UPDATE SET " + strings.Join(set, ", ")
}

// insertSQL inserts rows known to be new. OR ROLLBACK: a failing row
// aborts the whole transaction rather than the statement alone, so SQLite
// keeps no statement journal (a copy of every page the statement changes,
// to undo the statement alone), which was a third of the CPU of the
// upsert; nothing is lost, as a failed write is rolled back and retried
// anyway. Without ON CONFLICT ... RETURNING, SQLite also does not buffer
// the statement's result rows.
func insertSQL(rows int) string {
	return "INSERT OR ROLLBACK INTO spans (" + storage.ColumnNames() + ") VALUES " + valuesList(rows, len(storage.Columns))
}

func upsertSQL(rows int) string {
	return "INSERT INTO spans (" + storage.ColumnNames() + ") VALUES " + valuesList(rows, len(storage.Columns)) + upsertTail
}

func (t *sqliteTx) LoadExisting(ctx context.Context, keys []storage.Key) (map[storage.Key]storage.UsageFields, error) {
	out := map[storage.Key]storage.UsageFields{}
	args := make([]any, 0, 3*min(len(keys), rowsPerStatement))
	for start := 0; start < len(keys); {
		chunk := keys[start : start+nextChunk(len(keys)-start)]
		start += len(chunk)
		st, err := t.stmt(ctx, lookupsOf, len(chunk), lookupSQL)
		if err != nil {
			return nil, err
		}
		args = args[:0]
		for _, k := range chunk {
			args = append(args, k.ProjectID, k.TraceID, k.SpanID)
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			k, f, err := scanUsage(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = f
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	t.existing = out
	return out, nil
}

func scanUsage(rows *sql.Rows) (storage.Key, storage.UsageFields, error) {
	var k storage.Key
	var f storage.UsageFields
	var model, customer sql.NullString
	var tokens [6]sql.NullInt64
	var costs [3]sql.NullFloat64
	err := rows.Scan(&k.ProjectID, &k.TraceID, &k.SpanID, &f.IsGeneration, &f.StartTimeUnixNano, &model, &customer, &f.StatusCode,
		&tokens[0], &tokens[1], &tokens[2], &tokens[3], &tokens[4], &tokens[5], &costs[0], &costs[1], &costs[2])
	if err != nil {
		return k, f, err
	}
	f.Model, f.CustomerID = nullString(model), nullString(customer)
	f.InputTokens, f.OutputTokens, f.TotalTokens = nullInt(tokens[0]), nullInt(tokens[1]), nullInt(tokens[2])
	f.CachedInputTokens, f.CacheWriteInputTokens, f.ReasoningTokens = nullInt(tokens[3]), nullInt(tokens[4]), nullInt(tokens[5])
	f.InputCostUSD, f.OutputCostUSD, f.TotalCostUSD = nullFloat(costs[0]), nullFloat(costs[1]), nullFloat(costs[2])
	return k, f, nil
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
// as values), so an exact replay writes nothing and returns no row.
var upsertTail = func() string {
	cols := storage.UpdatableColumns()
	set := make([]string, len(cols))
	diff := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = excluded." + c
		diff[i] = "spans." + c + " IS NOT excluded." + c
	}
	return " ON CONFLICT (project_id, trace_id, span_id) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE " + strings.Join(diff, " OR ") + " RETURNING project_id, trace_id, span_id"
}()

func valuesList(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// Upsert inserts the spans that LoadExisting did not find with insertSQL
// and upserts the others (a changed replay updates, an exact replay is
// left alone). Without a prior LoadExisting every span goes through the
// upsert.
func (t *sqliteTx) Upsert(ctx context.Context, spans []storage.Span) ([]storage.Changed, error) {
	if t.existing == nil {
		return t.upsert(ctx, spans)
	}
	fresh, replayed := spans, []storage.Span(nil)
	if len(t.existing) > 0 { // else (the usual case) all are new: no copies
		fresh = make([]storage.Span, 0, len(spans))
		for i := range spans {
			if _, ok := t.existing[spans[i].Key()]; ok {
				replayed = append(replayed, spans[i])
			} else {
				fresh = append(fresh, spans[i])
			}
		}
	}
	changed, err := t.upsert(ctx, replayed)
	if err != nil {
		return nil, err
	}
	if err := t.insert(ctx, fresh); err != nil {
		return nil, err
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

func (t *sqliteTx) AddUsage(ctx context.Context, deltas []storage.UsageDelta) error {
	ncol := 4 + len(storage.UsageDeltaColumns)
	args := make([]any, 0, ncol*min(len(deltas), rowsPerStatement))
	for start := 0; start < len(deltas); {
		chunk := deltas[start : start+nextChunk(len(deltas)-start)]
		start += len(chunk)
		st, err := t.stmt(ctx, usagesOf, len(chunk), usageSQL)
		if err != nil {
			return err
		}
		args = args[:0]
		for i := range chunk {
			d := &chunk[i]
			args = append(args, d.Key.ProjectID, d.Key.Day, d.Key.Model, d.Key.CustomerID)
			args = append(args, d.Values()...)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// ApplyRetention implements storage.Store. Each batch is its own short
// transaction, so writes interleave with a long retention pass.
func (s *Store) ApplyRetention(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionResult, error) {
	var res storage.RetentionResult
	batch := p.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	if p.ContentAfter > 0 {
		cutoff := p.Now.Add(-p.ContentAfter).UnixNano()
		n, err := s.inBatches(ctx, batch, `UPDATE spans SET prompt = NULL, completion = NULL WHERE rowid IN (
			SELECT rowid FROM spans WHERE received_at_unix_nano < ? AND (prompt IS NOT NULL OR completion IS NOT NULL) LIMIT ?)`, cutoff)
		res.ContentCleared += n
		if err != nil {
			return res, err
		}
	}
	if p.SpansAfter > 0 {
		cutoff := p.Now.Add(-p.SpansAfter).UnixNano()
		n, err := s.inBatches(ctx, batch, `DELETE FROM spans WHERE rowid IN (
			SELECT rowid FROM spans WHERE received_at_unix_nano < ? LIMIT ?)`, cutoff)
		res.SpansDeleted += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func (s *Store) inBatches(ctx context.Context, batch int, query string, cutoff int64) (int64, error) {
	var total int64
	for {
		r, err := s.db.ExecContext(ctx, query, cutoff, batch)
		if err != nil {
			return total, classify(err)
		}
		n, _ := r.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// classify marks errors that retrying cannot fix as permanent. Busy,
// locked, I/O, full disk and interrupted (timeout) stay plain: they may pass.
func classify(err error) error {
	if err == nil {
		return nil
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
