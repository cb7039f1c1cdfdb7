package requestguardextension // import "github.com/fallom/fallom-collector/extension/requestguardextension"

import (
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"
)

// Config configures the requestguard HTTP server middleware.
type Config struct {
	// MaxInFlightRequests bounds the HTTP requests the server works on at
	// once. A request over the bound is answered 503 with Retry-After before
	// its body is read, so refusing it costs almost nothing: under overload the
	// collector keeps its CPU for the requests it accepted instead of decoding
	// requests only to refuse them later (memory_limiter refuses after
	// decoding). 0 disables the bound.
	MaxInFlightRequests int `mapstructure:"max_in_flight_requests"`

	// MaxProjectShare is the fraction of max_in_flight_requests that the
	// requests of one project (the project_id of the authenticated key) may
	// hold at once, at least one request. Requests whose body trickles in keep
	// their slot until the body is read (or the server's read_timeout ends
	// them), so without a share a few stalled connections of one tenant lock
	// every other tenant out. 1 disables the share. Requests without an
	// authenticated project (no auth configured) are bounded by
	// max_in_flight_requests only.
	MaxProjectShare float64 `mapstructure:"max_project_share"`

	// RetryAfter is the delay advertised (Retry-After header and OTLP
	// RetryInfo) when a request is refused for being over the bound.
	RetryAfter time.Duration `mapstructure:"retry_after"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxInFlightRequests < 0 {
		errs = append(errs, errors.New("max_in_flight_requests must be 0 (no bound) or positive"))
	}
	if !(c.MaxProjectShare > 0 && c.MaxProjectShare <= 1) {
		errs = append(errs, errors.New("max_project_share must be above 0 and at most 1 (1: no per-project share)"))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, errors.New("retry_after must be at least 1s (Retry-After is sent in whole seconds)"))
	}
	return errors.Join(errs...)
}
