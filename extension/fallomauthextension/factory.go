// Package fallomauthextension authenticates OTLP requests with flm_ API keys.
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

// Config is replaced by the full implementation.
type Config struct{}

func createDefaultConfig() component.Config { return &Config{} }

func createExtension(context.Context, extension.Settings, component.Config) (extension.Extension, error) {
	return nil, nil
}
