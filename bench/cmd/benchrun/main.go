// Command benchrun is `make bench`: it runs our pipeline (nop, SQLite,
// PostgreSQL) and a stock peer collector side by side on this machine, in
// interleaved rounds, plus an overload phase and the components' Go
// microbenchmarks, and writes BENCHMARKS.md and bench/results/latest.json.
//
// Prerequisite: bin/fallomcol (make build). The peer is built with ocb into
// .build/ on first use and cached. Run it from the repository root:
//
//	go run ./bench/cmd/benchrun
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fallom/fallom-collector/bench/harness"
)

func main() {
	root, err := findRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(2)
	}
	o := harness.DefaultOptions(root)
	pipelines := flag.String("pipelines", strings.Join(o.Pipelines, ","), "pipelines to run, in round order (empty: none)")
	overload := flag.String("overload", strings.Join(o.OverloadPipelines, ","), "pipelines to overload (empty: none)")
	ramp := flag.String("ramp", ints(o.RampLevels), "concurrency levels of the calibration ramp")
	flag.IntVar(&o.Rounds, "rounds", o.Rounds, "interleaved measured rounds")
	flag.DurationVar(&o.Warmup, "warmup", o.Warmup, "warm-up before each measured window")
	flag.DurationVar(&o.Measure, "measure", o.Measure, "measured window per run")
	flag.IntVar(&o.Concurrency, "concurrency", 0, "fixed connections per pipeline (0: calibrate with the ramp)")
	flag.DurationVar(&o.RampStep, "ramp-step", o.RampStep, "duration of each ramp step")
	flag.Float64Var(&o.OverloadFactor, "overload-factor", o.OverloadFactor, "overload = this x saturated spans/s")
	flag.DurationVar(&o.OverloadDuration, "overload-duration", o.OverloadDuration, "overload phase duration")
	flag.IntVar(&o.OverloadMaxInFlight, "overload-max-in-flight", o.OverloadMaxInFlight, "most outstanding requests during overload")
	flag.BoolVar(&o.Micro, "micro", o.Micro, "run the components' Go microbenchmarks")
	flag.StringVar(&o.MicroBenchtime, "benchtime", o.MicroBenchtime, "go test -benchtime for the microbenchmarks")
	flag.IntVar(&o.MicroCount, "count", o.MicroCount, "go test -count for the microbenchmarks")
	flag.IntVar(&o.Delivery.PromptBytes, "prompt-bytes", o.Delivery.PromptBytes, "prompt size")
	flag.IntVar(&o.Delivery.CompletionBytes, "completion-bytes", o.Delivery.CompletionBytes, "completion size")
	flag.IntVar(&o.Delivery.Sessions, "sessions", o.Delivery.Sessions, "distinct sessions")
	flag.IntVar(&o.Delivery.Customers, "customers", o.Delivery.Customers, "distinct customers")
	flag.IntVar(&o.MemoryLimitMiB, "memory-limit-mib", o.MemoryLimitMiB, "memory_limiter limit_mib of every pipeline")
	flag.IntVar(&o.MemorySpikeMiB, "memory-spike-mib", o.MemorySpikeMiB, "memory_limiter spike_limit_mib of every pipeline")
	console := flag.String("console", strings.Join(o.Console.Backends, ","), "backends of the console section: sqlite,postgres (empty: skip it)")
	flag.IntVar(&o.Console.Spans, "console-spans", o.Console.Spans, "spans stored for the console section")
	flag.IntVar(&o.Console.Requests, "console-requests", o.Console.Requests, "measured requests per console route")
	flag.DurationVar(&o.Console.LoadFor, "console-load-for", o.Console.LoadFor, "length of the concurrent page loads")
	flag.StringVar(&o.Console.KeepDir, "console-keep", o.Console.KeepDir, "keep the console section's SQLite file in this directory and reuse it")
	flag.StringVar(&o.JSONOut, "json", o.JSONOut, "results JSON path (empty: do not write)")
	flag.StringVar(&o.MarkdownOut, "markdown", o.MarkdownOut, "BENCHMARKS.md path (empty: do not write)")
	flag.StringVar(&o.WorkDir, "workdir", "", "scratch directory (default: a temp dir, removed)")
	flag.Parse()

	o.Pipelines = list(*pipelines)
	o.Console.Backends = list(*console)
	o.OverloadPipelines = list(*overload)
	if o.RampLevels, err = parseInts(*ramp); err != nil || len(o.RampLevels) == 0 {
		fmt.Fprintln(os.Stderr, "benchrun: -ramp:", err)
		os.Exit(2)
	}
	for _, p := range append(append([]string{}, o.Pipelines...), o.OverloadPipelines...) {
		if _, ok := harness.Descriptions[p]; !ok {
			fmt.Fprintf(os.Stderr, "benchrun: unknown pipeline %q (known: %s)\n", p, strings.Join(harness.AllPipelines, ", "))
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := harness.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

// findRoot walks up from the working directory to the repository's go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(raw), "module github.com/fallom/fallom-collector\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run from inside the fallom-collector repository")
		}
		dir = parent
	}
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range list(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad level %q", p)
		}
		out = append(out, n)
	}
	return out, nil
}
