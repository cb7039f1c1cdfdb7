package fallomconsoleextension

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/fallom/fallom-collector/extension/fallomauthextension"
	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/backend"
	"github.com/fallom/fallom-collector/internal/storage/storagetest"
	"github.com/fallom/fallom-collector/internal/testutil/freeport"
	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

// The API tests run the console component in process against a real
// database (a SQLite file, a real PostgreSQL server) holding
// storagetest.ReadFixture, with the real fallomauth extension checking the
// keys, and compare every answer with what the test computes from the
// fixture itself.

type testHost struct {
	extensions map[component.ID]component.Component
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

// Keys of the fixture's two projects.
const (
	keyP1 = "flm_p1ReadKeyForTheConsoleTests_0001"
	keyP2 = "flm_p2ReadKeyForTheConsoleTests_0002"
	// keyIngest is valid for p1 but has no read scope.
	keyIngest = "flm_p1IngestOnlyKeyForTheConsole_0003"
)

type apiEnv struct {
	base    string
	fixture []storage.Span
}

// startConsole starts fallomauth and the console on storage st (already
// holding the fixture) and returns the console's base URL.
func startConsole(t *testing.T, st backend.Config, extraKeys ...keys.Entry) string {
	t.Helper()
	return startConsoleWith(t, st, func(*Config) {}, extraKeys...)
}

// startConsoleWith is startConsole with the console's config changed by
// configure before it starts.
func startConsoleWith(t *testing.T, st backend.Config, configure func(*Config), extraKeys ...keys.Entry) string {
	t.Helper()
	ctx := context.Background()
	authFactory := fallomauthextension.NewFactory()
	authCfg := authFactory.CreateDefaultConfig().(*fallomauthextension.Config)
	authCfg.Keys = []keys.Entry{
		{Name: "p1-reader", Project: "p1", Key: configopaque.String(keyP1), Scopes: []string{"ingest", "read"}},
		{Name: "p2-reader", Project: "p2", Key: configopaque.String(keyP2), Scopes: []string{"read"}},
		{Name: "p1-ingest", Project: "p1", Key: configopaque.String(keyIngest)},
	}
	authCfg.Keys = append(authCfg.Keys, extraKeys...)
	authCfg.Scope = "read"
	authID := component.MustNewIDWithName("fallomauth", "read")
	auth, err := authFactory.Create(ctx, extension.Settings{ID: authID, TelemetrySettings: componenttest.NewNopTelemetrySettings(),
		BuildInfo: component.NewDefaultBuildInfo()}, authCfg)
	require.NoError(t, err)
	host := &testHost{extensions: map[component.ID]component.Component{authID: auth}}
	require.NoError(t, auth.Start(ctx, host))
	t.Cleanup(func() { _ = auth.Shutdown(context.Background()) })

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	port, err := freeport.Port()
	require.NoError(t, err)
	cfg.NetAddr.Endpoint = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Authenticator = authID
	cfg.Storage = st
	configure(cfg)
	require.NoError(t, cfg.Validate())
	ext, err := f.Create(ctx, extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(ctx, host))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return "http://" + cfg.NetAddr.Endpoint
}

// writeFixture stores the fixture through the shared backend (the write
// path the exporter uses).
func writeFixture(t *testing.T, st backend.Config) []storage.Span {
	t.Helper()
	h, err := backend.Acquire(context.Background(), st, nil)
	require.NoError(t, err)
	defer h.Release()
	fx := storagetest.ReadFixture()
	_, err = h.Store().WriteSpans(context.Background(), fx)
	require.NoError(t, err)
	return fx
}

func sqliteStorage(t *testing.T) backend.Config {
	st := backend.DefaultConfig()
	st.DSN = configopaque.String(filepath.Join(t.TempDir(), "fallom.db"))
	return st
}

var pgServer *pgtest.Server

func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		_ = pgServer.Stop()
		_ = os.RemoveAll(pgServer.Dir())
	}
	os.Exit(code)
}

func postgresStorage(t *testing.T) backend.Config {
	t.Helper()
	if pgServer == nil {
		s, err := pgtest.StartServer("")
		require.NoError(t, err)
		pgServer = s
	}
	dsn, err := pgServer.CreateDatabase(fmt.Sprintf("console_%d", time.Now().UnixNano()))
	require.NoError(t, err)
	st := backend.DefaultConfig()
	st.Driver = backend.DriverPostgres
	st.DSN = configopaque.String(dsn)
	return st
}

func TestAPISQLite(t *testing.T) {
	st := sqliteStorage(t)
	env := apiEnv{fixture: writeFixture(t, st)}
	env.base = startConsole(t, st)
	runAPITests(t, env)
}

