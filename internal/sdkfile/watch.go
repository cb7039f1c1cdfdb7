package sdkfile

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/filewatch"
)

// Watcher serves the SDK file and follows its edits the way fallomauth
// follows the keys file (internal/filewatch): it watches the file's
// directory (editors and configuration managers replace files by rename,
// which a watch on the file would lose) and the directory of the file a
// symbolic link leads to, and re-reads on a timer for file systems without
// notifications. An edit that
// does not validate keeps the last good file in force (fail safe) and is
// logged with the reason, once per distinct content.
type Watcher struct {
	path     string
	interval time.Duration
	logger   *zap.Logger
	// report is told of a refused file (err) and of the next good one (nil):
	// the receiver turns it into its component status.
	report   func(error)
	noNotify bool // tests: rely on the periodic check alone

	current atomic.Pointer[File]

	// Owned by Load and then by the watch goroutine.
	lastApplied  [sha256.Size]byte
	lastRejected [sha256.Size]byte
	missing      bool
	refused      bool

	watch *filewatch.Watcher // nil until Start
}

// NewWatcher returns a watcher of the SDK file at path, serving the empty
// file until Load. interval is the periodic re-read (0: none).
func NewWatcher(path string, interval time.Duration, logger *zap.Logger, report func(error)) *Watcher {
	if report == nil {
		report = func(error) {}
	}
	w := &Watcher{path: path, interval: interval, logger: logger, report: report}
	w.current.Store(Empty())
	return w
}

// Current is the file in force.
func (w *Watcher) Current() *File { return w.current.Load() }

// Load reads the file once, at start. A missing or empty file serves
// nothing (a fresh install has none until prompts or configs are written;
// it is picked up when it appears). An invalid file is an error: the
// collector does not start on a file its operator has to fix.
func (w *Watcher) Load() error {
	data, err := os.ReadFile(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		w.missing = true
		w.logger.Info("SDK file does not exist yet; serving no configs, prompts or datasets until it is created",
			zap.String("sdk_file", w.path))
		return nil
	}
	if err != nil {
		return fmt.Errorf("SDK file %s: %w", w.path, err)
	}
	f, err := Parse(data)
	if errors.Is(err, ErrEmptyFile) {
		w.lastApplied = sha256.Sum256(data)
		w.logger.Info("SDK file is empty; serving no configs, prompts or datasets", zap.String("sdk_file", w.path))
		return nil
	}
	if err != nil {
		return fmt.Errorf("SDK file %s: %w", w.path, err)
	}
	w.apply(f, sha256.Sum256(data), "loaded")
	return nil
}

// Start begins watching for edits.
func (w *Watcher) Start() {
	w.watch = filewatch.Start(filewatch.Config{
		Path:     w.path,
		Interval: w.interval,
		Name:     "SDK file",
		LogKey:   "sdk_file",
		NoNotify: w.noNotify,
		Reload:   w.reload,
	}, w.logger)
}

// Close stops watching. It is safe without Start and more than once.
func (w *Watcher) Close() { w.watch.Close() }

func (w *Watcher) apply(f *File, sum [sha256.Size]byte, verb string) {
	w.current.Store(f)
	w.lastApplied = sum
	w.lastRejected = [sha256.Size]byte{}
	configs, prompts, tests, datasets := 0, 0, 0, 0
	for _, id := range f.Projects() {
		p := f.Project(id)
		configs += p.Configs
		prompts += p.Prompts
		tests += p.PromptABTests
		datasets += p.Datasets
	}
	w.logger.Info("SDK file "+verb, zap.String("sdk_file", w.path), zap.Int("projects", len(f.projects)),
		zap.Int("configs", configs), zap.Int("prompts", prompts), zap.Int("prompt_ab_tests", tests), zap.Int("datasets", datasets))
}

// reload re-reads the file and swaps in the new content if it changed and
// validates; anything else keeps the last good file and says why.
func (w *Watcher) reload() {
	data, err := os.ReadFile(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		if !w.missing {
			w.missing = true
			w.logger.Warn("SDK file was removed; keeping the last good file until it reappears "+
				"(write `projects: {}` to serve nothing)", zap.String("sdk_file", w.path))
		}
		return
	}
	if err != nil {
		w.refuse([sha256.Size]byte{}, err)
		return
	}
	w.missing = false
	sum := sha256.Sum256(data)
	if sum == w.lastApplied || sum == w.lastRejected {
		return
	}
	f, err := Parse(data)
	if err != nil {
		w.refuse(sum, err)
		return
	}
	w.apply(f, sum, "reloaded")
	if w.refused {
		w.refused = false
		w.report(nil)
	}
}

func (w *Watcher) refuse(sum [sha256.Size]byte, err error) {
	w.lastRejected = sum
	w.refused = true
	msg := "SDK file refused; keeping the last good file"
	if errors.Is(err, ErrEmptyFile) {
		msg = "SDK file is empty (being rewritten?); keeping the last good file"
	}
	w.logger.Error(msg, zap.String("sdk_file", w.path), zap.Error(err))
	w.report(fmt.Errorf("%s: %w", msg, err))
}
