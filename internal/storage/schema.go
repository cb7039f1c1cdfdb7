package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrSchemaNotReady is wrapped by writes made before the migrations of
// this collector are applied (still running, or failed and being retried).
// It is never permanent: the sender is answered 503 and retries, and no
// span is refused as bad data because of the schema.
var ErrSchemaNotReady = errors.New("storage: the database schema is not ready")

// MigrationError is a migration that the database refused (as opposed to a
// database that could not be reached).
type MigrationError struct {
	Version int
	Name    string
	Err     error
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("migration %d (%s) failed: %v", e.Version, e.Name, e.Err)
}
func (e *MigrationError) Unwrap() error { return e.Err }

// Migrator applies a backend's migrations in the background, in a context
// of its own (no request's or start's deadline can cancel a long backfill),
// retrying with backoff after a failure and logging what failed, and tells
// writes whether the schema is ready. A backend calls Start once at open.
type Migrator struct {
	// Describe names the database in logs (no password).
	Describe string
	Logger   *zap.Logger
	// Apply applies every pending migration once (the backend serializes
	// collectors sharing the database: PostgreSQL advisory lock, SQLite
	// write lock). It returns the version reached.
	Apply func(ctx context.Context) (int, error)
	// OnReady runs after a successful Apply, before writes are let in
	// (SQLite prepares its statements on the new schema).
	OnReady func(ctx context.Context) error
	// Want is the schema version this collector writes.
	Want int
	// RetryMin and RetryMax bound the backoff between attempts (1 s and
	// 30 s by default).
	RetryMin, RetryMax time.Duration

	mu          sync.Mutex
	ready       bool
	lastErr     error
	attempts    int
	lastAttempt time.Time     // end of the last attempt
	first       chan struct{} // closed when the first attempt has finished
	kick        chan struct{}
	stopped     chan struct{}
	cancel      context.CancelFunc
}

// Start runs the migrations in the background until they succeed or Stop.
func (m *Migrator) Start() {
	if m.Logger == nil {
		m.Logger = zap.NewNop()
	}
	if m.RetryMin <= 0 {
		m.RetryMin = time.Second
	}
	if m.RetryMax <= 0 {
		m.RetryMax = 30 * time.Second
	}
	m.first = make(chan struct{})
	m.kick = make(chan struct{}, 1)
	m.stopped = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.loop(ctx)
}

// Attempts is the number of migration attempts so far.
func (m *Migrator) Attempts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// Stop ends the background attempts (at Close) and waits for them.
func (m *Migrator) Stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.stopped
}

func (m *Migrator) loop(ctx context.Context) {
	defer close(m.stopped)
	firstDone := false
	backoff := m.RetryMin
	for {
		err := m.attempt(ctx)
		if !firstDone {
			firstDone = true
			close(m.first)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = m.RetryMin
			select { // a nudge from before this success is stale
			case <-m.kick:
			default:
			}
			// Wait for a write to find the schema behind (a database
			// restored from an old backup) before trying again.
			select {
			case <-ctx.Done():
				return
			case <-m.kick:
				continue
			}
		}
		m.Logger.Error("storage schema migration failed; writes are answered 503 (retryable) until it succeeds",
			zap.String("storage", m.Describe), zap.Duration("retry_in", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		case <-m.kick:
		}
		backoff = min(2*backoff, m.RetryMax)
	}
}

func (m *Migrator) attempt(ctx context.Context) error {
	m.mu.Lock()
	m.attempts++
	m.mu.Unlock()
	start := time.Now()
	version, err := m.Apply(ctx)
	if err == nil && m.OnReady != nil {
		err = m.OnReady(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastAttempt = time.Now()
	if err != nil {
		m.ready, m.lastErr = false, err
		return err
	}
	if !m.ready && m.attempts > 1 || time.Since(start) > time.Second {
		m.Logger.Info("storage schema is ready", zap.String("storage", m.Describe),
			zap.Int("version", version), zap.Duration("took", time.Since(start)))
	}
	m.ready, m.lastErr = true, nil
	return nil
}

// WaitFirst waits until the first attempt has finished or ctx ends, and
// returns that attempt's error (nil when ready; ctx's error when it is
// still running).
func (m *Migrator) WaitFirst(ctx context.Context) error {
	select {
	case <-m.first:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Ready returns nil when writes may go ahead, else a retryable error that
// says why (ErrSchemaNotReady, with the last failure). A write finding the
// schema not ready also brings the next attempt forward (at most one
// attempt per RetryMin), so a database that comes up is migrated as soon as
// traffic asks for it rather than at the end of the backoff.
func (m *Migrator) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready {
		return nil
	}
	if !m.lastAttempt.IsZero() && time.Since(m.lastAttempt) >= m.RetryMin {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	if m.lastErr != nil {
		return fmt.Errorf("%w: %v (retrying)", ErrSchemaNotReady, m.lastErr)
	}
	return fmt.Errorf("%w: migrations to version %d are still running", ErrSchemaNotReady, m.Want)
}

// Behind is called by a write that found the database below this
// collector's schema version: the migrations run again.
func (m *Migrator) Behind() {
	m.mu.Lock()
	m.ready = false
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// SchemaMismatch is the retryable error of a write that found the database
// at version have while this collector writes version want. A newer
// database means another collector was upgraded: this one stops writing
// (its rows or rollups could be counted differently by the new schema)
// until it is upgraded too.
func SchemaMismatch(have, want int) error {
	if have > want {
		return fmt.Errorf("%w: the database is at schema version %d, newer than the %d this collector writes; "+
			"upgrade this collector (its writes are answered 503 until then)", ErrSchemaTooNew, have, want)
	}
	return fmt.Errorf("%w: the database is at schema version %d, this collector needs %d; migrating", ErrSchemaNotReady, have, want)
}