func TestAPIPostgres(t *testing.T) {
	st := postgresStorage(t)
	env := apiEnv{fixture: writeFixture(t, st)}
	env.base = startConsole(t, st)
	runAPITests(t, env)
}

func runAPITests(t *testing.T, env apiEnv) {
	t.Run("Auth", func(t *testing.T) { testAPIAuth(t, env) })
	t.Run("Headers", func(t *testing.T) { testAPIHeaders(t, env) })
	t.Run("SummaryFilters", func(t *testing.T) { testAPISummaryFilters(t, env) })
	t.Run("Usage", func(t *testing.T) { testAPIUsage(t, env) })
	t.Run("GenerationsPages", func(t *testing.T) { testAPIGenerationsPages(t, env) })
	t.Run("GenerationShape", func(t *testing.T) { testAPIGenerationShape(t, env) })
	t.Run("SessionsAndCustomers", func(t *testing.T) { testAPISessionsAndCustomers(t, env) })
	t.Run("Trace", func(t *testing.T) { testAPITrace(t, env) })
	t.Run("ProjectIsolation", func(t *testing.T) { testAPIProjectIsolation(t, env) })
	t.Run("CSV", func(t *testing.T) { testAPICSV(t, env) })
	t.Run("BadRequests", func(t *testing.T) { testAPIBadRequests(t, env) })
	t.Run("ListFilters", func(t *testing.T) { testAPIListFilters(t, env) })
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, env apiEnv, key, path string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, env.base+path, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, resp.Header, b}
}

func getJSON(t *testing.T, env apiEnv, key, path string, into any) {
	t.Helper()
	a := get(t, env, key, path)
	require.Equal(t, http.StatusOK, a.status, "%s: %s", path, a.body)
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	require.NoError(t, json.Unmarshal(a.body, into), "%s", a.body)
}

// every route of DESIGN 5, with a valid id of project p1 where it takes one.
func routes(env apiEnv) []string {
	var g storage.Span
	for _, s := range env.fixture {
		if s.ProjectID == "p1" && s.IsGeneration && s.SessionID != nil && s.CustomerID != nil {
			g = s
			break
		}
	}
	return []string{
		"/api/v1/summary", "/api/v1/usage?group_by=day", "/api/v1/generations", "/api/v1/sessions",
		"/api/v1/sessions/" + url.PathEscape(*g.SessionID), "/api/v1/customers", "/api/v1/customers/" + url.PathEscape(*g.CustomerID),
		"/api/v1/traces/" + g.TraceID,
	}
}

func testAPIAuth(t *testing.T, env apiEnv) {
	for _, r := range routes(env) {
		assert.Equal(t, http.StatusOK, get(t, env, keyP1, r).status, r)
		for _, bad := range []struct{ name, header, value string }{
			{"no key", "", ""},
			{"unknown key", "Authorization", "Bearer flm_ThisKeyIsNotKnownToTheConsole01"},
			{"not a fallom key", "Authorization", "Bearer abc"},
			{"wrong scheme", "Authorization", "Basic " + keyP1},
		} {
			req, _ := http.NewRequest(http.MethodGet, env.base+r, nil)
			if bad.header != "" {
				req.Header.Set(bad.header, bad.value)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var e map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s with %s", r, bad.name)
			assert.NotEmpty(t, e["error"], "%s with %s", r, bad.name)
			assert.NotContains(t, e["error"], keyP1)
		}
		// A valid key without the read scope: 403, naming the scope.
		a := get(t, env, keyIngest, r)
		assert.Equal(t, http.StatusForbidden, a.status, r)
		assert.Contains(t, string(a.body), "read")
		// X-Api-Key works as well as Authorization.
		req, _ := http.NewRequest(http.MethodGet, env.base+r, nil)
		req.Header.Set("X-Api-Key", keyP1)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, r)
	}
	a := get(t, env, keyP1, "/api/v1/nothing-here")
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.JSONEq(t, `{"error":"not found"}`, string(a.body))
}

