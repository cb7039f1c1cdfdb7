package fallomauthextension

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
)

// Internal telemetry names (documented in metadata.yaml and README.md).
const (
	metricRequests = "otelcol_fallomauth_requests"
	metricReloads  = "otelcol_fallomauth_reloads"
	metricKeys     = "otelcol_fallomauth_keys"
	metricRefused  = "otelcol_fallomauth_keys_file_refused"

	attrOutcome = "outcome" // accepted | rejected (requests), success | failure (reloads)
	attrReason  = "reason"  // rejection reason, see reasonNames
	attrKeyName = "key_name"
	attrState   = "state" // active | revoked | expired (keys)
)

// telemetry records through the collector's own MeterProvider. Attributes
// carry key names, never key material.
type telemetry struct {
	requests metric.Int64Counter
	reloads  metric.Int64Counter
	keysReg  metric.Registration

	rejectOpts                [numReasons][]metric.AddOption
	reloadOKOpt, reloadErrOpt metric.AddOption

	// fileRefused is true while the keys file on disk is refused (the
	// collector runs on the last good set, narrowed fail-safe).
	fileRefused atomic.Bool
}

func newTelemetry(set component.TelemetrySettings) (*telemetry, error) {
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	t := &telemetry{}
	var err error
	if t.requests, err = meter.Int64Counter(metricRequests,
		metric.WithDescription("Requests authenticated by fallomauth, by outcome, rejection reason and key name."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if t.reloads, err = meter.Int64Counter(metricReloads,
		metric.WithDescription("Keys file loads that changed the key set (success) or were refused, keeping the last good set (failure)."),
		metric.WithUnit("{reload}")); err != nil {
		return nil, err
	}
	for r := reasonNone + 1; r < numReasons; r++ {
		t.rejectOpts[r] = []metric.AddOption{t.rejectedOption(r, "")}
	}
	t.reloadOKOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrOutcome, "success")))
	t.reloadErrOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrOutcome, "failure")))
	return t, nil
}

// registerKeysGauge reports the configured keys by state, evaluated at
// collection time (expiry is a matter of the clock, not of reloads).
func (t *telemetry) registerKeysGauge(set component.TelemetrySettings, current func() *keySet, now func() time.Time) error {
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	gauge, err := meter.Int64ObservableGauge(metricKeys,
		metric.WithDescription("Keys known to fallomauth, by state."),
		metric.WithUnit("{key}"))
	if err != nil {
		return err
	}
	refused, err := meter.Int64ObservableGauge(metricRefused,
		metric.WithDescription("1 while the keys file on disk is refused (invalid): the last good set is in force, minus the keys the file removes or revokes; 0 otherwise."),
		metric.WithUnit("{file}"))
	if err != nil {
		return err
	}
	active := metric.WithAttributeSet(attribute.NewSet(attribute.String(attrState, "active")))
	revoked := metric.WithAttributeSet(attribute.NewSet(attribute.String(attrState, "revoked")))
	expired := metric.WithAttributeSet(attribute.NewSet(attribute.String(attrState, "expired")))
	t.keysReg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		a, r, e := current().counts(now())
		o.ObserveInt64(gauge, int64(a), active)
		o.ObserveInt64(gauge, int64(r), revoked)
		o.ObserveInt64(gauge, int64(e), expired)
		var isRefused int64
		if t.fileRefused.Load() {
			isRefused = 1
		}
		o.ObserveInt64(refused, isRefused)
		return nil
	}, gauge, refused)
	return err
}

func (t *telemetry) unregister() {
	if t.keysReg != nil {
		_ = t.keysReg.Unregister()
		t.keysReg = nil
	}
}

func (*telemetry) acceptedOption(keyName string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(
		attribute.String(attrOutcome, "accepted"),
		attribute.String(attrKeyName, keyName)))
}

func (*telemetry) rejectedOption(r reason, keyName string) metric.AddOption {
	kvs := []attribute.KeyValue{
		attribute.String(attrOutcome, "rejected"),
		attribute.String(attrReason, reasonNames[r]),
	}
	if keyName != "" {
		kvs = append(kvs, attribute.String(attrKeyName, keyName))
	}
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}
