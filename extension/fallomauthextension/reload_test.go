package fallomauthextension

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/keys"
)

func genKeys(t *testing.T, n int) []string {
	out := make([]string, n)
	for i := range out {
		k, err := keys.Generate()
		require.NoError(t, err)
		out[i] = k
	}
	return out
}

func withSecrets(ks ...string) harnessOption {
	return func(h *harness) {
		for _, k := range ks {
			h.addSecret(k)
		}
	}
}

// status sends the key over HTTP and returns "" when accepted or the
// rejection message.
func (h *harness) status(key string) string {
	res := h.bearerHTTP(key)
	if res.ok {
		return ""
	}
	return res.message
}

// TestHotReload adds, revokes and expires keys by editing the watched keys
// file (both by atomic replace and by in-place rewrite), with no periodic
// check: the file-system watcher alone must pick the changes up.
func TestHotReload(t *testing.T) {
	ks := genKeys(t, 3)
	a, b, c := ks[0], ks[1], ks[2]
	file := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, file, "keys:\n"+entryYAML("a", "p1", a))
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, &Config{KeysFile: file}, withSecrets(ks...), withClock(t0))

	h.requireAccepted(h.bearerHTTP(a), "p1", "a")
	h.requireRejected(h.bearerHTTP(b), ErrUnknownKey)

	// Add b (atomic replace, as `keys create` does).
	writeFileAtomic(t, file, "keys:\n"+entryYAML("a", "p1", a)+entryYAML("b", "p2", b))
	h.eventually(func() bool { return h.status(b) == "" }, "added key b never accepted")
	h.requireAccepted(h.bearerHTTP(b), "p2", "b")
	h.requireAccepted(h.exportGRPC(map[string]string{"authorization": "Bearer " + b}), "p2", "b")

	// Revoke a (in-place rewrite, as many editors do).
	writeFile(t, file, "keys:\n"+entryYAML("a", "p1", a, "revoked: true")+entryYAML("b", "p2", b))
	h.eventually(func() bool { return h.status(a) == ErrRevokedKey.Error() }, "revoked key a still accepted")
	h.requireRejected(h.exportGRPC(map[string]string{"x-api-key": a}), ErrRevokedKey)
	h.requireAccepted(h.bearerHTTP(b), "p2", "b")

	// Expire b by giving it a past expiry; add c expiring an hour from the
	// test clock.
	writeFileAtomic(t, file, "keys:\n"+entryYAML("a", "p1", a, "revoked: true")+
		entryYAML("b", "p2", b, "expires_at: 2030-01-01T00:00:00Z")+
		entryYAML("c", "p3", c, "expires_at: "+t0.Add(time.Hour).Format(time.RFC3339)))
	h.eventually(func() bool { return h.status(b) == ErrExpiredKey.Error() }, "expired key b still accepted")
	h.requireAccepted(h.bearerHTTP(c), "p3", "c")

	// Expiry is evaluated per request: c stops working when the clock
	// reaches its expires_at, with no reload.
	reloads := h.logCount("keys file reloaded")
	h.setClock(t0.Add(time.Hour - time.Nanosecond))
	h.requireAccepted(h.bearerHTTP(c), "p3", "c")
	h.setClock(t0.Add(time.Hour))
	h.requireRejected(h.bearerHTTP(c), ErrExpiredKey)
	h.requireRejected(h.exportGRPC(map[string]string{"authorization": "Bearer " + c}), ErrExpiredKey)
	require.Equal(t, reloads, h.logCount("keys file reloaded"))
	require.Equal(t, int64(2), h.requestCount(map[string]string{attrOutcome: "rejected", attrReason: "expired_key", attrKeyName: "c"}),
		"expired rejections of c (HTTP and gRPC)")
}

