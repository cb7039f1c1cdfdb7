// Package postgres is the PostgreSQL backend of the fallom exporter (pgx v5
// pool). A write is one transaction: the batch travels as one array per
// column and is expanded server-side with unnest into one INSERT ... ON
// CONFLICT, so a batch of any size is a handful of round trips.
package postgres // import "github.com/fallom/fallom-collector/internal/storage/postgres"

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/storage"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the versioned schema of this backend.
func Migrations() ([]storage.Migration, error) {
	return storage.LoadMigrations(migrationFS, "migrations")
}

// Options configure the PostgreSQL backend.
type Options struct {
	DSN             string // postgres:// URL or key=value string
	MaxConns        int32  // pool size (default: pgx's, at least 4)
	MinConns        int32
	MaxConnLifetime time.Duration
	MaxConnIdleTime time.Duration
	// Logger reports schema migrations (what failed, when they are ready).
	Logger *zap.Logger
	// MigrateTo stops migrations at this version (0 = all). Tests use it;
	// such a store does not write.
	MigrateTo int
	// Migrations replaces the embedded migrations (tests: a migration that
	// fails or blocks).
	Migrations []storage.Migration
}

// Advisory lock keys. Migrations hold migrationLockID exclusively (one
// collector migrates at a time); every write transaction holds it shared,
// so a write never interleaves with a migration and always sees the
// schema it checked. retentionLockID makes one collector at a time run a
// retention pass on a shared database.
const (
	migrationLockID = 0x66616c6c6f6d   // "fallom"
	retentionLockID = 0x66616c6c6f6d72 // "fallomr"
)

// concurrentRetries bounds the in-process retries of a write that raced
// another collector on the first insert of the same span, or lost a
// deadlock.
const concurrentRetries = 5

// maxGroupSpans bounds the spans of one group commit.
const maxGroupSpans = 5000

// Store is the PostgreSQL backend.
type Store struct {
	pool       *pgxpool.Pool
	password   string
	dsn        string
	migrations []storage.Migration
	want       int
	migrator   *storage.Migrator

	// group merges concurrent writes into shared transactions (up to the
	// pool size at once), each caller answered for its own spans.
	group *storage.GroupCommitter

	// transactions counts write transactions (tests).
	transactions atomic.Int64

	// The read side (read.go), on the same pool.
	*storage.SQLReader
}

var _ storage.Store = (*Store)(nil)

// Open creates the pool and migrates in the background (storage.Migrator:
// its own context without deadline, one collector at a time under an
// advisory lock, retried after a failure). Open waits for the first
// attempt until ctx ends:
//   - the schema is ready: (store, nil);
//   - a migration the server refused, or a database migrated by a newer
//     collector: (nil, error) (the collector fails to start, saying what);
//   - the server not reachable yet, or the migration still running:
//     (store, retryable error): writes are answered 503 until the schema is
//     in (containers starting together, long backfills).
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		return nil, storage.NewPermanent(fmt.Errorf("postgres: invalid dsn %s: %s",
			storage.RedactDSN(opts.DSN), storage.RedactText(err.Error(), opts.DSN)))
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if opts.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = opts.MaxConnLifetime
	}
	if opts.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = opts.MaxConnIdleTime
	}
	migrations := opts.Migrations
	if migrations == nil {
		if migrations, err = Migrations(); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, storage.NewPermanent(fmt.Errorf("postgres: create pool for %s: %s",
			storage.RedactDSN(opts.DSN), redactText(err.Error(), cfg.ConnConfig.Password)))
	}
	want := len(migrations)
	if opts.MigrateTo > 0 {
		want = opts.MigrateTo
	}
	s := &Store{pool: pool, password: cfg.ConnConfig.Password, dsn: opts.DSN, migrations: migrations, want: want}
	// The totals are read once the migrations are done (before: from the
	// spans).
	s.SQLReader = newReader(pool, cfg.ConnConfig.Password, func() bool { return s.want == len(s.migrations) && s.migrator.Ready() == nil })
	s.group = storage.NewGroupCommitter(int(cfg.MaxConns), maxGroupSpans, s.commit)
	s.migrator = &storage.Migrator{
		Describe: "postgres " + storage.RedactDSN(opts.DSN), Logger: opts.Logger, Want: want,
		Apply: func(ctx context.Context) (int, error) {
			v, err := s.migrate(ctx)
			return v, s.redact(err)
		},
	}
	s.migrator.Start()
	err = s.migrator.WaitFirst(ctx)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return s, nil
	case errors.Is(err, storage.ErrSchemaTooNew) || errors.As(err, &pgErr):
		// The server answered: the schema itself is the problem.
		s.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return s, fmt.Errorf("%w: migrations still running (%v); writes are answered 503 until they finish", storage.ErrSchemaNotReady, err)
	}
	return s, err
}

