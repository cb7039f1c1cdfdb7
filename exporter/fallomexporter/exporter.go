package fallomexporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/exporter/fallomexporter/internal/metadata"
	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/backend"
)

type fallomExporter struct {
	cfg    *Config
	logger *zap.Logger
	now    func() time.Time

	// handle is this exporter's share of the database (one backend per
	// database in the process); store is its writer.
	handle *backend.Handle
	store  storage.Store

	spansWritten  metric.Int64Counter
	eventsWritten metric.Int64Counter
	retained      metric.Int64Counter

	// retention is false for the logs instance: one retention loop (the
	// traces instance's) per exporter config.
	retention bool

	stopRetention context.CancelFunc
	retentionDone sync.WaitGroup
}

func newFallomExporter(cfg *Config, set component.TelemetrySettings) (*fallomExporter, error) {
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	written, err := meter.Int64Counter("fallom_exporter_spans",
		metric.WithDescription("Spans handled by the fallom exporter, by outcome: inserted, updated (changed replay), unchanged (exact replay), expired (replay of a span retention deleted: not stored or counted again), rejected (can never be stored)."),
		metric.WithUnit("{span}"))
	if err != nil {
		return nil, err
	}
	events, err := meter.Int64Counter("fallom_exporter_sdk_events",
		metric.WithDescription("Fallom SDK events (assignments, session metrics, eval runs) handled by the fallom exporter, by outcome: stored, unchanged (a redelivery, an older metric value), rejected (can never be stored)."),
		metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	retained, err := meter.Int64Counter("fallom_exporter_retention_rows",
		metric.WithDescription("Rows changed by retention, by action (content_cleared, deleted) and table (spans, eval_runs, session_metrics, assignment_calls, assignments)."),
		metric.WithUnit("{row}"))
	if err != nil {
		return nil, err
	}
	return &fallomExporter{cfg: cfg, logger: set.Logger, now: time.Now, spansWritten: written, eventsWritten: events,
		retained: retained, retention: true}, nil
}

// describe names the storage for logs without its password.
func (e *fallomExporter) describe() string { return e.cfg.Storage.Describe() }

func (e *fallomExporter) start(ctx context.Context, _ component.Host) error {
	h, err := backend.Acquire(ctx, e.cfg.Storage, e.logger)
	if err != nil {
		return fmt.Errorf("fallom exporter: %w", err)
	}
	e.handle, e.store = h, h.Store()
	e.logger.Info("fallom exporter storage ready", zap.String("storage", e.describe()))
	if r := e.cfg.Retention; e.retention && (r.ContentDays > 0 || r.SpanDays > 0) {
		rctx, cancel := context.WithCancel(context.Background())
		e.stopRetention = cancel
		e.retentionDone.Add(1)
		go e.retentionLoop(rctx)
	}
	return nil
}

func (e *fallomExporter) shutdown(context.Context) error {
	if e.stopRetention != nil {
		e.stopRetention()
		e.retentionDone.Wait()
	}
	if e.handle != nil {
		return e.handle.Release()
	}
	return nil
}

// pushTraces writes one request's spans. The queue does not merge requests
// (see defaultNumConsumers): concurrent calls share transactions in the
// storage, and each call's answer is earned by its own spans only. A plain
// error is retried by exporterhelper; a permanent one is not.
func (e *fallomExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	if e.store == nil {
		return errors.New("fallom exporter: storage is not open")
	}
	rows, invalid := toRows(td, e.now().UnixNano())
	res, err := e.store.WriteSpans(ctx, rows)
	if err != nil && !storage.IsPermanent(err) {
		return err // retryable: nothing to count yet, the retry writes it all
	}
	e.count(ctx, res)
	var details []string
	if err != nil {
		e.logger.Error("spans rejected by the database", zap.Int("rejected", res.Rejected), zap.Error(err))
		details = append(details, err.Error())
	}
	if len(invalid) > 0 {
		e.spansWritten.Add(ctx, int64(len(invalid)), metric.WithAttributes(attribute.String("outcome", "rejected")))
		ierr := invalidError(invalid)
		details = append(details, ierr.Error())
		e.logger.Warn("spans rejected", zap.Int("rejected", len(invalid)), zap.Error(ierr))
	}
	if len(details) > 0 {
		// The answer says what became of every span of the request: the
		// others were committed (a replay of a span retention removed
		// counts as stored: it is acknowledged, not stored again).
		stored := res.Inserted + res.Updated + res.Unchanged + res.Expired
		refused := res.Rejected + len(invalid)
		msg := fmt.Sprintf("%d of %d spans stored, %d refused: %s", stored, stored+refused, refused, strings.Join(details, "; "))
		// InvalidArgument: the stock OTLP receiver answers 400 (the client's
		// data is at fault and must not be retried) instead of the 500 it
		// gives a permanent error without a gRPC status.
		return consumererror.NewPermanent(status.Error(codes.InvalidArgument, msg))
	}
	return nil
}

func (e *fallomExporter) count(ctx context.Context, res storage.WriteResult) {
	addOutcomes(ctx, e.spansWritten, map[string]int{
		"inserted": res.Inserted, "updated": res.Updated, "unchanged": res.Unchanged, "expired": res.Expired, "rejected": res.Rejected,
	})
}

// addOutcomes adds the non-zero counts to counter, by outcome.
func addOutcomes(ctx context.Context, counter metric.Int64Counter, outcomes map[string]int) {
	for outcome, n := range outcomes {
		if n > 0 {
			counter.Add(ctx, int64(n), metric.WithAttributes(attribute.String("outcome", outcome)))
		}
	}
}

func invalidError(invalid []invalidSpan) error {
	return listError("span(s)", len(invalid), func(i int) string {
		s := invalid[i]
		return fmt.Sprintf("span %q (trace_id=%s span_id=%s): %s", s.name, s.traceID, s.spanID, s.reason)
	})
}

// listError says that n things (noun) cannot be stored, naming the first
// five (item(i) describes the i-th) and counting the rest.
func listError(noun string, n int, item func(i int) string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s cannot be stored: ", n, noun)
	for i := range n {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", n-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(item(i))
	}
	return errors.New(b.String())
}

func (e *fallomExporter) retentionLoop(ctx context.Context) {
	defer e.retentionDone.Done()
	r := e.cfg.Retention
	// First pass soon after start, then on the interval.
	timer := time.NewTimer(min(r.Interval, 10*time.Second))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		e.applyRetention(ctx)
		timer.Reset(r.Interval)
	}
}

