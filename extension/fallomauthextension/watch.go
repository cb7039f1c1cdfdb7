package fallomauthextension

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"

	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/filewatch"
	"github.com/fallom/fallom-collector/internal/keys"
)

// noCtx is for telemetry recorded outside any request.
var noCtx = context.Background()

// fileState is owned by Start and then by the watch goroutine only.
type fileState struct {
	lastApplied   [sha256.Size]byte // content digest of the file behind the current set
	lastRejected  [sha256.Size]byte // content digest of the last refused file (logged once)
	missing       bool
	reportedError bool // a recoverable error status is outstanding
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

// startWatching follows the keys file (see internal/filewatch: its
// directory, a symbolic link's target, the periodic check) and reloads it.
func (a *authenticator) startWatching() {
	a.watch = filewatch.Start(filewatch.Config{
		Path:     a.keysFile,
		Interval: a.reloadInterval,
		Name:     "keys file",
		LogKey:   "keys_file",
		// A fresh install has no ./data yet; creating it (private, like
		// `keys create` would) lets the watcher see the first key the
		// moment it is written instead of at the next periodic check.
		CreateDirMode: 0o700,
		// The link the CLI writes through (keys.ResolveLink), which also
		// names a target that does not exist yet.
		ResolveLink: keys.ResolveLink,
		NoNotify:    a.noNotify,
		Reload:      a.reload,
	}, a.logger)
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
