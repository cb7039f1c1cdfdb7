// Package backend owns the databases of the process: one open backend (one
// SQLite connection or one PostgreSQL pool, one migration run) per database,
// shared by every component that names it in its `storage` section (the
// fallom exporter, the console, the SDK receiver), the way Jaeger v2's
// jaegerstorage extension owns its backends. It is the only package above
// internal/storage/{sqlite,postgres} that knows the drivers: components call
// Acquire with their storage Config and use the storage interfaces.
package backend // import "github.com/fallom/fallom-collector/internal/storage/backend"

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/postgres"
	"github.com/fallom/fallom-collector/internal/storage/sqlite"
)

// openWait bounds how long Acquire waits for a database to become ready
// (an unreachable PostgreSQL server, a long migration), so the collector's
// start is not held for the OS connect timeout or a backfill; the backend
// keeps at it in the background afterwards.
const openWait = 15 * time.Second

// key identifies one database.
type key struct {
	driver, dsn string
}

// entry is one open (or opening) backend.
type entry struct {
	key    key
	tuning tuning
	ready  chan struct{} // closed once the open finished (store or err set)
	store  storage.Store
	err    error
	refs   int // guarded by registry.mu
}

// tuning is what of a Config applies to the whole backend besides its key:
// the settings of its driver (the other driver's section is ignored).
type tuning struct {
	SQLite   SQLiteConfig
	Postgres PostgresConfig
}

func tuningOf(cfg Config) tuning {
	if cfg.Driver == DriverPostgres {
		return tuning{Postgres: cfg.Postgres}
	}
	t := tuning{SQLite: cfg.SQLite}
	if t.SQLite.PageSize == 0 { // unset means the default: not a difference
		t.SQLite.PageSize = sqlite.DefaultPageSize
	}
	return t
}

type registry struct {
	mu      sync.Mutex
	entries map[key]*entry
}

var process = &registry{entries: map[key]*entry{}}

// Handle is one component's use of a shared backend. Release it once, when
// the component shuts down.
type Handle struct {
	e           *entry
	description string
	released    sync.Once
	reg         *registry
}

// Store is the shared backend (writer interface; readers type-assert to the
// reader interface of internal/storage).
func (h *Handle) Store() storage.Store { return h.e.store }

// Describe names the database without its password.
func (h *Handle) Describe() string { return h.description }

// Release gives the backend back; the last release closes it.
func (h *Handle) Release() error {
	var err error
	h.released.Do(func() { err = h.reg.release(h.e) })
	return err
}

// Acquire returns the backend of cfg, opening it when no other component of
// this process holds it: the same (driver, DSN) gives the same store, hence
// one connection pool and one migration run per database. Its sqlite /
// postgres settings must equal those of the components already holding it
// (an error says which differ). logger reports the backend's own events (a
// PostgreSQL server not reachable yet).
func Acquire(ctx context.Context, cfg Config, logger *zap.Logger) (*Handle, error) {
	return process.acquire(ctx, cfg, logger)
}

func keyOf(cfg Config) (key, error) {
	dsn := string(cfg.DSN)
	switch cfg.Driver {
	case DriverSQLite:
		// ./data/fallom.db and data/fallom.db are one file: one writer.
		abs, err := filepath.Abs(dsn)
		if err != nil {
			return key{}, fmt.Errorf("storage: resolve the SQLite path %s: %w", dsn, err)
		}
		dsn = filepath.Clean(abs)
	case DriverPostgres:
		dsn = storage.NormalizeDSN(dsn)
	default:
		return key{}, fmt.Errorf("storage: unknown driver %q", cfg.Driver)
	}
	return key{cfg.Driver, dsn}, nil
}

