package storagetest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// RunReader checks a backend's storage.Reader against the same questions
// answered in Go over the fixture it wrote (ReadFixture): every filter,
// every sort in both directions walked page by page through the cursors,
// the views' rows and project isolation.
func RunReader(t *testing.T, b Backend) {
	s, _ := b.New(t)
	r, ok := s.(storage.Reader)
	if !ok {
		t.Fatalf("%T does not implement storage.Reader", s)
	}
	fx := ReadFixture()
	if _, err := s.WriteSpans(context.Background(), fx); err != nil {
		t.Fatal(err)
	}
	m := model{spans: fx}
	t.Run("Summary", func(t *testing.T) { testSummary(t, r, m) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, r, m) })
	t.Run("Series", func(t *testing.T) { testSeries(t, r, m) })
	t.Run("Generations", func(t *testing.T) { testGenerations(t, r, m) })
	t.Run("Search", func(t *testing.T) { testSearch(t, r, m) })
	t.Run("SpanAndTrace", func(t *testing.T) { testSpanAndTrace(t, r, m) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, r, m) })
	t.Run("Customers", func(t *testing.T) { testCustomers(t, r, m) })
	t.Run("BadCursor", func(t *testing.T) { testBadCursor(t, r) })
	t.Run("SearchWindow", func(t *testing.T) { testSearchWindow(t, b) })
}

// testSearchWindow checks that one page of a substring search examines at
// most storage.QScanWindow generations and goes on from its cursor: of
// three hits, two lie within the newest QScanWindow generations and one
// beyond them.
func testSearchWindow(t *testing.T, b Backend) {
	ctx := context.Background()
	s, _ := b.New(t)
	r := s.(storage.Reader)
	n := storage.QScanWindow + 40
	// Newest first: the hits at positions 0, QScanWindow-1 and QScanWindow+10.
	hitAt := map[int]bool{0: true, storage.QScanWindow - 1: true, storage.QScanWindow + 10: true}
	spans := make([]storage.Span, 0, n)
	for i := range n {
		start := Base.Add(-time.Duration(i) * time.Second)
		text := fmt.Sprintf("q%d plain", i)
		if hitAt[i] {
			text = fmt.Sprintf("q%d haystack-needle", i)
		}
		spans = append(spans, storage.Span{
			ProjectID: "pw", TraceID: fmt.Sprintf("%032x", 0x5e000000+i), SpanID: fmt.Sprintf("%016x", 0xa000+i),
			Name: "LLM Generation", Kind: "CLIENT", StatusCode: "OK",
			StartTimeUnixNano: start.UnixNano(), EndTimeUnixNano: start.Add(time.Second).UnixNano(), DurationMs: 1000,
			ReceivedAtUnixNano: start.Add(2 * time.Second).UnixNano(), IsGeneration: true,
			Prompt: ptr(text), Attributes: "{}", ResourceAttributes: "{}",
		})
	}
	for first := 0; first < n; first += 1000 {
		if _, err := s.WriteSpans(ctx, spans[first:min(first+1000, n)]); err != nil {
			t.Fatal(err)
		}
	}
	f := storage.Filter{ProjectID: "pw", Q: "haystack-needle"}
	page1, next, err := r.Generations(ctx, f, storage.Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page1), ids([]storage.Span{spans[0], spans[storage.QScanWindow-1]}); !slices.Equal(got, want) || next == nil {
		t.Fatalf("first page: %v (next cursor %v), want %v and a next cursor: the page must stop after %d generations",
			got, next != nil, want, storage.QScanWindow)
	}
	page2, next, err := r.Generations(ctx, f, storage.Page{Limit: 50, After: next})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page2), ids([]storage.Span{spans[storage.QScanWindow+10]}); !slices.Equal(got, want) || next != nil {
		t.Fatalf("second page: %v (next cursor %v), want %v and no next cursor", got, next != nil, want)
	}
}

