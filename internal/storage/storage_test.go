package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Issue 14 item 14: the password is found by parsing, whatever the case of
// the scheme or of the key, in the user info or only in ?password=, and is
// never printed.
func TestRedactDSN(t *testing.T) {
	cases := map[string]string{
		"postgres://fallom:hunter2@db:5432/fallom?sslmode=require": "postgres://fallom:xxxxx@db:5432/fallom?sslmode=require",
		"POSTGRES://u:hunter2@db/x":                                "POSTGRES://u:xxxxx@db/x",
		"PostgreSQL://u:hunter2@db/x":                              "PostgreSQL://u:xxxxx@db/x",
		"postgresql://u@db/x?password=hunter2&sslmode=disable":     "postgresql://u@db/x?password=xxxxx&sslmode=disable",
		"postgres://db/x?sslmode=disable&password=hunter2":         "postgres://db/x?sslmode=disable&password=xxxxx",
		"postgres://db/x?PassWord=hunter2":                         "postgres://db/x?PassWord=xxxxx",
		"postgres://u:hunter2@h1:5432,h2:5433/db":                  "postgres://u:xxxxx@h1:5432,h2:5433/db",
		"postgres://u:hun@ter2@db/x":                               "postgres://u:xxxxx@db/x",
		"postgres://u:hunter2@db:notaport/x":                       "postgres://u:xxxxx@db:notaport/x",
		"host=db user=fallom password=hunter2 dbname=fallom":       "host=db user=fallom password=xxxxx dbname=fallom",
		"host=db PASSWORD=hunter2 dbname=fallom":                   "host=db PASSWORD=xxxxx dbname=fallom",
		"host=db password='hun ter2' dbname=fallom":                "host=db password=xxxxx dbname=fallom",
		"postgres://fallom@db/fallom":                              "postgres://fallom@db/fallom",
		"./data/fallom.db":                                         "./data/fallom.db",
	}
	for in, want := range cases {
		got := RedactDSN(in)
		if got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "hunter2") || strings.Contains(got, "ter2") {
			t.Errorf("RedactDSN(%q) leaks the password", in)
		}
	}
	for dsn, want := range map[string]string{
		"postgres://u:hunter2@h/d":              "hunter2",
		"POSTGRES://u:hunter2@h/d":              "hunter2",
		"postgres://h/d?password=hunter2":       "hunter2",
		"postgres://h/d?PASSWORD=hunter2":       "hunter2",
		"host=h password='hun ter2'":            "hun ter2",
		"postgres://u:p%40ss%2Fword@h/d":        "p@ss/word",
		"postgres://h/d?password=p%40ss%2Fword": "p@ss/word",
	} {
		if got := DSNPasswords(dsn); !slicesContains(got, want) {
			t.Errorf("DSNPasswords(%q) = %q, want it to hold %q", dsn, got, want)
		}
		text := "failed to connect: password " + want + " rejected for " + dsn
		if r := RedactText(text, dsn); strings.Contains(r, want) {
			t.Errorf("RedactText left %q in %q", want, r)
		}
	}
	if got := NormalizeDSN("POSTGRES://u:p@h/d"); got != "postgres://u:p@h/d" {
		t.Errorf("NormalizeDSN = %q", got)
	}
	if got := NormalizeDSN("host=h user=U"); got != "host=h user=U" {
		t.Errorf("NormalizeDSN changed a key=value DSN: %q", got)
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
