package fallomexporter

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fallom/fallom-collector/exporter/fallomexporter/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub(id.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return cfg
}

func TestConfigs(t *testing.T) {
	def := loadConfig(t, "")
	if err := confmap.Validate(def); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if def.Storage.Driver != DriverSQLite || def.Storage.DSN != "./data/fallom.db" || def.Storage.SQLite.PageSize != 4096 {
		t.Fatalf("default storage %+v", def.Storage)
	}
	q := def.QueueConfig.Get()
	if !def.QueueConfig.HasValue() || !q.WaitForResult || q.Batch.HasValue() || q.StorageID != nil {
		t.Fatalf("default queue must acknowledge after commit without merging requests: %+v", q)
	}

	pg := loadConfig(t, "postgres")
	if err := confmap.Validate(pg); err != nil {
		t.Fatalf("postgres config: %v", err)
	}
	if pg.Storage.Postgres.MaxConns != 8 || pg.Storage.Postgres.MaxConnIdleTime != 5*time.Minute ||
		pg.Retention.ContentDays != 30 || pg.Retention.SpanDays != 365 || pg.Retention.Interval != 6*time.Hour ||
		pg.Timeout != 20*time.Second || pg.RetryConfig.MaxElapsedTime != 10*time.Minute {
		t.Fatalf("postgres config: %+v", pg)
	}

	pq := loadConfig(t, "persistent")
	if err := confmap.Validate(pq); err != nil {
		t.Fatalf("persistent config: %v", err)
	}
	if pq.Storage.SQLite.PageSize != 8192 {
		t.Fatalf("persistent config: storage.sqlite.page_size = %d, want 8192", pq.Storage.SQLite.PageSize)
	}
	if id := pq.QueueConfig.Get().StorageID; id == nil || id.String() != "file_storage" {
		t.Fatalf("persistent queue storage = %v", id)
	}

	// A sending_queue section without batch keeps the default's "no batch".
	if pq.QueueConfig.Get().Batch.HasValue() {
		t.Fatal("sending_queue without batch enabled batching")
	}
	err := confmap.Validate(loadConfig(t, "batched"))
	if err == nil || !strings.Contains(err.Error(), "remove sending_queue.batch") {
		t.Fatalf("batching with wait_for_result: Validate = %v", err)
	}
	if err := confmap.Validate(loadConfig(t, "persistent_batched")); err != nil {
		t.Fatalf("batching behind a persistent queue: %v", err)
	}

	nq := loadConfig(t, "noqueue")
	if err := confmap.Validate(nq); err != nil {
		t.Fatalf("noqueue config: %v", err)
	}
	if nq.QueueConfig.HasValue() {
		t.Fatal("sending_queue.enabled: false left the queue on")
	}
}

// An upper-case URL scheme is a valid PostgreSQL DSN (URL schemes are
// case-insensitive; pgx knows only the lower-case one).
func TestConfigUpperCaseScheme(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.Driver, cfg.Storage.DSN = DriverPostgres, "POSTGRES://u:pw@db:5432/fallom"
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
}

// Issue 14 item 13: the largest accepted retention is a real duration.
func TestRetentionDaysAtTheBound(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Retention.SpanDays, cfg.Retention.ContentDays = MaxRetentionDays, MaxRetentionDays
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(MaxRetentionDays) * 24 * time.Hour; d <= 0 || d.Hours()/24 != MaxRetentionDays {
		t.Fatalf("%d days is %v", MaxRetentionDays, d)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	const secret = "hunter2-secret"
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no driver", func(c *Config) { c.Storage.Driver = "" }, "storage.driver is required"},
		{"bad driver", func(c *Config) { c.Storage.Driver = "mysql" }, `"mysql" is not supported`},
		{"no dsn", func(c *Config) { c.Storage.DSN = "" }, "storage.dsn is required"},
		{"memory", func(c *Config) { c.Storage.DSN = ":memory:" }, "in-memory"},
		{"uri", func(c *Config) { c.Storage.DSN = "file:x.db?_pragma=foo" }, "plain file path"},
		{"synchronous", func(c *Config) { c.Storage.SQLite.Synchronous = "OFF" }, "synchronous"},
		{"page size", func(c *Config) { c.Storage.SQLite.PageSize = 10000 }, "storage.sqlite.page_size 10000 is not supported"},
		{"pg dsn", func(c *Config) {
			c.Storage.Driver, c.Storage.DSN = DriverPostgres, "postgres://u:"+secret+"@host:notaport/db"
		}, "not a valid PostgreSQL connection string"},
		{"pg dsn, upper-case scheme", func(c *Config) {
			c.Storage.Driver, c.Storage.DSN = DriverPostgres, "POSTGRES://u:"+secret+"@host:notaport/db"
		}, "POSTGRES://u:xxxxx@host:notaport/db is not a valid PostgreSQL connection string"},
		{"pg dsn, password only as a parameter", func(c *Config) {
			c.Storage.Driver, c.Storage.DSN = DriverPostgres, "postgres://host:notaport/db?sslmode=disable&password="+secret
		}, "password=xxxxx is not a valid PostgreSQL connection string"},
		{"pool", func(c *Config) {
			c.Storage.Driver, c.Storage.DSN = DriverPostgres, "postgres://u@h/db"
			c.Storage.Postgres.MinConns, c.Storage.Postgres.MaxConns = 5, 2
		}, "min_conns (5) must not exceed max_conns (2)"},
		{"retention days", func(c *Config) { c.Retention.SpanDays = -1 }, "retention.content_days and retention.span_days"},
		{"retention days overflow", func(c *Config) { c.Retention.SpanDays, c.Retention.Interval = 213504, time.Hour }, "at most 36500"},
		{"retention days negative duration", func(c *Config) { c.Retention.ContentDays, c.Retention.Interval = 999999, time.Hour }, "at most 36500"},
		{"retention interval", func(c *Config) { c.Retention.ContentDays, c.Retention.Interval = 3, 0 }, "retention.interval"},
		{"memory queue", func(c *Config) { c.QueueConfig.Get().WaitForResult = false }, "a crash would lose acknowledged data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tc.mutate(cfg)
			err := confmap.Validate(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the DSN password: %v", err)
			}
		})
	}
}