func (e *fallomExporter) applyRetention(ctx context.Context) {
	r := e.cfg.Retention
	const day = 24 * time.Hour
	res, err := e.store.ApplyRetention(ctx, storage.RetentionPolicy{
		ContentAfter: time.Duration(r.ContentDays) * day,
		SpansAfter:   time.Duration(r.SpanDays) * day,
		BatchSize:    r.BatchSize,
		Now:          e.now(),
	})
	for _, c := range []struct {
		table, action string
		rows          int64
	}{
		{"spans", "content_cleared", res.ContentCleared},
		{"spans", "deleted", res.SpansDeleted},
		{"eval_runs", "content_cleared", res.EvalContentCleared},
		{"eval_runs", "deleted", res.EvalRunsDeleted},
		{"session_metrics", "deleted", res.SessionMetricsDeleted},
		{"assignment_calls", "deleted", res.AssignmentCallsDeleted},
		{"assignments", "deleted", res.AssignmentsDeleted},
	} {
		if c.rows > 0 {
			e.retained.Add(ctx, c.rows, metric.WithAttributes(attribute.String("action", c.action), attribute.String("table", c.table)))
		}
	}
	if err != nil && ctx.Err() == nil {
		e.logger.Warn("retention pass failed; it runs again at the next interval", zap.Error(err))
		return
	}
	if res.Skipped {
		e.logger.Debug("retention pass skipped: another collector sharing the database is running one")
		return
	}
	if res != (storage.RetentionResult{}) {
		e.logger.Info("retention pass", zap.Int64("content_cleared", res.ContentCleared), zap.Int64("spans_deleted", res.SpansDeleted),
			zap.Int64("eval_content_cleared", res.EvalContentCleared), zap.Int64("eval_runs_deleted", res.EvalRunsDeleted),
			zap.Int64("session_metrics_deleted", res.SessionMetricsDeleted),
			zap.Int64("assignment_calls_deleted", res.AssignmentCallsDeleted), zap.Int64("assignments_deleted", res.AssignmentsDeleted))
	}
}