// ReadFixture is a deterministic mix of generations and their children in
// two projects: sessions, customers, models and providers (some absent),
// errors, unknown costs and tokens, hostile and LIKE-special text.
func ReadFixture() []storage.Span {
	rng := rand.New(rand.NewPCG(11, 5))
	models := []*string{ptr("openai/gpt-4o"), ptr("anthropic/claude-haiku-4.5"), ptr("gpt-4o-mini-2024-07-18"), nil}
	providers := []*string{ptr("OpenAI"), ptr("Amazon Bedrock"), nil}
	words := []string{"needle", "NeEdLe", "100%_sure", `back\slash`, "<script>alert(1)</script>", "plain"}
	var out []storage.Span
	for i := range 500 {
		project := "p1"
		if i%5 == 4 {
			project = "p2"
		}
		start := Base.Add(time.Duration(rng.IntN(5*24*3600)) * time.Second).Add(time.Duration(i) * time.Microsecond)
		dur := time.Duration(rng.IntN(20000)+5) * time.Millisecond
		g := storage.Span{
			ProjectID: project, TraceID: fmt.Sprintf("%032x", 0x7e000000+i), SpanID: fmt.Sprintf("%016x", 0xb000+i),
			Name: "LLM Generation", Kind: "CLIENT", StatusCode: "OK",
			StartTimeUnixNano: start.UnixNano(), EndTimeUnixNano: start.Add(dur).UnixNano(), DurationMs: float64(dur) / 1e6,
			ReceivedAtUnixNano: start.Add(dur + time.Second).UnixNano(), IsGeneration: true,
			Model: models[rng.IntN(len(models))], Provider: providers[rng.IntN(len(providers))], Operation: ptr("chat"),
			CostSource: ptr("reported"), Source: ptr("openrouter"), Attributes: "{}", ResourceAttributes: "{}",
		}
		if rng.IntN(10) > 0 {
			g.SessionID = ptr(fmt.Sprintf("s-%02d", rng.IntN(40)))
		}
		if rng.IntN(8) > 0 {
			g.CustomerID = ptr(fmt.Sprintf("c-%d", rng.IntN(9)))
		}
		if rng.IntN(10) == 0 {
			g.StatusCode, g.StatusMessage = "ERROR", ptr("provider returned 502")
		}
		if rng.IntN(20) > 0 {
			in, o := int64(rng.IntN(5000)), int64(rng.IntN(900))
			g.InputTokens, g.OutputTokens, g.TotalTokens = &in, &o, ptr(in+o)
		}
		if rng.IntN(7) > 0 {
			c := float64(rng.IntN(100000)) / 1e6
			g.TotalCostUSD = &c
		} else {
			g.CostSource = ptr("unknown")
		}
		if rng.IntN(3) > 0 {
			g.TimeToFirstTokenMs = ptr(float64(rng.IntN(3000)))
		}
		g.Prompt = ptr(fmt.Sprintf(`{"messages":[{"role":"user","content":"q%d %s"}]}`, i, words[rng.IntN(len(words))]))
		g.Completion = ptr(fmt.Sprintf(`{"completion":"a%d %s"}`, i, words[rng.IntN(len(words))]))
		child := storage.Span{
			ProjectID: project, TraceID: g.TraceID, SpanID: fmt.Sprintf("%016x", 0xd000+i), ParentSpanID: ptr(g.SpanID),
			Name: "provider attempt 1", Kind: "INTERNAL", StatusCode: "UNSET",
			StartTimeUnixNano: g.StartTimeUnixNano + 1000, EndTimeUnixNano: g.EndTimeUnixNano, DurationMs: g.DurationMs,
			ReceivedAtUnixNano: g.ReceivedAtUnixNano, SessionID: g.SessionID, CustomerID: g.CustomerID,
			Attributes: "{}", ResourceAttributes: "{}",
		}
		out = append(out, g, child)
	}
	return out
}

// model answers the reader's questions over the fixture in Go.
type model struct{ spans []storage.Span }

// Match reports whether s is a generation that f selects (the Reader's
// semantics, for tests that compute expected answers themselves).
func Match(s *storage.Span, f *storage.Filter) bool {
	eq := func(p *string, v string) bool { return v == "" || (p != nil && *p == v) }
	if s.ProjectID != f.ProjectID || !s.IsGeneration {
		return false
	}
	if (f.From != nil && s.StartTimeUnixNano < *f.From) || (f.To != nil && s.StartTimeUnixNano >= *f.To) {
		return false
	}
	if !eq(s.CustomerID, f.CustomerID) || !eq(s.SessionID, f.SessionID) || !eq(s.Model, f.Model) || !eq(s.Provider, f.Provider) {
		return false
	}
	if f.StatusCode != "" && s.StatusCode != f.StatusCode {
		return false
	}
	if f.Q != "" {
		q := strings.ToLower(f.Q)
		in := func(p *string) bool { return p != nil && strings.Contains(strings.ToLower(*p), q) }
		if !in(s.Prompt) && !in(s.Completion) {
			return false
		}
	}
	return true
}

func (m model) gens(f storage.Filter) []storage.Span {
	var out []storage.Span
	for i := range m.spans {
		if Match(&m.spans[i], &f) {
			out = append(out, m.spans[i])
		}
	}
	return out
}

func addCost(sum **float64, c *float64) {
	if c == nil {
		return
	}
	if *sum == nil {
		*sum = new(float64)
	}
	**sum += *c
}

func addTokens(sum **int64, c *int64) {
	if c == nil {
		return
	}
	if *sum == nil {
		*sum = new(int64)
	}
	**sum += *c
}

// sortFilters are the filters a list is checked with in sort col: all of
// them for the default sort, a few for the others (the sort and the filter
// are independent parts of the query).
func sortFilters(l *storage.ListSpec, col, project string) []storage.Filter {
	if col == l.DefaultSort {
		return filters(project)
	}
	return filters(project)[:4]
}

