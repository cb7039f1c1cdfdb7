package fallomconsoleextension

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// Page handlers: each reads what its page shows through the reader (for the
// principal's project only) and returns the template data.

// timeRange is a preset of the range picker.
type timeRange struct {
	Name  string
	Label string
	Span  time.Duration // 0: all time
}

var timeRanges = []timeRange{
	{"24h", "Last 24 hours", 24 * time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour},
	{"30d", "Last 30 days", 30 * 24 * time.Hour},
	{"90d", "Last 90 days", 90 * 24 * time.Hour},
	{"all", "All time", 0},
}

// pageQuery is the query of a page: the API's filters and list parameters,
// plus the range preset (used when from and to are not given).
type pageQuery struct {
	query
	Range  string
	Ranges []rangeLink
	// FromText and ToText are the explicit from/to, for the form.
	FromText, ToText string
	Filter           storage.Filter
	values           url.Values
	path             string
}

type rangeLink struct {
	Label   string
	URL     template.URL
	Current bool
}

func (c *console) parsePage(r *http.Request, p principal, l *storage.ListSpec, defaultRange string) (*pageQuery, error) {
	vals := r.URL.Query()
	rangeName := vals.Get("range")
	vals.Del("range")
	q, err := parseQuery(vals, p.projectID, l, false)
	if err != nil {
		return nil, err
	}
	pq := &pageQuery{query: q, FromText: q.fromText, ToText: q.toText, values: r.URL.Query(), path: r.URL.Path}
	if q.filter.From == nil && q.filter.To == nil {
		if rangeName == "" {
			rangeName = defaultRange
		}
		found := false
		for _, tr := range timeRanges {
			if tr.Name == rangeName {
				found = true
				if tr.Span > 0 {
					from := time.Now().Add(-tr.Span).Truncate(time.Minute)
					ns := from.UnixNano()
					pq.filter.From = &ns
					pq.fromText = from.UTC().Format(time.RFC3339) // for the CSV link
				}
			}
		}
		if !found {
			return nil, badRequestf("range must be one of 24h, 7d, 30d, 90d or all, got %q", rangeName)
		}
		pq.Range = rangeName
	}
	pq.Filter = pq.filter
	for _, tr := range timeRanges {
		v := filterValues(&pq.query, "")
		v.Del("from")
		v.Del("to")
		v.Set("range", tr.Name)
		pq.Ranges = append(pq.Ranges, rangeLink{Label: tr.Label, URL: pageURL(pq.path, v), Current: tr.Name == pq.Range})
	}
	return pq, nil
}

// links keep the page's filters and change one parameter (sort, say).
func (pq *pageQuery) link(p string, set ...string) template.URL {
	v := filterValues(&pq.query, pq.Range)
	if pq.Range != "" {
		v.Del("from")
	}
	for i := 0; i+1 < len(set); i += 2 {
		if set[i+1] == "" {
			v.Del(set[i])
		} else {
			v.Set(set[i], set[i+1])
		}
	}
	return pageURL(p, v)
}

// sortLink is a column header that sorts the list by col (descending
// first, ascending when already descending).
type sortLink struct {
	Label string
	URL   template.URL
	Mark  string
}

func (pq *pageQuery) sortLinks(l *storage.ListSpec, cols ...[2]string) map[string]sortLink {
	out := map[string]sortLink{}
	for _, c := range cols {
		s := "-" + c[0]
		mark := ""
		if pq.page.Sort == c[0] {
			if pq.page.Desc {
				s, mark = c[0], " ▼"
			} else {
				mark = " ▲"
			}
		}
		out[c[0]] = sortLink{Label: c[1], URL: pq.link(pq.path, "sort", s, "cursor", ""), Mark: mark}
	}
	return out
}

func (pq *pageQuery) nav(apiPath string, next *storage.Cursor) listNav {
	return newListNav(pq.path, apiPath, &pq.query, pq.Range, next)
}

// ---- overview

