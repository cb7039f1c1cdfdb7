package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"context"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// withRetryAfter wraps the next consumer so that a retryable error coming back
// from downstream (the memory_limiter refusing data under memory pressure, the
// fallom exporter's database being unavailable) carries a gRPC RetryInfo. The
// stock OTLP receiver turns that into `Retry-After` on HTTP 503 and keeps it in
// the gRPC Unavailable status, so OTLP clients (and OpenRouter) back off for
// that long instead of hammering a saturated collector. Without it the
// receiver answers a bare 503. Permanent errors and errors that already carry
// a gRPC status pass through unchanged.
func withRetryAfter(next consumer.Traces, delay time.Duration) (consumer.Traces, error) {
	if delay <= 0 {
		return next, nil
	}
	return consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		return addRetryInfo(next.ConsumeTraces(ctx, td), delay)
	}, consumer.WithCapabilities(next.Capabilities()))
}

// withRetryAfterLogs is withRetryAfter for a logs pipeline (the Fallom SDK
// receiver answers 503 with Retry-After from the same RetryInfo).
func withRetryAfterLogs(next consumer.Logs, delay time.Duration) (consumer.Logs, error) {
	if delay <= 0 {
		return next, nil
	}
	return consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		return addRetryInfo(next.ConsumeLogs(ctx, ld), delay)
	}, consumer.WithCapabilities(next.Capabilities()))
}

func addRetryInfo(err error, delay time.Duration) error {
	if err == nil || consumererror.IsPermanent(err) {
		return err
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	st, detailErr := status.New(codes.Unavailable, err.Error()).
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if detailErr != nil {
		return err
	}
	return st.Err()
}
