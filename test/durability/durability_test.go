// Package durability kills the real bin/fallomcol with SIGKILL right after
// it answered 2xx, starts it again on the same data, and checks that every
// acknowledged span is stored exactly once: for the default config (ack
// after commit) and for the persistent-queue config (ack after the request
// is in the on-disk queue, which drains after the restart).
package durability

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	_ "modernc.org/sqlite"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

const apiKey = "flm_durabilityTestKey_0123456789abcdefABCDEF"

// configYAML is a full pipeline: the stock OTLP receiver with fallomauth,
// the mapping processor and the fallom exporter on SQLite. queue is the
// exporter's sending_queue section ("" for the default config).
func configYAML(ep collectortest.Endpoints, dir, queue string, extraExtensions string) string {
	exts := "[fallomauth]"
	if extraExtensions != "" {
		exts = "[fallomauth, " + extraExtensions + "]"
	}
	return fmt.Sprintf(`
extensions:
  fallomauth:
    keys:
      - name: durability
        project: acme
        key: %s
  file_storage:
    directory: %s
    create_directory: true
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
        auth:
          authenticator: fallomauth
processors:
  openroutermapping: {}
exporters:
  fallom:
    storage:
      driver: sqlite
      dsn: %s
%s
service:
  extensions: %s
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [openroutermapping]
      exporters: [fallom]
`, apiKey, filepath.Join(dir, "queue"), ep.HTTP, filepath.Join(dir, "fallom.db"), queue, exts)
}

func traceID(i int) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], 0xd0ab1e0000000000)
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

func spanID(i, n int) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(i)<<4|uint64(n)+1)
	return id
}

// delivery is one OpenRouter Broadcast request body: the root generation
// and its two children, each in its own resourceSpans element.
func delivery(i int) []byte {
	td := ptrace.NewTraces()
	prompt := fmt.Sprintf(`{"messages":[{"role":"user","content":"request %d: %s"}]}`, i, strings.Repeat("tell me about trains ", 40))
	completion := fmt.Sprintf(`{"completion":"answer %d","reasoning":null,"toolCalls":[]}`, i)
	start := uint64(1794000000000000000) + uint64(i)*1_000_000
	for n, name := range []string{"LLM Generation", "provider attempt 1: OpenAI", "generation"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "openrouter")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("openrouter")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID(i))
		sp.SetSpanID(spanID(i, n))
		sp.SetName(name)
		sp.SetStartTimestamp(pcommon.Timestamp(start))
		sp.SetEndTimestamp(pcommon.Timestamp(start + 900_000_000))
		a := sp.Attributes()
		a.PutStr("gen_ai.operation.name", "chat")
		if n == 0 {
			sp.SetKind(ptrace.SpanKindClient)
			a.PutStr("span.type", "generation")
			a.PutStr("session.id", fmt.Sprintf("s-%d", i%7))
			a.PutStr("user.id", fmt.Sprintf("u-%d", i%3))
			a.PutStr("gen_ai.request.model", "openai/gpt-4o-mini")
			a.PutStr("gen_ai.response.model", "openai/gpt-4o-mini")
			a.PutInt("gen_ai.usage.input_tokens", 100)
			a.PutInt("gen_ai.usage.output_tokens", 10)
			a.PutInt("gen_ai.usage.total_tokens", 110)
			a.PutDouble("gen_ai.usage.total_cost", 0.001)
			a.PutStr("gen_ai.prompt", prompt)
			a.PutStr("gen_ai.completion", completion)
		} else {
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetParentSpanID(spanID(i, 0))
			a.PutStr("span.type", "span")
		}
	}
	body, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	return body
}

func post(client *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
	return resp.StatusCode, nil
}

