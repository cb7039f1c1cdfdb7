package sdkfile

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const (
	fileV1 = "projects:\n  acme:\n    prompts:\n      - key: p\n        versions: [{version: 1, system_prompt: one}]\n"
	fileV2 = "projects:\n  acme:\n    prompts:\n      - key: p\n        versions: [{version: 1, system_prompt: two}]\n"
	// fileBad names a prompt version twice.
	fileBad = "projects:\n  acme:\n    prompts:\n      - key: p\n        versions: [{version: 1, system_prompt: a}, {version: 1, system_prompt: b}]\n"
)

type reports struct {
	mu   sync.Mutex
	errs []error
}

func (r *reports) add(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *reports) last() (error, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return nil, 0
	}
	return r.errs[len(r.errs)-1], len(r.errs)
}

func served(w *Watcher) string { return string(w.Current().Project("acme").PromptsJSON()) }

// startWatcher watches path either with notifications alone (no periodic
// check) or with the periodic check alone.
func startWatcher(t *testing.T, path string, noNotify bool) (*Watcher, *observer.ObservedLogs, *reports) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	rep := &reports{}
	interval := time.Duration(0)
	if noNotify {
		interval = 100 * time.Millisecond
	}
	w := NewWatcher(path, interval, zap.New(core), rep.add)
	w.noNotify = noNotify
	require.NoError(t, w.Load())
	w.Start()
	t.Cleanup(w.Close)
	return w, logs, rep
}

func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, time.Minute, 20*time.Millisecond, msg)
}

// Through every kind of edit, with notifications and with the periodic
// check alone: a good edit is served, a bad or empty one keeps the last
// good file (logged and reported once), a removed file keeps it too, and
// the next good edit clears the report.
func TestWatcherFailSafe(t *testing.T) {
	for _, noNotify := range []bool{false, true} {
		t.Run(map[bool]string{false: "notifications", true: "periodic"}[noNotify], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sdk.yaml")
			require.NoError(t, os.WriteFile(path, []byte(fileV1), 0o600))
			w, logs, rep := startWatcher(t, path, noNotify)
			assert.Contains(t, served(w), `"system_prompt":"one"`)

			require.NoError(t, os.WriteFile(path, []byte(fileV2), 0o600))
			eventually(t, func() bool { return strings.Contains(served(w), `"two"`) }, "a good edit is served")

			require.NoError(t, os.WriteFile(path, []byte(fileBad), 0o600))
			eventually(t, func() bool { err, _ := rep.last(); return err != nil }, "a bad edit is reported")
			err, n := rep.last()
			assert.Contains(t, err.Error(), `project "acme", prompt "p", version 1: versions must be listed in ascending order`)
			assert.Contains(t, served(w), `"two"`, "the last good file stays")
			assert.Equal(t, 1, logs.FilterMessageSnippet("SDK file refused").Len())

			require.NoError(t, os.WriteFile(path, nil, 0o600))
			eventually(t, func() bool { return logs.FilterMessageSnippet("SDK file is empty").Len() == 1 }, "an empty file is refused")
			assert.Contains(t, served(w), `"two"`)

			require.NoError(t, os.Remove(path))
			eventually(t, func() bool { return logs.FilterMessageSnippet("SDK file was removed").Len() == 1 }, "a removal is logged")
			assert.Contains(t, served(w), `"two"`, "a removed file keeps the last good one")

			require.NoError(t, os.WriteFile(path, []byte(fileV1), 0o600))
			eventually(t, func() bool { return strings.Contains(served(w), `"one"`) }, "the file is back")
			eventually(t, func() bool { err, m := rep.last(); return err == nil && m > n }, "the report is cleared")
		})
	}
}

// A file reached through a symbolic link (a ConfigMap or a checkout
// elsewhere): an edit of the target is followed.
func TestWatcherFollowsSymlink(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "prompts.yaml")
	require.NoError(t, os.WriteFile(target, []byte(fileV1), 0o600))
	link := filepath.Join(dir, "sdk.yaml")
	require.NoError(t, os.Symlink(target, link))
	w, _, _ := startWatcher(t, link, false)
	assert.Contains(t, served(w), `"one"`)
	require.NoError(t, os.WriteFile(target, []byte(fileV2), 0o600))
	eventually(t, func() bool { return strings.Contains(served(w), `"two"`) }, "an edit of the link's target is served")
}

func TestWatcherAtStart(t *testing.T) {
	dir := t.TempDir()
	missing := NewWatcher(filepath.Join(dir, "none.yaml"), 0, zap.NewNop(), nil)
	require.NoError(t, missing.Load(), "a missing file serves nothing")
	assert.Equal(t, `{"prompts":[]}`, served(missing))

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(fileBad), 0o600))
	err := NewWatcher(bad, 0, zap.NewNop(), nil).Load()
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad)
	assert.Contains(t, err.Error(), `prompt "p", version 1`)
}
