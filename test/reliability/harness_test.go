package reliability

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	_ "modernc.org/sqlite"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// collector is one bin/fallomcol process of a test, with what it takes to
// start it again on the same data (after a kill -9).
type collector struct {
	*collectortest.Collector
	t     *testing.T
	ep    collectortest.Endpoints
	opts  collectortest.Options
	fig   *caseFigures
	db    string // SQLite file ("" for PostgreSQL)
	url   string // OTLP/HTTP traces URL
	ended bool   // stopped or killed on purpose
}

// defaultEnv relocates the shipped default config (bin/fallomcol without
// --config) into dir and free loopback ports through its FALLOM_* variables.
func defaultEnv(t *testing.T, dir, keysFile, dbPath string, extra ...string) (collectortest.Endpoints, []string) {
	ep := collectortest.NewEndpoints(t)
	env := []string{
		"FALLOM_KEYS_FILE=" + keysFile,
		"FALLOM_DB=" + dbPath,
		"FALLOM_HTTP_ENDPOINT=" + ep.HTTP,
		"FALLOM_GRPC_ENDPOINT=" + ep.GRPC,
		fmt.Sprintf("FALLOM_HEALTH_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
		fmt.Sprintf("FALLOM_CONSOLE_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
		fmt.Sprintf("FALLOM_SDK_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
		fmt.Sprintf("FALLOM_METRICS_PORT=%d", collectortest.FreePort(t)),
	}
	return ep, append(env, extra...)
}

// startDefault runs the shipped default config with a keys file holding one
// key of project; it returns the collector and the key.
func startDefault(t *testing.T, fig *caseFigures, project string, extraEnv ...string) (*collector, string) {
	t.Helper()
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	key := collectortest.CreateKey(t, keysFile, project, "reliability")
	dbPath := filepath.Join(dir, "fallom.db")
	ep, env := defaultEnv(t, dir, keysFile, dbPath, extraEnv...)
	c := start(t, fig, collectortest.Options{
		Args: []string{}, Dir: dir, Env: env, WaitAddrs: []string{ep.HTTP, ep.GRPC},
	}, ep)
	c.db = dbPath
	return c, key
}

// startConfig runs a YAML config (with ${env:...} references to env).
func startConfig(t *testing.T, fig *caseFigures, dir, yaml string, ep collectortest.Endpoints, env ...string) *collector {
	t.Helper()
	return start(t, fig, collectortest.Options{
		Config: yaml, Dir: dir, Env: env, WaitAddrs: []string{ep.HTTP},
	}, ep)
}

func start(t *testing.T, fig *caseFigures, opts collectortest.Options, ep collectortest.Endpoints) *collector {
	t.Helper()
	c := &collector{
		Collector: collectortest.Start(t, opts),
		t:         t, ep: ep, opts: opts, fig: fig,
		url: "http://" + ep.HTTP + "/v1/traces",
	}
	// Runs before collectortest's own cleanup (cleanups run last-in,
	// first-out), so an unexpected exit is seen before the final SIGTERM.
	t.Cleanup(c.checkAlive)
	return c
}

// checkAlive fails the test, and counts a crash, when the process ended
// without the test ending it.
func (c *collector) checkAlive() {
	if c.ended || !c.Exited() {
		return
	}
	c.ended = true
	c.fig.addCrash()
	c.t.Errorf("the collector died (crash; exit: %v):\n%s", c.Stop(), tail(c.Logs(), 60))
}

// requireUp asserts the process still runs (between cases).
func (c *collector) requireUp(t *testing.T) {
	t.Helper()
	if c.Exited() && !c.ended {
		c.ended = true
		c.fig.addCrash()
		t.Fatalf("the collector died (crash; exit: %v):\n%s", c.Stop(), tail(c.Logs(), 60))
	}
}

// kill9 crashes the process on purpose.
func (c *collector) kill9() {
	c.ended = true
	c.Kill()
}

// restart starts a new process with the same config, environment and data
// directory (and the same ports, free again once the old process is gone).
func (c *collector) restart(t *testing.T) *collector {
	t.Helper()
	c.ended = true
	if !c.Exited() {
		require.NoError(t, c.Stop())
	}
	n := start(t, c.fig, c.opts, c.ep)
	n.db = c.db
	return n
}

// response is what the collector answered.
type response struct {
	code        int
	body        []byte
	contentType string
	retryAfter  string
	err         error  // transport error: no answer at all
	grpcCode    string // set for gRPC answers (the status code's name)
}

// label names the answer for the tallies: "200", "503", "grpc Unavailable",
// "transport error".
func (r response) label() string {
	switch {
	case r.grpcCode != "":
		return "grpc " + r.grpcCode
	case r.err != nil:
		return "transport error"
	default:
		return fmt.Sprint(r.code)
	}
}

// ok reports a 2xx (or gRPC OK).
func (r response) ok() bool { return r.err == nil && r.code/100 == 2 }

func (r response) String() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	b := string(r.body)
	if len(b) > 400 {
		b = b[:400] + "..."
	}
	return fmt.Sprintf("%d %s %q", r.code, r.contentType, b)
}

var httpClient = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
}

// post sends body to the OTLP/HTTP traces endpoint.
func post(url string, body []byte, contentType string, header map[string]string) response {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return response{err: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{
		code: resp.StatusCode, body: b, err: err,
		contentType: resp.Header.Get("Content-Type"), retryAfter: resp.Header.Get("Retry-After"),
	}
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

// retryable reports whether an OTLP/HTTP client retries this answer
// (OTLP specification: 429, 502, 503, 504, or no answer at all).
func (r response) retryable() bool {
	if r.err != nil {
		return true
	}
	switch r.code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// openSQLite opens the collector's SQLite file read-only.
func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// storedKeys counts rows per (trace_id, span_id) over all projects.
func storedKeys(t *testing.T, db *sql.DB, where string, args ...any) map[spanKey]int {
	t.Helper()
	q := `SELECT trace_id, span_id FROM spans`
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := db.Query(q, args...)
	require.NoError(t, err)
	defer rows.Close()
	out := map[spanKey]int{}
	for rows.Next() {
		var k spanKey
		require.NoError(t, rows.Scan(&k.traceID, &k.spanID))
		out[k]++
	}
	require.NoError(t, rows.Err())
	return out
}

func countRows(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(query, args...).Scan(&n))
	return n
}

// integrityCheck runs PRAGMA integrity_check on a SQLite file.
func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db := openSQLite(t, path)
	rows, err := db.Query(`PRAGMA integrity_check`)
	require.NoError(t, err)
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		require.NoError(t, rows.Scan(&m))
		msgs = append(msgs, m)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"ok"}, msgs, "PRAGMA integrity_check of %s", path)
}

