// Package console tests the console in a real browser: Debian's chromium,
// driven through the DevTools protocol (chromedp), against the built
// bin/fallomcol running its shipped default config, with data sent through
// the OTLP receiver. Every figure a page shows is compared with what the
// test computes from its own fixture.
package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// chromiumPath is Debian's chromium (.ci/run installs it when missing).
const chromiumPath = "/usr/bin/chromium"

// screenshotEnv, when set to 1, makes the test write the overview
// screenshot shown in the README (docs/console-overview.png).
const screenshotEnv = "FALLOM_UPDATE_SCREENSHOT"

type env struct {
	t       *testing.T
	col     *collectortest.Collector
	dir     string
	keys    string
	base    string // console URL
	otlp    string // OTLP/HTTP traces URL
	keyAcme string
	keyEvil string
	// keyIngest is valid for acme but has no read scope.
	keyIngest string
	// keyEmpty reads a project that holds no data.
	keyEmpty string
	acme     fixture
	evil     fixture
}

func start(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, keys: filepath.Join(dir, "keys.yaml")}
	e.keyAcme = collectortest.CreateKeyWithScopes(t, e.keys, "acme", "acme-console", "ingest,read")
	e.keyEvil = collectortest.CreateKeyWithScopes(t, e.keys, "hostile", "hostile-console", "ingest,read")
	e.keyIngest = collectortest.CreateKey(t, e.keys, "acme", "acme-ingest-only")
	e.keyEmpty = collectortest.CreateKeyWithScopes(t, e.keys, "fresh", "fresh-console", "read")
	ep := collectortest.NewEndpoints(t)
	console := fmt.Sprintf("127.0.0.1:%d", collectortest.FreePort(t))
	e.col = collectortest.Start(t, collectortest.Options{
		Args: []string{}, // the shipped default config
		Dir:  dir,
		Env: []string{
			"FALLOM_KEYS_FILE=" + e.keys,
			"FALLOM_DB=" + filepath.Join(dir, "fallom.db"),
			"FALLOM_HTTP_ENDPOINT=" + ep.HTTP,
			"FALLOM_GRPC_ENDPOINT=" + ep.GRPC,
			"FALLOM_CONSOLE_ENDPOINT=" + console,
			fmt.Sprintf("FALLOM_SDK_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
			fmt.Sprintf("FALLOM_HEALTH_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
			fmt.Sprintf("FALLOM_METRICS_PORT=%d", collectortest.FreePort(t)),
		},
		WaitAddrs: []string{ep.HTTP, console},
	})
	e.base = "http://" + console
	e.otlp = "http://" + ep.HTTP + "/v1/traces"
	now := time.Now().UTC()
	e.acme = normalFixture(70, now)
	e.evil = hostileFixture(now)
	e.send(e.keyAcme, e.acme.otlp())
	e.send(e.keyEvil, e.evil.otlp())
	return e
}

func (e *env) send(key string, body []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.otlp, bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "OTLP delivery refused: %s", msg)
}

// browser starts a headless chromium with the flags that work on these
// machines (no sandbox as root, no background networking: the network is
// closed) and a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does this)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	return loc
}

func (e *env) login(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.CSS("#key")))
	loc := location(t, ctx)
	require.True(t, strings.HasPrefix(loc, e.base+"/login"), "a visitor without a session is sent to the login form, got %s", loc)
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#project")),
	)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return strings.TrimSpace(s)
}

func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return eval[int](t, ctx, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// waitText waits until the element's text holds want (after a click whose
// new page has the same element as the old one).
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got = eval[string](t, ctx, fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", sel))
		if strings.Contains(got, want) {
			return
		}
	}
	t.Fatalf("%s: %q does not hold %q", sel, got, want)
}

// number reads a displayed figure ("$1,234.5678", "12,345") as a float.
func number(t *testing.T, s string) float64 {
	t.Helper()
	fields := strings.Fields(strings.NewReplacer("$", "", ",", "", "%", "", "≈", "").Replace(s))
	require.NotEmpty(t, fields, "not a number: %q", s)
	v, err := strconv.ParseFloat(fields[0], 64)
	require.NoError(t, err, "not a number: %q", s)
	return v
}

// follow goes where a link of the page points, as a click on it does, and
// waits for the new page (a click alone can return before the navigation).
func (e *env) follow(t *testing.T, ctx context.Context, link, waitFor string) {
	t.Helper()
	href := eval[string](t, ctx, fmt.Sprintf("document.querySelector(%q).getAttribute('href')", link))
	require.True(t, strings.HasPrefix(href, "/"), "link %s: %q", link, href)
	e.open(t, ctx, href, waitFor)
}