func testAPIHeaders(t *testing.T, env apiEnv) {
	a := get(t, env, keyP1, "/api/v1/summary")
	assert.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"))
	assert.Contains(t, a.header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
}

func ptr[T any](v T) *T { return &v }

// summaryOf computes the summary of the fixture's generations that f selects.
func summaryOf(spans []storage.Span, f storage.Filter) summaryJSON {
	var s summaryJSON
	sessions, customers := map[string]bool{}, map[string]bool{}
	for i := range spans {
		g := &spans[i]
		if !storagetest.Match(g, &f) {
			continue
		}
		s.Generations++
		if g.StatusCode == "ERROR" {
			s.Errors++
		}
		if g.InputTokens != nil {
			s.InputTokens += *g.InputTokens
			s.OutputTokens += *g.OutputTokens
		}
		if g.TotalCostUSD != nil {
			if s.TotalCostUSD == nil {
				s.TotalCostUSD = ptr(0.0)
			}
			*s.TotalCostUSD += *g.TotalCostUSD
		}
		if g.SessionID != nil {
			sessions[*g.SessionID] = true
		}
		if g.CustomerID != nil {
			customers[*g.CustomerID] = true
		}
	}
	s.Sessions, s.Customers = int64(len(sessions)), int64(len(customers))
	return s
}

func sameSummary(t *testing.T, what string, got, want summaryJSON) {
	t.Helper()
	if (got.TotalCostUSD == nil) != (want.TotalCostUSD == nil) ||
		(got.TotalCostUSD != nil && math.Abs(*got.TotalCostUSD-*want.TotalCostUSD) > 1e-9) {
		t.Errorf("%s: cost %v, want %v", what, got.TotalCostUSD, want.TotalCostUSD)
	}
	got.TotalCostUSD, want.TotalCostUSD = nil, nil
	assert.Equal(t, want, got, what)
}

func testAPISummaryFilters(t *testing.T, env apiEnv) {
	from := storagetest.Base.Add(26 * time.Hour)
	to := storagetest.Base.Add(75 * time.Hour)
	fromNs, toNs := from.UnixNano(), to.UnixNano()
	cases := []struct {
		query  string
		filter storage.Filter
	}{
		{"", storage.Filter{}},
		{"from=" + from.Format(time.RFC3339), storage.Filter{From: &fromNs}},
		{"to=" + to.Format(time.RFC3339), storage.Filter{To: &toNs}},
		{"from=" + url.QueryEscape(from.In(time.FixedZone("x", 3600)).Format(time.RFC3339)) + "&to=" + to.Format(time.RFC3339Nano),
			storage.Filter{From: &fromNs, To: &toNs}},
		{"customer_id=c-3", storage.Filter{CustomerID: "c-3"}},
		{"session_id=s-07", storage.Filter{SessionID: "s-07"}},
		{"model=" + url.QueryEscape("anthropic/claude-haiku-4.5"), storage.Filter{Model: "anthropic/claude-haiku-4.5"}},
		{"provider=Amazon+Bedrock", storage.Filter{Provider: "Amazon Bedrock"}},
		{"status_code=ERROR", storage.Filter{StatusCode: "ERROR"}},
		{"status_code=ok", storage.Filter{StatusCode: "OK"}},
		{"q=NEEDLE", storage.Filter{Q: "NEEDLE"}},
		{"q=" + url.QueryEscape("100%_"), storage.Filter{Q: "100%_"}},
		{"model=no-such-model", storage.Filter{Model: "no-such-model"}},
		{"customer_id=c-3&status_code=OK&from=" + from.Format(time.RFC3339), storage.Filter{CustomerID: "c-3", StatusCode: "OK", From: &fromNs}},
	}
	for _, c := range cases {
		var got summaryJSON
		getJSON(t, env, keyP1, "/api/v1/summary?"+c.query, &got)
		f := c.filter
		f.ProjectID = "p1"
		sameSummary(t, c.query, got, summaryOf(env.fixture, f))
	}
	// The generation count must be something for the filters to mean much.
	var all summaryJSON
	getJSON(t, env, keyP1, "/api/v1/summary", &all)
	require.Greater(t, all.Generations, int64(300))
}

func testAPIUsage(t *testing.T, env apiEnv) {
	for _, by := range []string{"day", "model", "provider", "customer"} {
		var got struct {
			Usage []usageJSON `json:"usage"`
		}
		getJSON(t, env, keyP1, "/api/v1/usage?group_by="+by+"&status_code=OK", &got)
		want := map[string]int64{}
		for i := range env.fixture {
			g := &env.fixture[i]
			if !storagetest.Match(g, &storage.Filter{ProjectID: "p1", StatusCode: "OK"}) {
				continue
			}
			var k *string
			switch by {
			case "day":
				k = ptr(time.Unix(0, g.StartTimeUnixNano).UTC().Format("2006-01-02"))
			case "model":
				k = g.Model
			case "provider":
				k = g.Provider
			case "customer":
				k = g.CustomerID
			}
			name := "(null)"
			if k != nil {
				name = *k
			}
			want[name]++
		}
		gotCounts := map[string]int64{}
		for _, u := range got.Usage {
			name := "(null)"
			if u.Key != nil {
				name = *u.Key
			}
			gotCounts[name] = u.Generations
		}
		assert.Equal(t, want, gotCounts, by)
	}
	var limited struct {
		Usage []usageJSON `json:"usage"`
	}
	getJSON(t, env, keyP1, "/api/v1/usage?group_by=customer&limit=2", &limited)
	assert.Len(t, limited.Usage, 2)
}

type genPage struct {
	Generations []map[string]any `json:"generations"`
	NextCursor  *string          `json:"next_cursor"`
}

func testAPIGenerationsPages(t *testing.T, env apiEnv) {
	for _, c := range []struct{ query, sort string }{
		{"", ""}, {"sort=total_cost_usd", "total_cost_usd"}, {"sort=-duration_ms&model=openai%2Fgpt-4o", "-duration_ms"},
		{"q=needle", ""}, {"customer_id=c-1&sort=start_time_unix_nano", "start_time_unix_nano"},
	} {
		f, err := url.ParseQuery(c.query)
		require.NoError(t, err)
		filter := storage.Filter{ProjectID: "p1", Model: f.Get("model"), CustomerID: f.Get("customer_id"), Q: f.Get("q")}
		want := map[string]bool{}
		for i := range env.fixture {
			if storagetest.Match(&env.fixture[i], &filter) {
				want[env.fixture[i].SpanID] = true
			}
		}
		seen := map[string]bool{}
		path := "/api/v1/generations?limit=23&" + c.query
		var prev any
		for pages := 0; ; pages++ {
			require.Less(t, pages, 100)
			var p genPage
			getJSON(t, env, keyP1, path, &p)
			require.LessOrEqual(t, len(p.Generations), 23)
			for _, g := range p.Generations {
				id := g["span_id"].(string)
				require.False(t, seen[id], "span %s on two pages", id)
				seen[id] = true
				if col := strings.TrimPrefix(c.sort, "-"); col != "" && col != "start_time_unix_nano" {
					v := g[col]
					if prev != nil && v != nil {
						if strings.HasPrefix(c.sort, "-") {
							require.LessOrEqual(t, v.(float64), prev.(float64))
						} else {
							require.GreaterOrEqual(t, v.(float64), prev.(float64))
						}
					}
					if v != nil {
						prev = v
					}
				}
			}
			if p.NextCursor == nil {
				break
			}
			path = "/api/v1/generations?limit=23&" + c.query + "&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		assert.Equal(t, want, seen, c.query)
	}
}

func testAPIGenerationShape(t *testing.T, env apiEnv) {
	a := get(t, env, keyP1, "/api/v1/generations?limit=1000")
	require.Equal(t, http.StatusOK, a.status)
	// int64 nanoseconds travel as strings; costs as numbers or null.
	var raw struct {
		Generations []map[string]json.RawMessage `json:"generations"`
		NextCursor  *string                      `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(a.body, &raw))
	require.Nil(t, raw.NextCursor)
	byID := map[string]storage.Span{}
	for _, s := range env.fixture {
		byID[s.SpanID] = s
	}
	nullCost := 0
	for _, g := range raw.Generations {
		for _, c := range storage.Columns {
			_, ok := g[c.Name]
			require.True(t, ok, "column %s missing", c.Name)
		}
		var id, start string
		require.NoError(t, json.Unmarshal(g["span_id"], &id))
		require.NoError(t, json.Unmarshal(g["start_time_unix_nano"], &start), "start_time_unix_nano must be a string")
		w := byID[id]
		assert.Equal(t, fmt.Sprint(w.StartTimeUnixNano), start)
		if w.TotalCostUSD == nil {
			nullCost++
			assert.Equal(t, "null", string(g["total_cost_usd"]))
		} else {
			var c float64
			require.NoError(t, json.Unmarshal(g["total_cost_usd"], &c))
			assert.InDelta(t, *w.TotalCostUSD, c, 1e-12)
		}
		var attrs map[string]any
		require.NoError(t, json.Unmarshal(g["attributes"], &attrs), "attributes is a JSON object")
	}
	assert.Greater(t, nullCost, 0, "the fixture has generations of unknown cost")
}

func testAPISessionsAndCustomers(t *testing.T, env apiEnv) {
	var sessions struct {
		Sessions   []sessionJSON `json:"sessions"`
		NextCursor *string       `json:"next_cursor"`
	}
	getJSON(t, env, keyP1, "/api/v1/sessions?sort=-total_cost_usd&limit=5", &sessions)
	require.Len(t, sessions.Sessions, 5)
	require.NotNil(t, sessions.NextCursor)
	for i := 1; i < len(sessions.Sessions); i++ {
		assert.GreaterOrEqual(t, *sessions.Sessions[i-1].TotalCostUSD, *sessions.Sessions[i].TotalCostUSD)
	}
	top := sessions.Sessions[0]
	var detail struct {
		Session     sessionJSON      `json:"session"`
		Generations []map[string]any `json:"generations"`
	}
	getJSON(t, env, keyP1, "/api/v1/sessions/"+url.PathEscape(top.SessionID), &detail)
	assert.Equal(t, top, detail.Session)
	require.Len(t, detail.Generations, int(top.Generations))
	for i := 1; i < len(detail.Generations); i++ {
		a, _ := detail.Generations[i-1]["start_time_unix_nano"].(string)
		b, _ := detail.Generations[i]["start_time_unix_nano"].(string)
		assert.LessOrEqual(t, len(a), len(b))
		assert.True(t, len(a) < len(b) || a <= b, "call by call in start order")
	}
	// The session's own figures, computed from the fixture.
	want := summaryOf(env.fixture, storage.Filter{ProjectID: "p1", SessionID: top.SessionID})
	assert.Equal(t, want.Generations, top.Generations)
	assert.InDelta(t, *want.TotalCostUSD, *top.TotalCostUSD, 1e-9)

	// Sessions of one customer.
	var ofCustomer struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	getJSON(t, env, keyP1, "/api/v1/sessions?customer_id=c-2&limit=1000", &ofCustomer)
	// Those with a generation of that customer (the customers view's
	// sessions count).
	require.NotEmpty(t, ofCustomer.Sessions)
	assert.Equal(t, summaryOf(env.fixture, storage.Filter{ProjectID: "p1", CustomerID: "c-2"}).Sessions, int64(len(ofCustomer.Sessions)))
	for _, s := range ofCustomer.Sessions {
		assert.Positive(t, summaryOf(env.fixture, storage.Filter{ProjectID: "p1", CustomerID: "c-2", SessionID: s.SessionID}).Generations, s.SessionID)
	}

	var customers struct {
		Customers  []customerJSON `json:"customers"`
		NextCursor *string        `json:"next_cursor"`
	}
	getJSON(t, env, keyP1, "/api/v1/customers?sort=-generations&limit=1000", &customers)
	require.Len(t, customers.Customers, 9)
	for _, c := range customers.Customers {
		want := summaryOf(env.fixture, storage.Filter{ProjectID: "p1", CustomerID: c.CustomerID})
		assert.Equal(t, want.Generations, c.Generations, c.CustomerID)
		assert.Equal(t, want.Sessions, c.Sessions, c.CustomerID)
	}
	var cd struct {
		Customer customerJSON  `json:"customer"`
		Sessions []sessionJSON `json:"sessions"`
	}
	getJSON(t, env, keyP1, "/api/v1/customers/c-2?limit=1000", &cd)
	assert.Equal(t, "c-2", cd.Customer.CustomerID)
	assert.Len(t, cd.Sessions, len(ofCustomer.Sessions))
}

func testAPITrace(t *testing.T, env apiEnv) {
	g := env.fixture[0]
	var tr struct {
		Spans []map[string]any `json:"spans"`
	}
	getJSON(t, env, keyP1, "/api/v1/traces/"+g.TraceID, &tr)
	require.Len(t, tr.Spans, 2)
	assert.Equal(t, g.SpanID, tr.Spans[0]["span_id"])
	assert.Equal(t, g.SpanID, tr.Spans[1]["parent_span_id"])
	assert.Equal(t, http.StatusNotFound, get(t, env, keyP1, "/api/v1/traces/"+strings.Repeat("0", 32)).status)
}

func testAPIProjectIsolation(t *testing.T, env apiEnv) {
	// p2's key sees p2 only.
	var p2 summaryJSON
	getJSON(t, env, keyP2, "/api/v1/summary", &p2)
	sameSummary(t, "p2 summary", p2, summaryOf(env.fixture, storage.Filter{ProjectID: "p2"}))
	var gens genPage
	getJSON(t, env, keyP2, "/api/v1/generations?limit=1000", &gens)
	for _, g := range gens.Generations {
		assert.Equal(t, "p2", g["project_id"])
	}
	// Direct links to p1's ids answer 404 to p2, not p1's data.
	var p1gen storage.Span
	for _, s := range env.fixture {
		if s.ProjectID == "p1" && s.IsGeneration {
			p1gen = s
			break
		}
	}
	a := get(t, env, keyP2, "/api/v1/traces/"+p1gen.TraceID)
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.JSONEq(t, `{"error":"not found"}`, string(a.body))
	p1only := func(col func(*storage.Span) *string) string {
		in := map[string]map[string]bool{}
		for i := range env.fixture {
			s := &env.fixture[i]
			if v := col(s); v != nil && s.IsGeneration {
				if in[*v] == nil {
					in[*v] = map[string]bool{}
				}
				in[*v][s.ProjectID] = true
			}
		}
		for v, projects := range in {
			if projects["p1"] && !projects["p2"] {
				return v
			}
		}
		t.Fatal("the fixture has no id of p1 alone")
		return ""
	}
	sid := p1only(func(s *storage.Span) *string { return s.SessionID })
	assert.Equal(t, http.StatusOK, get(t, env, keyP1, "/api/v1/sessions/"+sid).status)
	assert.Equal(t, http.StatusNotFound, get(t, env, keyP2, "/api/v1/sessions/"+sid).status)
	cid := "c-0"
	assert.Equal(t, http.StatusOK, get(t, env, keyP1, "/api/v1/customers/"+cid).status)
	var p2s summaryJSON
	getJSON(t, env, keyP2, "/api/v1/summary?customer_id="+cid, &p2s)
	assert.Equal(t, summaryOf(env.fixture, storage.Filter{ProjectID: "p2", CustomerID: cid}).Generations, p2s.Generations)
}

func testAPICSV(t *testing.T, env apiEnv) {
	a := get(t, env, keyP1, "/api/v1/generations?format=csv&limit=10&q=script")
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.Equal(t, "text/csv; charset=utf-8", a.header.Get("Content-Type"))
	recs, err := csv.NewReader(strings.NewReader(string(a.body))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, len(storage.Columns), len(recs[0]))
	assert.Equal(t, "project_id", recs[0][0])
	assert.NotEmpty(t, recs[1:])
	for _, r := range []string{"sessions", "customers", "usage?group_by=model&"} {
		sep := "?"
		if strings.Contains(r, "?") {
			sep = ""
		}
		a := get(t, env, keyP1, "/api/v1/"+r+sep+"format=csv")
		require.Equal(t, http.StatusOK, a.status, r)
		recs, err := csv.NewReader(strings.NewReader(string(a.body))).ReadAll()
		require.NoError(t, err, r)
		assert.Greater(t, len(recs), 1, r)
	}
	// A next page is announced in a header.
	a = get(t, env, keyP1, "/api/v1/sessions?format=csv&limit=2")
	assert.NotEmpty(t, a.header.Get("X-Next-Cursor"))
	// Formula-looking text is neutralized.
	assert.Equal(t, "'=HYPERLINK(1)", csvText(ptr("=HYPERLINK(1)")))
	assert.Equal(t, "plain", csvText(ptr("plain")))
}

func testAPIBadRequests(t *testing.T, env apiEnv) {
	otherSort := (&storage.Cursor{Sort: "duration_ms", Desc: true, Values: []string{"1", "a", "b"}}).Encode()
	for _, path := range []string{
		"/api/v1/summary?from=yesterday",
		"/api/v1/summary?to=9999-01-01T00:00:00Z",
		"/api/v1/summary?status_code=BROKEN",
		"/api/v1/summary?customer=typo",
		"/api/v1/summary?model=a&model=b",
		"/api/v1/usage",
		"/api/v1/usage?group_by=week",
		"/api/v1/generations?limit=0",
		"/api/v1/generations?limit=100000",
		"/api/v1/generations?sort=prompt",
		"/api/v1/generations?cursor=garbage",
		"/api/v1/generations?cursor=" + otherSort,
		"/api/v1/generations?format=xml",
		"/api/v1/sessions?sort=-name",
		"/api/v1/traces/abc?x=1",
		"/api/v1/generations?q=" + strings.Repeat("x", 600),
	} {
		a := get(t, env, keyP1, path)
		assert.Equal(t, http.StatusBadRequest, a.status, "%s: %s", path, a.body)
		var e map[string]string
		require.NoError(t, json.Unmarshal(a.body, &e), path)
		assert.NotEmpty(t, e["error"], path)
	}
}

// testAPIListFilters: every filter and sort of the sessions and customers
// lists (and a session's calls, and usage by session) reaches the query:
// walking the pages over HTTP returns, in order, exactly what the fixture
// says.
func testAPIListFilters(t *testing.T, env apiEnv) {
	from := storagetest.Base.Add(26 * time.Hour)
	to := storagetest.Base.Add(75 * time.Hour)
	type sess struct {
		gens        int64
		first, last int64
	}
	// groupsOf: the sessions (or customers) active in f's range with a
	// generation matching f's other filters (DESIGN 5 and the README's rule).
	groupsOf := func(idOf func(*storage.Span) *string, setID func(*storage.Filter, string) bool, f storage.Filter) map[string]sess {
		all := map[string]sess{}
		for i := range env.fixture {
			g := &env.fixture[i]
			if g.ProjectID != "p1" || !g.IsGeneration || idOf(g) == nil {
				continue
			}
			s := all[*idOf(g)]
			if s.gens == 0 || g.StartTimeUnixNano < s.first {
				s.first = g.StartTimeUnixNano
			}
			s.last = max(s.last, g.EndTimeUnixNano)
			s.gens++
			all[*idOf(g)] = s
		}
		out := map[string]sess{}
		for id, s := range all {
			if f.From != nil && s.last < *f.From || f.To != nil && s.first >= *f.To {
				continue
			}
			inner := f
			inner.ProjectID, inner.From, inner.To = "p1", nil, nil
			if setID(&inner, id) && summaryOf(env.fixture, inner).Generations > 0 {
				out[id] = s
			}
		}
		return out
	}
	sessionsOf := func(f storage.Filter) map[string]sess {
		return groupsOf(func(g *storage.Span) *string { return g.SessionID }, func(f *storage.Filter, id string) bool {
			ok := f.SessionID == "" || f.SessionID == id
			f.SessionID = id
			return ok
		}, f)
	}
	customersOf := func(f storage.Filter) map[string]sess {
		return groupsOf(func(g *storage.Span) *string { return g.CustomerID }, func(f *storage.Filter, id string) bool {
			ok := f.CustomerID == "" || f.CustomerID == id
			f.CustomerID = id
			return ok
		}, f)
	}
	cases := []struct {
		query  string
		filter storage.Filter
	}{
		{"sort=-generations", storage.Filter{}},
		{"sort=last_seen_unix_nano", storage.Filter{}},
		{"sort=total_cost_usd&from=" + from.Format(time.RFC3339), storage.Filter{From: ptr(from.UnixNano())}},
		{"sort=-first_seen_unix_nano&to=" + to.Format(time.RFC3339), storage.Filter{To: ptr(to.UnixNano())}},
		{"model=" + url.QueryEscape("openai/gpt-4o"), storage.Filter{Model: "openai/gpt-4o"}},
		{"provider=Amazon+Bedrock&status_code=OK", storage.Filter{Provider: "Amazon Bedrock", StatusCode: "OK"}},
		{"customer_id=c-3&sort=-errors", storage.Filter{CustomerID: "c-3"}},
		{"q=needle", storage.Filter{Q: "needle"}},
	}
	for _, c := range cases {
		want := sessionsOf(c.filter)
		var got []sessionJSON
		path := "/api/v1/sessions?limit=4&" + c.query
		for pages := 0; ; pages++ {
			require.Less(t, pages, 200, c.query)
			var p struct {
				Sessions   []sessionJSON `json:"sessions"`
				NextCursor *string       `json:"next_cursor"`
			}
			getJSON(t, env, keyP1, path, &p)
			got = append(got, p.Sessions...)
			if p.NextCursor == nil {
				break
			}
			path = "/api/v1/sessions?limit=4&" + c.query + "&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		ids := map[string]sess{}
		for _, s := range got {
			_, dup := ids[s.SessionID]
			require.False(t, dup, "%s: session %s on two pages", c.query, s.SessionID)
			ids[s.SessionID] = sess{s.Generations, s.FirstSeenUnixNano, s.LastSeenUnixNano}
		}
		assert.Equal(t, want, ids, c.query)
		// In the order asked for.
		sortCol := "last_seen_unix_nano"
		desc := true
		if v, _ := url.ParseQuery(c.query); v.Get("sort") != "" {
			sortCol, desc = strings.TrimPrefix(v.Get("sort"), "-"), strings.HasPrefix(v.Get("sort"), "-")
		}
		for i := 1; i < len(got); i++ {
			a, b := sessionSort(&got[i-1], sortCol), sessionSort(&got[i], sortCol)
			if desc {
				assert.GreaterOrEqual(t, a, b, "%s: rows %d, %d", c.query, i-1, i)
			} else {
				assert.LessOrEqual(t, a, b, "%s: rows %d, %d", c.query, i-1, i)
			}
		}
		// The customers list selects customers by the same rule.
		var custs struct {
			Customers []customerJSON `json:"customers"`
		}
		// (customers have no errors column to sort by)
		getJSON(t, env, keyP1, "/api/v1/customers?limit=1000&"+strings.Replace(c.query, "&sort=-errors", "", 1), &custs)
		gotCust := map[string]sess{}
		for _, cu := range custs.Customers {
			gotCust[cu.CustomerID] = sess{cu.Generations, cu.FirstSeenUnixNano, cu.LastSeenUnixNano}
		}
		assert.Equal(t, customersOf(c.filter), gotCust, "customers, "+c.query)
	}

	// A session's calls, page by page, in start order.
	var top struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	getJSON(t, env, keyP1, "/api/v1/sessions?sort=-generations&limit=1", &top)
	id := top.Sessions[0].SessionID
	var calls []map[string]any
	path := "/api/v1/sessions/" + url.PathEscape(id) + "?limit=2"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		var d struct {
			Generations []map[string]any `json:"generations"`
			NextCursor  *string          `json:"next_cursor"`
		}
		getJSON(t, env, keyP1, path, &d)
		calls = append(calls, d.Generations...)
		if d.NextCursor == nil {
			break
		}
		path = "/api/v1/sessions/" + url.PathEscape(id) + "?limit=2&cursor=" + url.QueryEscape(*d.NextCursor)
	}
	require.EqualValues(t, top.Sessions[0].Generations, len(calls))
	for i := 1; i < len(calls); i++ {
		a, _ := strconv.ParseInt(calls[i-1]["start_time_unix_nano"].(string), 10, 64)
		b, _ := strconv.ParseInt(calls[i]["start_time_unix_nano"].(string), 10, 64)
		assert.LessOrEqual(t, a, b, "call by call in start order")
	}

	// Usage by session: each session's generation count.
	var usage struct {
		Usage []usageJSON `json:"usage"`
	}
	getJSON(t, env, keyP1, "/api/v1/usage?group_by=session", &usage)
	all := sessionsOf(storage.Filter{})
	named := 0
	for _, u := range usage.Usage {
		if u.Key == nil {
			continue
		}
		named++
		assert.Equal(t, all[*u.Key].gens, u.Generations, *u.Key)
	}
	assert.Equal(t, len(all), named)
}

func sessionSort(s *sessionJSON, col string) float64 {
	return storagetest.SessionSortValue(&storage.SessionRow{SessionID: s.SessionID, Generations: s.Generations, Errors: s.Errors,
		InputTokens: s.InputTokens, OutputTokens: s.OutputTokens, TotalCostUSD: s.TotalCostUSD,
		FirstSeenUnixNano: s.FirstSeenUnixNano, LastSeenUnixNano: s.LastSeenUnixNano}, col)
}

// A login session ends when its key expires: the key is checked again on
// every request, so the page that worked a moment ago sends the browser to
// the login form, and the API refuses the key as expired.
func TestLoginSessionEndsWhenKeyExpires(t *testing.T) {
	st := sqliteStorage(t)
	writeFixture(t, st)
	const soon = "flm_p1KeyThatExpiresDuringTheTest_0004"
	expires := time.Now().Add(4 * time.Second)
	base := startConsole(t, st, keys.Entry{Name: "p1-expiring", Project: "p1", Key: configopaque.String(soon),
		Scopes: []string{"read"}, ExpiresAt: expires})
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(base+"/login", url.Values{"key": {soon}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/", resp.Request.URL.Path, "logged in and sent to the overview")
	require.True(t, time.Now().Before(expires), "the login took so long that the key expired first: the test proves nothing")
	var path string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		resp, err := browser.Get(base + "/sessions")
		require.NoError(t, err)
		resp.Body.Close()
		if path = resp.Request.URL.Path; path == "/login" {
			break
		}
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, "/login", path, "the session outlived its key")
	assert.False(t, time.Now().Before(expires), "the session ended before the key expired")
	a := get(t, apiEnv{base: base}, soon, "/api/v1/summary")
	assert.Equal(t, http.StatusUnauthorized, a.status)
	assert.Contains(t, string(a.body), "expired")
}

// Logout is a same-origin POST: a GET (which another site can make the
// browser send) or a cross-site POST leaves the session working.
func TestLogoutOnlyBySameOriginPost(t *testing.T) {
	st := sqliteStorage(t)
	writeFixture(t, st)
	const key = "flm_p1KeyForTheLogoutTest_00000000005"
	base := startConsole(t, st, keys.Entry{Name: "p1-logout", Project: "p1", Key: configopaque.String(key), Scopes: []string{"read"}})
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(base+"/login", url.Values{"key": {key}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "/", resp.Request.URL.Path, "logged in and sent to the overview")
	loggedIn := func() bool {
		resp, err := browser.Get(base + "/sessions")
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && resp.Request.URL.Path == "/sessions"
	}

	resp, err = browser.Get(base + "/logout")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.True(t, loggedIn(), "a GET /logout ended the session")

	req, err := http.NewRequest(http.MethodPost, base+"/logout", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = browser.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.True(t, loggedIn(), "a cross-site POST /logout ended the session")

	req, err = http.NewRequest(http.MethodPost, base+"/logout", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = browser.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "/login", resp.Request.URL.Path)
	assert.False(t, loggedIn(), "the same-origin POST /logout left the session working")
}
