package fallomexporter // import "github.com/fallom/fallom-collector/exporter/fallomexporter"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/fallom/fallom-collector/internal/storage"
)

// Storage drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config is the configuration of the fallom exporter.
type Config struct {
	// Timeout bounds one write (one transaction) to the database.
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	// QueueConfig is the stock sending_queue. The default waits for the
	// result (wait_for_result: true) and batches concurrent requests into
	// one transaction, so a 2xx means committed.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig is the stock retry_on_failure: retryable storage errors
	// (busy, connection refused, restart) are retried with backoff.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	Storage   StorageConfig   `mapstructure:"storage"`
	Retention RetentionConfig `mapstructure:"retention"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// StorageConfig selects and tunes the database.
type StorageConfig struct {
	// Driver is sqlite (default) or postgres.
	Driver string `mapstructure:"driver"`
	// DSN is a file path for sqlite, a postgres:// URL (or key=value
	// string) for postgres. It is opaque: never printed with its password.
	DSN configopaque.String `mapstructure:"dsn"`

	SQLite   SQLiteConfig   `mapstructure:"sqlite"`
	Postgres PostgresConfig `mapstructure:"postgres"`
}

// SQLiteConfig tunes the SQLite backend.
type SQLiteConfig struct {
	// BusyTimeout is how long a write waits for a lock held by another
	// process before failing (retryably).
	BusyTimeout time.Duration `mapstructure:"busy_timeout"`
	// Synchronous is FULL (default: a commit survives power loss) or
	// NORMAL (a commit survives a crash of the collector, not of the
	// machine; faster).
	Synchronous string `mapstructure:"synchronous"`
}

// PostgresConfig tunes the pgx connection pool.
type PostgresConfig struct {
	MaxConns        int32         `mapstructure:"max_conns"`
	MinConns        int32         `mapstructure:"min_conns"`
	MaxConnLifetime time.Duration `mapstructure:"max_conn_lifetime"`
	MaxConnIdleTime time.Duration `mapstructure:"max_conn_idle_time"`
}

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

var _ component.Config = (*Config)(nil)

// Validate checks the configuration. The sending_queue, retry_on_failure
// and timeout sections are validated by their own Validate methods.
func (cfg *Config) Validate() error {
	var errs []error
	switch cfg.Storage.Driver {
	case DriverSQLite:
		errs = append(errs, cfg.Storage.validateSQLite()...)
	case DriverPostgres:
		errs = append(errs, cfg.Storage.validatePostgres()...)
	case "":
		errs = append(errs, errors.New("storage.driver is required: sqlite or postgres"))
	default:
		errs = append(errs, fmt.Errorf("storage.driver %q is not supported: use sqlite or postgres", cfg.Storage.Driver))
	}
	r := cfg.Retention
	if r.ContentDays < 0 || r.SpanDays < 0 {
		errs = append(errs, errors.New("retention.content_days and retention.span_days must be 0 (keep forever) or positive"))
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
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	return errors.Join(errs...)
}

func (s *StorageConfig) validateSQLite() []error {
	var errs []error
	dsn := string(s.DSN)
	switch {
	case dsn == "":
		errs = append(errs, errors.New("storage.dsn is required: the path of the SQLite database file, e.g. ./data/fallom.db"))
	case strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory"):
		errs = append(errs, errors.New("storage.dsn: an in-memory SQLite database loses acknowledged spans on restart; use a file path"))
	case strings.ContainsAny(dsn, "?#") || strings.HasPrefix(dsn, "file:"):
		errs = append(errs, errors.New("storage.dsn must be a plain file path for sqlite (no file: URI or ?options); "+
			"use storage.sqlite.busy_timeout and storage.sqlite.synchronous instead"))
	}
	switch strings.ToUpper(s.SQLite.Synchronous) {
	case "", "FULL", "NORMAL", "EXTRA":
	default:
		errs = append(errs, fmt.Errorf("storage.sqlite.synchronous %q is not supported: use FULL, NORMAL or EXTRA", s.SQLite.Synchronous))
	}
	if s.SQLite.BusyTimeout < 0 {
		errs = append(errs, errors.New("storage.sqlite.busy_timeout must not be negative"))
	}
	return errs
}

func (s *StorageConfig) validatePostgres() []error {
	var errs []error
	dsn := string(s.DSN)
	if dsn == "" {
		return []error{errors.New("storage.dsn is required: a postgres:// URL, e.g. postgres://fallom:${env:PGPASSWORD}@db:5432/fallom")}
	}
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		msg := err.Error()
		if p := storage.DSNPassword(dsn); p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		errs = append(errs, fmt.Errorf("storage.dsn %s is not a valid PostgreSQL connection string: %s", storage.RedactDSN(dsn), msg))
	}
	p := s.Postgres
	if p.MaxConns < 0 || p.MinConns < 0 {
		errs = append(errs, errors.New("storage.postgres.max_conns and min_conns must not be negative"))
	}
	if p.MaxConns > 0 && p.MinConns > p.MaxConns {
		errs = append(errs, fmt.Errorf("storage.postgres.min_conns (%d) must not exceed max_conns (%d)", p.MinConns, p.MaxConns))
	}
	if p.MaxConnLifetime < 0 || p.MaxConnIdleTime < 0 {
		errs = append(errs, errors.New("storage.postgres.max_conn_lifetime and max_conn_idle_time must not be negative"))
	}
	return errs
}
