package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRedactDSN(t *testing.T) {
	cases := map[string]string{
		"postgres://fallom:hunter2@db:5432/fallom?sslmode=require": "postgres://fallom:xxxxx@db:5432/fallom?sslmode=require",
		"postgresql://u@db/x?password=hunter2&sslmode=disable":     "postgresql://u@db/x?password=xxxxx&sslmode=disable",
		"host=db user=fallom password=hunter2 dbname=fallom":       "host=db user=fallom password=xxxxx dbname=fallom",
		"host=db password='hun ter2' dbname=fallom":                "host=db password=xxxxx dbname=fallom",
		"postgres://fallom@db/fallom":                              "postgres://fallom@db/fallom",
		"./data/fallom.db":                                         "./data/fallom.db",
	}
	for in, want := range cases {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(RedactDSN(in), "hunter2") || strings.Contains(RedactDSN(in), "hun ter2") {
			t.Errorf("RedactDSN(%q) leaks the password", in)
		}
	}
	if got := DSNPassword("postgres://u:hunter2@h/d"); got != "hunter2" {
		t.Errorf("DSNPassword = %q", got)
	}
	if got := DSNPassword("host=h password='hun ter2'"); got != "hun ter2" {
		t.Errorf("DSNPassword = %q", got)
	}
}

func TestDedupeKeepsLastAndSorts(t *testing.T) {
	in := []Span{
		{ProjectID: "b", TraceID: "1", SpanID: "1", Name: "first"},
		{ProjectID: "a", TraceID: "2", SpanID: "1"},
		{ProjectID: "b", TraceID: "1", SpanID: "1", Name: "last"},
	}
	out := Dedupe(in)
	if len(out) != 2 || out[0].ProjectID != "a" || out[1].Name != "last" {
		t.Fatalf("Dedupe = %+v", out)
	}
}

// WriteIsolating bisects down to the rows that fail permanently, commits
// the rest, and passes a retryable error through untouched.
func TestWriteIsolating(t *testing.T) {
	spans := make([]Span, 10)
	for i := range spans {
		spans[i] = Span{ProjectID: "p", TraceID: "t", SpanID: string(rune('a' + i))}
	}
	bad := map[string]bool{"c": true, "h": true}
	var committed []string
	write := func(_ context.Context, part []Span) (WriteResult, error) {
		for _, s := range part {
			if bad[s.SpanID] {
				return WriteResult{}, NewPermanent(errors.New("value too large"))
			}
		}
		for _, s := range part {
			committed = append(committed, s.SpanID)
		}
		return WriteResult{Inserted: len(part)}, nil
	}
	res, err := WriteIsolating(context.Background(), spans, write)
	if !IsPermanent(err) || res.Inserted != 8 || res.Rejected != 2 || len(committed) != 8 {
		t.Fatalf("res %+v err %v committed %v", res, err, committed)
	}
	if !strings.Contains(err.Error(), "span_id=c") || !strings.Contains(err.Error(), "span_id=h") {
		t.Fatalf("error does not name the bad spans: %v", err)
	}

	retryable := errors.New("connection refused")
	_, err = WriteIsolating(context.Background(), spans, func(context.Context, []Span) (WriteResult, error) {
		return WriteResult{}, retryable
	})
	if !errors.Is(err, retryable) || IsPermanent(err) {
		t.Fatalf("retryable error became %v", err)
	}
}

func TestCleanText(t *testing.T) {
	if got := CleanText("a\x00b\xffc"); got != "a\uFFFDb\uFFFDc" {
		t.Fatalf("CleanText = %q", got)
	}
	if s := "plain ✓"; CleanText(s) != s {
		t.Fatal("CleanText changed valid text")
	}
}