type overviewBody struct {
	Q            *pageQuery
	Empty        bool
	Ingest       ingestHelp
	Summary      storage.Summary
	ErrorRate    string
	P50, P95     string
	Charts       []chart
	Models       []usageView
	Providers    []usageView
	TopCustomers []usageView
	TopSessions  []usageView
	// TopWhole: the top customers and sessions are those active in the
	// range with their whole totals (topRows), which the page says.
	TopWhole bool
}

func (overviewBody) title() (string, string) { return "Overview", "overview" }

type usageView struct {
	storage.UsageRow
	URL template.URL // the generations of this group; empty when none
}

// ingestHelp tells a new user how to send data.
type ingestHelp struct {
	Endpoint string
	Curl     string
}

func (c *console) ingestHelp() ingestHelp {
	ep := reachableEndpoint(c.cfg.IngestEndpoint)
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my-app"}}]},` +
		`"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",` +
		`"name":"chat","kind":3,"startTimeUnixNano":"1794000000000000000","endTimeUnixNano":"1794000001500000000",` +
		`"attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"openai/gpt-4o-mini"}},` +
		`{"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":"3"}},` +
		`{"key":"session.id","value":{"stringValue":"first-session"}},{"key":"user.id","value":{"stringValue":"first-customer"}}]}]}]}]}`
	curl := "curl -sS " + ep + " \\\n  -H 'Authorization: Bearer flm_<your ingest key>' \\\n  -H 'Content-Type: application/json' \\\n  -d '" + body + "'"
	return ingestHelp{Endpoint: ep, Curl: curl}
}

// reachableEndpoint shows a listener bound to every interface (0.0.0.0,
// [::]) as localhost: the address a user on this machine can send to.
func reachableEndpoint(ep string) string {
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return ep
	}
	switch u.Hostname() {
	case "0.0.0.0", "::":
		u.Host = "localhost"
		if port := u.Port(); port != "" {
			u.Host = net.JoinHostPort("localhost", port)
		}
		return u.String()
	}
	return ep
}

// bucketWidth picks the chart bucket for a range.
func bucketWidth(from, to int64) (width int64, label string) {
	span := time.Duration(to - from)
	switch {
	case span <= 3*24*time.Hour:
		return int64(time.Hour), "15:04"
	case span <= 120*24*time.Hour:
		return int64(24 * time.Hour), "01-02"
	}
	return int64(7 * 24 * time.Hour), "2006-01-02"
}

func (c *console) hasData(ctx context.Context, project string) (bool, error) {
	rows, _, err := c.reader.Generations(ctx, storage.Filter{ProjectID: project}, storage.Page{Limit: 1})
	return len(rows) > 0, err
}

// hasDataUnlessRows tells a list page whether to show the rows (or "no
// match") rather than how to send data: a page with rows, or one reached
// by a cursor, has data; an empty first page asks whether the project has
// any generation at all.
func (c *console) hasDataUnlessRows(ctx context.Context, project string, rows int, after *storage.Cursor) (bool, error) {
	if rows > 0 || after != nil {
		return true, nil
	}
	return c.hasData(ctx, project)
}

