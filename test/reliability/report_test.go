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
	"flag"
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
	sections   [][2]string // title, markdown body: a "## title" section of its own
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

// section adds a "## title" section of its own to RELIABILITY.md (a
// section of that title from an earlier run is replaced).
func (f *caseFigures) section(title, body string) {
	f.mu.Lock()
	f.sections = append(f.sections, [2]string{title, body})
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

// splitSections cuts a markdown file into its head (before the first "## "
// heading) and its "## " sections in order, each with its title.
func splitSections(text string) (head string, sections [][2]string) {
	parts := strings.Split("\n"+text, "\n## ")
	head = strings.TrimPrefix(parts[0], "\n")
	for _, p := range parts[1:] {
		title, body, _ := strings.Cut(p, "\n")
		sections = append(sections, [2]string{title, strings.TrimSpace(body) + "\n"})
	}
	return head, sections
}

// writeReport writes RELIABILITY.md. A full run rewrites the summary table
// and the observations; a run of some cases only (go test -run) leaves them
// as they are. Sections written by cases replace those of the same title;
// every other section (written by hand or by other runs) is kept.
func writeReport(elapsed time.Duration, code int) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	book.mu.Lock()
	cases := append([]*caseFigures(nil), book.cases...)
	book.mu.Unlock()
	path := filepath.Join(root, "RELIABILITY.md")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	oldHead, oldSections := splitSections(string(old))
	fresh := map[string]string{}
	var freshOrder []string
	for _, c := range cases {
		c.mu.Lock()
		for _, sec := range c.sections {
			if _, ok := fresh[sec[0]]; !ok {
				freshOrder = append(freshOrder, sec[0])
			}
			fresh[sec[0]] = sec[1]
		}
		c.mu.Unlock()
	}
	partial := false
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		partial = true
	}
	var out strings.Builder
	if partial && old != nil {
		out.WriteString(oldHead)
	} else {
		out.WriteString(summary(cases, elapsed, code))
	}
	for _, sec := range oldSections {
		body, replaced := fresh[sec[0]]
		switch {
		case sec[0] == "Observations" && !(partial && old != nil):
			continue // in summary
		case replaced:
			delete(fresh, sec[0])
		default:
			body = sec[1]
		}
		fmt.Fprintf(&out, "\n## %s\n\n%s", sec[0], strings.TrimLeft(body, "\n"))
	}
	for _, title := range freshOrder {
		if body, ok := fresh[title]; ok {
			fmt.Fprintf(&out, "\n## %s\n\n%s", title, body)
		}
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

// summary is the head of RELIABILITY.md: the table of every case and the
// observations section.
func summary(cases []*caseFigures, elapsed time.Duration, code int) string {

	var b strings.Builder
	b.WriteString("# Reliability (soak run)\n\n")
	b.WriteString("Written by `make soak` (`FALLOM_SOAK=1 go test ./test/reliability/`): the real `bin/fallomcol`\n")
	b.WriteString("under bad input, kill -9 under load, a PostgreSQL outage, a full disk, concurrent tenants,\n")
	b.WriteString("key revocation, overload, and a large database migrated and put through retention with replays.\n")
	b.WriteString("Spans are counted on the client side: *acknowledged* = in a\n")
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
	return b.String()
}
