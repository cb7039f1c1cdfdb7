// Package openroutermappingprocessor normalizes GenAI span attributes of
// every common dialect (OpenRouter Broadcast first) into the canonical
// fallom.* attributes, stamps the authenticated project onto the resource,
// and drops OpenRouter's connection test. In a logs pipeline (the Fallom
// SDK's events) it only stamps the project.
package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// The processor changes span attributes and drops connection-test spans.
var processorCapabilities = consumer.Capabilities{MutatesData: true}

// NewFactory creates the openroutermapping processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(metadata.Type, func() component.Config { return createDefaultConfig() },
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithLogs(createLogs, metadata.LogsStability))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	oCfg := cfg.(*Config)
	p, err := newMappingProcessor(oCfg, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	next, err = withRetryAfter(next, oCfg.RetryAfter)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(processorCapabilities))
}

// createLogs: the logs side stamps fallom.project_id on each resource from
// the authenticated principal, failing closed as for traces (see
// processLogs).
func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	oCfg := cfg.(*Config)
	p, err := newMappingProcessor(oCfg, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	next, err = withRetryAfterLogs(next, oCfg.RetryAfter)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(processorCapabilities))
}