func (c *console) pageOverview(r *http.Request, p principal) (string, any, error) {
	pq, err := c.parsePage(r, p, nil, "7d")
	if err != nil {
		return "", nil, err
	}
	ctx := r.Context()
	body := overviewBody{Q: pq, Ingest: c.ingestHelp(), TopWhole: pq.filter.OnlyTime()}
	if ok, err := c.hasData(ctx, p.projectID); err != nil {
		return "", nil, err
	} else if !ok {
		body.Empty = true
		return "overview", body, nil
	}
	f := pq.filter

	// The chart range: the filter's, else from the first generation.
	to := time.Now().UnixNano()
	if f.To != nil {
		to = *f.To
	}
	var from int64
	if f.From != nil {
		from = *f.From
	} else {
		first, _, err := c.reader.Generations(ctx, f, storage.Page{Limit: 1, Sort: "start_time_unix_nano"})
		if err != nil {
			return "", nil, err
		}
		from = to - int64(24*time.Hour)
		if len(first) > 0 {
			from = min(from, first[0].StartTimeUnixNano)
		}
	}
	width, layout := bucketWidth(from, to)
	origin := from - ((from%width)+width)%width

	// The summary, the series and the four splits are independent reads:
	// they run side by side on the reader's pool, so the page waits for
	// the slowest of them rather than for their sum.
	var points []storage.SeriesPoint
	groups := []struct {
		by   storage.UsageGroup
		dst  *[]usageView
		link string
		rows []storage.UsageRow
	}{{by: storage.ByModel, dst: &body.Models, link: "model"}, {by: storage.ByProvider, dst: &body.Providers, link: "provider"},
		{by: storage.ByCustomer, dst: &body.TopCustomers, link: "customer_id"}, {by: storage.BySession, dst: &body.TopSessions, link: "session_id"}}
	reads := []func() error{
		func() (err error) { body.Summary, err = c.reader.Summary(ctx, f); return err },
		func() (err error) { points, err = c.reader.Series(ctx, f, origin, width); return err },
	}
	for i := range groups {
		g := &groups[i]
		reads = append(reads, func() (err error) { g.rows, err = c.topRows(ctx, f, g.by); return err })
	}
	if err := parallel(reads...); err != nil {
		return "", nil, err
	}
	body.ErrorRate = fmtPct(body.Summary.Errors, body.Summary.Generations)
	body.Charts, body.P50, body.P95 = overviewCharts(points, origin, to, width, layout)
	for _, g := range groups {
		for _, u := range g.rows {
			if u.Key == nil && g.by == storage.BySession {
				continue // calls outside any session are not a top session
			}
			v := usageView{UsageRow: u}
			switch {
			case u.Key != nil && g.by == storage.BySession:
				v.URL = pageURL("/sessions/"+url.PathEscape(*u.Key), nil)
			case u.Key != nil:
				v.URL = pq.link("/generations", g.link, *u.Key)
			}
			*g.dst = append(*g.dst, v)
		}
	}
	return "overview", body, nil
}

// overviewTop is how many rows each split of the overview shows.
const overviewTop = 10

// topRows returns a split of the overview. The top customers and sessions
// of a range (with no other filter) are the customers and sessions active
// in it, ranked by their whole totals (the rows of the customers and
// sessions lists sorted by cost: the same figures a click shows), read
// from the totals tables; summing only the generations that started in
// the range took seconds at 1M spans. Any other filter, and the model and
// provider splits, total the matching generations.
func (c *console) topRows(ctx context.Context, f storage.Filter, by storage.UsageGroup) ([]storage.UsageRow, error) {
	if !f.OnlyTime() || (by != storage.ByCustomer && by != storage.BySession) {
		return c.reader.Usage(ctx, f, by, overviewTop)
	}
	page := storage.Page{Limit: overviewTop, Sort: "total_cost_usd", Desc: true}
	var out []storage.UsageRow
	if by == storage.BySession {
		rows, _, err := c.reader.Sessions(ctx, f, page)
		for _, s := range rows {
			out = append(out, storage.UsageRow{Key: &s.SessionID, Generations: s.Generations, Errors: s.Errors,
				InputTokens: orZero(s.InputTokens), OutputTokens: orZero(s.OutputTokens), TotalCostUSD: s.TotalCostUSD})
		}
		return out, err
	}
	rows, _, err := c.reader.Customers(ctx, f, page)
	for _, cu := range rows {
		out = append(out, storage.UsageRow{Key: &cu.CustomerID, Generations: cu.Generations,
			InputTokens: orZero(cu.InputTokens), OutputTokens: orZero(cu.OutputTokens), TotalCostUSD: cu.TotalCostUSD})
	}
	return out, err
}

