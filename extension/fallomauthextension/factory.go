// Package fallomauthextension authenticates OTLP requests with fallom API keys
// (flm_...) and attaches the key's project to the request as the principal.
package fallomauthextension // import "github.com/fallom/fallom-collector/extension/fallomauthextension"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
)

// NewFactory creates the fallomauth extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newAuthenticator(cfg.(*Config), set.TelemetrySettings)
}
