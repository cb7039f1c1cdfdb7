package fallomauthextension

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/keys"
)

// noCtx is for telemetry recorded outside any request.
var noCtx = context.Background()

// errNotificationsOff is reported when tests turn notifications off to
// exercise the periodic check alone.
var errNotificationsOff = errors.New("file-system notifications disabled")

// reloadDebounce coalesces the burst of events of one save (create temp,
// write, rename) into one read.
const reloadDebounce = 50 * time.Millisecond

// fileState is owned by Start and then by the watch goroutine only.
type fileState struct {
	lastApplied  [sha256.Size]byte // content digest of the file behind the current set
	lastRejected [sha256.Size]byte // content digest of the last refused file (logged once)
	missing      bool
	watcher      *fsnotify.Watcher
	watchingDir  bool
	// target is the file the keys file links to (itself when it is not a
	// symbolic link); its directory is watched too, so an edit of the
	// target is seen at once, not at the next periodic check.
	target         string
	watchingTarget string // directory of target being watched ("" none)
	watchErrLogged bool
	reportedError  bool // a recoverable error status is outstanding
}

// loadAtStart reads the keys file once. Missing or empty: no keys from the
// file yet (logged at info). Invalid: an error, so the collector does not
// start on a file the operator has to fix.
func (a *authenticator) loadAtStart() error {
	data, err := os.ReadFile(a.keysFile)
	if errors.Is(err, fs.ErrNotExist) {
		a.fileState.missing = true
		a.logger.Info("keys file does not exist yet; it will be loaded when created",
			zap.String("keys_file", a.keysFile), zap.Int("config_keys", len(a.inline)))
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := keys.Parse(data)
	if errors.Is(err, keys.ErrEmptyFile) {
		a.fileState.lastApplied = sha256.Sum256(data)
		a.logger.Info("keys file is empty; no keys from it yet",
			zap.String("keys_file", a.keysFile), zap.Int("config_keys", len(a.inline)))
		return nil
	}
	if err != nil {
		return err
	}
	set, err := a.buildFromFile(entries)
	if err != nil {
		return err
	}
	a.apply(set, sha256.Sum256(data), "loaded")
	return nil
}

func (a *authenticator) buildFromFile(entries []keys.Entry) (*keySet, error) {
	validated, err := keys.Validate("keys", entries)
	if err != nil {
		return nil, err
	}
	return buildKeySet(a.inline, validated, a.telemetry)
}

func (a *authenticator) apply(set *keySet, sum [sha256.Size]byte, verb string) {
	a.keys.Store(set)
	a.fileState.lastApplied = sum
	a.fileState.lastRejected = [sha256.Size]byte{}
	active, revoked, expired := set.counts(a.now())
	a.logger.Info("keys file "+verb,
		zap.String("keys_file", a.keysFile),
		zap.Int("file_keys", set.fromFile), zap.Int("config_keys", len(a.inline)),
		zap.Int("active", active), zap.Int("revoked", revoked), zap.Int("expired", expired))
}

// startWatching watches the keys file's directory, not the file: editors and
// `keys create` replace the file by rename, which a watch on the file itself
// would lose. A periodic re-read (reload_interval) covers file systems
// without notifications and a directory that does not exist yet.
func (a *authenticator) startWatching() {
	var w *fsnotify.Watcher
	err := errNotificationsOff
	if !a.noNotify {
		w, err = fsnotify.NewWatcher()
	}
	if err != nil {
		a.logger.Warn("cannot watch the keys file; relying on the periodic check",
			zap.String("keys_file", a.keysFile), zap.Duration("reload_interval", a.reloadInterval), zap.Error(err))
	} else {
		a.fileState.watcher = w
		a.watchDir()
	}
	a.wg.Add(1)
	go a.watchLoop()
}

func (a *authenticator) watchDir() {
	st := &a.fileState
	if st.watcher == nil || st.watchingDir {
		return
	}
	dir := filepath.Dir(a.keysFile)
	// A fresh install has no ./data yet; creating it (private, like `keys
	// create` would) lets the watcher see the first key the moment it is
	// written instead of at the next periodic check.
	if err := os.MkdirAll(dir, 0o700); err != nil && !st.watchErrLogged {
		a.logger.Info("cannot create the keys file directory", zap.String("dir", dir), zap.Error(err))
	}
	if err := st.watcher.Add(dir); err != nil {
		if !st.watchErrLogged {
			st.watchErrLogged = true
			a.logger.Info("cannot watch the keys file directory yet; checking periodically",
				zap.String("dir", dir), zap.Duration("reload_interval", a.reloadInterval), zap.Error(err))
		}
		return
	}
	st.watchingDir = true
	st.watchErrLogged = false
	a.watchTarget()
}

// watchTarget follows the keys file's symbolic links and watches the
// directory of the file they lead to, when it is another directory.
func (a *authenticator) watchTarget() {
	st := &a.fileState
	if st.watcher == nil {
		return
	}
	target, err := keys.ResolveLink(a.keysFile)
	if err != nil {
		return
	}
	st.target = target
	dir := filepath.Dir(target)
	if dir == filepath.Dir(a.keysFile) || dir == st.watchingTarget {
		return
	}
	if st.watchingTarget != "" {
		_ = st.watcher.Remove(st.watchingTarget)
		st.watchingTarget = ""
	}
	if err := st.watcher.Add(dir); err == nil {
		st.watchingTarget = dir
	}
}

func (a *authenticator) watchLoop() {
	defer a.wg.Done()
	st := &a.fileState
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if st.watcher != nil {
		defer st.watcher.Close()
		events, watchErrs = st.watcher.Events, st.watcher.Errors
	}
	var tick <-chan time.Time
	if a.reloadInterval > 0 {
		ticker := time.NewTicker(a.reloadInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	dir, base := filepath.Dir(a.keysFile), filepath.Base(a.keysFile)
	for {
		select {
		case <-a.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// The directory itself went away; re-add it on the next tick.
				st.watchingDir = false
				continue
			}
			// The file itself, or a Kubernetes-style "..data" symlink swap,
			// or the file a symbolic link leads to.
			if name := filepath.Base(ev.Name); name == base || strings.HasPrefix(name, "..") || ev.Name == st.target {
				debounce.Reset(reloadDebounce)
			}
		case err, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
				continue
			}
			a.logger.Warn("keys file watcher error; the periodic check still runs", zap.Error(err))
		case <-debounce.C:
			a.watchTarget() // the link may now lead elsewhere
			a.reload()
		case <-tick:
			a.watchDir()
			a.reload()
		}
	}
}

// reload re-reads the keys file and swaps in the new set if the content
// changed and is valid. Anything else keeps the last good set and says why
// (once per distinct content), without key material: parse and validation
// errors name entries and problems only.
func (a *authenticator) reload() {
	st := &a.fileState
	data, err := os.ReadFile(a.keysFile)
	if errors.Is(err, fs.ErrNotExist) {
		if !st.missing {
			st.missing = true
			a.logger.Warn("keys file was removed; keeping the last good set until it reappears "+
				"(write `keys: []` to remove all keys)", zap.String("keys_file", a.keysFile))
		}
		return
	}
	if err != nil {
		a.refuse([sha256.Size]byte{}, err, nil)
		return
	}
	st.missing = false
	sum := sha256.Sum256(data)
	if sum == st.lastApplied || sum == st.lastRejected {
		return
	}
	entries, err := keys.ParsePartial(data)
	if errors.Is(err, keys.ErrEmptyFile) {
		// Most likely truncated by an in-place rewrite that is still going on.
		st.lastRejected = sum
		a.logger.Warn("keys file is empty (being rewritten?); keeping the last good set "+
			"(write `keys: []` to remove all keys)", zap.String("keys_file", a.keysFile))
		a.telemetry.reloads.Add(noCtx, 1, a.telemetry.reloadErrOpt)
		return
	}
	if err != nil {
		a.refuse(sum, err, entries)
		return
	}
	set, err := a.buildFromFile(entries)
	if err != nil {
		a.refuse(sum, err, entries)
		return
	}
	a.apply(set, sum, "reloaded")
	a.telemetry.reloads.Add(noCtx, 1, a.telemetry.reloadOKOpt)
	a.telemetry.fileRefused.Store(false)
	if a.host != nil && st.reportedError {
		st.reportedError = false
		componentstatus.ReportStatus(a.host, componentstatus.NewEvent(componentstatus.StatusOK))
	}
}

// refuse keeps the last good set, narrowed by what the refused file says
// about its keys (readable: its entries that parse; nil when nothing can be
// read): revocations and removals in a file with a typo elsewhere still take
// effect (fail safe); nothing is added. The refusal shows in the logs, the
// component status (recoverable error) and the otelcol_fallomauth_keys_file_refused
// gauge until a good file is loaded.
func (a *authenticator) refuse(sum [sha256.Size]byte, err error, readable []keys.Entry) {
	a.fileState.lastRejected = sum
	a.telemetry.fileRefused.Store(true)
	msg := "keys file refused; keeping the last good set"
	if readable != nil {
		if narrowed, changed := a.keys.Load().restrictedBy(readable); changed {
			a.keys.Store(narrowed)
			// The set in force no longer matches any file: the last good
			// content, written back, must be applied again.
			a.fileState.lastApplied = [sha256.Size]byte{}
			active, revoked, expired := narrowed.counts(a.now())
			msg = "keys file refused; keeping the last good set minus the keys the file removes, revokes, expires or narrows"
			a.logger.Error(msg, zap.String("keys_file", a.keysFile), zap.Error(err),
				zap.Int("active", active), zap.Int("revoked", revoked), zap.Int("expired", expired))
		} else {
			a.logger.Error(msg, zap.String("keys_file", a.keysFile), zap.Error(err))
		}
	} else {
		a.logger.Error(msg, zap.String("keys_file", a.keysFile), zap.Error(err))
	}
	a.telemetry.reloads.Add(noCtx, 1, a.telemetry.reloadErrOpt)
	if a.host != nil {
		a.fileState.reportedError = true
		componentstatus.ReportStatus(a.host, componentstatus.NewRecoverableErrorEvent(
			errors.New(msg+": "+err.Error())))
	}
}
