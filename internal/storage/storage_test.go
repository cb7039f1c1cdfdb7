package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
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

// Issue 14 items 5 and 7: the checks in Go before any statement.
func TestRowProblem(t *testing.T) {
	base := func() Span {
		return Span{ProjectID: "p", TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("cd", 8)}
	}
	long := strings.Repeat("x", MaxIndexedTextBytes+1)
	ok := strings.Repeat("x", MaxIndexedTextBytes)
	tok := func(v int64) *int64 { return &v }
	usd := func(v float64) *float64 { return &v }
	cases := []struct {
		name   string
		mutate func(*Span)
		want   string
	}{
		{"fine", func(*Span) {}, ""},
		{"session at the limit", func(s *Span) { s.SessionID = &ok }, ""},
		{"tokens at the cap", func(s *Span) { s.InputTokens = tok(MaxTokenCount) }, ""},
		{"no project", func(s *Span) { s.ProjectID = "" }, "empty project_id"},
		{"long project", func(s *Span) { s.ProjectID = long }, "project_id longer"},
		{"trace id", func(s *Span) { s.TraceID = "xyz" }, "trace_id"},
		{"zero span id", func(s *Span) { s.SpanID = strings.Repeat("0", 16) }, "span_id"},
		{"long session", func(s *Span) { s.SessionID = &long }, "session_id is 513 bytes"},
		{"long customer", func(s *Span) { s.CustomerID = &long }, "customer_id"},
		{"long model", func(s *Span) { s.Model = &long }, "model"},
		{"long provider", func(s *Span) { s.Provider = &long }, "provider"},
		{"tokens over the cap", func(s *Span) { s.ReasoningTokens = tok(MaxTokenCount + 1) }, "reasoning_tokens"},
		{"huge tokens", func(s *Span) { s.InputTokens = tok(math.MaxInt64 - 10) }, "input_tokens"},
		{"negative tokens", func(s *Span) { s.OutputTokens = tok(-1) }, "output_tokens"},
		{"cost over the cap", func(s *Span) { s.TotalCostUSD = usd(2e6) }, "total_cost_usd"},
		{"NaN cost", func(s *Span) { s.InputCostUSD = usd(math.NaN()) }, "input_cost_usd"},
	}
	for _, c := range cases {
		sp := base()
		c.mutate(&sp)
		got := RowProblem(&sp)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: RowProblem = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSaturatingAdd(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{
		{1, 2, 3},
		{math.MaxInt64 - 10, 11, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{math.MinInt64 + 1, -2, math.MinInt64},
		{math.MaxInt64, -1, math.MaxInt64 - 1},
	} {
		if got := SaturatingAdd(c.a, c.b); got != c.want {
			t.Errorf("SaturatingAdd(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestNanoUSD(t *testing.T) {
	if NanoUSD(0.1)+NanoUSD(0.2) != NanoUSD(0.3) || NanoUSD(0.0001788) != 178800 || NanoUSD(1e6) != 1e15 {
		t.Fatal("NanoUSD is not exact on these costs")
	}
}

// Issue 14 item 7: the error returned to a sender is bounded whatever the
// number of rejected spans and the size of the database's message.
func TestRejectionErrorIsBounded(t *testing.T) {
	var rej []rejection
	for i := range 2000 {
		rej = append(rej, rejection{key: Key{strings.Repeat("p", 500), strings.Repeat("a", 32), fmt.Sprintf("%016x", i)},
			reason: strings.Repeat("index row size exceeds maximum ", 200)})
	}
	err := rejectionError(rej, errors.New("cause"))
	if !IsPermanent(err) || len(err.Error()) > 4096 || !strings.Contains(err.Error(), "2000 spans cannot be stored") ||
		!strings.Contains(err.Error(), "and 1990 more") || errors.Unwrap(errors.Unwrap(err)).Error() != "cause" {
		t.Fatalf("error of %d bytes: %.200s", len(err.Error()), err)
	}
}

// Issue 14 item 9: in a group commit, one caller's context governs only
// that caller. A caller whose context ends while its group is running does
// not cancel the others' transaction; the group's context ends only when
// every caller has gone.
func TestGroupCommitContexts(t *testing.T) {
	release := make(chan struct{})
	groups := make(chan []*Request, 10)
	cancelled := make(chan struct{})
	checked := make(chan error, 1)
	var calls int
	g := NewGroupCommitter(1, 0, func(ctx context.Context, group []*Request) {
		calls++
		groups <- group
		switch calls {
		case 1:
			<-release // keeps the slot busy while the next callers queue
		case 2:
			<-cancelled // one caller of this group has gone
			checked <- ctx.Err()
		}
		for _, r := range group {
			r.Result = WriteResult{Inserted: len(r.Spans)}
		}
	})
	span := []Span{{SpanID: "x"}}
	first := make(chan error, 1)
	go func() { _, err := g.Write(context.Background(), span); first <- err }()
	<-groups
	actx, cancelA := context.WithCancel(context.Background())
	aDone, bDone := make(chan error, 1), make(chan error, 1)
	go func() { _, err := g.Write(actx, span); aDone <- err }()
	go func() { _, err := g.Write(context.Background(), append(span, span...)); bDone <- err }()
	waitPending(t, g, 2)
	close(release)
	if grp := <-groups; len(grp) != 2 {
		t.Fatalf("second group has %d requests, want both queued callers", len(grp))
	}
	cancelA()
	close(cancelled)
	if err := <-checked; err != nil {
		t.Fatalf("the group's context ended when one of its callers went away: %v", err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("the other caller of the group: %v", err)
	}
	if err := <-aDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that went away: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// When every caller of a group has gone, its transaction is abandoned, and
// the caller gets its context's error, not the error of the abandoned
// transaction: database/sql rolls a transaction back when its context ends,
// and the next statement fails with "sql: statement is closed" (seen once in
// CI through TestGroupCommitCallerContexts of the SQLite backend).
func TestGroupCommitAllCallersGone(t *testing.T) {
	started := make(chan context.Context, 1)
	g := NewGroupCommitter(1, 0, func(ctx context.Context, group []*Request) {
		started <- ctx
		<-ctx.Done()
		for _, r := range group {
			r.Err = errors.New("sql: statement is closed")
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := g.Write(ctx, []Span{{SpanID: "x"}}); done <- err }()
	gctx := <-started
	cancel()
	<-gctx.Done() // returns only if the group's context ends
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller of an abandoned group got %v, want its context's error", err)
	}
}

// Waiting for the write lock (a slot) honours the caller's context: a
// caller whose deadline passes while another group holds the lock returns
// its context's error, and its spans are never written.
func TestGroupCommitLockWaitHonoursContext(t *testing.T) {
	release := make(chan struct{})
	var written [][]*Request
	var mu sync.Mutex
	g := NewGroupCommitter(1, 0, func(ctx context.Context, group []*Request) {
		mu.Lock()
		written = append(written, group)
		n := len(written)
		mu.Unlock()
		if n == 1 {
			<-release
		}
	})
	go g.Write(context.Background(), []Span{{SpanID: "holder"}}) //nolint:errcheck
	waitCalls := func(n int) {
		for {
			mu.Lock()
			got := len(written)
			mu.Unlock()
			if got >= n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitCalls(1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := g.Write(ctx, []Span{{SpanID: "late"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write waiting for a busy lock past its deadline: %v", err)
	}
	close(release)
	if _, err := g.Write(context.Background(), []Span{{SpanID: "after"}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, grp := range written {
		for _, r := range grp {
			if r.Spans[0].SpanID == "late" {
				t.Fatal("the spans of a caller that gave up were written")
			}
		}
	}
}

func waitPending(t *testing.T, g *GroupCommitter, n int) {
	t.Helper()
	for {
		g.mu.Lock()
		got := len(g.pending)
		g.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
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