// Pool exposes the pool for tests and tools that read the tables.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the migrations and closes the pool.
func (s *Store) Close() error {
	s.migrator.Stop()
	s.pool.Close()
	return nil
}

// migrate applies the pending migrations on one connection holding the
// migration advisory lock (so collectors that start together apply each
// version once, and writes, which hold it shared, wait), without any
// statement or lock timeout of the server: a backfill may take long.
func (s *Store) migrate(ctx context.Context) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	// No server-side timeout applies to waiting for the migration lock
	// (another collector may be migrating) nor to the migration itself.
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0; SET lock_timeout = 0"); err != nil {
		return 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET statement_timeout; RESET lock_timeout") //nolint:errcheck
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLockID)); err != nil {
		return 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLockID)) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at_unix_nano bigint NOT NULL)`); err != nil {
		return 0, err
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return 0, err
	}
	if current > len(s.migrations) {
		return current, fmt.Errorf("%w: the database is at schema version %d, this collector knows up to %d; upgrade the collector",
			storage.ErrSchemaTooNew, current, len(s.migrations))
	}
	for _, m := range s.migrations {
		if m.Version <= current || m.Version > s.want {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return &storage.MigrationError{Version: m.Version, Name: m.Name, Err: err}
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at_unix_nano) VALUES ($1, $2, $3)",
				m.Version, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return current, err
		}
		current = m.Version
	}
	return current, nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, s.wrap(err)
}

// writable fails (retryably) until the schema this store writes is in.
func (s *Store) writable() error {
	if err := s.migrator.Ready(); err != nil {
		return s.redact(err)
	}
	if s.want != len(s.migrations) {
		return fmt.Errorf("%w: opened at schema version %d of %d (a test store): it does not write",
			storage.ErrSchemaNotReady, s.want, len(s.migrations))
	}
	return nil
}

// WriteSpans implements storage.Store. Concurrent calls are committed
// together (group commit, up to the pool size of groups at once); each
// returns once the transaction holding its spans has committed or failed,
// with its own counts and its own rejected spans.
func (s *Store) WriteSpans(ctx context.Context, spans []storage.Span) (storage.WriteResult, error) {
	if len(spans) == 0 {
		return storage.WriteResult{}, nil
	}
	if err := s.writable(); err != nil {
		return storage.WriteResult{}, err
	}
	return s.group.Write(ctx, spans)
}

// commit writes one group (storage.CommitGroup: one transaction; when a
// row is refused, once more isolating, so only the caller that sent it
// gets the permanent error).
func (s *Store) commit(ctx context.Context, group []*storage.Request) {
	storage.CommitGroup(group, func(isolating bool) error { return s.writeTx(ctx, group, isolating) })
}

// writeTx runs one write transaction at READ COMMITTED whatever the
// server's default (repeatable read or serializable would fail concurrent
// writers with serialization errors), retrying in place, after a short
// random pause, when another transaction raced it.
func (s *Store) writeTx(ctx context.Context, group []*storage.Request, isolating bool) error {
	return s.readCommitted(ctx, func(tx pgx.Tx) error {
		return storage.WriteGroup(ctx, pgTx{tx: tx, store: s}, group, isolating)
	})
}

// readCommitted runs fn in a READ COMMITTED transaction, again (after a
// short random pause) when another transaction raced it, and classifies
// the final error.
func (s *Store) readCommitted(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := range concurrentRetries {
		if attempt > 0 {
			if err := jitter(ctx, attempt); err != nil {
				break
			}
		}
		s.transactions.Add(1)
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
		if !retryInPlace(err) {
			break
		}
	}
	return s.wrap(err)
}

// jitter sleeps a random 1..10*attempt ms, so writers that collided do not
// collide again in lockstep.
func jitter(ctx context.Context, attempt int) error {
	d := time.Duration(1+rand.IntN(10*attempt)) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryInPlace reports errors that another transaction caused and that a
// new attempt right away resolves: a concurrent first insert of the same
// span, a deadlock, a serialization failure.
func retryInPlace(err error) bool {
	if storage.IsConcurrentFirstWrite(err) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

type pgTx struct {
	tx    pgx.Tx
	store *Store
}

// CheckSchema implements storage.Tx: it takes the migration lock shared
// for the rest of the transaction (waiting, within ctx, while a collector
// migrates) and reads the schema version.
func (t pgTx) CheckSchema(ctx context.Context) error {
	var v int
	if err := t.tx.QueryRow(ctx, `SELECT (SELECT coalesce(max(version), 0) FROM schema_migrations)
		FROM pg_advisory_xact_lock_shared($1)`, int64(migrationLockID)).Scan(&v); err != nil {
		return t.store.wrap(err)
	}
	if want := len(t.store.migrations); v != want {
		if v < want {
			t.store.migrator.Behind()
		}
		return storage.SchemaMismatch(v, want)
	}
	return nil
}

// lookupSQL finds the stored rows and the tombstones among the keys.
var lookupSQL = "SELECT false, project_id, trace_id, span_id, " + storage.UsageColumns +
	" FROM spans WHERE (project_id, trace_id, span_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))" +
	" UNION ALL SELECT true, project_id, trace_id, span_id, " +
	strings.TrimSuffix(strings.Repeat("NULL, ", strings.Count(storage.UsageColumns, ",")+1), ", ") +
	" FROM span_tombstones WHERE (project_id, trace_id, span_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))"

// LoadExisting implements storage.Tx without locking rows that will not
// change: an unlocked lookup of the keys, then, for the keys found, one
// statement that compares the stored content with the rows and locks (FOR
// UPDATE) only those that differ, reading their usage fields under the
// lock. An exact replay thus locks and writes nothing (FOR UPDATE on every
// replayed row wrote 280 KB of WAL for a 5000-span exact replay).
func (t pgTx) LoadExisting(ctx context.Context, spans []storage.Span) (map[storage.Key]storage.Existing, error) {
	projects, traces, spanIDs := make([]string, len(spans)), make([]string, len(spans)), make([]string, len(spans))
	for i := range spans {
		projects[i], traces[i], spanIDs[i] = spans[i].ProjectID, spans[i].TraceID, spans[i].SpanID
	}
	rows, err := t.tx.Query(ctx, lookupSQL, projects, traces, spanIDs)
	if err != nil {
		return nil, t.store.wrap(err)
	}
	out := map[storage.Key]storage.Existing{}
	for rows.Next() {
		k, e, err := scanExisting(rows)
		if err != nil {
			rows.Close()
			return nil, t.store.wrap(err)
		}
		out[k] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, t.store.wrap(err)
	}
	var stored []storage.Span
	for i := range spans {
		if e, ok := out[spans[i].Key()]; ok && !e.Tombstoned {
			stored = append(stored, spans[i])
		}
	}
	if len(stored) == 0 {
		return out, nil
	}
	// Rows whose content differs, locked; the others are identical (or
	// were deleted meanwhile by retention, which left a tombstone).
	rows, err = t.tx.Query(ctx, changedSQL, columnArrays(stored)...)
	if err != nil {
		return nil, t.store.wrap(err)
	}
	differ := map[storage.Key]storage.Existing{}
	for rows.Next() {
		k, e, err := scanExisting(rows)
		if err != nil {
			rows.Close()
			return nil, t.store.wrap(err)
		}
		differ[k] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, t.store.wrap(err)
	}
	for i := range stored {
		k := stored[i].Key()
		if e, ok := differ[k]; ok {
			out[k] = e
		} else {
			e := out[k]
			e.Identical = true
			out[k] = e
		}
	}
	return out, nil
}

func scanExisting(rows pgx.Rows) (storage.Key, storage.Existing, error) {
	var k storage.Key
	var e storage.Existing
	var isGen *bool
	var start *int64
	var status *string
	var end *int64
	var duration *float64
	f := &e.Usage
	err := rows.Scan(&e.Tombstoned, &k.ProjectID, &k.TraceID, &k.SpanID, &isGen, &start, &f.Model, &f.CustomerID, &status,
		&f.InputTokens, &f.OutputTokens, &f.TotalTokens, &f.CachedInputTokens, &f.CacheWriteInputTokens, &f.ReasoningTokens,
		&f.InputCostUSD, &f.OutputCostUSD, &f.TotalCostUSD, &end, &duration, &f.Provider, &f.SessionID)
	if end != nil {
		f.EndTimeUnixNano = *end
	}
	if duration != nil {
		f.DurationMs = *duration
	}
	if isGen != nil {
		f.IsGeneration = *isGen
	}
	if start != nil {
		f.StartTimeUnixNano = *start
	}
	if status != nil {
		f.StatusCode = *status
	}
	return k, e, err
}

// columnParams are the typed array parameters of storage.Columns, in order.
var columnParams = func() []string {
	params := make([]string, len(storage.Columns))
	for i, c := range storage.Columns {
		switch c.Type {
		case storage.Text, storage.JSON:
			params[i] = fmt.Sprintf("$%d::text[]", i+1)
		case storage.Int:
			params[i] = fmt.Sprintf("$%d::bigint[]", i+1)
		case storage.Real:
			params[i] = fmt.Sprintf("$%d::float8[]", i+1)
		case storage.Bool:
			params[i] = fmt.Sprintf("$%d::boolean[]", i+1)
		}
	}
	return params
}()

// incoming is the value a write gives column c: the row's (from alias u,
// or EXCLUDED), but content stays cleared once retention cleared it.
func incoming(src, c string) string {
	if slices.Contains(storage.ContentColumns, c) {
		return "CASE WHEN spans.content_cleared THEN NULL ELSE " + src + "." + c + " END"
	}
	return src + "." + c
}

// rowsAlias expands the column arrays into a relation u with the column
// names of spans (jsonb columns cast back).
var rowsAlias = func() string {
	cols := make([]string, len(storage.Columns))
	for i, c := range storage.Columns {
		cols[i] = c.Name
	}
	return "(SELECT " + func() string {
		sel := make([]string, len(storage.Columns))
		for i, c := range storage.Columns {
			sel[i] = "r." + c.Name
			if c.Type == storage.JSON {
				sel[i] += "::jsonb AS " + c.Name
			}
		}
		return strings.Join(sel, ", ")
	}() + " FROM unnest(" + strings.Join(columnParams, ", ") + ") AS r(" + strings.Join(cols, ", ") + ")) u"
}()

// changedSQL returns, locked, the stored rows whose content differs from
// the given rows (every column but the key and the received time).
var changedSQL = func() string {
	cols := storage.UpdatableColumns()
	oldVals := make([]string, len(cols))
	newVals := make([]string, len(cols))
	for i, c := range cols {
		oldVals[i] = "spans." + c
		newVals[i] = incoming("u", c)
	}
	usage := strings.Split(storage.UsageColumns, ", ")
	for i, c := range usage {
		usage[i] = "spans." + c
	}
	return "SELECT false, spans.project_id, spans.trace_id, spans.span_id, " + strings.Join(usage, ", ") +
		" FROM spans JOIN " + rowsAlias + " ON (spans.project_id, spans.trace_id, spans.span_id) = (u.project_id, u.trace_id, u.span_id)" +
		" WHERE (" + strings.Join(oldVals, ", ") + ") IS DISTINCT FROM (" + strings.Join(newVals, ", ") + ")" +
		" ORDER BY spans.project_id, spans.trace_id, spans.span_id FOR UPDATE OF spans"
}()

// upsertSQL expands one array per column with unnest. The ON CONFLICT
// clause updates every column but the key and the received time, and only
// when some value differs, so an exact replay writes nothing and returns no
// row; xmax = 0 tells an inserted row from an updated one.
var upsertSQL = func() string {
	cols := storage.UpdatableColumns()
	set := make([]string, len(cols))
	oldVals := make([]string, len(cols))
	newVals := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = " + incoming("EXCLUDED", c)
		oldVals[i] = "spans." + c
		newVals[i] = incoming("EXCLUDED", c)
	}
	return "INSERT INTO spans (" + storage.ColumnNames() + ") SELECT * FROM " + rowsAlias +
		" ON CONFLICT (project_id, trace_id, span_id) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (" + strings.Join(oldVals, ", ") + ") IS DISTINCT FROM (" + strings.Join(newVals, ", ") + ")" +
		" RETURNING project_id, trace_id, span_id, (xmax = 0) AS inserted"
}()

// Upsert implements storage.Tx.
func (t pgTx) Upsert(ctx context.Context, spans []storage.Span, _ map[storage.Key]storage.Existing, _ bool) ([]storage.Changed, error) {
	rows, err := t.tx.Query(ctx, upsertSQL, columnArrays(spans)...)
	if err != nil {
		return nil, t.store.wrap(err)
	}
	defer rows.Close()
	var changed []storage.Changed
	for rows.Next() {
		c := storage.Changed{InsertedKnown: true}
		if err := rows.Scan(&c.Key.ProjectID, &c.Key.TraceID, &c.Key.SpanID, &c.Inserted); err != nil {
			return nil, t.store.wrap(err)
		}
		changed = append(changed, c)
	}
	return changed, t.store.wrap(rows.Err())
}

// columnArrays turns rows into one typed array per column.
func columnArrays(spans []storage.Span) []any {
	n := len(storage.Columns)
	arrays := make([]any, n)
	for i, c := range storage.Columns {
		switch c.Type {
		case storage.Text, storage.JSON:
			arrays[i] = make([]*string, len(spans))
		case storage.Int:
			arrays[i] = make([]*int64, len(spans))
		case storage.Real:
			arrays[i] = make([]*float64, len(spans))
		case storage.Bool:
			arrays[i] = make([]*bool, len(spans))
		}
	}
	for r := range spans {
		for i, v := range spans[r].Values() {
			switch a := arrays[i].(type) {
			case []*string:
				switch x := v.(type) {
				case string:
					a[r] = &x
				case *string:
					a[r] = x
				}
			case []*int64:
				switch x := v.(type) {
				case int64:
					a[r] = &x
				case *int64:
					a[r] = x
				}
			case []*float64:
				switch x := v.(type) {
				case float64:
					a[r] = &x
				case *float64:
					a[r] = x
				}
			case []*bool:
				switch x := v.(type) {
				case bool:
					a[r] = &x
				case *bool:
					a[r] = x
				}
			}
		}
	}
	return arrays
}

var addUsageSQL = func() string {
	cols := storage.UsageDeltaColumns
	params := []string{"$1::text[]", "$2::date[]", "$3::text[]", "$4::text[]"}
	set := make([]string, len(cols))
	for i, c := range cols {
		params = append(params, fmt.Sprintf("$%d::bigint[]", i+5))
		set[i] = c + " = " + storage.SaturatingSum("usage_daily", "EXCLUDED", c)
	}
	return "INSERT INTO usage_daily (project_id, day, model, customer_id, " + strings.Join(cols, ", ") +
		") SELECT * FROM unnest(" + strings.Join(params, ", ") + ")" +
		" ON CONFLICT (project_id, day, model, customer_id) DO UPDATE SET " + strings.Join(set, ", ")
}()

// AddUsage implements storage.Tx.
func (t pgTx) AddUsage(ctx context.Context, deltas []storage.UsageDelta) error {
	n := len(deltas)
	projects, days, models, customers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	counters := make([][]int64, len(storage.UsageDeltaColumns))
	for i := range counters {
		counters[i] = make([]int64, n)
	}
	for r := range deltas {
		d := &deltas[r]
		projects[r], days[r], models[r], customers[r] = d.Key.ProjectID, d.Key.Day, d.Key.Model, d.Key.CustomerID
		for i, v := range d.Values() {
			counters[i][r] = v
		}
	}
	args := []any{projects, days, models, customers}
	for _, a := range counters {
		args = append(args, a)
	}
	_, err := t.tx.Exec(ctx, addUsageSQL, args...)
	return t.store.wrap(err)
}

var addHourlySQL = func() string {
	cols := storage.HourlyDeltaColumns
	params := []string{"$1::text[]", "$2::bigint[]", "$3::text[]", "$4::text[]"}
	set := make([]string, len(cols))
	for i, c := range cols {
		params = append(params, fmt.Sprintf("$%d::bigint[]", i+5))
		set[i] = c + " = " + storage.SaturatingSum("gen_hourly", "EXCLUDED", c)
	}
	return "INSERT INTO gen_hourly (project_id, hour_unix_nano, model, provider, " + strings.Join(cols, ", ") +
		") SELECT * FROM unnest(" + strings.Join(params, ", ") + ")" +
		" ON CONFLICT (project_id, hour_unix_nano, model, provider) DO UPDATE SET " + strings.Join(set, ", ")
}()

const deleteEmptyHoursSQL = `DELETE FROM gen_hourly WHERE (project_id, hour_unix_nano, model, provider) IN (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])) AND generations = 0`

// AddHourly implements storage.Tx.
func (t pgTx) AddHourly(ctx context.Context, deltas []storage.HourlyDelta) error {
	return t.store.wrap(addHourly(ctx, t.tx, deltas))
}

// addHourly applies deltas (in key order, as they lock rows) to gen_hourly
// inside tx (a write or a retention batch).
func addHourly(ctx context.Context, tx pgx.Tx, deltas []storage.HourlyDelta) error {
	n := len(deltas)
	projects, hours, models, providers := make([]string, n), make([]int64, n), make([]string, n), make([]string, n)
	counters := make([][]int64, len(storage.HourlyDeltaColumns))
	for i := range counters {
		counters[i] = make([]int64, n)
	}
	for r := range deltas {
		d := &deltas[r]
		projects[r], hours[r], models[r], providers[r] = d.Key.ProjectID, d.Key.HourUnixNano, d.Key.Model, d.Key.Provider
		for i, v := range d.Values() {
			counters[i][r] = v
		}
	}
	args := []any{projects, hours, models, providers}
	for _, a := range counters {
		args = append(args, a)
	}
	if _, err := tx.Exec(ctx, addHourlySQL, args...); err != nil {
		return err
	}
	emptied := storage.Emptied(deltas)
	if len(emptied) == 0 {
		return nil
	}
	n = len(emptied)
	projects, hours, models, providers = make([]string, n), make([]int64, n), make([]string, n), make([]string, n)
	for i, k := range emptied {
		projects[i], hours[i], models[i], providers[i] = k.ProjectID, k.HourUnixNano, k.Model, k.Provider
	}
	_, err := tx.Exec(ctx, deleteEmptyHoursSQL, projects, hours, models, providers)
	return err
}

// Savepoint implements storage.Tx.
func (t pgTx) Savepoint(ctx context.Context, name string) error {
	_, err := t.tx.Exec(ctx, "SAVEPOINT "+name)
	return t.store.wrap(err)
}

// RollbackTo implements storage.Tx.
func (t pgTx) RollbackTo(ctx context.Context, name string) error {
	_, err := t.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name)
	return t.store.wrap(err)
}

// Release implements storage.Tx.
func (t pgTx) Release(ctx context.Context, name string) error {
	_, err := t.tx.Exec(ctx, "RELEASE SAVEPOINT "+name)
	return t.store.wrap(err)
}

// Retention statements. A batch takes its rows with FOR UPDATE SKIP
// LOCKED, so it never waits for a row a writer holds; the content pass
// walks spans_with_content (rows that still hold content), so a pass with
// nothing to do does not read the rows cleared before; deleted spans leave
// tombstones in the same statement, which returns the deleted rows' usage
// to be subtracted from gen_hourly in the same transaction.
const (
	contentBatchSQL = `SELECT ctid FROM spans
			WHERE received_at_unix_nano < $1 AND (prompt IS NOT NULL OR completion IS NOT NULL)
			LIMIT $2 FOR UPDATE SKIP LOCKED`
	clearContentSQL = `UPDATE spans SET prompt = NULL, completion = NULL, content_cleared = true
		WHERE ctid = ANY(ARRAY(` + contentBatchSQL + `))`
	deleteSpansSQL = `WITH gone AS (
			DELETE FROM spans WHERE ctid = ANY(ARRAY(SELECT ctid FROM spans
				WHERE received_at_unix_nano < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))
			RETURNING trace_id, span_id, ` + storage.DeletedColumns + `),
		tombstones AS (
			INSERT INTO span_tombstones (project_id, trace_id, span_id, deleted_at_unix_nano)
			SELECT project_id, trace_id, span_id, $3 FROM gone ON CONFLICT DO NOTHING)
		SELECT ` + storage.DeletedColumns + ` FROM gone`
)

// Retention of the Fallom SDK tables (migration 6), with the same
// discipline: a batch takes its rows FOR UPDATE SKIP LOCKED through the
// index of its cutoff column. The eval body is cleared to the empty string
// (the column is NOT NULL); eval_runs_with_body holds only runs that still
// have one, so a content pass with nothing to do reads an empty index.
const (
	evalBodyBatchSQL = `SELECT ctid FROM eval_runs
		WHERE received_at_unix_nano < $1 AND body <> '' LIMIT $2 FOR UPDATE SKIP LOCKED`
	clearEvalBodySQL  = `UPDATE eval_runs SET body = '' WHERE ctid = ANY(ARRAY(` + evalBodyBatchSQL + `))`
	deleteEvalRunsSQL = `DELETE FROM eval_runs WHERE ctid = ANY(ARRAY(SELECT ctid FROM eval_runs
		WHERE received_at_unix_nano < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`
	deleteSessionMetricsSQL = `DELETE FROM session_metrics WHERE ctid = ANY(ARRAY(SELECT ctid FROM session_metrics
		WHERE updated_at_unix_nano < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`
	deleteAssignmentCallsSQL = `DELETE FROM assignment_calls WHERE ctid = ANY(ARRAY(SELECT ctid FROM assignment_calls
		WHERE received_at_unix_nano < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`
	deleteAssignmentsSQL = `DELETE FROM assignments WHERE ctid = ANY(ARRAY(SELECT ctid FROM assignments
		WHERE last_seen_unix_nano < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`
)

// ApplyRetention implements storage.Store. Collectors sharing the database
// take turns: a pass runs only under the retention advisory lock (another
// collector's pass in progress makes this one a no-op, Skipped). Each
// batch is its own transaction; the pass goes on until a batch finds
// nothing (a short batch does not end it: rows locked by writers are
// skipped, not waited for).
func (s *Store) ApplyRetention(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionResult, error) {
	var res storage.RetentionResult
	if err := s.writable(); err != nil {
		return res, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return res, s.wrap(err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(retentionLockID)).Scan(&locked); err != nil {
		return res, s.wrap(err)
	}
	if !locked {
		res.Skipped = true
		return res, nil
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(retentionLockID)) //nolint:errcheck
	batch := p.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	pass := func(f func(tx pgx.Tx) (int64, error)) (int64, error) {
		var total int64
		for {
			var n int64
			err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
				if err := (pgTx{tx: tx, store: s}).CheckSchema(ctx); err != nil {
					return err
				}
				var err error
				n, err = f(tx)
				return err
			})
			if err != nil {
				return total, s.wrap(err)
			}
			total += n
			if n == 0 {
				return total, nil
			}
		}
	}
	// exec makes a batch of a statement taking (cutoff, batch).
	exec := func(query string, cutoff int64) func(tx pgx.Tx) (int64, error) {
		return func(tx pgx.Tx) (int64, error) {
			tag, err := tx.Exec(ctx, query, cutoff, batch)
			return tag.RowsAffected(), err
		}
	}
	if p.ContentAfter > 0 {
		cutoff := p.Now.Add(-p.ContentAfter).UnixNano()
		res.ContentCleared, err = pass(exec(clearContentSQL, cutoff))
		if err != nil {
			return res, err
		}
		if res.EvalContentCleared, err = pass(exec(clearEvalBodySQL, cutoff)); err != nil {
			return res, err
		}
	}
	if p.SpansAfter > 0 {
		cutoff := p.Now.Add(-p.SpansAfter).UnixNano()
		res.SpansDeleted, err = pass(func(tx pgx.Tx) (int64, error) {
			return deleteBatch(ctx, tx, cutoff, batch, p.Now.UnixNano())
		})
		if err != nil {
			return res, err
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
			if *step.count, err = pass(exec(step.query, cutoff)); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// deleteBatch deletes up to batch spans received before cutoff, leaving a
// tombstone of each, subtracts the deleted generations from gen_hourly and
// recomputes the totals of their sessions and customers from the spans
// left, in the same transaction.
func deleteBatch(ctx context.Context, tx pgx.Tx, cutoff int64, batch int, now int64) (int64, error) {
	rows, err := tx.Query(ctx, deleteSpansSQL, cutoff, batch, now)
	if err != nil {
		return 0, err
	}
	gone, err := storage.ScanDeleted(rows.Next, rows.Scan)
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return 0, err
	}
	if err := addHourly(ctx, tx, gone.Hourly); err != nil {
		return 0, err
	}
	return gone.Spans, recomputeTotals(ctx, tx, gone.Sessions, gone.Customers)
}

// wrap classifies err (data errors are permanent; connection, shutdown,
// restart, timeouts, deadlocks and serialization failures stay plain so
// they are retried) and removes the password from its text.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	err = s.redact(err)
	if storage.IsPermanent(err) || errors.Is(err, storage.ErrSchemaNotReady) || errors.Is(err, storage.ErrSchemaTooNew) {
		return err // schema errors are never data errors
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "22"), // data exception (bad encoding, out of range, too long)
			strings.HasPrefix(pgErr.Code, "23"), // integrity constraint violation
			strings.HasPrefix(pgErr.Code, "54"): // program limit exceeded: index row too large, statement too complex (54001, e.g. jsonb nested too deep), too many columns
			return storage.NewPermanent(err)
		}
	}
	return err
}

// redact removes the password from err's text.
func (s *Store) redact(err error) error {
	if err != nil && s.password != "" && strings.Contains(err.Error(), s.password) {
		return &redactedError{err: err, password: s.password}
	}
	return err
}

type redactedError struct {
	err      error
	password string
}

func (e *redactedError) Error() string { return redactText(e.err.Error(), e.password) }
func (e *redactedError) Unwrap() error { return e.err }

func redactText(text, password string) string {
	if password == "" {
		return text
	}
	return strings.ReplaceAll(text, password, "xxxxx")
}