// parallel runs fns concurrently and returns the first error.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// overviewCharts turns the series into the overview's charts, filling
// empty buckets, and reads p50 and p95 of the whole range.
func overviewCharts(points []storage.SeriesPoint, origin, to, width int64, layout string) ([]chart, string, string) {
	n := int((to - origin + width - 1) / width)
	n = max(1, min(n, 400))
	labels := make([]string, n)
	cost, gens, errs := make([]float64, n), make([]float64, n), make([]float64, n)
	in, out := make([]float64, n), make([]float64, n)
	p50, p95 := make([]float64, n), make([]float64, n)
	for i := range n {
		labels[i] = time.Unix(0, origin+int64(i)*width).UTC().Format(layout)
		p50[i], p95[i] = math.NaN(), math.NaN()
	}
	var all []int64
	for _, pt := range points {
		i := int((pt.BucketStartUnixNano - origin) / width)
		if i < 0 || i >= n {
			continue
		}
		cost[i], gens[i], errs[i] = pt.TotalCostUSD, float64(pt.Generations), float64(pt.Errors)
		in[i], out[i] = float64(pt.InputTokens), float64(pt.OutputTokens)
		p50[i], p95[i] = quantile(pt.Latency, 0.5), quantile(pt.Latency, 0.95)
		all = mergeHist(all, pt.Latency)
	}
	count := func(v float64) string { return fmtInt(int64(v)) }
	charts := []chart{
		barChart("Spend (USD)", labels, series{"s-cost", "spend", cost, func(v float64) string { return fmtCost(&v) }}),
		barChart("Generations and errors", labels, series{"s-gen", "generations", gens, count}, series{"s-err", "errors", errs, count}),
		barChart("Tokens", labels, series{"s-in", "input", in, count}, series{"s-out", "output", out, count}),
		lineChart("Latency (p50, p95)", labels, series{"s-p50", "p50", p50, fmtMs}, series{"s-p95", "p95", p95, fmtMs}),
	}
	q50, q95 := quantile(all, 0.5), quantile(all, 0.95)
	f := func(v float64) string {
		if math.IsNaN(v) {
			return missing
		}
		return "≈ " + fmtMs(v)
	}
	return charts, f(q50), f(q95)
}

// ---- generations

type generationsBody struct {
	Q       *pageQuery
	Rows    []storage.Span
	Nav     listNav
	Sorts   map[string]sortLink
	HasData bool
	Ingest  ingestHelp
}

func (generationsBody) title() (string, string) { return "Generations", "generations" }

func (c *console) pageGenerations(r *http.Request, p principal) (string, any, error) {
	pq, err := c.parsePage(r, p, &storage.GenerationsList, "all")
	if err != nil {
		return "", nil, err
	}
	rows, next, err := c.reader.Generations(r.Context(), pq.filter, pq.page)
	if err != nil {
		return "", nil, err
	}
	body := generationsBody{Q: pq, Rows: rows, Nav: pq.nav("/api/v1/generations", next), Ingest: c.ingestHelp()}
	body.Sorts = pq.sortLinks(&storage.GenerationsList, [2]string{"start_time_unix_nano", "Start"}, [2]string{"duration_ms", "Duration"},
		[2]string{"total_tokens", "Tokens"}, [2]string{"total_cost_usd", "Cost"})
	if body.HasData, err = c.hasDataUnlessRows(r.Context(), p.projectID, len(rows), pq.page.After); err != nil {
		return "", nil, err
	}
	return "generations", body, nil
}

type generationBody struct {
	Span       storage.Span
	Prompt     messagesView
	Completion messagesView
	Attributes string
	Resource   string
}

func (generationBody) title() (string, string) { return "Generation", "generations" }

func (c *console) pageGeneration(r *http.Request, p principal) (string, any, error) {
	s, err := c.reader.Span(r.Context(), p.projectID, r.PathValue("trace_id"), r.PathValue("span_id"))
	if err != nil {
		return "", nil, err
	}
	return "generation", generationBody{
		Span: s, Prompt: parseMessages(s.Prompt), Completion: parseMessages(s.Completion),
		Attributes: prettyJSON(s.Attributes), Resource: prettyJSON(s.ResourceAttributes),
	}, nil
}

// ---- sessions

type sessionsBody struct {
	Q       *pageQuery
	Rows    []storage.SessionRow
	Nav     listNav
	Sorts   map[string]sortLink
	HasData bool
	Ingest  ingestHelp
}

