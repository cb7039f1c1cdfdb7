package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/backend"
)

// The console section (issue 11.7): with ConsoleOptions.Spans spans stored
// (a third of them generations, over Days days, Sessions sessions and
// Customers customers), the real binary serves every API route and console
// page; the section reports the p95 server time of each (its
// Server-Timing header: the time to the first byte of the answer) and the
// peak RSS of the process under Concurrency concurrent page loads.

// ConsoleOptions configure the console section.
type ConsoleOptions struct {
	Backends    []string // "sqlite", "postgres"
	Spans       int      // stored spans (3 per trace: a generation, 2 children)
	Sessions    int
	Customers   int
	Days        int
	Requests    int           // measured requests per route (after 3 warm-up ones)
	Concurrency int           // concurrent page loads of the RSS phase
	LoadFor     time.Duration // length of the RSS phase
	// KeepDir keeps the loaded SQLite file there and reuses it on the next
	// run (loading a million spans takes minutes); "" loads into WorkDir.
	KeepDir string
}

// DefaultConsoleOptions is the size of issue 11.7.
func DefaultConsoleOptions() ConsoleOptions {
	return ConsoleOptions{
		Backends: []string{"sqlite", "postgres"}, Spans: 1_000_000, Sessions: 50_000, Customers: 5_000, Days: 30,
		Requests: 40, Concurrency: 20, LoadFor: 15 * time.Second,
	}
}

