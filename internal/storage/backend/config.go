package backend

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/sqlite"
)

// Storage drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config is the `storage` section of every component that uses the fallom
// database (the fallom exporter, the console, the SDK receiver). Components
// embed it as `Storage backend.Config `mapstructure:"storage"“; the
// collector validates it through its Validate method. Components naming the
// same database (same driver and DSN) share one open backend (see Acquire),
// so they must give it the same sqlite / postgres settings.
type Config struct {
	// Driver is sqlite (default) or postgres.
	Driver string `mapstructure:"driver"`
	// DSN is a file path for sqlite, a postgres:// URL (or key=value
	// string) for postgres. It is opaque: never printed with its password.
	DSN configopaque.String `mapstructure:"dsn"`

	SQLite   SQLiteConfig   `mapstructure:"sqlite"`
	Postgres PostgresConfig `mapstructure:"postgres"`

	// prevent unkeyed literal initialization
	_ struct{}
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
	// PageSize is the page size in bytes of a new database file (a power of
	// two from 512 to 65536); an existing file keeps its own (`fallomcol
	// sqlite page-size` converts it).
	PageSize int `mapstructure:"page_size"`
}

// PostgresConfig tunes the pgx connection pool.
type PostgresConfig struct {
	MaxConns        int32         `mapstructure:"max_conns"`
	MinConns        int32         `mapstructure:"min_conns"`
	MaxConnLifetime time.Duration `mapstructure:"max_conn_lifetime"`
	MaxConnIdleTime time.Duration `mapstructure:"max_conn_idle_time"`
}

// DefaultConfig is the storage of the default config: a SQLite file under
// ./data, and the pool settings used when the driver is postgres.
func DefaultConfig() Config {
	return Config{
		Driver: DriverSQLite,
		DSN:    "./data/fallom.db",
		SQLite: SQLiteConfig{BusyTimeout: 5 * time.Second, Synchronous: "FULL", PageSize: sqlite.DefaultPageSize},
		Postgres: PostgresConfig{
			MaxConns: 4, MaxConnLifetime: time.Hour, MaxConnIdleTime: 30 * time.Minute,
		},
	}
}

// Validate checks the section; messages name the key (storage.*) and say
// what to do. A PostgreSQL password never appears in them.
func (c *Config) Validate() error {
	switch c.Driver {
	case DriverSQLite:
		return errors.Join(c.validateSQLite()...)
	case DriverPostgres:
		return errors.Join(c.validatePostgres()...)
	case "":
		return errors.New("storage.driver is required: sqlite or postgres")
	default:
		return fmt.Errorf("storage.driver %q is not supported: use sqlite or postgres", c.Driver)
	}
}

func (c *Config) validateSQLite() []error {
	var errs []error
	dsn := string(c.DSN)
	switch {
	case dsn == "":
		errs = append(errs, errors.New("storage.dsn is required: the path of the SQLite database file, e.g. ./data/fallom.db"))
	case strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory"):
		errs = append(errs, errors.New("storage.dsn: an in-memory SQLite database loses acknowledged spans on restart; use a file path"))
	case strings.ContainsAny(dsn, "?#") || strings.HasPrefix(dsn, "file:"):
		errs = append(errs, errors.New("storage.dsn must be a plain file path for sqlite (no file: URI or ?options); "+
			"use storage.sqlite.busy_timeout and storage.sqlite.synchronous instead"))
	}
	switch strings.ToUpper(c.SQLite.Synchronous) {
	case "", "FULL", "NORMAL", "EXTRA":
	default:
		errs = append(errs, fmt.Errorf("storage.sqlite.synchronous %q is not supported: use FULL, NORMAL or EXTRA", c.SQLite.Synchronous))
	}
	if p := c.SQLite.PageSize; p != 0 && (p < 512 || p > 65536 || p&(p-1) != 0) {
		errs = append(errs, fmt.Errorf("storage.sqlite.page_size %d is not supported: use a power of two from 512 to 65536 (default %d)", p, sqlite.DefaultPageSize))
	}
	if c.SQLite.BusyTimeout < 0 {
		errs = append(errs, errors.New("storage.sqlite.busy_timeout must not be negative"))
	}
	return errs
}

func (c *Config) validatePostgres() []error {
	var errs []error
	dsn := string(c.DSN)
	if dsn == "" {
		return []error{errors.New("storage.dsn is required: a postgres:// URL, e.g. postgres://fallom:${env:PGPASSWORD}@db:5432/fallom")}
	}
	if _, err := pgxpool.ParseConfig(storage.NormalizeDSN(dsn)); err != nil {
		errs = append(errs, fmt.Errorf("storage.dsn %s is not a valid PostgreSQL connection string: %s",
			storage.RedactDSN(dsn), storage.RedactText(err.Error(), dsn)))
	}
	p := c.Postgres
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

// Describe names the database for logs and errors, without its password.
func (c *Config) Describe() string {
	return c.Driver + " " + storage.RedactDSN(string(c.DSN))
}