func (sessionsBody) title() (string, string) { return "Sessions", "sessions" }

func (c *console) pageSessions(r *http.Request, p principal) (string, any, error) {
	pq, err := c.parsePage(r, p, &storage.SessionsList, "all")
	if err != nil {
		return "", nil, err
	}
	rows, next, err := c.reader.Sessions(r.Context(), pq.filter, pq.page)
	if err != nil {
		return "", nil, err
	}
	body := sessionsBody{Q: pq, Rows: rows, Nav: pq.nav("/api/v1/sessions", next), Ingest: c.ingestHelp(), HasData: len(rows) > 0}
	body.Sorts = pq.sortLinks(&storage.SessionsList, [2]string{"last_seen_unix_nano", "Last seen"}, [2]string{"generations", "Generations"},
		[2]string{"total_cost_usd", "Cost"}, [2]string{"errors", "Errors"})
	if body.HasData, err = c.hasDataUnlessRows(r.Context(), p.projectID, len(rows), pq.page.After); err != nil {
		return "", nil, err
	}
	return "sessions", body, nil
}

type sessionBody struct {
	Session  storage.SessionRow
	Steps    []timelineStep
	Next     template.URL
	Chart    chart
	Continue bool
}

func (sessionBody) title() (string, string) { return "Session", "sessions" }

// timelineStep is one call of a session with the running totals.
type timelineStep struct {
	storage.Span
	N         int // 1-based position on this page
	CumCost   float64
	CumTokens int64
	Offset    string // since the session's first call
}

func (c *console) pageSession(r *http.Request, p principal) (string, any, error) {
	id := r.PathValue("session_id")
	s, err := c.reader.Session(r.Context(), p.projectID, id)
	if err != nil {
		return "", nil, err
	}
	q, err := parseQuery(r.URL.Query(), p.projectID, &sessionGenerationsList, false)
	if err != nil {
		return "", nil, err
	}
	gens, next, err := c.reader.Generations(r.Context(), storage.Filter{ProjectID: p.projectID, SessionID: id}, q.page)
	if err != nil {
		return "", nil, err
	}
	body := sessionBody{Session: s, Continue: q.page.After != nil}
	var cumCost float64
	var cumTokens int64
	labels := make([]string, len(gens))
	costs := make([]float64, len(gens))
	for i, g := range gens {
		if g.TotalCostUSD != nil {
			cumCost += *g.TotalCostUSD
		}
		if g.TotalTokens != nil {
			cumTokens += *g.TotalTokens
		}
		body.Steps = append(body.Steps, timelineStep{Span: g, N: i + 1, CumCost: cumCost, CumTokens: cumTokens,
			Offset: "+" + fmtMs(float64(g.StartTimeUnixNano-s.FirstSeenUnixNano)/1e6)})
		labels[i] = "#" + fmtInt(int64(i+1))
		costs[i] = cumCost
	}
	body.Chart = lineChart("Cumulative cost", labels, series{"s-cost", "cumulative cost", costs, func(v float64) string { return fmtCost(&v) }})
	if next != nil {
		body.Next = pageURL("/sessions/"+url.PathEscape(id), url.Values{"cursor": {next.Encode()}})
	}
	return "session", body, nil
}

// ---- customers

type customersBody struct {
	Q       *pageQuery
	Rows    []storage.CustomerRow
	Nav     listNav
	Sorts   map[string]sortLink
	HasData bool
	Ingest  ingestHelp
}

func (customersBody) title() (string, string) { return "Customers", "customers" }

func (c *console) pageCustomers(r *http.Request, p principal) (string, any, error) {
	pq, err := c.parsePage(r, p, &storage.CustomersList, "all")
	if err != nil {
		return "", nil, err
	}
	rows, next, err := c.reader.Customers(r.Context(), pq.filter, pq.page)
	if err != nil {
		return "", nil, err
	}
	body := customersBody{Q: pq, Rows: rows, Nav: pq.nav("/api/v1/customers", next), Ingest: c.ingestHelp()}
	body.Sorts = pq.sortLinks(&storage.CustomersList, [2]string{"last_seen_unix_nano", "Last seen"}, [2]string{"sessions", "Sessions"},
		[2]string{"generations", "Generations"}, [2]string{"total_cost_usd", "Cost"})
	if body.HasData, err = c.hasDataUnlessRows(r.Context(), p.projectID, len(rows), pq.page.After); err != nil {
		return "", nil, err
	}
	return "customers", body, nil
}

