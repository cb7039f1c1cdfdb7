// Package filewatch follows the edits of one file that a component serves
// from (the fallomauth keys file, the Fallom SDK file) and tells the
// component when to re-read it. Reading, validating and keeping the last
// good content are the component's: this package only decides when.
//
// It watches the file's directory, not the file: editors, configuration
// managers and `keys create` replace a file by rename, which a watch on the
// file itself would lose. It also watches the directory of the file a
// symbolic link leads to (a shared volume, a checkout elsewhere), and
// re-reads on a timer for file systems without notifications and for a
// directory that does not exist yet.
package filewatch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Debounce coalesces the burst of events of one save (create temp, write,
// rename) into one read.
const Debounce = 50 * time.Millisecond

// errNotificationsOff is logged when Config.NoNotify turns notifications off.
var errNotificationsOff = errors.New("file-system notifications disabled")

// Config says which file to follow and how.
type Config struct {
	// Path is the file; its directory is watched.
	Path string
	// Interval is the periodic re-check (0: none).
	Interval time.Duration
	// Name names the file in log messages ("keys file") and LogKey is the
	// log field that carries its path ("keys_file").
	Name, LogKey string
	// CreateDirMode, when not zero, creates a missing directory of Path
	// with this mode, so a fresh install's first file is seen the moment it
	// is written instead of at the next periodic check.
	CreateDirMode fs.FileMode
	// ResolveLink follows Path through symbolic links to the file they
	// name; nil means filepath.EvalSymlinks.
	ResolveLink func(path string) (string, error)
	// NoNotify turns file-system notifications off (tests of the periodic
	// check, which is what remains on file systems without notifications).
	NoNotify bool
	// Reload re-reads the file. It is called on the watch goroutine only,
	// after a burst of events about the file and at every periodic check.
	Reload func()
}

// Watcher follows one file until Close.
type Watcher struct {
	cfg    Config
	logger *zap.Logger

	// Owned by Start and then by the watch goroutine only.
	watcher        *fsnotify.Watcher
	watchingDir    bool
	target         string // the file Path leads to (Path itself when no link)
	watchingTarget string // directory of target being watched ("" none)
	watchErrLogged bool

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Start begins following cfg.Path. Without notifications (they cannot be
// had, or NoNotify) it relies on the periodic check and says so.
func Start(cfg Config, logger *zap.Logger) *Watcher {
	if cfg.ResolveLink == nil {
		cfg.ResolveLink = filepath.EvalSymlinks
	}
	w := &Watcher{cfg: cfg, logger: logger, stop: make(chan struct{})}
	var err error = errNotificationsOff
	if !cfg.NoNotify {
		w.watcher, err = fsnotify.NewWatcher()
	}
	if err != nil {
		w.watcher = nil
		logger.Warn("cannot watch the "+cfg.Name+"; relying on the periodic check",
			zap.String(cfg.LogKey, cfg.Path), zap.Duration("reload_interval", cfg.Interval), zap.Error(err))
	} else {
		w.watchDir()
	}
	w.wg.Add(1)
	go w.loop()
	return w
}

// Close stops following the file and waits until Reload is no longer
// running. It is safe on nil and more than once.
func (w *Watcher) Close() {
	if w == nil {
		return
	}
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *Watcher) watchDir() {
	if w.watcher == nil || w.watchingDir {
		return
	}
	dir := filepath.Dir(w.cfg.Path)
	if w.cfg.CreateDirMode != 0 {
		if err := os.MkdirAll(dir, w.cfg.CreateDirMode); err != nil && !w.watchErrLogged {
			w.logger.Info("cannot create the "+w.cfg.Name+" directory", zap.String("dir", dir), zap.Error(err))
		}
	}
	if err := w.watcher.Add(dir); err != nil {
		if !w.watchErrLogged {
			w.watchErrLogged = true
			w.logger.Info("cannot watch the "+w.cfg.Name+" directory yet; checking periodically",
				zap.String("dir", dir), zap.Duration("reload_interval", w.cfg.Interval), zap.Error(err))
		}
		return
	}
	w.watchingDir = true
	w.watchErrLogged = false
	w.watchTarget()
}

// watchTarget follows the file's symbolic links and watches the directory
// of the file they lead to, when it is another directory, so that an edit
// of the target is seen at once, not at the next periodic check.
func (w *Watcher) watchTarget() {
	if w.watcher == nil {
		return
	}
	target, err := w.cfg.ResolveLink(w.cfg.Path)
	if err != nil {
		return
	}
	w.target = target
	dir := filepath.Dir(target)
	if dir == filepath.Dir(w.cfg.Path) || dir == w.watchingTarget {
		return
	}
	if w.watchingTarget != "" {
		_ = w.watcher.Remove(w.watchingTarget)
		w.watchingTarget = ""
	}
	if err := w.watcher.Add(dir); err == nil {
		w.watchingTarget = dir
	}
}

func (w *Watcher) loop() {
	defer w.wg.Done()
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if w.watcher != nil {
		defer w.watcher.Close()
		events, watchErrs = w.watcher.Events, w.watcher.Errors
	}
	var tick <-chan time.Time
	if w.cfg.Interval > 0 {
		ticker := time.NewTicker(w.cfg.Interval)
		defer ticker.Stop()
		tick = ticker.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	dir, base := filepath.Dir(w.cfg.Path), filepath.Base(w.cfg.Path)
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// The directory itself went away; re-add it on the next tick.
				w.watchingDir = false
				continue
			}
			// The file itself, or a Kubernetes-style "..data" symlink swap,
			// or the file a symbolic link leads to.
			if name := filepath.Base(ev.Name); name == base || strings.HasPrefix(name, "..") || ev.Name == w.target {
				debounce.Reset(Debounce)
			}
		case err, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
				continue
			}
			w.logger.Warn(w.cfg.Name+" watcher error; the periodic check still runs", zap.Error(err))
		case <-debounce.C:
			w.watchTarget() // the link may now lead elsewhere
			w.cfg.Reload()
		case <-tick:
			w.watchDir()
			w.cfg.Reload()
		}
	}
}