// loadUntilKilled sends deliveries from several clients; the first client
// to get its killAfter-th 2xx kills the collector at once (SIGKILL), while
// the other clients still have requests in flight. It returns the
// acknowledged delivery numbers.
func loadUntilKilled(t *testing.T, col *collectortest.Collector, url string, firstDelivery, killAfter int) []int {
	t.Helper()
	var (
		mu     sync.Mutex
		acked  []int
		next   atomic.Int64
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	next.Store(int64(firstDelivery))
	client := &http.Client{Timeout: 30 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !killed.Load() {
				i := int(next.Add(1) - 1)
				code, err := post(client, url, delivery(i))
				if err != nil {
					continue // the process is gone: not acknowledged
				}
				if code/100 != 2 {
					continue
				}
				mu.Lock()
				acked = append(acked, i)
				n := len(acked)
				mu.Unlock()
				if n >= killAfter && killed.CompareAndSwap(false, true) {
					col.Kill()
				}
			}
		}()
	}
	wg.Wait()
	if !col.Exited() {
		t.Fatal("collector still running after the kill")
	}
	return acked
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// missing returns the acknowledged deliveries that do not have all three
// spans stored.
func missing(t *testing.T, db *sql.DB, acked []int) []int {
	t.Helper()
	var out []int
	for _, i := range acked {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM spans WHERE project_id = 'acme' AND trace_id = ?", traceID(i).String()).Scan(&n); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				return acked
			}
			t.Fatal(err)
		}
		if n != 3 {
			out = append(out, i)
		}
	}
	return out
}

func checkOnce(t *testing.T, db *sql.DB) {
	t.Helper()
	var rows, distinct, gens, usage int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT project_id || trace_id || span_id),
		count(*) FILTER (WHERE is_generation), (SELECT coalesce(sum(generations), 0) FROM usage_daily) FROM spans`).
		Scan(&rows, &distinct, &gens, &usage); err != nil {
		t.Fatal(err)
	}
	if rows != distinct || rows != 3*gens || gens != usage {
		t.Fatalf("%d rows, %d distinct keys, %d generations, usage_daily counts %d: want every span once, 3 spans per generation, rollup equal",
			rows, distinct, gens, usage)
	}
}

func run(t *testing.T, queue, extraExtensions string) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ep := collectortest.NewEndpoints(t)
	cfg := configYAML(ep, dir, queue, extraExtensions)
	url := "http://" + ep.HTTP + "/v1/traces"
	dbPath := filepath.Join(dir, "fallom.db")

	var allAcked []int
	first := 0
	for round := range 2 {
		col := collectortest.Start(t, collectortest.Options{Config: cfg, Dir: dir, WaitAddrs: []string{ep.HTTP}})
		acked := loadUntilKilled(t, col, url, first, 40+20*round)
		t.Logf("round %d: %d deliveries acknowledged before SIGKILL", round, len(acked))
		allAcked = append(allAcked, acked...)
		first += 100_000
	}

	// Start again on the same data: a persistent queue drains now.
	col := collectortest.Start(t, collectortest.Options{Config: cfg, Dir: dir, WaitAddrs: []string{ep.HTTP}})
	db := openDB(t, dbPath)
	deadline := time.Now().Add(90 * time.Second)
	for {
		lost := missing(t, db, allAcked)
		if len(lost) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged deliveries are not stored after the restart, e.g. %v; collector logs:\n%s",
				len(lost), len(allAcked), lost[:min(5, len(lost))], col.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Replays of acknowledged deliveries (clients retrying) change nothing.
	client := &http.Client{Timeout: 30 * time.Second}
	for _, i := range allAcked[:10] {
		if code, err := post(client, url, delivery(i)); err != nil || code != http.StatusOK {
			t.Fatalf("replay after restart: %d %v", code, err)
		}
	}
	if err := col.Stop(); err != nil {
		t.Fatalf("clean stop: %v\n%s", err, col.Logs())
	}
	checkOnce(t, db)
}

// Default config: a 2xx means committed to SQLite.
func TestKillAfterAckDefaultConfig(t *testing.T) {
	run(t, "", "")
}

// Persistent queue: a 2xx means the request is in the file_storage queue;
// after the restart the queue drains into SQLite.
func TestKillAfterAckPersistentQueue(t *testing.T) {
	run(t, `    sending_queue:
      storage: file_storage
      wait_for_result: false
      num_consumers: 2`, "file_storage")
}
