package filewatch

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// reloads counts the Reload calls and, once a condition holds, proves it
// against a generous deadline (tests run on a loaded machine).
type reloads struct{ n atomic.Int64 }

func (r *reloads) reload() { r.n.Add(1) }

func (r *reloads) waitMore(t *testing.T, than int64, msg string) {
	t.Helper()
	require.Eventually(t, func() bool { return r.n.Load() > than }, time.Minute, 10*time.Millisecond, msg)
}

func start(t *testing.T, cfg Config) (*Watcher, *reloads, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	r := &reloads{}
	cfg.Name, cfg.LogKey, cfg.Reload = "test file", "test_file", r.reload
	w := Start(cfg, zap.New(core))
	t.Cleanup(w.Close)
	return w, r, logs
}

// With notifications and no periodic check, every way of saving the file
// (in place, replace by rename, remove) and a Kubernetes-style "..data"
// swap causes a reload.
func TestNotificationsReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.yaml")
	require.NoError(t, os.WriteFile(path, []byte("a"), 0o600))
	_, r, _ := start(t, Config{Path: path})

	require.NoError(t, os.WriteFile(path, []byte("b"), 0o600))
	r.waitMore(t, 0, "an edit in place")

	n := r.n.Load()
	tmp := filepath.Join(dir, ".f.yaml.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("c"), 0o600))
	require.NoError(t, os.Rename(tmp, path))
	r.waitMore(t, n, "a replace by rename")

	n = r.n.Load()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "..2026"), 0o700))
	r.waitMore(t, n, `a "..data"-style swap`)

	n = r.n.Load()
	require.NoError(t, os.Remove(path))
	r.waitMore(t, n, "a removal")

	n = r.n.Load()
	require.NoError(t, os.WriteFile(path, []byte("d"), 0o600))
	r.waitMore(t, n, "the file written back")
}

// A file reached through a symbolic link into another directory: an edit
// of the target is seen through notifications, and so is an edit of a new
// target after the link is moved.
func TestFollowsLinkTarget(t *testing.T) {
	dir, first, second := t.TempDir(), t.TempDir(), t.TempDir()
	target := filepath.Join(first, "real.yaml")
	require.NoError(t, os.WriteFile(target, []byte("a"), 0o600))
	link := filepath.Join(dir, "f.yaml")
	require.NoError(t, os.Symlink(target, link))
	_, r, _ := start(t, Config{Path: link})

	require.NoError(t, os.WriteFile(target, []byte("b"), 0o600))
	r.waitMore(t, 0, "an edit of the target")

	moved := filepath.Join(second, "real.yaml")
	require.NoError(t, os.WriteFile(moved, []byte("c"), 0o600))
	n := r.n.Load()
	tmpLink := filepath.Join(dir, ".f.yaml.new")
	require.NoError(t, os.Symlink(moved, tmpLink))
	require.NoError(t, os.Rename(tmpLink, link))
	r.waitMore(t, n, "the link moved")

	// The reload after the move re-resolved the link, so the new target's
	// directory is watched now.
	n = r.n.Load()
	require.NoError(t, os.WriteFile(moved, []byte("d"), 0o600))
	r.waitMore(t, n, "an edit of the new target")
}

// Without notifications the periodic check alone reloads, and says why.
func TestPeriodicCheckWithoutNotifications(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.yaml")
	_, r, logs := start(t, Config{Path: path, Interval: 20 * time.Millisecond, NoNotify: true})
	r.waitMore(t, 1, "the periodic check reloads")
	assert.Equal(t, 1, logs.FilterMessage("cannot watch the test file; relying on the periodic check").Len())
}

// A directory that does not exist yet: with CreateDirMode it is created and
// watched at once; without, it is left alone, the periodic check goes on
// and the failure to watch it is logged once.
func TestMissingDirectory(t *testing.T) {
	t.Run("created", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		path := filepath.Join(dir, "f.yaml")
		_, r, _ := start(t, Config{Path: path, CreateDirMode: 0o700})
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		require.NoError(t, os.WriteFile(path, []byte("a"), 0o600))
		r.waitMore(t, 0, "the first file in the created directory")
	})
	t.Run("appears later", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		path := filepath.Join(dir, "f.yaml")
		_, r, logs := start(t, Config{Path: path, Interval: 20 * time.Millisecond})
		r.waitMore(t, 2, "periodic checks while the directory is missing")
		assert.Equal(t, 1, logs.FilterMessage("cannot watch the test file directory yet; checking periodically").Len())
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist, "not created without CreateDirMode")
	})
}

// Close waits for the loop: no Reload runs after it returns. It is safe on
// nil and twice.
func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.yaml")
	w, r, _ := start(t, Config{Path: path, Interval: time.Millisecond})
	r.waitMore(t, 0, "running")
	w.Close()
	n := r.n.Load()
	w.Close()
	require.NoError(t, os.WriteFile(path, []byte("a"), 0o600))
	// The loop has returned (Close waited for it), so n is final; a reload
	// after Close would need the goroutine that Close already joined.
	assert.Equal(t, n, r.n.Load())
	var none *Watcher
	none.Close()
}
