// Package storage is the small interface between the fallom exporter and the
// databases it writes to, modelled on Jaeger v2's storage layer: the exporter
// turns pdata into Span rows and hands them to a Store; each backend (package
// sqlite, package postgres) owns its SQL, its migrations and its error
// classification, and shares the write algorithm in this package (dedupe,
// idempotent upsert, usage_daily rollup by delta, isolation of bad rows).
package storage // import "github.com/fallom/fallom-collector/internal/storage"

import (
	"context"
	"errors"
	"time"
)

// Span is one row of the `spans` table (DESIGN 2.5). Pointer fields are NULL
// when nil.
type Span struct {
	ProjectID    string
	TraceID      string // 32 lowercase hex digits
	SpanID       string // 16 lowercase hex digits
	ParentSpanID *string

	Name          string
	Kind          string // UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
	StatusCode    string // UNSET, OK, ERROR
	StatusMessage *string

	StartTimeUnixNano  int64
	EndTimeUnixNano    int64
	DurationMs         float64
	ReceivedAtUnixNano int64

	IsGeneration bool
	SessionID    *string
	CustomerID   *string

	Model          *string
	RequestedModel *string
	Provider       *string
	Operation      *string

	InputTokens           *int64
	OutputTokens          *int64
	TotalTokens           *int64
	CachedInputTokens     *int64
	CacheWriteInputTokens *int64
	ReasoningTokens       *int64

	InputCostUSD  *float64
	OutputCostUSD *float64
	TotalCostUSD  *float64
	CostSource    *string

	FinishReason       *string
	TimeToFirstTokenMs *float64
	Streamed           *bool

	Prompt     *string
	Completion *string
	Source     *string

	// Fallom SDK experiment fields (DESIGN 2.5, 6), NULL when absent.
	ConfigKey          *string
	ConfigVersion      *int64
	PromptKey          *string
	PromptVersion      *int64
	PromptABTestKey    *string
	PromptVariantIndex *int64

	Attributes         string // JSON object text
	ResourceAttributes string // JSON object text
}

// Key is the primary key of a span row.
type Key struct {
	ProjectID, TraceID, SpanID string
}

// Key returns the primary key of s.
func (s *Span) Key() Key { return Key{s.ProjectID, s.TraceID, s.SpanID} }

// WriteResult counts what one write did. Inserted + Updated + Unchanged +
// Expired is the number of distinct keys written; Rejected counts rows that
// could never be written (their error is returned as permanent).
type WriteResult struct {
	Inserted  int
	Updated   int
	Unchanged int
	// Expired counts replays of spans that retention already deleted: they
	// are acknowledged but neither stored nor counted again (a tombstone
	// remembers the key), so usage_daily stays exact.
	Expired  int
	Rejected int
}

// RetentionPolicy says what to remove. A zero duration keeps that data
// forever. Age is measured from received_at_unix_nano (when the collector
// stored the span), not from the span's own timestamps, which the sender
// controls and which may be 0 or far in the future.
type RetentionPolicy struct {
	// ContentAfter clears prompt and completion of older spans and the body
	// (eval inputs and outputs) of older eval runs.
	ContentAfter time.Duration
	// SpansAfter deletes older spans (usage_daily is kept) and the Fallom
	// SDK rows of the same age: eval runs, session metrics (by updated_at),
	// counted lookups, and assignments whose last lookup is older.
	SpansAfter time.Duration
	BatchSize  int // rows per statement, so no lock is held for long
	Now        time.Time
}

// RetentionResult counts what one retention pass changed.
type RetentionResult struct {
	ContentCleared int64
	SpansDeleted   int64
	// The Fallom SDK tables.
	EvalContentCleared     int64 // eval runs whose body was cleared
	EvalRunsDeleted        int64
	SessionMetricsDeleted  int64
	AssignmentCallsDeleted int64
	AssignmentsDeleted     int64
	// Skipped is true when another collector sharing the database was
	// running a pass already (PostgreSQL), so this one did nothing.
	Skipped bool
}

// Store is a storage backend.
type Store interface {
	// WriteSpans stores spans idempotently on (project_id, trace_id, span_id)
	// and maintains usage_daily in the same transaction. It returns only
	// after the data is committed. Errors that may pass (busy, connection
	// lost, server restarting) are returned plain; rows that can never be
	// written are isolated from the rest (which is committed) and reported
	// with an error for which IsPermanent is true.
	WriteSpans(ctx context.Context, spans []Span) (WriteResult, error)
	// ApplyRetention clears content and deletes spans per policy, in
	// batches of policy.BatchSize rows per transaction. Deleted spans leave
	// a tombstone of their key, so a later replay is not stored or counted
	// again; cleared content is never restored by a replay.
	ApplyRetention(ctx context.Context, policy RetentionPolicy) (RetentionResult, error)
	// SchemaVersion is the highest applied migration.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}

// permanentError marks data that can never be written.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// NewPermanent marks err as caused by data that retrying cannot fix.
func NewPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or any error it wraps) is permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
