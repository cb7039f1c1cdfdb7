package fallomexporter // import "github.com/fallom/fallom-collector/exporter/fallomexporter"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/fallom/fallom-collector/internal/storage/backend"
)

// Storage drivers.
const (
	DriverSQLite   = backend.DriverSQLite
	DriverPostgres = backend.DriverPostgres
)

// Config is the configuration of the fallom exporter.
type Config struct {
	// Timeout bounds one write (one transaction) to the database.
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	// QueueConfig is the stock sending_queue. The default waits for the
	// result (wait_for_result: true), so a 2xx means committed, and does
	// not batch: concurrent requests share transactions in the storage
	// (group commit), each answered for its own spans.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig is the stock retry_on_failure: retryable storage errors
	// (busy, connection refused, restart) are retried with backoff.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// Storage is the database, shared with the other components that name
	// the same one (internal/storage/backend); validated by its own
	// Validate.
	Storage   backend.Config  `mapstructure:"storage"`
	Retention RetentionConfig `mapstructure:"retention"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// StorageConfig, SQLiteConfig and PostgresConfig are the shared storage
// section (internal/storage/backend), named here for the exporter's users.
type (
	StorageConfig  = backend.Config
	SQLiteConfig   = backend.SQLiteConfig
	PostgresConfig = backend.PostgresConfig
)

// RetentionConfig removes old data in small batches on an interval. Days
// count from when the collector stored the span. 0 keeps data forever.
// The usage_daily rollup is never removed.
type RetentionConfig struct {
	// ContentDays clears prompt and completion of spans older than this.
	ContentDays int `mapstructure:"content_days"`
	// SpanDays deletes spans older than this.
	SpanDays int `mapstructure:"span_days"`
	// Interval between retention passes.
	Interval time.Duration `mapstructure:"interval"`
	// BatchSize is the number of rows changed per statement.
	BatchSize int `mapstructure:"batch_size"`
}

// MaxRetentionDays bounds retention.content_days and span_days.
const MaxRetentionDays = 36500

var _ component.Config = (*Config)(nil)

// Validate checks the configuration. The storage, sending_queue,
// retry_on_failure and timeout sections are validated by their own Validate
// methods.
func (cfg *Config) Validate() error {
	var errs []error
	r := cfg.Retention
	if r.ContentDays < 0 || r.SpanDays < 0 {
		errs = append(errs, errors.New("retention.content_days and retention.span_days must be 0 (keep forever) or positive"))
	}
	if r.ContentDays > MaxRetentionDays || r.SpanDays > MaxRetentionDays {
		// Days become a time.Duration (int64 nanoseconds, about 292 years):
		// 213504 days wrapped to 25 minutes (deleting nearly everything),
		// 999999 to a negative duration (retention silently off).
		errs = append(errs, fmt.Errorf("retention.content_days and retention.span_days must be at most %d (100 years); use 0 to keep forever", MaxRetentionDays))
	}
	if (r.ContentDays > 0 || r.SpanDays > 0) && r.Interval <= 0 {
		errs = append(errs, errors.New("retention.interval must be positive when retention is enabled"))
	}
	if r.BatchSize < 0 {
		errs = append(errs, errors.New("retention.batch_size must be positive (0 uses the default)"))
	}
	if cfg.QueueConfig.HasValue() {
		q := cfg.QueueConfig.Get()
		if q.StorageID == nil && !q.WaitForResult {
			errs = append(errs, errors.New("sending_queue acknowledges spans before they are stored and keeps them only in memory, "+
				"so a crash would lose acknowledged data: set sending_queue.wait_for_result: true (acknowledge after commit), "+
				"or sending_queue.storage: file_storage (a persistent queue), or disable sending_queue"))
		}
		if q.WaitForResult && q.Batch.HasValue() {
			// exporterhelper answers every request merged into a batch with
			// the batch's error: one sender's unstorable span would fail
			// the other senders' requests, whose rows are committed.
			errs = append(errs, errors.New("sending_queue.batch with wait_for_result: true answers every request merged into a batch "+
				"with the error of any one of them (one sender's bad span would fail the others); remove sending_queue.batch: "+
				"the storage already commits concurrent requests together and answers each for its own spans"))
		}
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	return errors.Join(errs...)
}
