package requestguardextension // import "github.com/fallom/fallom-collector/extension/requestguardextension"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/fallom/fallom-collector/extension/requestguardextension/internal/metadata"
)

// Internal telemetry names (documented in metadata.yaml and README.md).
const (
	metricRefused  = "otelcol_requestguard_refused_requests"
	metricInFlight = "otelcol_requestguard_in_flight_requests"
	attrReason     = "reason"
)

type refusalReason int

const (
	reasonBusy        refusalReason = iota // over max_in_flight_requests: 503
	reasonTooLarge                         // body over max_request_body_size: 413
	reasonProjectBusy                      // the project's share of max_in_flight_requests in use: 503
	numReasons
)

var reasonNames = [numReasons]string{reasonBusy: "busy", reasonTooLarge: "too_large", reasonProjectBusy: "project_busy"}

type telemetry struct {
	refusedCounter metric.Int64Counter
	reasonOpts     [numReasons][]metric.AddOption
	inFlightReg    metric.Registration
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{}
	var err error
	if t.refusedCounter, err = meter.Int64Counter(metricRefused,
		metric.WithDescription("HTTP requests refused by requestguard, by reason (busy: 503 over max_in_flight_requests; project_busy: 503 over the project's max_project_share; too_large: 413 over max_request_body_size)."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	for r := range numReasons {
		t.reasonOpts[r] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(attrReason, reasonNames[r])))}
	}
	return t, nil
}

// registerInFlight reports the requests in flight, read at collection time.
func (t *telemetry) registerInFlight(set component.TelemetrySettings, slots chan struct{}) error {
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	gauge, err := meter.Int64ObservableGauge(metricInFlight,
		metric.WithDescription("HTTP requests requestguard is letting through right now (bounded by max_in_flight_requests)."),
		metric.WithUnit("{request}"))
	if err != nil {
		return err
	}
	t.inFlightReg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(gauge, int64(len(slots)))
		return nil
	}, gauge)
	return err
}

func (t *telemetry) refused(ctx context.Context, r refusalReason) {
	t.refusedCounter.Add(ctx, 1, t.reasonOpts[r]...)
}

func (t *telemetry) shutdown() {
	if t.inFlightReg != nil {
		_ = t.inFlightReg.Unregister()
	}
}