func (e *env) open(t *testing.T, ctx context.Context, path, waitFor string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(e.base+path), chromedp.WaitReady(chromedp.CSS(waitFor)))
}

func TestConsoleInBrowser(t *testing.T) {
	e := start(t)
	ctx := browser(t)
	e.login(t, ctx, e.keyAcme)

	t.Run("Overview", func(t *testing.T) { e.testOverview(t, ctx) })
	t.Run("Generations", func(t *testing.T) { e.testGenerations(t, ctx) })
	t.Run("GenerationDetail", func(t *testing.T) { e.testGenerationDetail(t, ctx) })
	t.Run("Sessions", func(t *testing.T) { e.testSessions(t, ctx) })
	t.Run("Customers", func(t *testing.T) { e.testCustomers(t, ctx) })
	t.Run("Trace", func(t *testing.T) { e.testTrace(t, ctx) })
	t.Run("AnotherProjectsIDs", func(t *testing.T) { e.testAnotherProject(t, ctx) })
	t.Run("Logout", func(t *testing.T) { e.testLogout(t, ctx) })

	t.Run("TimeRangePicker", func(t *testing.T) { e.testTimeRange(t, ctx) })
	t.Run("NothingFetchedFromElsewhere", func(t *testing.T) { e.testSameOrigin(t, ctx) })

	t.Run("EmptyProject", func(t *testing.T) {
		ectx := browser(t)
		e.login(t, ectx, e.keyEmpty)
		e.testEmptyProject(t, ectx)
	})
	t.Run("HostileText", func(t *testing.T) {
		hctx := browser(t)
		e.login(t, hctx, e.keyEvil)
		e.testHostile(t, hctx)
	})
	t.Run("RevokedKeyEndsSession", func(t *testing.T) {
		rctx := browser(t)
		e.login(t, rctx, e.keyAcme)
		e.testRevoked(t, rctx)
	})
}

func (e *env) testOverview(t *testing.T, ctx context.Context) {
	e.open(t, ctx, "/", "#summary")
	want := e.acme.totals(nil)
	assert.EqualValues(t, want.generations, number(t, text(t, ctx, "#card-generations")))
	assert.InDelta(t, want.cost, number(t, text(t, ctx, "#card-spend")), 0.00005)
	assert.EqualValues(t, want.in, number(t, text(t, ctx, "#card-input-tokens")))
	assert.EqualValues(t, want.out, number(t, text(t, ctx, "#card-output-tokens")))
	assert.EqualValues(t, len(want.sessions), number(t, text(t, ctx, "#card-sessions")))
	assert.EqualValues(t, len(want.customers), number(t, text(t, ctx, "#card-customers")))
	assert.InDelta(t, 100*float64(want.errors)/float64(want.generations), number(t, text(t, ctx, "#card-error-rate")), 0.05)
	// Latency quantiles: within the histogram's resolution of the truth.
	var durs []float64
	for _, c := range e.acme.calls {
		durs = append(durs, float64(c.duration.Milliseconds()))
	}
	p50 := quantileOf(durs, 0.5)
	assert.InEpsilon(t, p50, number(t, text(t, ctx, "#card-p50"))*unitOf(text(t, ctx, "#card-p50")), 0.3)
	// Charts are drawn (server-side SVG), one bar per hour bucket with data.
	assert.Equal(t, 4, count(t, ctx, "figure.chart svg"))
	assert.Greater(t, count(t, ctx, "rect.s-cost"), 1)
	assert.Greater(t, count(t, ctx, "polyline.s-p95"), 0)
	// Split by model: each model's generation count.
	byModel := map[string]int64{}
	for _, c := range e.acme.calls {
		byModel[c.model]++
	}
	rows := eval[[][]string](t, ctx, `[...document.querySelectorAll("table.usage")[0].querySelectorAll("tbody tr")].map(r => [...r.cells].map(c => c.innerText))`)
	require.Len(t, rows, len(byModel))
	for _, r := range rows {
		assert.EqualValues(t, byModel[r[0]], number(t, r[1]), r[0])
	}
	assert.Equal(t, len(want.sessions), eval[int](t, ctx, `document.querySelectorAll("table.usage")[3].querySelectorAll("tbody tr").length`), "top sessions")
	if os.Getenv(screenshotEnv) == "1" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		path := filepath.Join(collectortest.RepoRoot(t), "docs", "console-overview.png")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, png, 0o644))
		t.Logf("wrote %s", path)
	}
	// Top sessions: the sessions active in the range with their whole
	// totals (every call of the session, also those before the range),
	// largest spend first, as the caption says. Over the last 24 hours each
	// session has two calls of its eleven or twelve in range.
	e.open(t, ctx, "/?range=24h", "#summary")
	assert.Equal(t, 1, count(t, ctx, "#top-sessions-caption"))
	wholeGens, wholeCost := map[string]int64{}, map[string]float64{}
	for _, c := range e.acme.calls {
		if c.session == "" {
			continue
		}
		wholeGens[c.session]++
		if c.cost > 0 {
			wholeCost[c.session] += c.cost
		}
	}
	top := eval[[][]string](t, ctx, `[...document.querySelectorAll("table.usage")[3].querySelectorAll("tbody tr")].map(r => [...r.cells].map(c => c.innerText))`)
	require.Len(t, top, len(wholeGens))
	for i, r := range top {
		assert.EqualValues(t, wholeGens[r[0]], number(t, r[1]), "top session %s", r[0])
		if i > 0 {
			assert.GreaterOrEqual(t, wholeCost[top[i-1][0]], wholeCost[r[0]], "top sessions by whole spend at row %d", i)
		}
	}
}

