// Package requestguardextension is an HTTP server middleware for the OTLP
// receiver: it answers an over-size body with 413 (the stock receiver says
// 400) and sheds requests over an in-flight bound with 503 + Retry-After
// before reading their bodies.
package requestguardextension // import "github.com/fallom/fallom-collector/extension/requestguardextension"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/fallom/fallom-collector/extension/requestguardextension/internal/metadata"
)

const (
	defaultMaxInFlightRequests = 512
	defaultRetryAfter          = 5 * time.Second
	defaultMaxProjectShare     = 0.75
)

// NewFactory creates the requestguard extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{
		MaxInFlightRequests: defaultMaxInFlightRequests,
		RetryAfter:          defaultRetryAfter,
		MaxProjectShare:     defaultMaxProjectShare,
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newGuard(cfg.(*Config), set.TelemetrySettings)
}