func (r *registry) acquire(ctx context.Context, cfg Config, logger *zap.Logger) (*Handle, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	k, err := keyOf(cfg)
	if err != nil {
		return nil, err
	}
	want := tuningOf(cfg)
	desc := cfg.Describe()
	r.mu.Lock()
	e := r.entries[k]
	if e != nil {
		if e.tuning != want {
			r.mu.Unlock()
			return nil, fmt.Errorf("storage %s is already open by another component with other settings (%s); "+
				"give every component that names this database the same storage.sqlite and storage.postgres sections",
				desc, differences(e.tuning, want))
		}
		e.refs++
		r.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			r.release(e) //nolint:errcheck // the opener closes the store if it fails
			return nil, ctx.Err()
		}
		if e.err != nil {
			r.release(e) //nolint:errcheck
			return nil, e.err
		}
		return &Handle{e: e, description: desc, reg: r}, nil
	}
	e = &entry{key: k, tuning: want, ready: make(chan struct{}), refs: 1}
	r.entries[k] = e
	r.mu.Unlock()

	e.store, e.err = open(ctx, cfg, logger)
	if e.err != nil {
		r.mu.Lock()
		if r.entries[k] == e {
			delete(r.entries, k)
		}
		r.mu.Unlock()
		close(e.ready)
		return nil, e.err
	}
	close(e.ready)
	return &Handle{e: e, description: desc, reg: r}, nil
}

func (r *registry) release(e *entry) error {
	r.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && r.entries[e.key] == e {
		delete(r.entries, e.key)
	}
	r.mu.Unlock()
	if !last || e.store == nil {
		return nil
	}
	<-e.ready
	return e.store.Close()
}

func differences(have, want tuning) string {
	var out []string
	add := func(name string, a, b any) {
		if a != b {
			out = append(out, fmt.Sprintf("%s is %v there, %v here", name, a, b))
		}
	}
	add("storage.sqlite.busy_timeout", have.SQLite.BusyTimeout, want.SQLite.BusyTimeout)
	add("storage.sqlite.synchronous", have.SQLite.Synchronous, want.SQLite.Synchronous)
	add("storage.sqlite.page_size", have.SQLite.PageSize, want.SQLite.PageSize)
	add("storage.postgres.max_conns", have.Postgres.MaxConns, want.Postgres.MaxConns)
	add("storage.postgres.min_conns", have.Postgres.MinConns, want.Postgres.MinConns)
	add("storage.postgres.max_conn_lifetime", have.Postgres.MaxConnLifetime, want.Postgres.MaxConnLifetime)
	add("storage.postgres.max_conn_idle_time", have.Postgres.MaxConnIdleTime, want.Postgres.MaxConnIdleTime)
	return strings.Join(out, "; ")
}

// open opens the backend of cfg, waiting at most openWait for its first
// migration attempt. A store returned with an error is usable but not ready
// (PostgreSQL not reachable yet, a long migration still running): its
// writes are answered retryably until it is, and the start goes on.
func open(ctx context.Context, cfg Config, logger *zap.Logger) (storage.Store, error) {
	desc := cfg.Describe()
	octx, cancel := context.WithTimeout(ctx, openWait)
	defer cancel()
	var s storage.Store
	var err error
	switch cfg.Driver {
	case DriverSQLite:
		var st *sqlite.Store
		st, err = sqlite.Open(octx, sqlite.Options{
			Path: string(cfg.DSN), BusyTimeout: cfg.SQLite.BusyTimeout, Synchronous: cfg.SQLite.Synchronous,
			PageSize: cfg.SQLite.PageSize, Logger: logger,
		})
		if st != nil {
			s = st
		}
	case DriverPostgres:
		var st *postgres.Store
		st, err = postgres.Open(octx, postgres.Options{
			DSN: storage.NormalizeDSN(string(cfg.DSN)), MaxConns: cfg.Postgres.MaxConns, MinConns: cfg.Postgres.MinConns,
			MaxConnLifetime: cfg.Postgres.MaxConnLifetime, MaxConnIdleTime: cfg.Postgres.MaxConnIdleTime, Logger: logger,
		})
		if st != nil {
			s = st
		}
	default:
		return nil, fmt.Errorf("storage: unknown driver %q", cfg.Driver)
	}
	switch {
	case s == nil:
		return nil, fmt.Errorf("open %s: %w", desc, err)
	case err != nil:
		// The database may come later (containers starting together), or
		// a migration is still running: the store keeps at it.
		logger.Warn("storage is not reachable yet or its schema is not ready; writes are answered 503 (retryable) until it is",
			zap.String("storage", desc), zap.Error(err))
	}
	return s, nil
}