// filters are the filter combinations every aggregate is checked with.
func filters(project string) []storage.Filter {
	from, to := Base.Add(26*time.Hour).UnixNano(), Base.Add(75*time.Hour).UnixNano()
	return append([]storage.Filter{
		{ProjectID: project},
		{ProjectID: project, From: &from},
		{ProjectID: project, To: &to},
		{ProjectID: project, From: &from, To: &to},
		{ProjectID: project, CustomerID: "c-3"},
		{ProjectID: project, SessionID: "s-07"},
		{ProjectID: project, Model: "openai/gpt-4o"},
		{ProjectID: project, Provider: "Amazon Bedrock", From: &from},
		{ProjectID: project, StatusCode: "ERROR"},
		{ProjectID: project, Q: "needle"},
		{ProjectID: project, Q: "100%_"},
		{ProjectID: project, Q: `k\s`},
		{ProjectID: project, Q: "<script>"},
		{ProjectID: project, Model: "no such model"},
		{ProjectID: "no-such-project"},
	}, hourlyFilters(project)...)
}

// hourlyFilters are ranges the readers answer from gen_hourly's whole
// hours and the spans' partial hours at the edges (issue 11.7), and ranges
// and filters they answer from the spans alone.
func hourlyFilters(project string) []storage.Filter {
	at := func(d time.Duration) *int64 { return ptr(Base.Add(d).UnixNano()) }
	return []storage.Filter{
		// Partial hours at both edges, at one edge, then on the model,
		// the provider and both.
		{ProjectID: project, From: at(26*time.Hour + 17*time.Minute + 3*time.Second), To: at(75*time.Hour + 41*time.Minute)},
		{ProjectID: project, From: at(-time.Hour - time.Nanosecond), To: at(48 * time.Hour)},
		{ProjectID: project, To: at(60*time.Hour + time.Nanosecond)},
		{ProjectID: project, From: at(90*time.Hour + 59*time.Minute)},
		{ProjectID: project, Model: "anthropic/claude-haiku-4.5", From: at(3*time.Hour + 30*time.Minute), To: at(100*time.Hour + 10*time.Minute)},
		{ProjectID: project, Provider: "OpenAI", From: at(3*time.Hour + 30*time.Minute), To: at(100*time.Hour + 10*time.Minute)},
		{ProjectID: project, Model: "gpt-4o-mini-2024-07-18", Provider: "Amazon Bedrock", To: at(100*time.Hour + 10*time.Minute)},
		// No whole hour in range: the spans alone.
		{ProjectID: project, From: at(30*time.Hour + 5*time.Minute), To: at(30*time.Hour + 55*time.Minute)},
		{ProjectID: project, From: at(30*time.Hour + 5*time.Minute), To: at(31*time.Hour + 55*time.Minute)},
		// A filter gen_hourly does not keep, with partial hours.
		{ProjectID: project, StatusCode: "ERROR", From: at(3*time.Hour + 30*time.Minute), To: at(100*time.Hour + 10*time.Minute)},
		{ProjectID: project, CustomerID: "c-2", Model: "openai/gpt-4o", From: at(3*time.Hour + 30*time.Minute)},
	}
}

func nearPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) <= 1e-9*math.Max(1, math.Abs(*b))
}

func testSummary(t *testing.T, r storage.Reader, m model) {
	// A short range inside most sessions: active in it, though few have a
	// generation starting in it.
	from, to := Base.Add(50*time.Hour).UnixNano(), Base.Add(50*time.Hour+10*time.Minute).UnixNano()
	short := storage.Filter{ProjectID: "p1", From: &from, To: &to}
	for _, f := range append(append(filters("p1"), filters("p2")[:3]...), short) {
		got, err := r.Summary(context.Background(), f)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		var want storage.Summary
		sessions, customers := map[string]bool{}, map[string]bool{}
		for _, g := range m.gens(f) {
			want.Generations++
			if g.StatusCode == "ERROR" {
				want.Errors++
			}
			want.InputTokens += deref(g.InputTokens)
			want.OutputTokens += deref(g.OutputTokens)
			addCost(&want.TotalCostUSD, g.TotalCostUSD)
			if g.SessionID != nil {
				sessions[*g.SessionID] = true
			}
			if g.CustomerID != nil {
				customers[*g.CustomerID] = true
			}
		}
		want.Sessions, want.Customers = int64(len(sessions)), int64(len(customers))
		if f.CustomerID == "" && f.SessionID == "" && f.Model == "" && f.Provider == "" && f.StatusCode == "" && f.Q == "" {
			// Only a time range: the sessions and customers active in it
			// (what the lists show), not only those with a generation
			// starting in it.
			want.Sessions, want.Customers = 0, 0
			for _, x := range m.sessionRows(f.ProjectID) {
				if active(f, x.FirstSeenUnixNano, x.LastSeenUnixNano) {
					want.Sessions++
				}
			}
			for _, x := range m.customerRows(f.ProjectID) {
				if active(f, x.FirstSeenUnixNano, x.LastSeenUnixNano) {
					want.Customers++
				}
			}
		}
		if !nearPtr(got.TotalCostUSD, want.TotalCostUSD) {
			t.Errorf("summary %s: cost %v, want %v", describe(f), fmtp(got.TotalCostUSD), fmtp(want.TotalCostUSD))
		}
		got.TotalCostUSD, want.TotalCostUSD = nil, nil
		if got != want {
			t.Errorf("summary %s:\n got %+v\nwant %+v", describe(f), got, want)
		}
	}
}

