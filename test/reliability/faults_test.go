package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

// waitAcked waits until the ledger holds at least n acknowledged spans.
func waitAcked(t *testing.T, l *ledger, n int, limit time.Duration) {
	t.Helper()
	waitFor(t, limit, fmt.Sprintf("%d spans acknowledged (%s)", n, l.summary()), func() bool { return l.ackedCount() >= n })
}

// checkPresence compares the ledger with what is stored, records the
// figures and fails on any lost, duplicated or phantom span.
func checkPresence(t *testing.T, fig *caseFigures, l *ledger, stored map[spanKey]int, tried int) presence {
	t.Helper()
	p := compare(l, stored)
	fig.add(tried, p.acked, p.lost, p.duplicated)
	t.Logf("%s; stored: %d acknowledged present, %d lost, %d duplicated, %d stored without an acknowledgement (in flight at the fault), %d never sent",
		l.summary(), p.acked-p.lost, p.lost, p.duplicated, p.unackedStored, p.phantom)
	assert.Zero(t, p.lost, "acknowledged spans missing, e.g. %v", p.lostExamples)
	assert.Zero(t, p.duplicated, "spans stored more than once")
	assert.Zero(t, p.phantom, "spans stored that were never sent")
	require.Positive(t, p.acked, "nothing was acknowledged: the case tested nothing")
	return p
}

