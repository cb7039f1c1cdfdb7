// Package openroutermappingprocessor normalizes GenAI span attributes.
package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// NewFactory creates the openroutermapping processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(metadata.Type, createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability))
}

// Config is replaced by the full implementation.
type Config struct{}

func createDefaultConfig() component.Config { return &Config{} }

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	return processorhelper.NewTraces(ctx, set, cfg, next, func(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) { return td, nil })
}