func describe(f storage.Filter) string {
	s := fmt.Sprintf("%+v", f)
	if f.From != nil {
		s += fmt.Sprintf(" from=%d", *f.From)
	}
	if f.To != nil {
		s += fmt.Sprintf(" to=%d", *f.To)
	}
	return s
}

func fmtp[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func testUsage(t *testing.T, r storage.Reader, m model) {
	for _, by := range []storage.UsageGroup{storage.ByDay, storage.ByModel, storage.ByProvider, storage.ByCustomer, storage.BySession} {
		for _, f := range filters("p1") {
			got, err := r.Usage(context.Background(), f, by, 0)
			if err != nil {
				t.Fatalf("%s %+v: %v", by, f, err)
			}
			want := map[string]*storage.UsageRow{}
			keyOf := func(g *storage.Span) *string {
				switch by {
				case storage.ByDay:
					return ptr(time.Unix(0, g.StartTimeUnixNano).UTC().Format("2006-01-02"))
				case storage.ByModel:
					return g.Model
				case storage.ByProvider:
					return g.Provider
				case storage.BySession:
					return g.SessionID
				}
				return g.CustomerID
			}
			for _, g := range m.gens(f) {
				k := keyOf(&g)
				name := "\x00null"
				if k != nil {
					name = *k
				}
				u := want[name]
				if u == nil {
					u = &storage.UsageRow{Key: k}
					want[name] = u
				}
				u.Generations++
				if g.StatusCode == "ERROR" {
					u.Errors++
				}
				u.InputTokens += deref(g.InputTokens)
				u.OutputTokens += deref(g.OutputTokens)
				addCost(&u.TotalCostUSD, g.TotalCostUSD)
			}
			if len(got) != len(want) {
				t.Fatalf("usage by %s %s: %d groups, want %d", by, describe(f), len(got), len(want))
			}
			for i, u := range got {
				name := "\x00null"
				if u.Key != nil {
					name = *u.Key
				}
				w := want[name]
				if w == nil || w.Generations != u.Generations || w.Errors != u.Errors || w.InputTokens != u.InputTokens ||
					w.OutputTokens != u.OutputTokens || !nearPtr(u.TotalCostUSD, w.TotalCostUSD) {
					t.Errorf("usage by %s %s: group %q = %+v, want %+v", by, describe(f), name, u, w)
				}
				if i > 0 && by == storage.ByDay && deref(got[i-1].Key) >= name {
					t.Errorf("usage by day not in day order at %d", i)
				}
				if i > 0 && by != storage.ByDay && deref(got[i-1].TotalCostUSD) < deref(u.TotalCostUSD) {
					t.Errorf("usage by %s not in descending cost order at %d", by, i)
				}
			}
		}
	}
	got, err := r.Usage(context.Background(), storage.Filter{ProjectID: "p1"}, storage.ByCustomer, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("usage limit 3: %d rows, %v", len(got), err)
	}
}

func testSeries(t *testing.T, r storage.Reader, m model) {
	day := Base.Truncate(24 * time.Hour)
	for _, b := range []struct {
		origin time.Time
		width  time.Duration
	}{
		// Whole hours on an hour: gen_hourly and the spans' partial hours.
		{day, 6 * time.Hour}, {day.Add(time.Hour), time.Hour}, {day.Add(-2 * 24 * time.Hour), 24 * time.Hour},
		{time.Unix(0, 0), 7 * 24 * time.Hour},
		// Not on an hour, or not whole hours: the spans alone.
		{day.Add(30 * time.Minute), time.Hour}, {day, 90 * time.Minute},
	} {
		for _, f := range append(filters("p1")[:10], hourlyFilters("p1")...) {
			checkSeries(t, r, m, f, b.origin.UnixNano(), int64(b.width))
		}
	}
}

func checkSeries(t *testing.T, r storage.Reader, m model, f storage.Filter, origin, width int64) {
	t.Helper()
	{
		got, err := r.Series(context.Background(), f, origin, width)
		if err != nil {
			t.Fatal(err)
		}
		if f.From == nil || *f.From < origin {
			f.From = &origin
		}
		want := map[int64]*storage.SeriesPoint{}
		for _, g := range m.gens(f) {
			b := origin + (g.StartTimeUnixNano-origin)/width*width
			p := want[b]
			if p == nil {
				p = &storage.SeriesPoint{BucketStartUnixNano: b, Latency: make([]int64, len(storage.LatencyBoundsMs)+1)}
				want[b] = p
			}
			p.Generations++
			if g.StatusCode == "ERROR" {
				p.Errors++
			}
			p.InputTokens += deref(g.InputTokens)
			p.OutputTokens += deref(g.OutputTokens)
			p.TotalCostUSD += deref(g.TotalCostUSD)
			lb, _ := slices.BinarySearch(storage.LatencyBoundsMs, g.DurationMs)
			if lb < len(storage.LatencyBoundsMs) && storage.LatencyBoundsMs[lb] == g.DurationMs {
				lb++ // bounds are exclusive
			}
			p.Latency[lb]++
		}
		if len(got) != len(want) {
			t.Fatalf("series %s origin %d width %d: %d buckets, want %d", describe(f), origin, width, len(got), len(want))
		}
		for i, p := range got {
			w := want[p.BucketStartUnixNano]
			if w == nil || p.Generations != w.Generations || p.Errors != w.Errors || p.InputTokens != w.InputTokens ||
				p.OutputTokens != w.OutputTokens || !nearPtr(&p.TotalCostUSD, &w.TotalCostUSD) || !slices.Equal(p.Latency, w.Latency) {
				t.Errorf("series %s origin %d width %d bucket %d: %+v, want %+v", describe(f), origin, width, p.BucketStartUnixNano, p, w)
			}
			if i > 0 && got[i-1].BucketStartUnixNano >= p.BucketStartUnixNano {
				t.Errorf("series not in time order")
			}
		}
	}
}

// sortValue is the value a list sorts on (NULL as -1, as the lists do).
func sortValue(s *storage.Span, col string) float64 {
	n := func(p *int64) float64 {
		if p == nil {
			return -1
		}
		return float64(*p)
	}
	fl := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	switch col {
	case "start_time_unix_nano":
		return float64(s.StartTimeUnixNano)
	case "duration_ms":
		return s.DurationMs
	case "total_cost_usd":
		return fl(s.TotalCostUSD)
	case "total_tokens":
		return n(s.TotalTokens)
	case "input_tokens":
		return n(s.InputTokens)
	case "output_tokens":
		return n(s.OutputTokens)
	case "time_to_first_token_ms":
		return fl(s.TimeToFirstTokenMs)
	}
	panic(col)
}

// walk reads every page of a list with page size limit and returns the rows.
func walk[T any](t *testing.T, limit int, page func(after *storage.Cursor) ([]T, *storage.Cursor, error)) []T {
	t.Helper()
	var all []T
	var after *storage.Cursor
	for n := 0; ; n++ {
		rows, next, err := page(after)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) > limit {
			t.Fatalf("page of %d rows, limit %d", len(rows), limit)
		}
		all = append(all, rows...)
		if next == nil {
			return all
		}
		if n > 10000 {
			t.Fatal("pagination does not end")
		}
		// Through the wire form, as the API passes it.
		c, err := storage.ParseCursor(next.Encode())
		if err != nil {
			t.Fatal(err)
		}
		after = c
	}
}