// TestKill9UnderLoad crashes the collector (shipped default config, SQLite)
// with SIGKILL several times while concurrent senders deliver over
// OTLP/HTTP JSON, OTLP/HTTP protobuf+gzip and OTLP/gRPC, retrying what was
// not acknowledged as OpenRouter does, across the restarts. Every span
// acknowledged must be in the database exactly once, and the file must
// pass PRAGMA integrity_check after each crash.
func TestKill9UnderLoad(t *testing.T) {
	fig := newCase(t, "kill -9 under load (default config, SQLite, HTTP+gRPC senders)")
	c, key := startDefault(t, fig, "acme")
	rounds := pick(3, 20)
	l := &load{
		senders: pick(6, 12), deliveries: 4, promptBytes: 1500, retry: true,
		transports: []string{viaJSON, viaProtoGzip, viaGRPC},
		key:        func(int) string { return key },
		ep:         c.ep, ids: newIDSource(0x6b696c6c39000000), ledger: newLedger(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	stopLoad := l.start(ctx)
	defer stopLoad()

	perRound := pick(1000, 4000)
	for round := range rounds {
		// Kill at a point that depends on the load, not on a fixed time.
		waitAcked(t, l.ledger, (round+1)*perRound, 2*time.Minute)
		c.kill9()
		require.True(t, c.Exited())
		c = c.restart(t)
		integrityCheck(t, c.db)
		fig.add(1, 0, 0, 0)
	}
	// Once more after the last restart, so the retried in-flight payloads
	// of the last crash land, then stop the senders.
	waitAcked(t, l.ledger, (rounds+1)*perRound, 2*time.Minute)
	stopLoad()
	c.requireUp(t)

	stored := storedKeys(t, openSQLite(t, c.db), "")
	checkPresence(t, fig, l.ledger, stored, 0)
	integrityCheck(t, c.db)
	fig.note("%d kill -9 rounds, %d senders (HTTP JSON, HTTP protobuf+gzip, gRPC) retrying across restarts: %s", rounds, l.senders, l.ledger.summary())
}

// TestPostgresOutageUnderLoad stops PostgreSQL under load for a while (the
// shipped config/examples/postgres.yaml: exporter retries up to 60 s) and
// starts it again: nothing acknowledged may be lost.
func TestPostgresOutageUnderLoad(t *testing.T) {
	fig := newCase(t, "PostgreSQL stopped under load (config/examples/postgres.yaml)")
	pg := pgtest.Start(t)
	dsn, err := pg.CreateDatabase("fallom")
	require.NoError(t, err)

	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	key := collectortest.CreateKey(t, keysFile, "acme", "reliability")
	ep, env := defaultEnv(t, dir, keysFile, filepath.Join(dir, "unused.db"), "FALLOM_PG_DSN="+dsn)
	example := filepath.Join(collectortest.RepoRoot(t), "config", "examples", "postgres.yaml")
	c := start(t, fig, collectortest.Options{
		Args: []string{"--config", example}, Dir: dir, Env: env, WaitAddrs: []string{ep.HTTP, ep.GRPC},
	}, ep)

	l := &load{
		senders: pick(4, 8), deliveries: 4, promptBytes: 1500, retry: true,
		transports: []string{viaJSON, viaGRPC},
		key:        func(int) string { return key },
		ep:         ep, ids: newIDSource(0x7067000000000000), ledger: newLedger(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	stopLoad := l.start(ctx)
	defer stopLoad()

	outage := pick(8*time.Second, 30*time.Second)
	// The soak also crashes PostgreSQL (SIGKILL: crash recovery at start)
	// besides stopping it.
	faults := pick([]string{"stop"}, []string{"stop", "kill", "stop"})
	var windows []string
	for round, fault := range faults {
		waitAcked(t, l.ledger, (round+1)*500, 2*time.Minute)
		before := l.ledger.answersSnapshot()
		if fault == "kill" {
			pg.Kill()
		} else {
			require.NoError(t, pg.Stop())
		}
		// The fault window: the database is down for this long while the
		// senders keep sending (a duration of the fault, not an assertion).
		time.Sleep(outage)
		c.requireUp(t)
		require.NoError(t, pg.StartAgain())
		windows = append(windows, fmt.Sprintf("%s: answers while down %s", fault, l.ledger.answersSince(before)))
		fig.add(1, 0, 0, 0)
	}
	// After the last restart, more deliveries must be acknowledged: the
	// pipeline recovered by itself.
	after := l.ledger.ackedCount()
	waitAcked(t, l.ledger, after+500, 2*time.Minute)
	stopLoad()
	c.requireUp(t)

	stored := pgStoredKeys(t, dsn)
	p := checkPresence(t, fig, l.ledger, stored, 0)
	fig.note("%d outage(s) of %s (%s) with %d senders (HTTP JSON, gRPC) retrying: %s; %d spans stored without an acknowledgement (the client retried them; stored once)",
		len(faults), outage, strings.Join(windows, "; "), l.senders, l.ledger.summary(), p.unackedStored)
}

func pgStoredKeys(t *testing.T, dsn string) map[spanKey]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT trace_id, span_id FROM spans`)
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

// mountTmpfs mounts a size-limited tmpfs on dir and unmounts it at cleanup
// (registered before the collector starts, so it runs after the collector
// stopped). The suite runs as root, as CI does; a machine that cannot mount
// fails the test with the reason.
func mountTmpfs(t *testing.T, dir string, sizeMiB int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0755", sizeMiB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("the disk-full case needs a small filesystem: `mount -t tmpfs` failed (%v: %s); run the suite as root (CI does)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// fillDisk writes a file until the filesystem has no space left.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	for _, size := range []int{1 << 20, 64 << 10, 4 << 10, 512} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				require.True(t, errors.Is(err, syscall.ENOSPC), "filling the disk: %v", err)
				break
			}
		}
	}
	_ = f.Sync()
}

// TestSQLiteDiskFull puts the SQLite file on a small tmpfs, fills it up
// under load, and frees it again. Writes that fail must reach the client as
// retryable errors that say the disk is full, the file must stay intact
// (PRAGMA integrity_check), and the collector must store again, without
// restarting, once there is space.
func TestSQLiteDiskFull(t *testing.T) {
	fig := newCase(t, "SQLite disk full (tmpfs), then space freed")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	mountTmpfs(t, disk, 32)
	keysFile := filepath.Join(dir, "keys.yaml")
	key := collectortest.CreateKey(t, keysFile, "acme", "reliability")
	dbPath := filepath.Join(disk, "fallom.db")
	ep := collectortest.NewEndpoints(t)
	// The default config retries a failing write for up to 5 minutes
	// (exporterhelper's default max_elapsed_time) before answering; this
	// config answers after a few seconds so the test sees the error.
	yaml := fmt.Sprintf(`
extensions:
  fallomauth:
    keys_file: %s
receivers:
  otlp:
    protocols:
      http:
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
    retry_on_failure:
      enabled: true
      initial_interval: 200ms
      max_interval: 1s
      max_elapsed_time: 3s
service:
  extensions: [fallomauth]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [openroutermapping, memory_limiter]
      exporters: [fallom]
`, keysFile, ep.HTTP, dbPath)
	c := startConfig(t, fig, dir, yaml, ep)
	c.db = dbPath
	l := newLedger()
	ids := newIDSource(0xd15cf011000000)
	url := c.url

	type payload struct {
		body []byte
		keys []spanKey
	}
	send := func(p payload) response {
		r := post(url, p.body, jsonType, bearer(key))
		l.record(p.keys, r)
		return r
	}
	next := func() payload {
		td, keys := openRouterTraces(ids, 5, deliveryShape{promptBytes: 20_000})
		return payload{jsonBody(td), keys}
	}
	for range 5 {
		r := send(next())
		require.True(t, r.ok(), "%s", r)
	}

	filler := filepath.Join(disk, "filler")
	fillDisk(t, filler)
	// SQLite may still fit a few writes into pages it already owns (free
	// pages, the WAL); keep sending until the disk-full error shows.
	var failed []payload
	var fullErr response
	for i := 0; i < pick(400, 1000) && len(failed) < pick(5, 20); i++ {
		p := next()
		r := send(p)
		if r.ok() {
			continue
		}
		failed = append(failed, p)
		if fullErr.code == 0 {
			fullErr = r
		}
		require.True(t, r.retryable(), "a full disk must be a retryable error for the client, got %s", r)
	}
	require.NotEmpty(t, failed, "the disk never filled up: %s", l.summary())
	st := decodeStatus(t, fullErr)
	assert.Contains(t, st.Message, "database or disk is full", "the error says why: %s", fullErr)
	t.Logf("disk full answered: %s", fullErr)
	c.requireUp(t)
	integrityCheck(t, dbPath)

	// Space returns: the same collector stores again; the client's retries
	// of the refused payloads land once.
	require.NoError(t, os.Remove(filler))
	for _, p := range failed {
		waitFor(t, time.Minute, "a refused payload accepted after space returned", func() bool { return send(p).ok() })
	}
	for range 5 {
		r := send(next())
		require.True(t, r.ok(), "%s", r)
	}
	c.requireUp(t)
	integrityCheck(t, dbPath)
	checkPresence(t, fig, l, storedKeys(t, openSQLite(t, dbPath), ""), len(failed))
	fig.note("tmpfs of 32 MiB filled with a file: %d requests refused with %d %s, Retry-After %q (code %d, %q); after the file was removed the retried payloads were stored once; PRAGMA integrity_check ok during and after: %s",
		len(failed), fullErr.code, fullErr.contentType, fullErr.retryAfter, st.Code, firstLine(st.Message), l.summary())
	assert.Equal(t, 503, fullErr.code)
	assert.Equal(t, "5", fullErr.retryAfter, "openroutermapping's retry_after (5 s) on a retryable storage error")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
