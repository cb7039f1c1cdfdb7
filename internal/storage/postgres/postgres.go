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
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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
	MaxConns        int32  // pool size (default 4)
	MinConns        int32
	MaxConnLifetime time.Duration
	MaxConnIdleTime time.Duration
	// MigrateTo stops migrations at this version (0 = all). Tests use it.
	MigrateTo int
}

// migrationLockID serializes migrations of collectors sharing a database.
const migrationLockID = 0x66616c6c6f6d // "fallom"

// concurrentRetries bounds the in-process retries of a write that raced
// another collector on the first insert of the same span.
const concurrentRetries = 5

// Store is the PostgreSQL backend.
type Store struct {
	pool      *pgxpool.Pool
	password  string
	migrateTo int

	mu       sync.Mutex
	migrated bool
}

var _ storage.Store = (*Store)(nil)

// Open creates the pool and applies migrations. When the server cannot be
// reached, Open still returns the store together with the (retryable)
// error: every write first retries the migrations, so a collector started
// before its database catches up once the database is there.
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
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, storage.NewPermanent(fmt.Errorf("postgres: create pool for %s: %s",
			storage.RedactDSN(opts.DSN), redactText(err.Error(), cfg.ConnConfig.Password)))
	}
	s := &Store{pool: pool, password: cfg.ConnConfig.Password, migrateTo: opts.MigrateTo}
	return s, s.ensureSchema(ctx)
}

// Pool exposes the pool for tests and tools that read the tables.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func (s *Store) ensureSchema(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated {
		return nil
	}
	if err := s.migrate(ctx); err != nil {
		return s.wrap(err)
	}
	s.migrated = true
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	migrations, err := Migrations()
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// The advisory lock is held for the whole migration so collectors that
	// start together apply each version once.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLockID)); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLockID)) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at_unix_nano bigint NOT NULL)`); err != nil {
		return err
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return err
	}
	if current > len(migrations) {
		return fmt.Errorf("%w: the database is at schema version %d, this collector knows up to %d; upgrade the collector",
			storage.ErrSchemaTooNew, current, len(migrations))
	}
	for _, m := range migrations {
		if m.Version <= current || (s.migrateTo > 0 && m.Version > s.migrateTo) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("postgres: migration %d (%s): %w", m.Version, m.Name, err)
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at_unix_nano) VALUES ($1, $2, $3)",
				m.Version, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, s.wrap(err)
}

// WriteSpans implements storage.Store.
func (s *Store) WriteSpans(ctx context.Context, spans []storage.Span) (storage.WriteResult, error) {
	if len(spans) == 0 {
		return storage.WriteResult{}, nil
	}
	if err := s.ensureSchema(ctx); err != nil {
		return storage.WriteResult{}, err
	}
	return storage.WriteIsolating(ctx, spans, s.writeOnce)
}

func (s *Store) writeOnce(ctx context.Context, spans []storage.Span) (storage.WriteResult, error) {
	var res storage.WriteResult
	var err error
	for range concurrentRetries {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var werr error
			res, werr = storage.WriteBatch(ctx, pgTx{tx}, spans)
			return werr
		})
		if !retryInPlace(err) {
			break
		}
	}
	if err != nil {
		return storage.WriteResult{}, s.wrap(err)
	}
	return res, nil
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

type pgTx struct{ tx pgx.Tx }

func (t pgTx) LoadExisting(ctx context.Context, keys []storage.Key) (map[storage.Key]storage.UsageFields, error) {
	projects, traces, spanIDs := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		projects[i], traces[i], spanIDs[i] = k.ProjectID, k.TraceID, k.SpanID
	}
	rows, err := t.tx.Query(ctx, "SELECT project_id, trace_id, span_id, "+storage.UsageColumns+
		" FROM spans WHERE (project_id, trace_id, span_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))"+
		" ORDER BY project_id, trace_id, span_id FOR UPDATE", projects, traces, spanIDs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[storage.Key]storage.UsageFields{}
	for rows.Next() {
		var k storage.Key
		var f storage.UsageFields
		if err := rows.Scan(&k.ProjectID, &k.TraceID, &k.SpanID, &f.IsGeneration, &f.StartTimeUnixNano, &f.Model, &f.CustomerID, &f.StatusCode,
			&f.InputTokens, &f.OutputTokens, &f.TotalTokens, &f.CachedInputTokens, &f.CacheWriteInputTokens, &f.ReasoningTokens,
			&f.InputCostUSD, &f.OutputCostUSD, &f.TotalCostUSD); err != nil {
			return nil, err
		}
		out[k] = f
	}
	return out, rows.Err()
}