func testGenerations(t *testing.T, r storage.Reader, m model) {
	ctx := context.Background()
	for _, col := range storage.GenerationsList.Sorts {
		for _, desc := range []bool{true, false} {
			for _, f := range sortFilters(&storage.GenerationsList, col.Name, "p1") {
				got := walk(t, 37, func(after *storage.Cursor) ([]storage.Span, *storage.Cursor, error) {
					return r.Generations(ctx, f, storage.Page{Limit: 37, Sort: col.Name, Desc: desc, After: after})
				})
				want := m.gens(f)
				slices.SortFunc(want, func(a, b storage.Span) int {
					c := cmp.Or(cmp.Compare(sortValue(&a, col.Name), sortValue(&b, col.Name)), strings.Compare(a.TraceID, b.TraceID), strings.Compare(a.SpanID, b.SpanID))
					if desc {
						return -c
					}
					return c
				})
				if !sameSpans(got, want) {
					t.Fatalf("generations sort %s desc=%v %s: %d rows %v, want %d %v", col.Name, desc, describe(f), len(got), ids(got), len(want), ids(want))
				}
			}
		}
	}
	// The whole row comes back as written.
	rows, _, err := r.Generations(ctx, storage.Filter{ProjectID: "p1"}, storage.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[storage.Key]storage.Span{}
	for _, s := range m.spans {
		byKey[s.Key()] = s
	}
	for _, g := range rows {
		if w := byKey[g.Key()]; fmt.Sprintf("%+v", spanText(g)) != fmt.Sprintf("%+v", spanText(w)) {
			t.Fatalf("row read back differs:\n got %s\nwant %s", spanText(g), spanText(w))
		}
	}
}

// spanText prints a span with its pointers followed.
func spanText(s storage.Span) string {
	var b strings.Builder
	for i, v := range s.Values() {
		fmt.Fprintf(&b, "%s=", storage.Columns[i].Name)
		switch x := v.(type) {
		case *string:
			b.WriteString(fmtp(x))
		case *int64:
			b.WriteString(fmtp(x))
		case *float64:
			b.WriteString(fmtp(x))
		case *bool:
			b.WriteString(fmtp(x))
		default:
			fmt.Fprint(&b, x)
		}
		b.WriteString(" ")
	}
	return b.String()
}

func ids(s []storage.Span) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].SpanID[12:]
	}
	return out
}

