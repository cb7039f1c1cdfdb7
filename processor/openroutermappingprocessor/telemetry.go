package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"

	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// telemetry: what the processor did, on the collector's own metrics
// (component.TelemetrySettings.MeterProvider), counted per batch.
type telemetry struct {
	generations     metric.Int64Counter
	connectionTests metric.Int64Counter
	truncated       metric.Int64Counter
	suspectTimes    metric.Int64Counter
	unauthenticated metric.Int64Counter
}

// batchCounts is accumulated while a batch is mapped and recorded once.
type batchCounts struct {
	generations, connectionTests, truncated, suspectTimes int64
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	m := set.MeterProvider.Meter(metadata.ScopeName)
	var errs [5]error
	t := &telemetry{}
	t.generations, errs[0] = m.Int64Counter("otelcol_processor_openroutermapping_generations",
		metric.WithDescription("Spans mapped as generations (one model call each)."), metric.WithUnit("{spans}"))
	t.connectionTests, errs[1] = m.Int64Counter("otelcol_processor_openroutermapping_connection_tests",
		metric.WithDescription("OpenRouter connection-test spans dropped."), metric.WithUnit("{spans}"))
	t.truncated, errs[2] = m.Int64Counter("otelcol_processor_openroutermapping_truncated_values",
		metric.WithDescription("Values truncated to max_value_bytes or the 256-character id limit."), metric.WithUnit("{values}"))
	t.suspectTimes, errs[3] = m.Int64Counter("otelcol_processor_openroutermapping_suspect_timestamps",
		metric.WithDescription("Spans flagged with fallom.timestamp_suspect."), metric.WithUnit("{spans}"))
	t.unauthenticated, errs[4] = m.Int64Counter("otelcol_processor_openroutermapping_unauthenticated_refused",
		metric.WithDescription("Requests (or batches) refused because they carried no authenticated project and neither default_project_id nor trust_resource_project is set."), metric.WithUnit("{requests}"))
	return t, errors.Join(errs[:]...)
}