type customerBody struct {
	Customer storage.CustomerRow
	Chart    chart
	Sessions []storage.SessionRow
	Next     template.URL
}

func (customerBody) title() (string, string) { return "Customer", "customers" }

func (c *console) pageCustomer(r *http.Request, p principal) (string, any, error) {
	id := r.PathValue("customer_id")
	cu, err := c.reader.Customer(r.Context(), p.projectID, id)
	if err != nil {
		return "", nil, err
	}
	q, err := parseQuery(r.URL.Query(), p.projectID, &storage.SessionsList, false)
	if err != nil {
		return "", nil, err
	}
	sessions, next, err := c.reader.Sessions(r.Context(), storage.Filter{ProjectID: p.projectID, CustomerID: id}, q.page)
	if err != nil {
		return "", nil, err
	}
	// Spend over the customer's whole life, by day (by week past 120 days).
	from, to := cu.FirstSeenUnixNano, cu.LastSeenUnixNano+1
	width, layout := bucketWidth(from, to)
	width = max(width, int64(24*time.Hour))
	origin := from - ((from%width)+width)%width
	points, err := c.reader.Series(r.Context(), storage.Filter{ProjectID: p.projectID, CustomerID: id}, origin, width)
	if err != nil {
		return "", nil, err
	}
	if layout == "15:04" {
		layout = "01-02"
	}
	charts, _, _ := overviewCharts(points, origin, to, width, layout)
	body := customerBody{Customer: cu, Chart: charts[0], Sessions: sessions}
	if next != nil {
		body.Next = pageURL("/customers/"+url.PathEscape(id), url.Values{"cursor": {next.Encode()}})
	}
	return "customer", body, nil
}

// ---- trace

type traceBody struct {
	TraceID string
	Rows    []waterfallRow
	Total   string
	Cut     bool
}

func (traceBody) title() (string, string) { return "Trace", "" }

// waterfallRow is one span of the tree with its bar on the trace's time
// axis (0..1000 in the row's SVG).
type waterfallRow struct {
	storage.Span
	Depth  int
	Indent []struct{}
	BarX   float64
	BarW   float64
}

func (c *console) pageTrace(r *http.Request, p principal) (string, any, error) {
	spans, err := c.reader.Trace(r.Context(), p.projectID, r.PathValue("trace_id"), storage.MaxTraceSpans)
	if err != nil {
		return "", nil, err
	}
	body := traceBody{TraceID: r.PathValue("trace_id"), Cut: len(spans) == storage.MaxTraceSpans}
	start, end := spans[0].StartTimeUnixNano, spans[0].EndTimeUnixNano
	for _, s := range spans {
		start, end = min(start, s.StartTimeUnixNano), max(end, s.EndTimeUnixNano)
	}
	total := float64(max(1, end-start))
	body.Total = fmtMs(total / 1e6)
	for _, t := range spanTree(spans) {
		s := t.span
		x := 1000 * float64(s.StartTimeUnixNano-start) / total
		w := math.Max(2, 1000*float64(max(0, s.EndTimeUnixNano-s.StartTimeUnixNano))/total)
		body.Rows = append(body.Rows, waterfallRow{Span: *s, Depth: t.depth, Indent: make([]struct{}, min(t.depth, 20)),
			BarX: round1(math.Min(x, 998)), BarW: round1(math.Min(w, 1000-math.Min(x, 998)))})
	}
	return "trace", body, nil
}

type treeItem struct {
	span  *storage.Span
	depth int
}