func sameSpans(a, b []storage.Span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key() != b[i].Key() {
			return false
		}
	}
	return true
}

func testSearch(t *testing.T, r storage.Reader, m model) {
	ctx := context.Background()
	for _, q := range []string{"needle", "100%_", `k\s`, "<script>", "zzz-absent"} {
		f := storage.Filter{ProjectID: "p1", Q: q}
		got := walk(t, 5, func(after *storage.Cursor) ([]storage.Span, *storage.Cursor, error) {
			return r.Generations(ctx, f, storage.Page{Limit: 5, After: after})
		})
		want := m.gens(f)
		slices.SortFunc(want, func(a, b storage.Span) int {
			return -cmp.Or(cmp.Compare(a.StartTimeUnixNano, b.StartTimeUnixNano), strings.Compare(a.TraceID, b.TraceID), strings.Compare(a.SpanID, b.SpanID))
		})
		if !sameSpans(got, want) {
			t.Errorf("search %q: %v, want %v", q, ids(got), ids(want))
		}
	}
}

func testSpanAndTrace(t *testing.T, r storage.Reader, m model) {
	ctx := context.Background()
	g := m.spans[0] // a p1 generation
	got, err := r.Span(ctx, "p1", g.TraceID, g.SpanID)
	if err != nil || got.Key() != g.Key() {
		t.Fatalf("span: %v %v", got.Key(), err)
	}
	if _, err := r.Span(ctx, "p2", g.TraceID, g.SpanID); err != storage.ErrNotFound {
		t.Fatalf("another project's span: %v, want ErrNotFound", err)
	}
	tr, err := r.Trace(ctx, "p1", g.TraceID, 0)
	if err != nil || len(tr) != 2 || tr[0].SpanID != g.SpanID || tr[1].ParentSpanID == nil {
		t.Fatalf("trace: %d spans %v", len(tr), err)
	}
	if _, err := r.Trace(ctx, "p2", g.TraceID, 0); err != storage.ErrNotFound {
		t.Fatalf("another project's trace: %v, want ErrNotFound", err)
	}
	if tr, err := r.Trace(ctx, "p1", g.TraceID, 1); err != nil || len(tr) != 1 {
		t.Fatalf("trace limit 1: %d %v", len(tr), err)
	}
}

// sessionRows is the sessions view of project computed in Go.
func (m model) sessionRows(project string) map[string]*storage.SessionRow {
	out := map[string]*storage.SessionRow{}
	for _, g := range m.gens(storage.Filter{ProjectID: project}) {
		if g.SessionID == nil {
			continue
		}
		s := out[*g.SessionID]
		if s == nil {
			s = &storage.SessionRow{ProjectID: project, SessionID: *g.SessionID, FirstSeenUnixNano: math.MaxInt64, LastSeenUnixNano: math.MinInt64}
			out[*g.SessionID] = s
		}
		if g.CustomerID != nil && (s.CustomerID == nil || *g.CustomerID > *s.CustomerID) {
			s.CustomerID = g.CustomerID
		}
		s.Generations++
		if g.StatusCode == "ERROR" {
			s.Errors++
		}
		addTokens(&s.InputTokens, g.InputTokens)
		addTokens(&s.OutputTokens, g.OutputTokens)
		addCost(&s.TotalCostUSD, g.TotalCostUSD)
		s.FirstSeenUnixNano = min(s.FirstSeenUnixNano, g.StartTimeUnixNano)
		s.LastSeenUnixNano = max(s.LastSeenUnixNano, g.EndTimeUnixNano)
	}
	return out
}

// active reports whether a group first and last seen at these times was
// active in f's time range.
func active(f storage.Filter, first, last int64) bool {
	return (f.From == nil || last >= *f.From) && (f.To == nil || first < *f.To)
}

// groupSelected is the selection rule of Sessions and Customers.
func (m model) groupSelected(f storage.Filter, first, last int64, member func(g *storage.Span) bool) bool {
	if !active(f, first, last) {
		return false
	}
	inner := f
	inner.From, inner.To = nil, nil
	for _, g := range m.gens(inner) {
		if member(&g) {
			return true
		}
	}
	return false
}

