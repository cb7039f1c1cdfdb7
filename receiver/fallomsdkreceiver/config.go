package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

// OTLP span kind encodings of POST /v1/traces bodies with resourceSpans.
const (
	// SpanKindAPI: the body numbers span kinds like the OpenTelemetry JS API
	// (INTERNAL=0 ... CONSUMER=4), as the Fallom SDK's Mastra exporter does
	// (FALLOM_SDK.md 2.5); the receiver adds one.
	SpanKindAPI = "api"
	// SpanKindOTLP: the body follows the OTLP enum (UNSPECIFIED=0,
	// INTERNAL=1 ...), as a stock OTLP exporter does.
	SpanKindOTLP = "otlp"
)

// Config configures the fallomsdk receiver: one HTTP server that speaks the
// Fallom SDKs' protocol (FALLOM_SDK.md section 7).
type Config struct {
	// ServerConfig is the HTTP server: endpoint, TLS, auth (fallomauth, the
	// ingest scope), middlewares (requestguard), max_request_body_size,
	// timeouts.
	confighttp.ServerConfig `mapstructure:",squash"`

	// SDKFile is the SDK file (DESIGN 6) whose configs, prompts, prompt A/B
	// tests and datasets are served, per project. Empty: none are served.
	// A missing file serves nothing until it is created.
	SDKFile string `mapstructure:"sdk_file"`

	// SDKFileReloadInterval is how often the SDK file is re-read besides
	// file-system notifications (0: notifications only).
	SDKFileReloadInterval time.Duration `mapstructure:"sdk_file_reload_interval"`

	// OTLPSpanKind says how the span kinds of OTLP/JSON bodies on
	// /v1/traces are numbered: "api" (the Fallom Mastra exporter, default)
	// or "otlp".
	OTLPSpanKind string `mapstructure:"otlp_span_kind"`

	// DefaultProjectID is the project whose SDK file entries are served to
	// requests without an authenticated project (no auth configured), like
	// the mapping processor's default_project_id for the data. Empty (the
	// default): such requests are refused, failing closed as the processor
	// does.
	DefaultProjectID string `mapstructure:"default_project_id"`

	// RetryAfter is advertised with a 503 when the pipeline refuses data
	// with a retryable error that names no delay of its own.
	RetryAfter time.Duration `mapstructure:"retry_after"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint is required"))
	}
	if c.SDKFileReloadInterval < 0 {
		errs = append(errs, errors.New("sdk_file_reload_interval must not be negative"))
	}
	if c.OTLPSpanKind != SpanKindAPI && c.OTLPSpanKind != SpanKindOTLP {
		errs = append(errs, fmt.Errorf("otlp_span_kind must be %q or %q, got %q", SpanKindAPI, SpanKindOTLP, c.OTLPSpanKind))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, errors.New("retry_after must be at least 1s (Retry-After is sent in whole seconds)"))
	}
	return errors.Join(errs...)
}
