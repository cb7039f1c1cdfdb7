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
	if c.RetryAfter < time.Second {
		errs = append(errs, errors.New("retry_after must be at least 1s (Retry-After is sent in whole seconds)"))
	}
	return errors.Join(errs...)
}