// SessionSortValue is the value a sessions list sorted by col orders s by
// (NULL as -1, as the SQL does).
func SessionSortValue(s *storage.SessionRow, col string) float64 { return sessionValue(s, col) }

func sessionValue(s *storage.SessionRow, col string) float64 {
	switch col {
	case "last_seen_unix_nano":
		return float64(s.LastSeenUnixNano)
	case "first_seen_unix_nano":
		return float64(s.FirstSeenUnixNano)
	case "total_cost_usd":
		if s.TotalCostUSD == nil {
			return -1
		}
		return *s.TotalCostUSD
	case "generations":
		return float64(s.Generations)
	case "errors":
		return float64(s.Errors)
	case "input_tokens":
		if s.InputTokens == nil {
			return -1
		}
		return float64(*s.InputTokens)
	case "output_tokens":
		if s.OutputTokens == nil {
			return -1
		}
		return float64(*s.OutputTokens)
	}
	panic(col)
}

func testSessions(t *testing.T, r storage.Reader, m model) {
	ctx := context.Background()
	all := m.sessionRows("p1")
	for _, col := range storage.SessionsList.Sorts {
		for _, desc := range []bool{true, false} {
			for _, f := range sortFilters(&storage.SessionsList, col.Name, "p1") {
				got := walk(t, 7, func(after *storage.Cursor) ([]storage.SessionRow, *storage.Cursor, error) {
					return r.Sessions(ctx, f, storage.Page{Limit: 7, Sort: col.Name, Desc: desc, After: after})
				})
				var want []storage.SessionRow
				for _, s := range all {
					if m.groupSelected(f, s.FirstSeenUnixNano, s.LastSeenUnixNano, func(g *storage.Span) bool {
						return g.SessionID != nil && *g.SessionID == s.SessionID
					}) {
						want = append(want, *s)
					}
				}
				slices.SortFunc(want, func(a, b storage.SessionRow) int {
					c := cmp.Or(cmp.Compare(sessionValue(&a, col.Name), sessionValue(&b, col.Name)), strings.Compare(a.SessionID, b.SessionID))
					if desc {
						return -c
					}
					return c
				})
				if len(got) != len(want) {
					t.Fatalf("sessions sort %s desc=%v %s: %d rows, want %d", col.Name, desc, describe(f), len(got), len(want))
				}
				for i := range got {
					if !sameSession(got[i], want[i]) {
						t.Fatalf("sessions sort %s %s row %d:\n got %s\nwant %s", col.Name, describe(f), i, sessionText(got[i]), sessionText(want[i]))
					}
				}
			}
		}
	}
	for id, w := range all {
		got, err := r.Session(ctx, "p1", id)
		if err != nil || !sameSession(got, *w) {
			t.Fatalf("session %s: %s %v, want %s", id, sessionText(got), err, sessionText(*w))
		}
		if _, ok := m.sessionRows("p2")[id]; !ok {
			if _, err := r.Session(ctx, "p2", id); err != storage.ErrNotFound {
				t.Fatalf("session %s of p1 read as p2: %v, want ErrNotFound", id, err)
			}
		}
	}
}

func sameSession(a, b storage.SessionRow) bool {
	ok := nearPtr(a.TotalCostUSD, b.TotalCostUSD)
	a.TotalCostUSD, b.TotalCostUSD = nil, nil
	return ok && sessionText(a) == sessionText(b)
}

func sessionText(s storage.SessionRow) string {
	return fmt.Sprintf("%s %s c=%s g=%d e=%d in=%s out=%s cost=%s first=%d last=%d", s.ProjectID, s.SessionID, fmtp(s.CustomerID),
		s.Generations, s.Errors, fmtp(s.InputTokens), fmtp(s.OutputTokens), fmtp(s.TotalCostUSD), s.FirstSeenUnixNano, s.LastSeenUnixNano)
}

func (m model) customerRows(project string) map[string]*storage.CustomerRow {
	out := map[string]*storage.CustomerRow{}
	sessions := map[string]map[string]bool{}
	for _, g := range m.gens(storage.Filter{ProjectID: project}) {
		if g.CustomerID == nil {
			continue
		}
		c := out[*g.CustomerID]
		if c == nil {
			c = &storage.CustomerRow{ProjectID: project, CustomerID: *g.CustomerID, FirstSeenUnixNano: math.MaxInt64, LastSeenUnixNano: math.MinInt64}
			out[*g.CustomerID] = c
			sessions[*g.CustomerID] = map[string]bool{}
		}
		if g.SessionID != nil {
			sessions[*g.CustomerID][*g.SessionID] = true
		}
		c.Sessions = int64(len(sessions[*g.CustomerID]))
		c.Generations++
		addTokens(&c.InputTokens, g.InputTokens)
		addTokens(&c.OutputTokens, g.OutputTokens)
		addCost(&c.TotalCostUSD, g.TotalCostUSD)
		c.FirstSeenUnixNano = min(c.FirstSeenUnixNano, g.StartTimeUnixNano)
		c.LastSeenUnixNano = max(c.LastSeenUnixNano, g.EndTimeUnixNano)
	}
	return out
}

