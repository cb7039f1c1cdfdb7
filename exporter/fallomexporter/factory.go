// Package fallomexporter stores spans in SQLite (embedded, the default) or
// PostgreSQL (shared by many collectors), idempotently, acknowledging only
// what is committed. See README.md.
package fallomexporter // import "github.com/fallom/fallom-collector/exporter/fallomexporter"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/fallom/fallom-collector/exporter/fallomexporter/internal/metadata"
	"github.com/fallom/fallom-collector/internal/storage/backend"
)

// NewFactory creates the fallom exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithLogs(createLogs, metadata.LogsStability))
}

// Defaults of the queue that acknowledges after commit. Concurrent requests
// wait in the queue and are merged into one batch, so one transaction (one
// fsync) serves many requests; each request's caller is answered when the
// batch that holds it has committed (or failed).
const (
	defaultBatchMinItems = 500
	defaultBatchMaxItems = 5000
	defaultFlushTimeout  = 10 * time.Millisecond
	defaultNumConsumers  = 4
)

// DefaultQueueConfig is the sending_queue of the default config:
// wait_for_result with batching (see README "Durability").
func DefaultQueueConfig() exporterhelper.QueueBatchConfig {
	q := exporterhelper.NewDefaultQueueConfig()
	q.WaitForResult = true
	q.BlockOnOverflow = false
	q.NumConsumers = defaultNumConsumers
	batch := exporterhelper.NewDefaultBatchConfig()
	batch.FlushTimeout = defaultFlushTimeout
	batch.MinSize = defaultBatchMinItems
	batch.MaxSize = defaultBatchMaxItems
	q.Batch = configoptional.Some(batch)
	return q
}

func createDefaultConfig() component.Config {
	return &Config{
		TimeoutConfig: exporterhelper.TimeoutConfig{Timeout: 30 * time.Second},
		QueueConfig:   configoptional.Some(DefaultQueueConfig()),
		RetryConfig:   configretry.NewDefaultBackOffConfig(),
		Storage:       backend.DefaultConfig(),
		Retention:     RetentionConfig{Interval: time.Hour, BatchSize: 1000},
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	exp, err := newFallomExporter(c, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, exp.pushTraces,
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}

// createLogs makes the exporter of the Fallom SDK events (the logs/sdk
// pipeline): the same storage (one backend per database in the process),
// queue and wait-for-result semantics as traces; retention stays with the
// traces instance.
func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	exp, err := newFallomExporter(c, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	exp.retention = false
	return exporterhelper.NewLogs(ctx, set, cfg, exp.pushLogs,
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}
