// Package fallomexporter stores spans in SQLite or PostgreSQL.
package fallomexporter // import "github.com/fallom/fallom-collector/exporter/fallomexporter"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"

	"github.com/fallom/fallom-collector/exporter/fallomexporter/internal/metadata"
)

// NewFactory creates the fallom exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability))
}

// Config is replaced by the full implementation.
type Config struct{}

func createDefaultConfig() component.Config { return &Config{} }

func createTraces(context.Context, exporter.Settings, component.Config) (exporter.Traces, error) {
	return nil, nil
}