// ConsoleRoute is the timing of one route or page.
type ConsoleRoute struct {
	Name      string  `json:"name"`
	Path      string  `json:"path"`
	Page      bool    `json:"page"`
	GoalMs    float64 `json:"goal_ms"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	MaxMs     float64 `json:"max_ms"`
	ClientP95 float64 `json:"client_p95_ms"`
	Met       bool    `json:"met"`
}

// ConsoleResult is the console section of one backend.
type ConsoleResult struct {
	Backend       string         `json:"backend"`
	Spans         int64          `json:"spans"`
	Generations   int64          `json:"generations"`
	LoadS         float64        `json:"load_s"` // 0 when the data was reused
	DatabaseBytes int64          `json:"database_bytes,omitempty"`
	Routes        []ConsoleRoute `json:"routes"`
	PeakRSSMiB    float64        `json:"peak_rss_mib"`
	PageLoadsPerS float64        `json:"page_loads_per_s"`
	LoadP95Ms     float64        `json:"concurrent_p95_ms"`
	LoadAvg       float64        `json:"load_avg"`
	Error         string         `json:"error,omitempty"`
}

const benchProject = "bench"

// consoleModels are the models of the generated data, with their providers.
var consoleModels = []struct{ model, provider string }{
	{"openai/gpt-4o-mini", "OpenAI"}, {"openai/gpt-4o", "OpenAI"}, {"anthropic/claude-haiku-4.5", "Amazon Bedrock"},
	{"anthropic/claude-sonnet-4.5", "Anthropic"}, {"google/gemini-2.5-flash", "Google Vertex"},
	{"meta-llama/llama-3.3-70b-instruct", "Groq"}, {"mistralai/mistral-small-3.2", "Mistral"}, {"deepseek/deepseek-chat-v3", "DeepInfra"},
}

// consoleTrace returns the spans of trace i of the generated data: a
// generation and its two children (OpenRouter's shape). Deterministic in i.
func consoleTrace(o ConsoleOptions, i int, end time.Time) []storage.Span {
	rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	span := time.Duration(o.Days) * 24 * time.Hour
	start := end.Add(-span + time.Duration(rng.Int64N(int64(span))))
	dur := time.Duration(200+rng.IntN(6000)) * time.Millisecond
	session := rng.IntN(o.Sessions)
	customer := session % o.Customers
	m := consoleModels[rng.IntN(len(consoleModels))]
	str := func(s string) *string { return &s }
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	trace := fmt.Sprintf("%016x%016x", uint64(i+1)*0x9e3779b97f4a7c15, uint64(i+1))
	g := storage.Span{
		ProjectID: benchProject, TraceID: trace, SpanID: fmt.Sprintf("%016x", uint64(i)<<2|1),
		Name: "LLM Generation", Kind: "CLIENT", StatusCode: "OK",
		StartTimeUnixNano: start.UnixNano(), EndTimeUnixNano: start.Add(dur).UnixNano(), DurationMs: float64(dur.Microseconds()) / 1000,
		ReceivedAtUnixNano: start.Add(dur + time.Second).UnixNano(), IsGeneration: true,
		SessionID: str(fmt.Sprintf("session-%05d", session)), CustomerID: str(fmt.Sprintf("customer-%04d", customer)),
		Model: str(m.model), RequestedModel: str(m.model), Provider: str(m.provider), Operation: str("chat"),
		CostSource: str("reported"), Source: str("openrouter"), FinishReason: str("stop"),
		TimeToFirstTokenMs: f64(float64(100 + rng.IntN(900))), Streamed: new(bool),
		Attributes:         `{"span.type":"generation","trace.metadata.feature":"chat","gen_ai.response.id":"gen-` + strconv.Itoa(i) + `"}`,
		ResourceAttributes: `{"service.name":"openrouter","service.version":"1.0.0"}`,
	}
	in, out := int64(200+rng.IntN(4000)), int64(20+rng.IntN(800))
	g.InputTokens, g.OutputTokens, g.TotalTokens, g.CachedInputTokens = i64(in), i64(out), i64(in+out), i64(in/3)
	g.CacheWriteInputTokens, g.ReasoningTokens = i64(0), i64(0)
	switch r := rng.IntN(100); {
	case r < 3:
		g.StatusCode, g.StatusMessage = "ERROR", str("provider returned 502")
		g.InputTokens, g.OutputTokens, g.TotalTokens, g.CachedInputTokens = nil, nil, nil, nil
		g.CostSource = str("unknown")
	case r < 13:
		g.CostSource = str("unknown")
	default:
		ic, oc := float64(in)*0.15e-6, float64(out)*0.6e-6
		g.InputCostUSD, g.OutputCostUSD, g.TotalCostUSD = f64(ic), f64(oc), f64(ic+oc)
	}
	words := strings.Repeat("lorem ipsum dolor sit amet ", 20+rng.IntN(20))
	g.Prompt = str(`[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Question ` + strconv.Itoa(i) + `: ` + words + `"}]`)
	g.Completion = str(`[{"role":"assistant","content":"Answer ` + strconv.Itoa(i) + `: ` + words[:200] + `"}]`)
	children := make([]storage.Span, 2)
	for k, name := range []string{"provider attempt 1: " + m.provider, "generation"} {
		children[k] = storage.Span{
			ProjectID: benchProject, TraceID: trace, SpanID: fmt.Sprintf("%016x", uint64(i)<<2|uint64(k+2)), ParentSpanID: str(g.SpanID),
			Name: name, Kind: "INTERNAL", StatusCode: "UNSET",
			StartTimeUnixNano: g.StartTimeUnixNano + int64(k+1)*1e6, EndTimeUnixNano: g.EndTimeUnixNano - 1e6, DurationMs: g.DurationMs - 2,
			ReceivedAtUnixNano: g.ReceivedAtUnixNano, Operation: str("chat"), Source: str("openrouter"),
			Attributes: `{"span.type":"span"}`, ResourceAttributes: g.ResourceAttributes,
		}
	}
	return append([]storage.Span{g}, children...)
}

// loadConsoleData writes the generated data through the storage write path
// (the backend the exporter uses: usage and any rollup maintained as on
// ingest), in batches of 1,000 traces.
func loadConsoleData(ctx context.Context, o ConsoleOptions, cfg backend.Config, end time.Time, log io.Writer) error {
	h, err := backend.Acquire(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer h.Release()
	traces := o.Spans / 3
	const perBatch = 1000
	started := time.Now()
	for first := 0; first < traces; first += perBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := make([]storage.Span, 0, 3*perBatch)
		for i := first; i < min(first+perBatch, traces); i++ {
			batch = append(batch, consoleTrace(o, i, end)...)
		}
		if _, err := h.Store().WriteSpans(ctx, batch); err != nil {
			return fmt.Errorf("load traces %d..: %w", first, err)
		}
		if (first/perBatch)%50 == 49 {
			fmt.Fprintf(log, "  console data: %d/%d traces (%.0f spans/s)\n", first+perBatch, traces,
				float64(3*(first+perBatch))/time.Since(started).Seconds())
		}
	}
	return nil
}

// consoleRoutes are the requests measured: every API route and page, with
// the parameters a user sends most (defaults, a filter, a sort, a detail).
func consoleRoutes(o ConsoleOptions, end time.Time) []ConsoleRoute {
	t0 := consoleTrace(o, 7, end)[0]
	day := end.Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	session, customer := url.PathEscape(*t0.SessionID), url.PathEscape(*t0.CustomerID)
	r := func(name, path string, page bool, goal float64) ConsoleRoute {
		return ConsoleRoute{Name: name, Path: path, Page: page, GoalMs: goal}
	}
	return []ConsoleRoute{
		r("summary", "/api/v1/summary", false, 50),
		r("summary, last 24 h", "/api/v1/summary?from="+day, false, 50),
		r("summary, one model", "/api/v1/summary?model="+url.QueryEscape("openai/gpt-4o"), false, 50),
		r("usage by day", "/api/v1/usage?group_by=day", false, 100),
		r("usage by model", "/api/v1/usage?group_by=model", false, 100),
		r("usage by provider", "/api/v1/usage?group_by=provider", false, 100),
		r("usage by customer", "/api/v1/usage?group_by=customer&limit=100", false, 100),
		r("generations", "/api/v1/generations", false, 100),
		r("generations, one customer", "/api/v1/generations?customer_id="+customer, false, 100),
		r("generations, one model, errors", "/api/v1/generations?model="+url.QueryEscape("openai/gpt-4o")+"&status_code=ERROR", false, 100),
		r("generations by cost", "/api/v1/generations?sort=-total_cost_usd", false, 100),
		r("generations, text search", "/api/v1/generations?q=Question+123", false, 100),
		r("generations CSV", "/api/v1/generations?format=csv&limit=1000", false, 100),
		r("sessions", "/api/v1/sessions", false, 100),
		r("sessions by cost", "/api/v1/sessions?sort=-total_cost_usd", false, 100),
		r("sessions of a customer", "/api/v1/sessions?customer_id="+customer, false, 100),
		r("session", "/api/v1/sessions/"+session, false, 100),
		r("customers", "/api/v1/customers", false, 100),
		r("customers by cost", "/api/v1/customers?sort=-total_cost_usd", false, 100),
		r("customer", "/api/v1/customers/"+customer, false, 100),
		r("trace", "/api/v1/traces/"+t0.TraceID, false, 100),
		r("page: overview (7 days)", "/", true, 50),
		r("page: overview (30 days)", "/?range=30d", true, 50),
		r("page: generations", "/generations", true, 100),
		r("page: generation", "/generations/"+t0.TraceID+"/"+t0.SpanID, true, 100),
		r("page: sessions", "/sessions", true, 100),
		r("page: session", "/sessions/"+session, true, 100),
		r("page: customers", "/customers", true, 100),
		r("page: customer", "/customers/"+customer, true, 100),
		r("page: trace", "/traces/"+t0.TraceID, true, 100),
	}
}

// RunConsole runs the console section for each backend.
func RunConsole(ctx context.Context, w *World, o ConsoleOptions, log io.Writer) []ConsoleResult {
	var out []ConsoleResult
	for _, b := range o.Backends {
		fmt.Fprintf(log, "console on %s: %d spans\n", b, o.Spans)
		r := runConsoleBackend(ctx, w, o, b, log)
		if r.Error != "" {
			fmt.Fprintf(log, "FAILED: console on %s: %s\n", b, r.Error)
		}
		out = append(out, r)
	}
	return out
}

func runConsoleBackend(ctx context.Context, w *World, o ConsoleOptions, backendName string, log io.Writer) (res ConsoleResult) {
	res.Backend = backendName
	fail := func(err error) ConsoleResult { res.Error = err.Error(); return res }
	dir := filepath.Join(w.WorkDir, "console-"+backendName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	cfg := backend.DefaultConfig()
	var env, args []string
	args = []string{"--config", filepath.Join(w.Root, "config", "config.yaml")}
	// The data ends at a fixed hour so a kept SQLite file stays valid: its
	// 30 days end where the 7-day and 30-day pages look.
	end := time.Now().UTC().Truncate(time.Hour)
	switch backendName {
	case "sqlite":
		dataDir := dir
		if o.KeepDir != "" {
			dataDir = o.KeepDir
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return fail(err)
		}
		db := filepath.Join(dataDir, fmt.Sprintf("console-%d.db", o.Spans))
		cfg.DSN = configopaque.String(db)
		env = append(env, "FALLOM_DB="+db)
		stamp := db + ".end"
		if raw, err := os.ReadFile(stamp); err == nil && o.KeepDir != "" {
			if t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(raw))); err == nil {
				end = t
			}
		} else {
			_ = os.Remove(db)
			started := time.Now()
			if err := loadConsoleData(ctx, o, cfg, end, log); err != nil {
				return fail(err)
			}
			res.LoadS = time.Since(started).Seconds()
			_ = os.WriteFile(stamp, []byte(end.Format(time.RFC3339)), 0o644)
		}
		if fi, err := os.Stat(db); err == nil {
			res.DatabaseBytes = fi.Size()
		}
	case "postgres":
		if w.PG == nil {
			return fail(fmt.Errorf("no PostgreSQL server"))
		}
		dsn, err := w.PG.CreateDatabase(fmt.Sprintf("console_%d", time.Now().UnixNano()))
		if err != nil {
			return fail(err)
		}
		cfg.Driver, cfg.DSN = backend.DriverPostgres, configopaque.String(dsn)
		started := time.Now()
		if err := loadConsoleData(ctx, o, cfg, end, log); err != nil {
			return fail(err)
		}
		res.LoadS = time.Since(started).Seconds()
		// Measure the steady state: autovacuum sets the visibility map
		// (index-only scans) and the statistics of a table once it rests,
		// minutes after a bulk load; the load here ends seconds before
		// the first request.
		if err := vacuumAnalyze(ctx, dsn); err != nil {
			return fail(err)
		}
		args = append(args, "--config", filepath.Join(w.Root, "bench", "configs", "ours_postgres.overlay.yaml"))
		env = append(env, "BENCH_PG_DSN="+dsn, "FALLOM_DB="+filepath.Join(dir, "unused.db"))
	default:
		return fail(fmt.Errorf("unknown console backend %q", backendName))
	}
	if res.LoadS > 0 {
		fmt.Fprintf(log, "  loaded in %.0f s (%.0f spans/s)\n", res.LoadS, float64(o.Spans)/res.LoadS)
	}

	ports := make([]string, 6)
	for i := range ports {
		a, err := FreeAddr()
		if err != nil {
			return fail(err)
		}
		ports[i] = a
	}
	consoleAddr := ports[3]
	metricsPort := ports[4][strings.LastIndex(ports[4], ":")+1:]
	env = append(env,
		"FALLOM_KEYS_FILE="+w.KeysFile, "FALLOM_HTTP_ENDPOINT="+ports[0], "FALLOM_GRPC_ENDPOINT="+ports[1],
		"FALLOM_HEALTH_ENDPOINT="+ports[2], "FALLOM_METRICS_PORT="+metricsPort, "FALLOM_CONSOLE_ENDPOINT="+consoleAddr,
		"FALLOM_SDK_ENDPOINT="+ports[5],
	)
	proc, err := StartProcess("console-"+backendName, w.OursBin, args, env, dir, filepath.Join(dir, "collector.log"))
	if err != nil {
		return fail(err)
	}
	defer proc.Stop(30 * time.Second) //nolint:errcheck
	base := "http://" + consoleAddr
	if err := waitHTTP(ctx, base+"/login", 2*time.Minute, proc); err != nil {
		return fail(err)
	}
	api := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	browser, err := loginClient(ctx, base, w.Key)
	if err != nil {
		return fail(err)
	}
	var sum struct {
		Generations int64 `json:"generations"`
	}
	if err := getJSON(ctx, api, base+"/api/v1/summary", w.Key, &sum); err != nil {
		return fail(err)
	}
	res.Generations, res.Spans = sum.Generations, int64(o.Spans/3*3)

	for _, rt := range consoleRoutes(o, end) {
		client, key := api, w.Key
		if rt.Page {
			client, key = browser, ""
		}
		var server, wall []float64
		for n := 0; n < 3+o.Requests; n++ {
			sv, wl, err := timedGet(ctx, client, base+rt.Path, key)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", rt.Name, err))
			}
			if n >= 3 {
				server, wall = append(server, sv), append(wall, wl)
			}
		}
		rt.P50Ms, rt.P95Ms, rt.MaxMs = pct(server, 0.5), pct(server, 0.95), slices.Max(server)
		rt.ClientP95 = pct(wall, 0.95)
		rt.Met = rt.P95Ms <= rt.GoalMs
		res.Routes = append(res.Routes, rt)
		fmt.Fprintf(log, "  %-34s p50 %7.1f ms  p95 %7.1f ms (goal %3.0f)  %s\n", rt.Name, rt.P50Ms, rt.P95Ms, rt.GoalMs, yesNo(rt.Met))
	}

	// Peak RSS under concurrent page loads: Concurrency browsers cycling
	// through the pages for LoadFor.
	var pages []string
	for _, rt := range consoleRoutes(o, end) {
		if rt.Page {
			pages = append(pages, rt.Path)
		}
	}
	res.LoadAvg = LoadAvg()
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if m, err := ReadMemory(proc.Pid()); err == nil && m.RSSBytes > peak.Load() {
				peak.Store(m.RSSBytes)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var loads atomic.Int64
	var mu sync.Mutex
	var times []float64
	var firstErr error
	lctx, cancel := context.WithTimeout(ctx, o.LoadFor)
	var wg sync.WaitGroup
	for c := 0; c < o.Concurrency; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for n := c; lctx.Err() == nil; n++ {
				sv, _, err := timedGet(lctx, browser, base+pages[n%len(pages)], "")
				if err != nil {
					if lctx.Err() == nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					return
				}
				loads.Add(1)
				mu.Lock()
				times = append(times, sv)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	cancel()
	close(stop)
	sampler.Wait()
	if firstErr != nil {
		return fail(fmt.Errorf("concurrent page loads: %w", firstErr))
	}
	res.PeakRSSMiB = float64(peak.Load()) / mib
	res.PageLoadsPerS = float64(loads.Load()) / o.LoadFor.Seconds()
	if len(times) > 0 {
		res.LoadP95Ms = pct(times, 0.95)
	}
	fmt.Fprintf(log, "  %d concurrent page loads: %.1f pages/s, p95 %.0f ms, peak RSS %.0f MiB\n",
		o.Concurrency, res.PageLoadsPerS, res.LoadP95Ms, res.PeakRSSMiB)
	return res
}

func pct(v []float64, q float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func waitHTTP(ctx context.Context, u string, limit time.Duration, p *Process) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("collector exited: %s", p.LogTail(2048))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("console not answering at %s after %v; log tail:\n%s", u, limit, p.LogTail(2048))
}

// loginClient logs in through the form, as a browser, and returns a client
// holding the session cookie.
func loginClient(ctx context.Context, base, key string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 2 * time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		return nil, fmt.Errorf("login: HTTP %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	return c, nil
}

func getJSON(ctx context.Context, c *http.Client, u, key string, into any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: HTTP %d %.300s", u, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// timedGet fetches u and returns the server time (Server-Timing) and the
// wall time seen here, in milliseconds.
func timedGet(ctx context.Context, c *http.Client, u, key string) (server, wall float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	wall = float64(time.Since(start).Microseconds()) / 1000
	if resp.StatusCode != http.StatusOK || (key == "" && resp.Request.URL.Path == "/login") {
		return 0, 0, fmt.Errorf("%s: HTTP %d (at %s)", u, resp.StatusCode, resp.Request.URL.Path)
	}
	st := resp.Header.Get("Server-Timing")
	_, dur, ok := strings.Cut(st, "dur=")
	if !ok {
		return 0, 0, fmt.Errorf("%s: no Server-Timing header", u)
	}
	server, err = strconv.ParseFloat(dur, 64)
	return server, wall, err
}

// vacuumAnalyze runs VACUUM (ANALYZE) on the database, as autovacuum
// does to its tables after a load.
func vacuumAnalyze(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "VACUUM (ANALYZE)")
	return err
}
