package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// MicroBenchmarks are the Go benchmarks of the other components that the
// bench run collects, by function name. Where they live is discovered (the
// components move while they are being built); names are the contract.
var MicroBenchmarks = regexp.MustCompile(`^Benchmark(Authenticate|AuthenticateFloor|ProcessOpenRouter|Attribute[A-Za-z]*Floor|OTTLTransform|Write[A-Za-z0-9_]*|AckModes|BytesPerSpan)$`)

// MicroResult is one benchmark (or sub-benchmark), its metrics the median
// over the -count runs.
type MicroResult struct {
	Name    string             `json:"name"` // e.g. BenchmarkAuthenticate/ours_10_keys
	Package string             `json:"package"`
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"` // unit -> value: ns/op, B/op, allocs/op, ns/span, ...
}

// benchPackage is a package holding wanted benchmarks.
type benchPackage struct {
	ModuleDir string   // directory of the go.mod that owns the package
	Pkg       string   // ./relative/path from ModuleDir
	Funcs     []string // benchmark function names
}

var benchFunc = regexp.MustCompile(`(?m)^func (Benchmark\w+)\(b \*testing\.B\)`)

// discoverBenchmarks walks the repository for _test.go files declaring the
// wanted benchmarks.
func discoverBenchmarks(root string) ([]benchPackage, error) {
	byDir := map[string]*benchPackage{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "data" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range benchFunc.FindAllSubmatch(src, -1) {
			name := string(m[1])
			if !MicroBenchmarks.MatchString(name) {
				continue
			}
			dir := filepath.Dir(path)
			bp := byDir[dir]
			if bp == nil {
				mod := moduleDir(root, dir)
				rel, _ := filepath.Rel(mod, dir)
				pkg := "./" + filepath.ToSlash(rel)
				if rel == "." {
					pkg = "."
				}
				bp = &benchPackage{ModuleDir: mod, Pkg: pkg}
				byDir[dir] = bp
			}
			if !slices.Contains(bp.Funcs, name) {
				bp.Funcs = append(bp.Funcs, name)
			}
		}
		return nil
	})
	var out []benchPackage
	for _, bp := range byDir {
		sort.Strings(bp.Funcs)
		out = append(out, *bp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ModuleDir+out[i].Pkg < out[j].ModuleDir+out[j].Pkg })
	return out, err
}

// moduleDir is the nearest directory at or above dir (and not above root)
// holding a go.mod.
func moduleDir(root, dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if d == root || d == filepath.Dir(d) {
			return root
		}
	}
}

// runMicro runs the wanted benchmarks of one package and parses the output.
func runMicro(ctx context.Context, bp benchPackage, root, benchtime string, count int, log io.Writer) ([]MicroResult, error) {
	pattern := "^(" + strings.Join(bp.Funcs, "|") + ")$"
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-benchtime", benchtime, "-count", strconv.Itoa(count), bp.Pkg}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = bp.ModuleDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	rel, _ := filepath.Rel(root, filepath.Join(bp.ModuleDir, bp.Pkg))
	fmt.Fprintf(log, "micro: (cd %s && go %s)\n", relOrDot(root, bp.ModuleDir), strings.Join(quoteArgs(args), " "))
	err := cmd.Run()
	results := ParseBenchOutput(out.String(), "./"+filepath.ToSlash(rel))
	if err != nil {
		return results, fmt.Errorf("go test -bench in %s: %v\n%s", rel, err, tail(out.String(), 3000))
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("go test -bench in %s printed no benchmark results:\n%s", rel, tail(out.String(), 3000))
	}
	return results, nil
}

func relOrDot(root, dir string) string {
	r, err := filepath.Rel(root, dir)
	if err != nil {
		return dir
	}
	return r
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$|()* ") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)

// ParseBenchOutput reads `go test -bench` output: each result line is the
// name (with a -GOMAXPROCS suffix), the iteration count and value/unit pairs
// (ns/op, B/op, allocs/op and any b.ReportMetric units). Repeated runs of a
// benchmark (-count) are reduced to the median of each unit.
func ParseBenchOutput(out, pkg string) []MicroResult {
	samples := map[string]map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		f := strings.Fields(m[3])
		if len(f) < 2 || len(f)%2 != 0 {
			continue
		}
		name := m[1]
		if samples[name] == nil {
			samples[name] = map[string][]float64{}
			order = append(order, name)
		}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			samples[name][f[i+1]] = append(samples[name][f[i+1]], v)
		}
	}
	var res []MicroResult
	for _, name := range order {
		r := MicroResult{Name: name, Package: pkg, Metrics: map[string]float64{}}
		for unit, vs := range samples[name] {
			r.Metrics[unit] = median(vs)
			r.Runs = max(r.Runs, len(vs))
		}
		res = append(res, r)
	}
	return res
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
