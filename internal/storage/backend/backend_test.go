package backend

import (
	"context"
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/postgres"
	"github.com/fallom/fallom-collector/internal/storage/sqlite"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

func sqliteCfg(path string) Config {
	c := DefaultConfig()
	c.DSN = configopaque.String(path)
	return c
}

func acquire(t *testing.T, cfg Config) *Handle {
	t.Helper()
	h, err := Acquire(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return h
}

// Two components naming the same SQLite file (spelled differently) share one
// store, hence one connection and one migration run; the store stays open
// until the last of them releases it, and a later Acquire opens it again.
func TestOneBackendPerSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	a := acquire(t, sqliteCfg("./data/fallom.db"))
	b := acquire(t, sqliteCfg(filepath.Join(dir, "data", "..", "data", "fallom.db")))
	if a.Store() != b.Store() {
		t.Fatal("two Acquires of one SQLite file opened two stores")
	}
	other := acquire(t, sqliteCfg("./data/other.db"))
	if other.Store() == a.Store() {
		t.Fatal("two files share one store")
	}
	defer other.Release()

	ctx := context.Background()
	if _, err := a.Store().WriteSpans(ctx, storagetest.Delivery("p", 2)); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil { // a second release of one handle is a no-op
		t.Fatal(err)
	}
	// b still holds it: writes go on.
	if res, err := b.Store().WriteSpans(ctx, storagetest.Delivery("p", 3)); err != nil || res.Inserted != 2 || res.Unchanged != 4 {
		t.Fatalf("write after the other component released: %+v %v", res, err)
	}
	first := b.Store()
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	// The last release closed it.
	if _, err := first.WriteSpans(ctx, storagetest.Delivery("p", 1)); err == nil {
		t.Fatal("the store still writes after its last release")
	}
	c := acquire(t, sqliteCfg("./data/fallom.db"))
	defer c.Release()
	if c.Store() == first {
		t.Fatal("Acquire after the last release returned the closed store")
	}
	var n int
	if err := c.Store().(*sqlite.Store).DB().QueryRow("SELECT count(*) FROM spans").Scan(&n); err != nil || n != 6 {
		t.Fatalf("%d spans after reopening (%v), want 6", n, err)
	}
}

// Components starting at once open the database once.
func TestConcurrentAcquireOpensOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	var wg sync.WaitGroup
	handles := make([]*Handle, 8)
	errs := make([]error, 8)
	for i := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handles[i], errs[i] = Acquire(context.Background(), sqliteCfg(path), nil)
		}()
	}
	wg.Wait()
	for i, h := range handles {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if h.Store() != handles[0].Store() {
			t.Fatal("concurrent Acquires opened several stores")
		}
	}
	for _, h := range handles {
		if err := h.Release(); err != nil {
			t.Fatal(err)
		}
	}
	process.mu.Lock()
	defer process.mu.Unlock()
	if len(process.entries) != 0 {
		t.Fatalf("%d backends left open after every release", len(process.entries))
	}
}

// A component that asks for the same database with other settings is
// refused with a message naming the setting; the other driver's section
// does not matter.
func TestSettingsMustAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	a := acquire(t, sqliteCfg(path))
	defer a.Release()
	other := sqliteCfg(path)
	other.SQLite.Synchronous = "NORMAL"
	_, err := Acquire(context.Background(), other, nil)
	if err == nil || !strings.Contains(err.Error(), "storage.sqlite.synchronous is FULL there, NORMAL here") {
		t.Fatalf("Acquire with another synchronous: %v", err)
	}
	other = sqliteCfg(path)
	other.SQLite.PageSize = 16384
	_, err = Acquire(context.Background(), other, nil)
	if err == nil || !strings.Contains(err.Error(), "storage.sqlite.page_size is 4096 there, 16384 here") {
		t.Fatalf("Acquire with another page_size: %v", err)
	}
	same := sqliteCfg(path)
	same.Postgres.MaxConns = 99
	b := acquire(t, same)
	b.Release()
	// An unset page size is the default one, not a difference.
	unset := sqliteCfg(path)
	unset.SQLite.PageSize = 0
	c := acquire(t, unset)
	c.Release()
}

func TestInvalidConfig(t *testing.T) {
	_, err := Acquire(context.Background(), Config{Driver: "mysql", DSN: "x"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"mysql" is not supported`) {
		t.Fatalf("Acquire of an unknown driver: %v", err)
	}
}

// The same on PostgreSQL: one pool per database, whatever the case of the
// URL scheme.
func TestOneBackendPerPostgresDatabase(t *testing.T) {
	srv := pgtest.Start(t)
	dsn, err := srv.CreateDatabase("shared")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Driver, cfg.DSN = DriverPostgres, configopaque.String(dsn)
	a := acquire(t, cfg)
	defer a.Release()
	upper := cfg
	upper.DSN = configopaque.String("POSTGRES" + strings.TrimPrefix(dsn, "postgres"))
	b := acquire(t, upper)
	defer b.Release()
	if a.Store() != b.Store() {
		t.Fatal("two Acquires of one PostgreSQL database opened two pools")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Store().WriteSpans(ctx, storagetest.Delivery("p", 2)); err != nil {
		t.Fatal(err)
	}
	var migrations int
	if err := a.Store().(*postgres.Store).Pool().QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&migrations); err != nil {
		t.Fatal(err)
	}
	if migrations == 0 {
		t.Fatal("no migration recorded")
	}
	if a.Describe() != "postgres "+storage.RedactDSN(dsn) {
		t.Fatalf("Describe = %q", a.Describe())
	}
}

// No component above internal/storage imports a database driver: they all
// go through this package.
func TestComponentsImportNoDriver(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	drivers := []string{"modernc.org/sqlite", "github.com/jackc/pgx", "database/sql",
		"github.com/fallom/fallom-collector/internal/storage/sqlite",
		"github.com/fallom/fallom-collector/internal/storage/postgres"}
	for _, top := range []string{"exporter", "receiver", "extension", "processor", "connector"} {
		_ = filepath.WalkDir(filepath.Join(root, top), func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			pkg, err := build.ImportDir(path, 0)
			if err != nil {
				return nil // no Go files here
			}
			for _, imp := range pkg.Imports { // not test imports
				for _, drv := range drivers {
					if imp == drv || strings.HasPrefix(imp, drv+"/") {
						t.Errorf("%s imports %s: components reach the database through internal/storage/backend", path, imp)
					}
				}
			}
			return nil
		})
	}
}
