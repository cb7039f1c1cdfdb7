package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

func pragmaInt(t *testing.T, db *sql.DB, name string) int {
	t.Helper()
	var v int
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// A new file gets the configured page size (4 KiB by default) although the
// file is in WAL mode, which fixes the page size once set: the driver runs
// _pragma values in sorted order, so journal_mode(WAL) as a _pragma ran before
// page_size(...) and every file was made with 4 KiB pages.
func TestNewFileGetsPageSize(t *testing.T) {
	for _, tc := range []struct{ configured, want int }{{0, DefaultPageSize}, {8192, 8192}, {65536, 65536}} {
		path := filepath.Join(t.TempDir(), "new.db")
		s := open(t, Options{Path: path, PageSize: tc.configured})
		if got := pragmaInt(t, s.DB(), "page_size"); got != tc.want {
			t.Errorf("configured %d: PRAGMA page_size of a new file = %d, want %d", tc.configured, got, tc.want)
		}
		if got, want := pragmaInt(t, s.DB(), "wal_autocheckpoint"), walAutocheckpointBytes/tc.want; got != want {
			t.Errorf("configured %d: wal_autocheckpoint = %d pages, want %d (%d bytes)", tc.configured, got, want, walAutocheckpointBytes)
		}
		var mode string
		if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		s.Close()
		// The page size is the file's: reopening with another setting keeps it.
		s = open(t, Options{Path: path, PageSize: 4096})
		if got := pragmaInt(t, s.DB(), "page_size"); got != tc.want {
			t.Errorf("reopened with page_size 4096: page_size = %d, want the file's %d", got, tc.want)
		}
		if got, want := pragmaInt(t, s.DB(), "wal_autocheckpoint"), walAutocheckpointBytes/tc.want; got != want {
			t.Errorf("reopened: wal_autocheckpoint = %d pages, want %d (the file's page size)", got, want)
		}
		s.Close()
	}
}

// makeOldFile makes a database the way earlier versions did (4 KiB pages, WAL)
// holding one span, through the store itself.
func makeOldFile(t *testing.T) (path string, span string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "old.db")
	s := open(t, Options{Path: path, PageSize: 4096})
	sp := storagetest.Generation("acme", 1)
	if _, err := s.WriteSpans(context.Background(), []storage.Span{sp}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return path, sp.TraceID
}

// An existing database keeps its page size (changing it needs a VACUUM,
// which rewrites the whole file: not something to do silently at start),
// and its data.
func TestExistingFileKeepsPageSize(t *testing.T) {
	path, trace := makeOldFile(t)
	s := open(t, Options{Path: path, PageSize: 16384})
	defer s.Close()
	if got := pragmaInt(t, s.DB(), "page_size"); got != 4096 {
		t.Fatalf("page_size of an existing 4 KiB file after Open with page_size 16384 = %d, want 4096", got)
	}
	if got := s.PageSize(); got != 4096 {
		t.Fatalf("Store.PageSize() = %d, want 4096", got)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM spans WHERE trace_id = ?", trace).Scan(&n); err != nil || n != 1 {
		t.Fatalf("spans of %s: %d, %v", trace, n, err)
	}
}

func TestPageSizeValidated(t *testing.T) {
	for _, bad := range []int{-1, 100, 1000, 3000, 131072} {
		_, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "x.db"), PageSize: bad})
		if err == nil || !strings.Contains(err.Error(), "page size") {
			t.Errorf("page size %d: Open error %v, want one about the page size", bad, err)
		}
	}
}

// ConvertPageSize rewrites an existing file with the new page size, keeping
// its rows and leaving it in WAL mode; it refuses while the database is open
// elsewhere (a running collector).
func TestConvertPageSize(t *testing.T) {
	path, trace := makeOldFile(t)
	ctx := context.Background()

	running := open(t, Options{Path: path})
	if _, _, err := ConvertPageSize(ctx, path, 16384); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("ConvertPageSize while a store had the file open: %v, want an error saying it is in use", err)
	} else {
		t.Log(err)
	}
	if got := pragmaInt(t, running.DB(), "page_size"); got != 4096 {
		t.Fatalf("page_size after the refused conversion = %d, want 4096", got)
	}
	running.Close()

	before, after, err := ConvertPageSize(ctx, path, 16384)
	if err != nil {
		t.Fatalf("ConvertPageSize: %v", err)
	}
	if before != 4096 || after != 16384 {
		t.Fatalf("ConvertPageSize: %d -> %d, want 4096 -> 16384", before, after)
	}
	s := open(t, Options{Path: path})
	if got := pragmaInt(t, s.DB(), "page_size"); got != 16384 {
		t.Fatalf("page_size after conversion = %d, want 16384", got)
	}
	var mode string
	if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode after conversion = %q, %v; want wal", mode, err)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM spans WHERE trace_id = ?", trace).Scan(&n); err != nil || n != 1 {
		t.Fatalf("spans of %s after conversion: %d, %v", trace, n, err)
	}
	var check string
	if err := s.DB().QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after conversion: %q, %v", check, err)
	}
	s.Close()
	// Converting to the size it has already changes nothing.
	if before, after, err := ConvertPageSize(ctx, path, 16384); err != nil || before != 16384 || after != 16384 {
		t.Fatalf("ConvertPageSize again: %d -> %d, %v; want 16384 -> 16384", before, after, err)
	}
	// A missing file is an error, not a new database.
	if before, after, err := ConvertPageSize(ctx, filepath.Join(t.TempDir(), "missing.db"), 16384); err == nil {
		t.Fatalf("ConvertPageSize of a missing file: %d -> %d, no error", before, after)
	}
}

// The command a README points to converts a file and says what it did.
func TestPageSizeCommand(t *testing.T) {
	path, _ := makeOldFile(t)
	run := func(args ...string) (string, error) {
		cmd := NewCommand()
		var out strings.Builder
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	if out, err := run("page-size", path); err != nil || !strings.Contains(out, "page size 4096") {
		t.Fatalf("page-size: %q, %v", out, err)
	}
	if out, err := run("page-size", "--set", "16384", path); err != nil || !strings.Contains(out, "page size 4096 -> 16384") {
		t.Fatalf("page-size --set 16384: %q, %v", out, err)
	}
	if out, err := run("page-size", path); err != nil || !strings.Contains(out, "page size 16384") {
		t.Fatalf("page-size after the conversion: %q, %v", out, err)
	}
	if _, err := run("page-size", "--set", "3000", path); err == nil || !strings.Contains(err.Error(), "page size 3000 is not supported") {
		t.Fatalf("page-size --set 3000: %v", err)
	}
	if _, err := run("page-size", filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Fatal("page-size of a missing file: no error")
	}
}
