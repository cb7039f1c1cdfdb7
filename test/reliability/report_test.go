// Package reliability attacks the real bin/fallomcol (built by `make build`)
// with bad input, crashes, database outages, a full disk, concurrent
// tenants, key revocation and overload, and checks from the client's side
// that every acknowledged span is stored exactly once, that the process
// stays up and that every error is clear and keeps secrets.
//
// `go test ./test/reliability/` runs a bounded version (part of make test).
// FALLOM_SOAK=1 (make soak) runs more load, longer fault windows and more
// kill -9 rounds, and writes RELIABILITY.md at the repository root with the
// figures of every case.
package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// soak is true under FALLOM_SOAK=1: the long version of every case.
var soak = os.Getenv("FALLOM_SOAK") == "1"

// pick returns the bounded or the soak value.
func pick[T any](bounded, long T) T {
	if soak {
		return long
	}
	return bounded
}

// caseFigures are the figures of one case for RELIABILITY.md.
type caseFigures struct {
	mu         sync.Mutex
	name       string
	tried      int // sub-cases (bad inputs, rounds) tried
	acked      int // spans acknowledged to the client (2xx)
	lost       int // acknowledged but not stored
	duplicated int // stored more than once
	crashes    int // unexpected exits of the collector
	notes      []string
	failed     bool
	elapsed    time.Duration
}

func (f *caseFigures) addCrash() {
	f.mu.Lock()
	f.crashes++
	f.mu.Unlock()
}

func (f *caseFigures) add(tried, acked, lost, duplicated int) {
	f.mu.Lock()
	f.tried += tried
	f.acked += acked
	f.lost += lost
	f.duplicated += duplicated
	f.mu.Unlock()
}

func (f *caseFigures) note(format string, args ...any) {
	f.mu.Lock()
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

var book struct {
	mu    sync.Mutex
	cases []*caseFigures
}

// newCase registers the figures of the running test; its pass/fail state is
// taken when the test ends.
func newCase(t *testing.T, name string) *caseFigures {
	f := &caseFigures{name: name}
	begin := time.Now()
	book.mu.Lock()
	book.cases = append(book.cases, f)
	book.mu.Unlock()
	t.Cleanup(func() {
		f.mu.Lock()
		f.failed = t.Failed()
		f.elapsed = time.Since(begin)
		f.mu.Unlock()
		t.Logf("figures: %s", f.line())
	})
	return f
}

func (f *caseFigures) line() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%s: tried %d, acknowledged %d, lost %d, duplicated %d, crashes %d", f.name, f.tried, f.acked, f.lost, f.duplicated, f.crashes)
}

func TestMain(m *testing.M) {
	begin := time.Now()
	code := m.Run()
	if soak {
		if err := writeReport(time.Since(begin), code); err != nil {
			fmt.Fprintf(os.Stderr, "reliability: writing RELIABILITY.md: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// repoRoot finds the directory of the project's go.mod above the package.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(b), "module github.com/fallom/fallom-collector\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no fallom-collector go.mod above %s", dir)
		}
		dir = parent
	}
}

func writeReport(elapsed time.Duration, code int) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	book.mu.Lock()
	cases := append([]*caseFigures(nil), book.cases...)
	book.mu.Unlock()

	var b strings.Builder
	b.WriteString("# Reliability (soak run)\n\n")
	b.WriteString("Written by `make soak` (`FALLOM_SOAK=1 go test ./test/reliability/`): the real `bin/fallomcol`\n")
	b.WriteString("under bad input, kill -9 under load, a PostgreSQL outage, a full disk, concurrent tenants,\n")
	b.WriteString("key revocation and overload. Spans are counted on the client side: *acknowledged* = in a\n")
	b.WriteString("request answered 2xx; *lost* = acknowledged but absent from the database; *duplicated* =\n")
	b.WriteString("stored more than once; *crashes* = the collector exiting without the test killing it.\n\n")
	status := "PASS"
	if code != 0 {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "Run: %s, %s, %d CPUs, %s, took %s: **%s**.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH,
		elapsed.Round(time.Second), status)
	b.WriteString("| case | result | tried | acknowledged | lost | duplicated | crashes | time |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var tot caseFigures
	for _, c := range cases {
		c.mu.Lock()
		result := "pass"
		if c.failed {
			result = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %s |\n", c.name, result, c.tried, c.acked, c.lost, c.duplicated, c.crashes, c.elapsed.Round(time.Second))
		tot.tried += c.tried
		tot.acked += c.acked
		tot.lost += c.lost
		tot.duplicated += c.duplicated
		tot.crashes += c.crashes
		c.mu.Unlock()
	}
	fmt.Fprintf(&b, "| **total** | | %d | %d | %d | %d | %d | |\n\n", tot.tried, tot.acked, tot.lost, tot.duplicated, tot.crashes)
	b.WriteString("## Observations\n\n")
	for _, c := range cases {
		c.mu.Lock()
		for _, n := range c.notes {
			fmt.Fprintf(&b, "- %s: %s\n", c.name, n)
		}
		c.mu.Unlock()
	}
	return os.WriteFile(filepath.Join(root, "RELIABILITY.md"), []byte(b.String()), 0o644)
}