// presence compares what was acknowledged with what is stored: lost are
// acknowledged spans that are missing, duplicated are spans stored more
// than once, phantom are stored spans that were never sent.
type presence struct {
	acked, lost, duplicated, phantom, unackedStored int
	lostExamples                                    []string
}

func compare(ledger *ledger, stored map[spanKey]int) presence {
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	var p presence
	for k := range ledger.acked {
		p.acked++
		switch n := stored[k]; {
		case n == 0:
			p.lost++
			if len(p.lostExamples) < 5 {
				p.lostExamples = append(p.lostExamples, k.String())
			}
		case n > 1:
			p.duplicated += n - 1
		}
	}
	for k, n := range stored {
		if _, ok := ledger.acked[k]; ok {
			continue
		}
		if n > 1 {
			p.duplicated += n - 1
		}
		if _, ok := ledger.sent[k]; ok {
			p.unackedStored++
		} else {
			p.phantom++
		}
	}
	return p
}

// ledger is the client's view: every span sent, and every span in a
// request the collector acknowledged with a 2xx.
type ledger struct {
	mu       sync.Mutex
	sent     map[spanKey]struct{}
	acked    map[spanKey]int // how many times acknowledged (redeliveries count)
	requests int
	answers  map[string]int // "200", "503", "transport error" ...
	examples map[string]string
}

func newLedger() *ledger {
	return &ledger{sent: map[spanKey]struct{}{}, acked: map[spanKey]int{}, answers: map[string]int{}, examples: map[string]string{}}
}

func (l *ledger) record(keys []spanKey, r response) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	label := r.label()
	l.answers[label]++
	if _, ok := l.examples[label]; !ok {
		l.examples[label] = r.String()
	}
	for _, k := range keys {
		l.sent[k] = struct{}{}
		if r.ok() {
			l.acked[k]++
		}
	}
}

// answersSnapshot copies the tally of answers so far.
func (l *ledger) answersSnapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.answers))
	for k, v := range l.answers {
		out[k] = v
	}
	return out
}

// answersSince describes the answers given after the snapshot was taken.
func (l *ledger) answersSince(before map[string]int) string {
	now := l.answersSnapshot()
	var labels []string
	for k, v := range now {
		if v > before[k] {
			labels = append(labels, k)
		}
	}
	if len(labels) == 0 {
		return "none"
	}
	sort.Strings(labels)
	var parts []string
	for _, k := range labels {
		parts = append(parts, fmt.Sprintf("%s x%d", k, now[k]-before[k]))
	}
	return strings.Join(parts, ", ")
}