func unitOf(s string) float64 {
	switch {
	case strings.HasSuffix(s, " s"):
		return 1000
	case strings.HasSuffix(s, " min"):
		return 60000
	}
	return 1
}

func quantileOf(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[int(q*float64(len(s)-1))]
}

func (e *env) testGenerations(t *testing.T, ctx context.Context) {
	e.open(t, ctx, "/generations", "#generations")
	// 70 generations, 50 a page: a next page with the other 20.
	assert.Equal(t, 50, count(t, ctx, "#generations tbody tr.gen"))
	seen := map[string]bool{}
	links := eval[[]string](t, ctx, `[...document.querySelectorAll("#generations tbody tr.gen td:first-child a")].map(a => a.getAttribute("href"))`)
	for _, l := range links {
		seen[l] = true
	}
	e.follow(t, ctx, "#next-page", "#generations")
	assert.Equal(t, 20, count(t, ctx, "#generations tbody tr.gen"))
	links = eval[[]string](t, ctx, `[...document.querySelectorAll("#generations tbody tr.gen td:first-child a")].map(a => a.getAttribute("href"))`)
	for _, l := range links {
		assert.False(t, seen[l], "row %s on two pages", l)
		seen[l] = true
	}
	assert.Len(t, seen, 70)
	assert.Equal(t, 0, count(t, ctx, "#next-page"))

	// Filters live in the URL.
	for _, m := range models {
		e.open(t, ctx, "/generations?model="+url.QueryEscape(m.model)+"&limit=1000", "#generations")
		want := e.acme.totals(func(c *call) bool { return c.model == m.model })
		assert.EqualValues(t, want.generations, count(t, ctx, "#generations tbody tr.gen"), m.model)
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name="model"]`)))
		require.NoError(t, err)
		assert.Equal(t, m.model, v, "the filter form shows the filter")
	}
	e.open(t, ctx, "/generations?status_code=ERROR", "#generations")
	assert.EqualValues(t, e.acme.totals(func(c *call) bool { return c.errored }).generations, count(t, ctx, "#generations tbody tr.gen"))
	e.open(t, ctx, "/generations?customer_id=cust-2&session_id=sess-2", "#generations")
	assert.EqualValues(t, e.acme.totals(func(c *call) bool { return c.customer == "cust-2" && c.session == "sess-2" }).generations,
		count(t, ctx, "#generations tbody tr.gen"))
	// Substring search in prompts.
	e.open(t, ctx, "/generations?q=question+7%3A", "#generations")
	assert.Equal(t, 1, count(t, ctx, "#generations tbody tr.gen"))
	e.open(t, ctx, "/generations?model=nothing-like-this", "#generations")
	assert.Equal(t, 1, count(t, ctx, "#no-match"))
	// Sorting by cost, descending, by clicking the header twice.
	e.open(t, ctx, "/generations", "#generations")
	e.follow(t, ctx, "#generations thead th:nth-child(7) a", "#generations")
	costs := eval[[]string](t, ctx, `[...document.querySelectorAll("#generations tbody tr.gen td:nth-child(7)")].map(c => c.innerText)`)
	var prev = 1e9
	for _, c := range costs {
		if c == "—" {
			continue
		}
		v := number(t, c)
		assert.LessOrEqual(t, v, prev+1e-9)
		prev = v
	}
}

func (e *env) testGenerationDetail(t *testing.T, ctx context.Context) {
	c := e.acme.calls[1] // the call with tool calls and multi-part content
	e.open(t, ctx, "/generations/"+c.traceID+"/"+c.spanID, "#prompt")
	assert.Equal(t, c.model, text(t, ctx, "#gen-model"))
	assert.Equal(t, c.provider, text(t, ctx, "#gen-provider"))
	assert.EqualValues(t, c.in, number(t, text(t, ctx, "#gen-input-tokens")))
	assert.InDelta(t, c.cost, number(t, text(t, ctx, "#gen-cost")), 1e-6)
	prompt := text(t, ctx, "#prompt")
	for _, want := range []string{"SYSTEM", "You are a weather bot.", "Weather in Oslo?", "image_url part", "https://example.com/map.png",
		"get_weather", `"city": "Oslo"`, "call_7", "TOOL", `"celsius":3`} {
		assert.Contains(t, prompt, want)
	}
	// The image URL is shown as text, never loaded or linked.
	assert.Equal(t, 0, count(t, ctx, "#prompt img, #prompt a"))
	assert.Contains(t, text(t, ctx, "#completion"), "Answer 1: about 3 degrees.")
	// Raw attributes are folded away.
	open := eval[bool](t, ctx, `document.querySelector("#attributes").closest("details").open`)
	assert.False(t, open)
	// Session and trace links lead to their pages.
	run(t, ctx, chromedp.Click(chromedp.CSS("#gen-session")), chromedp.WaitReady(chromedp.CSS("#timeline")))
	assert.Equal(t, c.session, text(t, ctx, "#session-id"))

	// An errored call shows its status and message.
	for _, ec := range e.acme.calls {
		if ec.errored {
			e.open(t, ctx, "/generations/"+ec.traceID+"/"+ec.spanID, "#gen-status")
			assert.Contains(t, text(t, ctx, "#gen-status"), "ERROR: upstream provider returned 502")
			assert.Equal(t, "—", text(t, ctx, "#gen-cost")[:len("—")], "unknown cost is not shown as 0")
			break
		}
	}
}

func (e *env) testSessions(t *testing.T, ctx context.Context) {
	e.open(t, ctx, "/sessions", "#sessions")
	want := e.acme.totals(nil)
	assert.Equal(t, len(want.sessions), count(t, ctx, "#sessions tbody tr.session"))
	// Sorted by cost, descending.
	e.open(t, ctx, "/sessions?sort=-total_cost_usd", "#sessions")
	first := text(t, ctx, "#sessions tbody tr.session td a")
	best, bestCost := "", -1.0
	for s := range want.sessions {
		c := e.acme.totals(func(c *call) bool { return c.session == s }).cost
		if c > bestCost {
			best, bestCost = s, c
		}
	}
	assert.Equal(t, best, first)
	// Filter by customer.
	e.open(t, ctx, "/sessions?customer_id=cust-1", "#sessions")
	assert.Equal(t, len(e.acme.totals(func(c *call) bool { return c.customer == "cust-1" }).sessions), count(t, ctx, "#sessions tbody tr.session"))
	// Detail: call by call with running totals.
	e.open(t, ctx, "/sessions/sess-3", "#timeline")
	st := e.acme.totals(func(c *call) bool { return c.session == "sess-3" })
	assert.EqualValues(t, st.generations, number(t, text(t, ctx, "#session-generations")))
	assert.EqualValues(t, st.generations, count(t, ctx, "#timeline tbody tr.step"))
	steps := eval[[]string](t, ctx, `[...document.querySelectorAll("#timeline tbody tr.step td:first-child")].map(c => c.innerText)`)
	assert.Equal(t, "1", steps[0], "calls are numbered from 1")
	assert.Equal(t, strconv.Itoa(len(steps)), steps[len(steps)-1])
	cum := eval[[]string](t, ctx, `[...document.querySelectorAll("#timeline td.cum-cost")].map(c => c.innerText)`)
	require.NotEmpty(t, cum)
	assert.InDelta(t, st.cost, number(t, cum[len(cum)-1]), 0.00005)
	assert.InDelta(t, st.cost, number(t, text(t, ctx, "#session-cost")), 0.00005)
}

func (e *env) testCustomers(t *testing.T, ctx context.Context) {
	e.open(t, ctx, "/customers", "#customers")
	assert.Equal(t, 4, count(t, ctx, "#customers tbody tr.customer"))
	e.open(t, ctx, "/customers/cust-2", "#customer-sessions-table")
	ct := e.acme.totals(func(c *call) bool { return c.customer == "cust-2" })
	assert.EqualValues(t, ct.generations, number(t, text(t, ctx, "#customer-generations")))
	assert.EqualValues(t, len(ct.sessions), number(t, text(t, ctx, "#customer-sessions")))
	assert.InDelta(t, ct.cost, number(t, text(t, ctx, "#customer-cost")), 0.00005)
	assert.Equal(t, len(ct.sessions), count(t, ctx, "#customer-sessions-table tbody tr.session"))
	assert.Greater(t, count(t, ctx, "rect.s-cost"), 0, "spend over time is drawn")
}

func (e *env) testTrace(t *testing.T, ctx context.Context) {
	c := e.acme.calls[4]
	e.open(t, ctx, "/traces/"+c.traceID, "#waterfall")
	assert.Equal(t, 3, count(t, ctx, "#waterfall tbody tr.span"))
	// The generation is the root; its provider attempt is indented under it.
	names := eval[[]string](t, ctx, `[...document.querySelectorAll("#waterfall tbody tr.span")].map(r => r.cells[0].innerText)`)
	assert.Contains(t, names[0], c.name)
	assert.Equal(t, 1, count(t, ctx, "#waterfall tbody tr.is-gen"))
	assert.Equal(t, 2, count(t, ctx, "#waterfall tbody tr.span .indent"))
	assert.Equal(t, 3, count(t, ctx, "#waterfall svg rect"))
}

func (e *env) testAnotherProject(t *testing.T, ctx context.Context) {
	h := e.evil.calls[0]
	for _, p := range []string{
		"/traces/" + h.traceID,
		"/generations/" + h.traceID + "/" + h.spanID,
		"/sessions/" + url.PathEscape(h.session),
		"/customers/" + url.PathEscape(h.customer),
	} {
		e.open(t, ctx, p, "h1")
		assert.Equal(t, "Not found", text(t, ctx, "h1"), p)
		assert.Equal(t, 1, count(t, ctx, "#error-message"), p)
	}
	// The same over the API: 404 with the JSON error, never the data.
	req, _ := http.NewRequest(http.MethodGet, e.base+"/api/v1/traces/"+h.traceID, nil)
	req.Header.Set("Authorization", "Bearer "+e.keyAcme)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "not found", body["error"])
}

func (e *env) testLogout(t *testing.T, ctx context.Context) {
	e.open(t, ctx, "/", "#logout")
	var loc string
	run(t, ctx, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#key")))
	loc = location(t, ctx)
	assert.Equal(t, e.base+"/login", loc)
	run(t, ctx, chromedp.Navigate(e.base+"/sessions"), chromedp.WaitVisible(chromedp.CSS("#key")))
	loc = location(t, ctx)
	assert.True(t, strings.HasPrefix(loc, e.base+"/login?next="), loc)
	// Logging in again returns to the page asked for.
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#key"), e.keyAcme), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#sessions")))
	loc = location(t, ctx)
	assert.Equal(t, e.base+"/sessions", loc)
	// A wrong key is refused on the form, without echoing it.
	run(t, ctx, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), "flm_NotAKeyOfThisCollector_1234567"), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	msg := text(t, ctx, "#login-error")
	assert.Contains(t, msg, "unknown")
	assert.NotContains(t, msg, "NotAKeyOfThisCollector")
	// A key without the read scope is refused, naming the scope.
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#key"), e.keyIngest), chromedp.Click(chromedp.CSS("#login")))
	waitText(t, ctx, "#login-error", "read")
	assert.Equal(t, 0, count(t, ctx, "#project"), "not logged in")
	e.login(t, ctx, e.keyAcme)
}

func (e *env) testRevoked(t *testing.T, ctx context.Context) {
	e.open(t, ctx, "/generations", "#generations")
	out, errOut, err := collectortest.Run(t, e.dir, nil, "keys", "revoke", "--keys-file", e.keys, "acme-console")
	require.NoError(t, err, "%s %s", out, errOut)
	// The collector reloads the keys file by itself; the session dies with
	// the key.
	deadline := time.Now().Add(60 * time.Second)
	var loc string
	for time.Now().Before(deadline) {
		run(t, ctx, chromedp.Navigate(e.base+"/generations"), chromedp.WaitReady(chromedp.CSS("body")))
		loc = location(t, ctx)
		if strings.HasPrefix(loc, e.base+"/login") {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	assert.True(t, strings.HasPrefix(loc, e.base+"/login"), "still logged in with a revoked key: %s", loc)
	// Logging in again with it is refused.
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#key")), chromedp.SendKeys(chromedp.CSS("#key"), e.keyAcme),
		chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#login-error")))
	assert.Contains(t, text(t, ctx, "#login-error"), "revoked")
}

// testTimeRange clicks the range picker: the figures follow the range and
// the range stays in the URL. The fixture has one call every two hours up
// to now, so the last 24 hours hold 12 calls (11 when the page's minute
// boundary falls after the oldest of them).
func (e *env) testTimeRange(t *testing.T, ctx context.Context) {
	e.open(t, ctx, "/", "#summary")
	assert.EqualValues(t, len(e.acme.calls), number(t, text(t, ctx, "#card-generations")), "7 days (the default) hold every call")
	e.follow(t, ctx, `.ranges a[href*="range=24h"]`, "#summary")
	assert.Contains(t, location(t, ctx), "range=24h")
	assert.Equal(t, "Last 24 hours", text(t, ctx, `.ranges a[aria-current="true"]`))
	got := number(t, text(t, ctx, "#card-generations"))
	require.True(t, got == 11 || got == 12, "last 24 hours: %v generations, want 11 or 12", got)
	oldest := e.acme.calls[len(e.acme.calls)-int(got)].start
	want := e.acme.totals(func(c *call) bool { return !c.start.Before(oldest) })
	assert.InDelta(t, want.cost, number(t, text(t, ctx, "#card-spend")), 0.00005, "spend of the last 24 hours")
	assert.EqualValues(t, want.in, number(t, text(t, ctx, "#card-input-tokens")))
	// Explicit from/to in the URL win over the preset and show in the form.
	first := e.acme.calls[0].start.Add(-time.Minute).UTC().Format(time.RFC3339)
	until := e.acme.calls[10].start.Add(time.Minute).UTC().Format(time.RFC3339)
	e.open(t, ctx, "/?from="+url.QueryEscape(first)+"&to="+url.QueryEscape(until), "#summary")
	assert.EqualValues(t, 11, number(t, text(t, ctx, "#card-generations")))
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name="from"]`)))
	require.NoError(t, err)
	assert.Equal(t, first, v)
	// The same range on the generations list.
	e.open(t, ctx, "/generations?range=24h", "#generations")
	rows := count(t, ctx, "#generations tbody tr.gen")
	assert.True(t, rows == 11 || rows == 12, "generations of the last 24 hours: %d", rows)
}