// spanTree orders spans depth-first under their parents (children in start
// order); spans whose parent is missing are roots. Cycles cannot loop: each
// span is visited once.
func spanTree(spans []storage.Span) []treeItem {
	byID := map[string]int{}
	for i := range spans {
		byID[spans[i].SpanID] = i
	}
	children := map[int][]int{}
	var roots []int
	for i := range spans {
		if pid := spans[i].ParentSpanID; pid != nil {
			if j, ok := byID[*pid]; ok && j != i {
				children[j] = append(children[j], i)
				continue
			}
		}
		roots = append(roots, i)
	}
	var out []treeItem
	seen := make([]bool, len(spans))
	var visit func(i, depth int)
	visit = func(i, depth int) {
		if seen[i] {
			return
		}
		seen[i] = true
		out = append(out, treeItem{&spans[i], depth})
		for _, k := range children[i] {
			visit(k, depth+1)
		}
	}
	for _, i := range roots {
		visit(i, 0)
	}
	for i := range spans { // parents in a cycle: shown at the root level
		visit(i, 0)
	}
	return out
}

// ---- messages

// messagesView is a prompt or completion made readable: the normalized
// messages array (OpenAI chat shape) as roles, text, parts and tool calls.
// Raw holds the text as stored when it is not such an array.
type messagesView struct {
	Present  bool
	Messages []messageView
	Raw      string
}

type messageView struct {
	Role       string
	Name       string
	ToolCallID string
	Texts      []string
	Parts      []partView
	ToolCalls  []toolCallView
	Reasoning  string
	Truncated  bool
}

type partView struct {
	Type string
	Text string // the text, or the part as JSON
}

type toolCallView struct {
	ID        string
	Name      string
	Arguments string
}

func parseMessages(s *string) messagesView {
	if s == nil {
		return messagesView{}
	}
	v := messagesView{Present: true}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(*s), &raw); err != nil {
		v.Raw = *s
		return v
	}
	str := func(m map[string]json.RawMessage, k string) string {
		var out string
		if b, ok := m[k]; ok {
			if json.Unmarshal(b, &out) != nil {
				out = string(b)
			}
		}
		return out
	}
	for _, m := range raw {
		mv := messageView{Role: str(m, "role"), Name: str(m, "name"), ToolCallID: str(m, "tool_call_id"), Reasoning: str(m, "reasoning")}
		_ = json.Unmarshal(m["truncated"], &mv.Truncated)
		if content, ok := m["content"]; ok && string(content) != "null" {
			var text string
			var parts []map[string]json.RawMessage
			switch {
			case json.Unmarshal(content, &text) == nil:
				mv.Texts = append(mv.Texts, text)
			case json.Unmarshal(content, &parts) == nil:
				for _, pt := range parts {
					typ := str(pt, "type")
					if t, ok := pt["text"]; ok && (typ == "text" || typ == "") {
						var s string
						if json.Unmarshal(t, &s) == nil {
							mv.Parts = append(mv.Parts, partView{Type: "text", Text: s})
							continue
						}
					}
					b, _ := json.MarshalIndent(pt, "", "  ")
					mv.Parts = append(mv.Parts, partView{Type: typ, Text: string(b)})
				}
			default:
				mv.Texts = append(mv.Texts, prettyJSON(string(content)))
			}
		}
		var calls []map[string]json.RawMessage
		if json.Unmarshal(m["tool_calls"], &calls) == nil {
			for _, tc := range calls {
				var fn map[string]json.RawMessage
				_ = json.Unmarshal(tc["function"], &fn)
				args := str(fn, "arguments")
				mv.ToolCalls = append(mv.ToolCalls, toolCallView{ID: str(tc, "id"), Name: str(fn, "name"), Arguments: prettyJSON(args)})
			}
		}
		v.Messages = append(v.Messages, mv)
	}
	return v
}

// prettyJSON indents JSON text for reading; other text is returned as is.
func prettyJSON(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		return "{}"
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if enc.Encode(v) != nil {
		return s
	}
	return strings.TrimSpace(b.String())
}

// orZero is a token sum as the usage rows show it: 0 when unknown.
func orZero(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