func (l *ledger) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	labels := make([]string, 0, len(l.answers))
	for k := range l.answers {
		labels = append(labels, k)
	}
	sort.Strings(labels)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d spans sent, %d acknowledged; answers:", l.requests, len(l.sent), len(l.acked))
	for _, k := range labels {
		fmt.Fprintf(&b, " %s x%d", k, l.answers[k])
	}
	return b.String()
}

// Transports a load sender can use.
const (
	viaJSON      = "http/json"
	viaProtoGzip = "http/protobuf+gzip"
	viaGRPC      = "grpc"
)

// load runs concurrent senders of OpenRouter deliveries until stop is
// closed (or ctx ends). A sender whose request was not acknowledged retries
// the same payload (same ids) while retry is true and the answer is
// retryable, as OpenRouter and OTLP exporters do, and otherwise moves on.
type load struct {
	senders     int
	deliveries  int // per request
	promptBytes int
	retry       bool
	transports  []string // sender i uses transports[i % len]; default JSON
	key         func(sender int) string
	ep          collectortest.Endpoints
	ids         *idSource
	ledger      *ledger
	// shape, when set, adjusts each payload (e.g. a spoofed resource).
	shape func(td ptrace.Traces)
}

func (l *load) run(ctx context.Context, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for s := range l.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.sender(ctx, stop, s)
		}()
	}
	wg.Wait()
}

// start runs the load in the background; the returned func stops it and
// waits for the senders to return.
func (l *load) start(ctx context.Context) (stopAndWait func()) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		l.run(ctx, stop)
		close(done)
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stop) })
		<-done
	}
}

func (l *load) sender(ctx context.Context, stop <-chan struct{}, s int) {
	stopped := func() bool {
		select {
		case <-stop:
			return true
		case <-ctx.Done():
			return true
		default:
			return false
		}
	}
	via := viaJSON
	if len(l.transports) > 0 {
		via = l.transports[s%len(l.transports)]
	}
	var grpcClient ptraceotlp.GRPCClient
	if via == viaGRPC {
		conn, err := grpc.NewClient(l.ep.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			panic(err) // only a malformed target fails here
		}
		defer conn.Close()
		grpcClient = ptraceotlp.NewGRPCClient(conn)
	}
	url := "http://" + l.ep.HTTP + "/v1/traces"
	for !stopped() {
		td, keys := openRouterTraces(l.ids, l.deliveries, deliveryShape{promptBytes: l.promptBytes})
		if l.shape != nil {
			l.shape(td)
		}
		var body []byte
		switch via {
		case viaJSON:
			body = jsonBody(td)
		case viaProtoGzip:
			body = gzipBytes(protoBody(td))
		}
		backoff := 50 * time.Millisecond
		for {
			var r response
			switch via {
			case viaJSON:
				r = post(url, body, jsonType, bearer(l.key(s)))
			case viaProtoGzip:
				r = post(url, body, protoType, map[string]string{"Authorization": "Bearer " + l.key(s), "Content-Encoding": "gzip"})
			case viaGRPC:
				r = exportGRPC(ctx, grpcClient, td, l.key(s))
			}
			l.ledger.record(keys, r)
			if r.ok() || !l.retry || !r.retryable() || stopped() {
				break
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, time.Second)
		}
	}
}

// exportGRPC sends td over OTLP/gRPC with the key in the authorization
// metadata, and maps the outcome onto a response.
func exportGRPC(ctx context.Context, client ptraceotlp.GRPCClient, td ptrace.Traces, key string) response {
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key), 2*time.Minute)
	defer cancel()
	_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	if err == nil {
		return response{code: http.StatusOK, grpcCode: codes.OK.String()}
	}
	st := status.Convert(err)
	r := response{grpcCode: st.Code().String(), body: []byte(st.Message())}
	switch st.Code() {
	// Retryable per the OTLP specification.
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		r.code = http.StatusServiceUnavailable
	case codes.ResourceExhausted:
		r.code = http.StatusTooManyRequests
	case codes.Unauthenticated:
		r.code = http.StatusUnauthorized
	case codes.InvalidArgument:
		r.code = http.StatusBadRequest
	default:
		r.code = http.StatusInternalServerError
	}
	return r
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail returns the last log entries of s: timestamped lines and Go panic
// headers, without the stack traces zap prints under errors.
func tail(s string, lines int) string {
	var keep []string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if line != "" && (line[0] >= '0' && line[0] <= '9' || strings.HasPrefix(line, "panic") ||
			strings.HasPrefix(line, "fatal error") || strings.HasPrefix(line, "Error:")) {
			keep = append(keep, line)
		}
	}
	if len(keep) > lines {
		keep = keep[len(keep)-lines:]
	}
	return strings.Join(keep, "\n")
}