// testSameOrigin: every page loads its assets from the console itself
// (nothing from a CDN, no remote font): the browser's resource timing
// entries all have the console's origin.
func (e *env) testSameOrigin(t *testing.T, ctx context.Context) {
	c := e.acme.calls[1]
	for _, p := range []string{"/", "/generations", "/generations/" + c.traceID + "/" + c.spanID, "/sessions", "/sessions/" + url.PathEscape(c.session),
		"/customers", "/customers/" + url.PathEscape(c.customer), "/traces/" + c.traceID, "/login"} {
		e.open(t, ctx, p, "body")
		urls := eval[[]string](t, ctx, `performance.getEntriesByType("resource").map(r => r.name)`)
		assert.NotEmpty(t, urls, "%s loads its stylesheet and script", p)
		for _, u := range urls {
			assert.True(t, strings.HasPrefix(u, e.base+"/static/"), "%s fetched %s", p, u)
		}
	}
}

// testEmptyProject: a project without data shows a new user how to send
// some (endpoint, header, a curl line) on every list, not an empty table.
func (e *env) testEmptyProject(t *testing.T, ctx context.Context) {
	for _, p := range []string{"/", "/generations", "/sessions", "/customers"} {
		e.open(t, ctx, p, "#empty-state")
		help := text(t, ctx, "#empty-state")
		assert.Contains(t, help, e.otlp, "%s: the collector's OTLP endpoint", p)
		assert.Contains(t, help, "Authorization: Bearer flm_", p)
		assert.Contains(t, help, "curl -sS "+e.otlp, p)
		assert.Equal(t, "fresh", text(t, ctx, "#project"))
	}
}