// TestBrokenKeysFileKeepsLastGoodSet feeds the watcher broken, half-written,
// invalid, empty and missing files: each is refused with a log line naming
// the problem (and never the key), and the last good set keeps working.
func TestBrokenKeysFileKeepsLastGoodSet(t *testing.T) {
	ks := genKeys(t, 3)
	a, b, plain := ks[0], ks[1], ks[2]
	file := filepath.Join(t.TempDir(), "keys.yaml")
	good := "keys:\n" + entryYAML("a", "p1", a)
	writeFile(t, file, good)
	h := newHarness(t, &Config{KeysFile: file}, withSecrets(ks...))
	h.requireAccepted(h.bearerHTTP(a), "p1", "a")

	withB := "keys:\n" + entryYAML("a", "p1", a) + entryYAML("b", "p2", b)
	broken := []struct {
		name     string
		content  string
		logMsg   string // snippet of the log message
		errPart  string // snippet of the logged error
		removesA bool   // the file has no readable, unambiguous entry for key a: fail safe, a stops working
	}{
		{"invalid YAML", "keys:\n  - name: b\n    project: [p2\n    key: " + plain + "\n", "keys file refused", "not valid YAML", false},
		{"half-written (cut inside a digest)", withB[:len(withB)-20], "keys file refused", "key_sha256 must be 64 hex characters", false},
		{"half-written (cut inside a field name)", withB[:strings.LastIndex(withB, "key_sha256")+4], "keys file refused", "not valid YAML", false},
		{"unknown field", "keys:\n" + entryYAML("b", "p2", b, "expires: 2030-01-01T00:00:00Z"), "keys file refused", "unknown field \"expires\"", true},
		{"duplicate names", "keys:\n" + entryYAML("a", "p1", a) + entryYAML("a", "p2", b), "keys file refused", "name is already used", true},
		{"same key twice", "keys:\n" + entryYAML("a", "p1", a) + entryYAML("b", "p2", a), "keys file refused", "same key as", false},
		{"plaintext key with bad revoked value", "keys:\n  - name: b\n    project: p2\n    key: " + plain + "\n    revoked: maybe\n", "keys file refused", "revoked must be true or false", true},
		{"key pasted as a field name", "keys:\n  - name: b\n    project: p2\n    " + plain + ": x\n", "keys file refused", "(name not shown)", true},
		{"key pasted as the name", "keys:\n  - name: " + plain + "\n    project: p2\n    key_sha256: " + keys.DigestOf(b).Hex() + "\n", "keys file refused", "name looks like an API key", true},
		{"plaintext key malformed", "keys:\n  - name: b\n    project: p2\n    key: flm_" + strings.Repeat("x", 15) + "!\n", "keys file refused", "key is not a valid fallom key", true},
		{"bad expires_at", "keys:\n" + entryYAML("b", "p2", b, "expires_at: next week"), "keys file refused", "expires_at must be an RFC 3339 time", true},
		{"empty (truncated for rewrite)", "", "keys file is empty", "", false},
		{"wrong top-level shape", "- name: b\n", "keys file refused", "must be a mapping", false},
	}
	for _, bc := range broken {
		before := h.logCount(bc.logMsg)
		writeFile(t, file, bc.content) // in place: the watcher may well see partial writes too
		h.eventually(func() bool { return h.logCount(bc.logMsg) > before }, bc.name+": refusal never logged")
		if bc.errPart != "" {
			entries := h.logs.FilterMessageSnippet(bc.logMsg).All()
			logged := entries[len(entries)-1].ContextMap()["error"]
			require.Contains(t, logged, bc.errPart, bc.name)
		}
		// Nothing is ever added by a refused file.
		h.requireRejected(h.bearerHTTP(b), ErrUnknownKey)
		h.requireRejected(h.bearerHTTP(plain), ErrUnknownKey)
		if !bc.removesA {
			h.requireAccepted(h.bearerHTTP(a), "p1", "a")
			continue
		}
		// Issue 15 item 2, fail safe: what a refused file removes is removed.
		h.requireRejected(h.bearerHTTP(a), ErrUnknownKey)
		require.Equal(t, int64(1), h.refusedGauge(), bc.name)
		writeFileAtomic(t, file, good)
		h.eventually(func() bool { return h.status(a) == "" }, bc.name+": the good file written back was not applied")
		require.Equal(t, int64(0), h.refusedGauge(), bc.name)
	}
	// Removing the file keeps the set too (editors may delete then write).
	require.NoError(t, os.Remove(file))
	h.eventually(func() bool { return h.logCount("keys file was removed") == 1 }, "removal never logged")
	h.requireAccepted(h.bearerHTTP(a), "p1", "a")

	// A good file is applied again.
	writeFileAtomic(t, file, "keys:\n"+entryYAML("b", "p2", b))
	h.eventually(func() bool { return h.status(b) == "" }, "good file after broken ones never applied")
	h.requireRejected(h.bearerHTTP(a), ErrUnknownKey)

	require.GreaterOrEqual(t, h.reloadCount("failure"), int64(len(broken)))
	require.GreaterOrEqual(t, h.reloadCount("success"), int64(1))
}

