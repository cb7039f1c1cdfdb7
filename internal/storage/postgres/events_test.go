package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
)

func TestEvents(t *testing.T) { storagetest.RunEvents(t, backend()) }

func TestExperiments(t *testing.T) { storagetest.RunExperiments(t, backend()) }

// Migration 4 on a database holding spans adds the experiment columns
// without rewriting the table (the same relfilenode, so no row was
// copied: ADD COLUMN of a nullable column without a default is a catalog
// change), the stored spans read back with the new columns NULL, and the
// upgraded store writes and reads them.
func TestExperimentColumnsAddedWithoutRewrite(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	v3 := open(t, Options{DSN: dsn, MigrateTo: 3})
	spans := storagetest.Delivery("p", 200)
	query, args := storagetest.InsertBeforeV4(spans, func(n int) string { return fmt.Sprintf("$%d", n) })
	for _, a := range args {
		if _, err := v3.Pool().Exec(ctx, query, a...); err != nil {
			t.Fatal(err)
		}
	}
	var before, after uint32
	if err := v3.Pool().QueryRow(ctx, "SELECT relfilenode FROM pg_class WHERE relname = 'spans'").Scan(&before); err != nil {
		t.Fatal(err)
	}
	v3.Close()

	s := open(t, Options{DSN: dsn})
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != len(s.migrations) {
		t.Fatalf("version after upgrade %d", v)
	}
	if err := s.Pool().QueryRow(ctx, "SELECT relfilenode FROM pg_class WHERE relname = 'spans'").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Fatalf("migration 4 rewrote spans (relfilenode %d -> %d)", before, after)
	}
	var rows, withExperiment int64
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(config_key) + count(config_version) + count(prompt_key) +
		count(prompt_version) + count(prompt_ab_test_key) + count(prompt_variant_index) FROM spans`).Scan(&rows, &withExperiment); err != nil {
		t.Fatal(err)
	}
	if rows != 400 || withExperiment != 0 {
		t.Fatalf("after the upgrade: %d spans, %d experiment values; want 400 and 0", rows, withExperiment)
	}
	sdk := storagetest.SDKGeneration("p", 1000, "summarizer", 2)
	if res, err := s.WriteSpans(ctx, []storage.Span{sdk}); err != nil || res.Inserted != 1 {
		t.Fatalf("write after the upgrade: %+v %v", res, err)
	}
	got, err := s.Span(ctx, "p", sdk.TraceID, sdk.SpanID)
	if err != nil || got.ConfigKey == nil || *got.ConfigKey != "summarizer" || got.PromptVersion == nil || *got.PromptVersion != 2 {
		t.Fatalf("read after the upgrade: %+v %v", got, err)
	}
}