// upsertSQL expands one array per column with unnest. The ON CONFLICT
// clause updates every column but the key and the received time, and only
// when some value differs, so an exact replay writes nothing and returns no
// row; xmax = 0 tells an inserted row from an updated one.
var upsertSQL = func() string {
	n := len(storage.Columns)
	params := make([]string, n)
	aliases := make([]string, n)
	selects := make([]string, n)
	for i, c := range storage.Columns {
		aliases[i] = "c" + fmt.Sprint(i)
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
		selects[i] = aliases[i]
		if c.Type == storage.JSON {
			selects[i] += "::jsonb"
		}
	}
	cols := storage.UpdatableColumns()
	set := make([]string, len(cols))
	oldVals := make([]string, len(cols))
	newVals := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = EXCLUDED." + c
		oldVals[i] = "spans." + c
		newVals[i] = "EXCLUDED." + c
	}
	return "INSERT INTO spans (" + storage.ColumnNames() + ") SELECT " + strings.Join(selects, ", ") +
		" FROM unnest(" + strings.Join(params, ", ") + ") AS u(" + strings.Join(aliases, ", ") + ")" +
		" ON CONFLICT (project_id, trace_id, span_id) DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (" + strings.Join(oldVals, ", ") + ") IS DISTINCT FROM (" + strings.Join(newVals, ", ") + ")" +
		" RETURNING project_id, trace_id, span_id, (xmax = 0) AS inserted"
}()

func (t pgTx) Upsert(ctx context.Context, spans []storage.Span) ([]storage.Changed, error) {
	arrays := columnArrays(spans)
	rows, err := t.tx.Query(ctx, upsertSQL, arrays...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var changed []storage.Changed
	for rows.Next() {
		c := storage.Changed{InsertedKnown: true}
		if err := rows.Scan(&c.Key.ProjectID, &c.Key.TraceID, &c.Key.SpanID, &c.Inserted); err != nil {
			return nil, err
		}
		changed = append(changed, c)
	}
	return changed, rows.Err()
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
		typ := "bigint[]"
		if strings.HasSuffix(c, "_usd") {
			typ = "float8[]"
		}
		params = append(params, fmt.Sprintf("$%d::%s", i+5, typ))
		set[i] = c + " = usage_daily." + c + " + EXCLUDED." + c
	}
	return "INSERT INTO usage_daily (project_id, day, model, customer_id, " + strings.Join(cols, ", ") +
		") SELECT * FROM unnest(" + strings.Join(params, ", ") + ")" +
		" ON CONFLICT (project_id, day, model, customer_id) DO UPDATE SET " + strings.Join(set, ", ")
}()

func (t pgTx) AddUsage(ctx context.Context, deltas []storage.UsageDelta) error {
	n := len(deltas)
	projects, days, models, customers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ints := make([][]int64, 9)
	floats := make([][]float64, 3)
	for i := range ints {
		ints[i] = make([]int64, n)
	}
	for i := range floats {
		floats[i] = make([]float64, n)
	}
	for r := range deltas {
		d := &deltas[r]
		projects[r], days[r], models[r], customers[r] = d.Key.ProjectID, d.Key.Day, d.Key.Model, d.Key.CustomerID
		for i, v := range d.Values() {
			if i < 9 {
				ints[i][r] = v.(int64)
			} else {
				floats[i-9][r] = v.(float64)
			}
		}
	}
	args := []any{projects, days, models, customers}
	for _, a := range ints {
		args = append(args, a)
	}
	for _, a := range floats {
		args = append(args, a)
	}
	_, err := t.tx.Exec(ctx, addUsageSQL, args...)
	return err
}

// ApplyRetention implements storage.Store; each batch is its own statement
// (and transaction).
func (s *Store) ApplyRetention(ctx context.Context, p storage.RetentionPolicy) (storage.RetentionResult, error) {
	var res storage.RetentionResult
	if err := s.ensureSchema(ctx); err != nil {
		return res, err
	}
	batch := p.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	if p.ContentAfter > 0 {
		cutoff := p.Now.Add(-p.ContentAfter).UnixNano()
		n, err := s.inBatches(ctx, batch, `UPDATE spans SET prompt = NULL, completion = NULL WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM spans WHERE received_at_unix_nano < $1 AND (prompt IS NOT NULL OR completion IS NOT NULL) LIMIT $2))`, cutoff)
		res.ContentCleared += n
		if err != nil {
			return res, err
		}
	}
	if p.SpansAfter > 0 {
		cutoff := p.Now.Add(-p.SpansAfter).UnixNano()
		n, err := s.inBatches(ctx, batch, `DELETE FROM spans WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM spans WHERE received_at_unix_nano < $1 LIMIT $2))`, cutoff)
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
		tag, err := s.pool.Exec(ctx, query, cutoff, batch)
		if err != nil {
			return total, s.wrap(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

// wrap classifies err (data errors are permanent; connection, shutdown,
// restart, timeouts, deadlocks and serialization failures stay plain so
// they are retried) and removes the password from its text.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	if s.password != "" && strings.Contains(err.Error(), s.password) {
		err = &redactedError{err: err, password: s.password}
	}
	if storage.IsPermanent(err) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "22"), // data exception (bad encoding, out of range, too long)
			strings.HasPrefix(pgErr.Code, "23"), // integrity constraint violation
			pgErr.Code == "54000":               // program limit exceeded (e.g. index row too large)
			return storage.NewPermanent(err)
		}
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