func (h *harness) reloadCount(outcome string) int64 {
	m, err := h.tel.GetMetric(metricReloads)
	require.NoError(h.t, err)
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if v, _ := dp.Attributes.Value(attrOutcome); v.AsString() == outcome {
			n += dp.Value
		}
	}
	return n
}

// TestKeysFileCreatedAfterStart: a missing keys file is fine at start and is
// loaded as soon as it appears: in an existing directory, in a directory that
// does not exist yet (the quickstart: ./data is created by the extension so
// the watcher sees the first key at once), and with notifications off, by the
// periodic check alone.
func TestKeysFileCreatedAfterStart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		subdir   string
		interval time.Duration
		noNotify bool
	}{
		{name: "directory exists, watcher only", interval: 0},
		{name: "directory missing at start, watcher only", subdir: "fresh/data", interval: 0},
		{name: "no notifications, periodic check only", subdir: "polled", interval: 50 * time.Millisecond, noNotify: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := genKeys(t, 1)[0]
			file := filepath.Join(t.TempDir(), tc.subdir, "keys.yaml")
			h := newHarness(t, &Config{KeysFile: file, ReloadInterval: tc.interval}, withSecrets(k),
				func(h *harness) { h.auth.noNotify = tc.noNotify })
			require.Equal(t, 1, h.logCount("keys file does not exist yet"))
			h.requireRejected(h.bearerHTTP(k), ErrUnknownKey)

			writeFileAtomic(t, file, "keys:\n"+entryYAML("late", "p", k))
			h.eventually(func() bool { return h.status(k) == "" }, "keys file created after start never loaded")
			h.requireAccepted(h.exportGRPC(map[string]string{"x-api-key": k}), "p", "late")
		})
	}
}

// TestStartRefusesInvalidKeysFile: at start there is no last good set, so an
// invalid file stops the collector with the reason (and not the key).
func TestStartRefusesInvalidKeysFile(t *testing.T) {
	k := genKeys(t, 1)[0]
	file := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, file, "keys:\n  - name: x\n    project: p\n    key: "+k+"\n    expires_at: soon\n")
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), &Config{KeysFile: file})
	require.NoError(t, err)
	err = ext.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "expires_at must be an RFC 3339 time")
	require.ErrorContains(t, err, file)
	require.NotContains(t, err.Error(), k)
	require.NotContains(t, err.Error(), k[len(keys.Prefix):])
	require.NoError(t, ext.Shutdown(context.Background()))
}

var _ component.Host = (*testHost)(nil)

// refusedGauge reads otelcol_fallomauth_keys_file_refused.
func (h *harness) refusedGauge() int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric(metricRefused)
	require.NoError(h.t, err)
	g := m.Data.(metricdata.Gauge[int64])
	require.Len(h.t, g.DataPoints, 1)
	return g.DataPoints[0].Value
}

// TestSymlinkedKeysFileTargetIsWatched (issue 15 item 6): the keys file is a
// symbolic link into another directory; with no periodic check at all, an
// edit of the file it leads to is seen by the watcher.
func TestSymlinkedKeysFileTargetIsWatched(t *testing.T) {
	ks := genKeys(t, 2)
	a, b := ks[0], ks[1]
	dir := t.TempDir()
	real := filepath.Join(dir, "secrets", "keys.yaml")
	writeFile(t, real, "keys:\n"+entryYAML("a", "p1", a))
	link := filepath.Join(dir, "conf", "keys.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o700))
	require.NoError(t, os.Symlink(real, link))
	h := newHarness(t, &Config{KeysFile: link, ReloadInterval: 0}, withSecrets(ks...))
	h.requireAccepted(h.bearerHTTP(a), "p1", "a")

	writeFileAtomic(t, real, "keys:\n"+entryYAML("a", "p1", a, "revoked: true")+entryYAML("b", "p1", b))
	h.eventually(func() bool { return h.status(b) == "" }, "edit of the link's target not seen")
	h.requireRejected(h.bearerHTTP(a), ErrRevokedKey)

	// The CLI, given the link, writes the target and the link stays.
	runKeysCLI(t, "revoke", "b", "--keys-file", link)
	h.eventually(func() bool { return h.status(b) == ErrRevokedKey.Error() }, "CLI revoke through the link not seen")
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeSymlink)
}
