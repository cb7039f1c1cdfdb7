package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// TestSecretsNeverLeak drives every authentication path (good, unknown,
// near-miss, expired, revoked, malformed keys, over HTTP and gRPC, plus bad
// payloads) against a collector logging at debug level, then looks for the
// configured keys in every answer, the whole log, every text column of the
// SQLite database, its files on disk, `print-config` and `keys list`.
func TestSecretsNeverLeak(t *testing.T) {
	fig := newCase(t, "no key in logs, error bodies or stored rows (debug logs)")
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	generated := collectortest.CreateKey(t, keysFile, "acme", "generated")
	const (
		inline  = "flm_inlinePlaintextKey_0123456789abcdefXYZ"
		expired = "flm_expiredPlaintextKey_0123456789abcdefXY"
		revoked = "flm_revokedPlaintextKey_0123456789abcdefXY"
	)
	secrets := []string{generated, inline, expired, revoked}
	// Near misses a client might send by mistake: also never echoed.
	nearMiss := []string{generated[:len(generated)-1] + flip(generated[len(generated)-1]), inline + "0", "flm_short"}
	dbPath := filepath.Join(dir, "fallom.db")
	ep := collectortest.NewEndpoints(t)
	yaml := fmt.Sprintf(`
extensions:
  fallomauth:
    keys_file: %s
    keys:
      - name: inline
        project: acme
        key: %s
      - name: expired
        project: acme
        key: %s
        expires_at: 2020-01-01T00:00:00Z
      - name: revoked
        project: acme
        key: %s
        revoked: true
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
        auth:
          authenticator: fallomauth
      grpc:
        endpoint: %s
        auth:
          authenticator: fallomauth
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
    spike_limit_mib: 128
  openroutermapping: {}
exporters:
  fallom:
    storage:
      driver: sqlite
      dsn: %s
service:
  extensions: [fallomauth]
  telemetry:
    logs:
      level: debug
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [openroutermapping, memory_limiter]
      exporters: [fallom]
`, keysFile, inline, expired, revoked, ep.HTTP, ep.GRPC, dbPath)
	c := start(t, fig, collectortest.Options{Config: yaml, Dir: dir, WaitAddrs: []string{ep.HTTP, ep.GRPC}}, ep)
	c.db = dbPath
	ids := newIDSource(0x5ec7e70000000000)

	var answers []string
	l := newLedger()
	send := func(header map[string]string, want int) {
		t.Helper()
		td, keys := openRouterTraces(ids, 1, deliveryShape{promptBytes: 100})
		r := post(c.url, jsonBody(td), jsonType, header)
		l.record(keys, r)
		answers = append(answers, string(r.body))
		assert.Equal(t, want, r.code, "%v: %s", header, r)
		fig.add(1, 0, 0, 0)
	}
	for _, k := range []string{generated, inline} {
		send(bearer(k), http.StatusOK)
		send(map[string]string{"X-Api-Key": k}, http.StatusOK)
		send(map[string]string{"Authorization": "bearer " + k}, http.StatusOK)
		send(map[string]string{"Authorization": "Basic " + k}, http.StatusUnauthorized)
		send(map[string]string{"Authorization": "Bearer  " + k}, http.StatusUnauthorized)
		send(map[string]string{"Authorization": "Bearer " + k + " extra"}, http.StatusUnauthorized)
		send(map[string]string{"Authorization": k}, http.StatusUnauthorized)
		send(map[string]string{"X-Api-Key": "Bearer " + k}, http.StatusUnauthorized)
	}
	for _, k := range append([]string{expired, revoked}, nearMiss...) {
		send(bearer(k), http.StatusUnauthorized)
		send(map[string]string{"X-Api-Key": k}, http.StatusUnauthorized)
	}
	send(map[string]string{}, http.StatusUnauthorized)
	// Bad payloads with a good key: the error is about the payload.
	for _, body := range []string{`{"resourceSpans":[{`, `{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"zero ids"}]}]}]}`} {
		r := post(c.url, []byte(body), jsonType, bearer(generated))
		answers = append(answers, string(r.body))
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusInternalServerError}, r.code, "%s", r)
	}
	// gRPC, good and bad.
	conn, err := grpc.NewClient(ep.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, k := range append(append([]string{}, secrets...), nearMiss...) {
		td, keys := openRouterTraces(ids, 1, deliveryShape{promptBytes: 100})
		r := exportGRPC(ctx, client, td, k)
		l.record(keys, r)
		answers = append(answers, string(r.body))
		fig.add(1, 0, 0, 0)
		if k == generated || k == inline {
			assert.True(t, r.ok(), "%s", r)
		} else {
			assert.Equal(t, "Unauthenticated", r.grpcCode, "%s", r)
		}
	}
	c.requireUp(t)
	stored := storedKeys(t, openSQLite(t, dbPath), "")
	checkPresence(t, fig, l, stored, 0)

	// Stop cleanly so every log line is flushed.
	c.ended = true
	require.NoError(t, c.Stop())
	logs := c.Logs()
	require.Contains(t, logs, "debug", "the collector did not log at debug level")

	printed, _, err := collectortest.Run(t, dir, nil, "print-config", "--config", c.ConfigPath)
	require.NoError(t, err)
	listed, _, err := collectortest.Run(t, dir, nil, "keys", "list", "--keys-file", keysFile)
	require.NoError(t, err)
	require.Contains(t, listed, "generated")

	rows := allText(t, dbPath)
	require.NotEmpty(t, rows)
	dbFiles, _ := filepath.Glob(dbPath + "*")
	for _, s := range append(append([]string{}, secrets...), nearMiss...) {
		needles := []string{s, strings.TrimPrefix(s, "flm_")}
		for _, n := range needles {
			for i, a := range answers {
				noSecret(t, fmt.Sprintf("answer %d", i), a, n)
			}
			noSecret(t, "the collector's log", logs, n)
			noSecret(t, "print-config", printed, n)
			noSecret(t, "keys list", listed, n)
			noSecret(t, "the stored rows", rows, n)
			for _, f := range dbFiles {
				b, err := os.ReadFile(f)
				require.NoError(t, err)
				noSecret(t, f, string(b), n)
			}
		}
	}
	fig.note("%d HTTP and gRPC requests (good, unknown, near-miss, expired, revoked, malformed and misplaced keys; bad payloads) with logs at debug level: no key (nor its secret part) in %d answers, %d bytes of logs, print-config, keys list, %d bytes of stored text or the database files", l.requests+2, len(answers), len(logs), len(rows))
}

// noSecret fails when haystack holds needle, showing where without
// dumping the haystack (or the key).
func noSecret(t *testing.T, where, haystack, needle string) {
	t.Helper()
	i := strings.Index(haystack, needle)
	if i < 0 {
		return
	}
	from, to := max(0, i-60), min(len(haystack), i+len(needle)+60)
	t.Errorf("%s holds a key: %q", where, strings.ReplaceAll(haystack[from:to], needle, "<KEY>"))
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

// allText returns the text of every column of every row of every table of
// the SQLite file, one value per line.
func allText(t *testing.T, path string) string {
	t.Helper()
	db := openSQLite(t, path)
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		r, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		require.NoError(t, err)
		cols, err := r.Columns()
		require.NoError(t, err)
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			require.NoError(t, r.Scan(ptrs...))
			for _, v := range vals {
				b.WriteString(v.String)
				b.WriteByte('\n')
			}
		}
		require.NoError(t, r.Err())
		r.Close()
	}
	return b.String()
}