func customerValue(c *storage.CustomerRow, col string) float64 {
	if col == "sessions" {
		return float64(c.Sessions)
	}
	s := storage.SessionRow{Generations: c.Generations, InputTokens: c.InputTokens, OutputTokens: c.OutputTokens,
		TotalCostUSD: c.TotalCostUSD, FirstSeenUnixNano: c.FirstSeenUnixNano, LastSeenUnixNano: c.LastSeenUnixNano}
	return sessionValue(&s, col)
}

func customerText(c storage.CustomerRow) string {
	return fmt.Sprintf("%s %s s=%d g=%d in=%s out=%s cost=%s first=%d last=%d", c.ProjectID, c.CustomerID, c.Sessions,
		c.Generations, fmtp(c.InputTokens), fmtp(c.OutputTokens), fmtp(c.TotalCostUSD), c.FirstSeenUnixNano, c.LastSeenUnixNano)
}

func testCustomers(t *testing.T, r storage.Reader, m model) {
	ctx := context.Background()
	all := m.customerRows("p1")
	for _, col := range storage.CustomersList.Sorts {
		for _, desc := range []bool{true, false} {
			for _, f := range sortFilters(&storage.CustomersList, col.Name, "p1") {
				got := walk(t, 2, func(after *storage.Cursor) ([]storage.CustomerRow, *storage.Cursor, error) {
					return r.Customers(ctx, f, storage.Page{Limit: 2, Sort: col.Name, Desc: desc, After: after})
				})
				var want []storage.CustomerRow
				for _, c := range all {
					if f.CustomerID != "" && c.CustomerID != f.CustomerID {
						continue
					}
					if m.groupSelected(f, c.FirstSeenUnixNano, c.LastSeenUnixNano, func(g *storage.Span) bool {
						return g.CustomerID != nil && *g.CustomerID == c.CustomerID
					}) {
						want = append(want, *c)
					}
				}
				slices.SortFunc(want, func(a, b storage.CustomerRow) int {
					c := cmp.Or(cmp.Compare(customerValue(&a, col.Name), customerValue(&b, col.Name)), strings.Compare(a.CustomerID, b.CustomerID))
					if desc {
						return -c
					}
					return c
				})
				if len(got) != len(want) {
					t.Fatalf("customers sort %s desc=%v %s: %d rows, want %d", col.Name, desc, describe(f), len(got), len(want))
				}
				for i := range got {
					ok := nearPtr(got[i].TotalCostUSD, want[i].TotalCostUSD)
					g, w := got[i], want[i]
					g.TotalCostUSD, w.TotalCostUSD = nil, nil
					if !ok || customerText(g) != customerText(w) {
						t.Fatalf("customers sort %s %s row %d:\n got %s\nwant %s", col.Name, describe(f), i, customerText(got[i]), customerText(want[i]))
					}
				}
			}
		}
	}
	for id := range all {
		if _, err := r.Customer(ctx, "p1", id); err != nil {
			t.Fatalf("customer %s: %v", id, err)
		}
	}
	if _, err := r.Customer(ctx, "p1", "nobody"); err != storage.ErrNotFound {
		t.Fatalf("unknown customer: %v", err)
	}
}

func testBadCursor(t *testing.T, r storage.Reader) {
	ctx := context.Background()
	f := storage.Filter{ProjectID: "p1"}
	_, next, err := r.Generations(ctx, f, storage.Page{Limit: 3})
	if err != nil || next == nil {
		t.Fatal(err)
	}
	// A cursor of another sort is refused, not misread.
	if _, _, err := r.Generations(ctx, f, storage.Page{Limit: 3, Sort: "duration_ms", After: next}); err != storage.ErrBadCursor {
		t.Fatalf("cursor of another sort: %v", err)
	}
	bad := &storage.Cursor{Sort: next.Sort, Desc: next.Desc, Values: []string{"'; DROP TABLE spans; --", "x", "y"}}
	if _, _, err := r.Generations(ctx, f, storage.Page{Limit: 3, After: bad}); err != storage.ErrBadCursor {
		t.Fatalf("malformed cursor value: %v", err)
	}
	for _, s := range []string{"", "!!", "eyJzIjoiIn0", strings.Repeat("A", 5000)} {
		if _, err := storage.ParseCursor(s); err != storage.ErrBadCursor {
			t.Errorf("ParseCursor(%q): %v", s, err)
		}
	}
}
