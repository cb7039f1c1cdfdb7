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

// defaultNumConsumers bounds the requests written at once. The queue does
// not merge requests (no sending_queue.batch): exporterhelper's batcher
// answers every request of a merged batch with the batch's one error, so a
// span that can never be stored in one request would fail the others,
// although their rows were committed. Instead each request is its own
// WriteSpans call, and the storage merges concurrent calls into shared
// transactions (storage.GroupCommitter: one transaction, one fsync for
// many requests) while answering each caller for its own spans. A consumer
// is a goroutine waiting for its group commit, so the bound is generous:
// the transaction grows with the requests waiting, and a group can hold no
// more requests than there are consumers. At 64, under the pipeline
// benchmark's 256 concurrent senders, the groups were capped at 64 requests
// while the rest waited in the queue. At 256 a commit's fixed costs (the
// fsync, the pages of usage_daily, gen_hourly and the session and customer
// totals that every commit rewrites) are shared by more spans: side by side
// in one run (5 rounds, medians), the pipeline before the console's rollups
// acked 1.07x the spans/s (6,480 -> 6,902), and with the rollups, whose
// commits rewrite more pages, the gain is larger (0.84x -> 0.97x of that
// same base, in two runs against it).
const defaultNumConsumers = 256

// DefaultQueueConfig is the sending_queue of the default config:
// wait_for_result without batching (see README "Durability").
func DefaultQueueConfig() exporterhelper.QueueBatchConfig {
	q := exporterhelper.NewDefaultQueueConfig()
	q.WaitForResult = true
	q.BlockOnOverflow = false
	q.NumConsumers = defaultNumConsumers
	// Off unless a config enables it (then with the stock defaults); Validate
	// refuses it with wait_for_result.
	q.Batch = configoptional.Default(exporterhelper.NewDefaultBatchConfig())
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
