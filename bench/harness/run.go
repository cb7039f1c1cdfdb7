// Package harness runs the side-by-side benchmark of fallom-collector and a
// stock collector wired by hand: it starts each pipeline's collector on this
// machine, drives it to saturation with the load generator in interleaved
// rounds, measures the collector process from /proc, overloads it, runs the
// components' Go microbenchmarks, and writes BENCHMARKS.md and
// bench/results/latest.json.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fallom/fallom-collector/bench/loadgen"
	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

// Options configure a bench run. DefaultOptions is what `make bench` runs.
type Options struct {
	Root      string   // repository root
	Pipelines []string // subset of AllPipelines, run in this order each round
	Rounds    int
	Warmup    time.Duration // load before each measured window (not measured)
	Measure   time.Duration // measured window of each run

	// Concurrency fixes the number of connections; 0 calibrates it per
	// pipeline: a ramp through RampLevels (RampStep each) picks the level
	// with the most acknowledged spans/s.
	Concurrency int
	RampLevels  []int
	RampStep    time.Duration

	// Overload runs each of OverloadPipelines at OverloadFactor times its
	// saturated throughput (open loop) for OverloadDuration.
	OverloadPipelines   []string
	OverloadFactor      float64
	OverloadDuration    time.Duration
	OverloadMaxInFlight int
	// After the overload, a light load (2 connections) runs for
	// RecoveryDuration, RecoveryPause later, to show the collector recovers.
	RecoveryPause    time.Duration
	RecoveryDuration time.Duration

	// Micro runs the components' Go benchmarks.
	Micro          bool
	MicroBenchtime string
	MicroCount     int

	// Console is the console section (issue 11.7); no Backends: skipped.
	Console ConsoleOptions

	Delivery       loadgen.DeliveryConfig
	MemoryLimitMiB int
	MemorySpikeMiB int

	// ProfileDir, when set, makes our collectors run the pprof extension
	// and saves a CPU profile of each measured window there as
	// <pipeline>-r<round>.pprof (for `go tool pprof bin/fallomcol FILE`).
	// Profiling costs a few percent of CPU, alike for every pipeline.
	// DefaultOptions takes it from $BENCH_CPUPROFILE_DIR.
	ProfileDir string

	WorkDir     string // scratch space (default: a new dir under /tmp, removed at the end)
	JSONOut     string // "" = do not write
	MarkdownOut string
	Log         io.Writer
}

// DefaultOptions is the full run behind `make bench` (about 13 minutes on 2
// cores, plus a few minutes the first time the peer is built).
func DefaultOptions(root string) Options {
	return Options{
		Root:                root,
		Pipelines:           slices.Clone(AllPipelines),
		Rounds:              3,
		Warmup:              3 * time.Second,
		Measure:             15 * time.Second,
		RampLevels:          []int{2, 4, 8, 16, 32, 64, 128, 256, 512},
		RampStep:            3 * time.Second,
		OverloadPipelines:   []string{OursSQLite, Peer},
		OverloadFactor:      2,
		OverloadDuration:    20 * time.Second,
		OverloadMaxInFlight: 4096,
		RecoveryPause:       2 * time.Second,
		RecoveryDuration:    3 * time.Second,
		Micro:               true,
		MicroBenchtime:      "1s",
		MicroCount:          3,
		Console:             DefaultConsoleOptions(),
		Delivery:            loadgen.DefaultDeliveryConfig(),
		MemoryLimitMiB:      512,
		MemorySpikeMiB:      128,
		JSONOut:             filepath.Join(root, "bench", "results", "latest.json"),
		MarkdownOut:         filepath.Join(root, "BENCHMARKS.md"),
		ProfileDir:          os.Getenv("BENCH_CPUPROFILE_DIR"),
		Log:                 os.Stderr,
	}
}

// OursBinary is where `make build` puts the collector; FALLOMCOL_BIN
// overrides it (as for internal/testutil/collectortest).
func OursBinary(root string) string {
	if p := os.Getenv("FALLOMCOL_BIN"); p != "" {
		return p
	}
	return filepath.Join(root, "bin", "fallomcol")
}

// RampStep is one calibration step.
type RampStep struct {
	Concurrency int     `json:"concurrency"`
	SpansPerSec float64 `json:"spans_per_s"`
	P99ms       float64 `json:"p99_ms"`
	Errors      int64   `json:"errors"`
}

// Sample is one measured run of one pipeline.
type Sample struct {
	Round       int      `json:"round"`
	Concurrency int      `json:"concurrency"`
	SpansPerSec float64  `json:"spans_per_s"`
	CPUSeconds  float64  `json:"cpu_s"`
	CPUPer10k   float64  `json:"cpu_s_per_10k_spans"`
	DBCPUPer10k *float64 `json:"db_cpu_s_per_10k_spans,omitempty"`
	PeakRSSMiB  float64  `json:"peak_rss_mib"`
	// LoadgenCPUSeconds is what the load generator (this process) used in
	// the measured window, on the same cores.
	LoadgenCPUSeconds float64        `json:"loadgen_cpu_s"`
	Load              loadgen.Result `json:"load"`
	AckedTotal        int64          `json:"acked_total"`            // warmup + measured
	StoredSpans       *int64         `json:"stored_spans,omitempty"` // rows after shutdown
	Error             string         `json:"error,omitempty"`
}

// PipelineResult summarises a pipeline over the rounds: medians of spans/s
// and CPU, the highest peak RSS.
type PipelineResult struct {
	SpansPerSec float64  `json:"spans_per_s"`
	CPUPer10k   float64  `json:"cpu_s_per_10k_spans"`
	PeakRSSMiB  float64  `json:"peak_rss_mib"`
	DBCPUPer10k *float64 `json:"db_cpu_s_per_10k_spans,omitempty"`
	// LoadgenCPUPer10k is the load generator's CPU per 10k acknowledged
	// spans (median): the share of the machine the measurement itself took.
	LoadgenCPUPer10k float64 `json:"loadgen_cpu_s_per_10k_spans"`
	SpansPerSMin     float64 `json:"spans_per_s_min"`
	SpansPerSMax     float64 `json:"spans_per_s_max"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Errors           int64   `json:"errors"`
	// LostAcked is the number of acknowledged spans missing from storage
	// after a clean shutdown, over all runs (nil: storage not queryable).
	LostAcked   *int64     `json:"lost_acked_spans,omitempty"`
	Concurrency int        `json:"concurrency"`
	Description string     `json:"description"`
	Ramp        []RampStep `json:"ramp,omitempty"`
	Samples     []Sample   `json:"samples"`
	Error       string     `json:"error,omitempty"`
}

// OverloadResult is what a collector did at OverloadFactor x its saturated
// load.
type OverloadResult struct {
	Pipeline             string         `json:"pipeline"`
	TargetSpansPerSec    float64        `json:"target_spans_per_s"`
	SaturatedSpansPerSec float64        `json:"saturated_spans_per_s"`
	RequestsPerSec       float64        `json:"requests_per_s"`
	Load                 loadgen.Result `json:"load"`
	Throttled            int64          `json:"answers_429_503"`
	ThrottledRetryAfter  int64          `json:"answers_429_503_with_retry_after"`
	MaxRSSMiB            float64        `json:"max_rss_mib"`  // sampled VmRSS during the phase
	PeakRSSMiB           float64        `json:"peak_rss_mib"` // VmHWM
	MemoryLimitMiB       int            `json:"memory_limit_mib"`
	// CPU used during the overload window by the collector and by the load
	// generator (which shares the cores).
	CollectorCPUSeconds float64         `json:"collector_cpu_s"`
	LoadgenCPUSeconds   float64         `json:"loadgen_cpu_s"`
	Survived            bool            `json:"survived"`
	Recovery            *loadgen.Result `json:"recovery,omitempty"`
	Error               string          `json:"error,omitempty"`
}

// Results is what results/latest.json holds.
type Results struct {
	Pipelines map[string]*PipelineResult `json:"pipelines"`
	Processor ProcessorResult            `json:"processor"`
	Auth      AuthResult                 `json:"auth"`
	Storage   map[string]float64         `json:"storage,omitempty"` // benchmark name -> ns/op
	Overload  []OverloadResult           `json:"overload,omitempty"`
	Console   []ConsoleResult            `json:"console,omitempty"`
	Ratios    map[string]float64         `json:"ratios"`
	Goals     []Goal                     `json:"goals"`
	Micro     []MicroResult              `json:"micro,omitempty"`
	Missing   []string                   `json:"missing,omitempty"` // what could not be measured, and why
	Machine   Machine                    `json:"machine"`
	Settings  Settings                   `json:"settings"`
	Started   time.Time                  `json:"started"`
	DurationS float64                    `json:"duration_s"`
}

// ProcessorResult compares the mapping processor with the OTTL transform.
type ProcessorResult struct {
	OursNsPerSpan          *float64 `json:"ours_ns_per_span"`
	OTTLNsPerSpan          *float64 `json:"ottl_ns_per_span"`
	AttributeReadFloor     *float64 `json:"attribute_read_floor_ns_per_span,omitempty"`
	OTTLAttributeReadFloor *float64 `json:"ottl_module_attribute_read_floor_ns_per_span,omitempty"`
}

// AuthResult compares fallomauth with contrib's bearertokenauth.
type AuthResult struct {
	Ours10       *float64 `json:"ours_ns_10_keys"`
	Ours10000    *float64 `json:"ours_ns_10000_keys"`
	Contrib10    *float64 `json:"contrib_ns_10_keys"`
	Contrib10000 *float64 `json:"contrib_ns_10000_keys,omitempty"`
}

// Goal is one of the targets.
type Goal struct {
	Name   string   `json:"name"`
	Target float64  `json:"target"`
	Value  *float64 `json:"value"`
	Met    bool     `json:"met"`
}

// Settings echo what the run did.
type Settings struct {
	Rounds              int                    `json:"rounds"`
	WarmupS             float64                `json:"warmup_s"`
	MeasureS            float64                `json:"measure_s"`
	FixedConcurrency    int                    `json:"fixed_concurrency,omitempty"`
	RampLevels          []int                  `json:"ramp_levels,omitempty"`
	RampStepS           float64                `json:"ramp_step_s,omitempty"`
	Delivery            loadgen.DeliveryConfig `json:"delivery"`
	MemoryLimitMiB      int                    `json:"memory_limit_mib"`
	MemorySpikeMiB      int                    `json:"memory_spike_mib"`
	OverloadFactor      float64                `json:"overload_factor"`
	OverloadS           float64                `json:"overload_s"`
	OverloadMaxInFlight int                    `json:"overload_max_in_flight"`
	MicroBenchtime      string                 `json:"micro_benchtime"`
	MicroCount          int                    `json:"micro_count"`
	Command             string                 `json:"command"`
}

// Run executes the bench and writes the outputs it is given. It returns the
// results even when some part failed (recorded in Missing and per pipeline),
// with an error naming what failed.
func Run(ctx context.Context, o Options) (*Results, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	start := time.Now()
	res := &Results{
		Pipelines: map[string]*PipelineResult{},
		Ratios:    map[string]float64{},
		Started:   start.UTC(),
		Machine:   ReadMachine(o.Root),
		Settings: Settings{
			Rounds: o.Rounds, WarmupS: o.Warmup.Seconds(), MeasureS: o.Measure.Seconds(),
			FixedConcurrency: o.Concurrency, Delivery: o.Delivery,
			MemoryLimitMiB: o.MemoryLimitMiB, MemorySpikeMiB: o.MemorySpikeMiB,
			OverloadFactor: o.OverloadFactor, OverloadS: o.OverloadDuration.Seconds(), OverloadMaxInFlight: o.OverloadMaxInFlight,
			MicroBenchtime: o.MicroBenchtime, MicroCount: o.MicroCount,
			Command: strings.Join(os.Args, " "),
		},
	}
	if o.Concurrency == 0 {
		res.Settings.RampLevels, res.Settings.RampStepS = o.RampLevels, o.RampStep.Seconds()
	}
	var failures []string
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		failures = append(failures, msg)
		fmt.Fprintln(o.Log, "FAILED:", msg)
	}

	if len(o.Pipelines) > 0 || len(o.Console.Backends) > 0 {
		if err := runPipelines(ctx, o, res, fail); err != nil {
			return res, err
		}
	}
	if o.Micro && ctx.Err() == nil {
		runAllMicro(ctx, o, res, fail)
	}
	summarize(res)
	res.DurationS = time.Since(start).Seconds()
	res.Machine.LoadAvgEnd = LoadAvg()
	if o.JSONOut != "" {
		if err := WriteJSON(o.JSONOut, res); err != nil {
			return res, err
		}
		fmt.Fprintf(o.Log, "wrote %s\n", o.JSONOut)
	}
	if o.MarkdownOut != "" {
		if err := os.WriteFile(o.MarkdownOut, []byte(Markdown(res)), 0o644); err != nil {
			return res, err
		}
		fmt.Fprintf(o.Log, "wrote %s\n", o.MarkdownOut)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(failures) > 0 {
		return res, errors.New(strings.Join(failures, "; "))
	}
	return res, nil
}

func runPipelines(ctx context.Context, o Options, res *Results, fail func(string, ...any)) error {
	bin := OursBinary(o.Root)
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is missing: run make build first", bin)
	}
	w := &World{Root: o.Root, OursBin: bin, MemoryLimitMiB: o.MemoryLimitMiB, MemorySpikeMiB: o.MemorySpikeMiB, Log: o.Log, ProfileDir: o.ProfileDir}
	w.WorkDir = o.WorkDir
	if w.WorkDir == "" {
		d, err := os.MkdirTemp("", "fallom-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		w.WorkDir = d
	}
	if err := os.MkdirAll(w.WorkDir, 0o755); err != nil {
		return err
	}
	// The API key comes from the real CLI, as a user would get it.
	w.KeysFile = filepath.Join(w.WorkDir, "keys.yaml")
	out, err := exec.CommandContext(ctx, bin, "keys", "create", "--project", "bench", "--name", "loadgen", "--scopes", "ingest,read", "--keys-file", w.KeysFile).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return fmt.Errorf("%s keys create: %w", bin, err)
	}
	w.Key = strings.TrimSpace(string(out))
	if !strings.HasPrefix(w.Key, "flm_") {
		return fmt.Errorf("%s keys create printed %d bytes that are not an flm_ key", bin, len(out))
	}

	pipelines := slices.Clone(o.Pipelines)
	drop := func(name, why string) {
		fail("%s: %s", name, why)
		res.Pipelines[name] = &PipelineResult{Description: Descriptions[name], Error: why}
		pipelines = slices.DeleteFunc(pipelines, func(p string) bool { return p == name })
	}
	if slices.Contains(pipelines, Peer) {
		pb, err := EnsurePeer(ctx, o.Root, o.Log)
		if err != nil {
			drop(Peer, err.Error())
		}
		w.PeerBin = pb
	}
	if slices.Contains(pipelines, OursSQLiteBase) {
		bb, tree, err := EnsureBase(ctx, o.Root, BaseRev(), o.Log)
		if err != nil {
			drop(OursSQLiteBase, err.Error())
		}
		w.BaseBin, w.BaseTree = bb, tree
	}
	if slices.Contains(pipelines, OursPostgres) || slices.Contains(o.Console.Backends, "postgres") {
		pg, err := pgtest.StartServer("")
		if err != nil {
			drop(OursPostgres, err.Error())
		} else {
			w.PG = pg
			defer func() {
				_ = pg.Stop()
				_ = os.RemoveAll(pg.Dir())
			}()
		}
	}

	conc := map[string]int{}
	for _, name := range pipelines {
		res.Pipelines[name] = &PipelineResult{Description: Descriptions[name], Concurrency: o.Concurrency}
		conc[name] = o.Concurrency
	}
	// Calibration: find each pipeline's saturating concurrency.
	if o.Concurrency == 0 {
		for _, name := range pipelines {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ramp, best, err := calibrate(ctx, w, name, o)
			pr := res.Pipelines[name]
			pr.Ramp = ramp
			if err != nil {
				fail("%s calibration: %v", name, err)
				pr.Error = err.Error()
				best = o.RampLevels[len(o.RampLevels)/2]
			}
			conc[name], pr.Concurrency = best, best
		}
	}
	// Measured rounds, interleaved: A B C D, A B C D, ...
	for round := 1; round <= o.Rounds; round++ {
		for _, name := range pipelines {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s := measure(ctx, w, name, round, conc[name], o)
			if s.Error != "" {
				fail("%s round %d: %s", name, round, s.Error)
			}
			res.Pipelines[name].Samples = append(res.Pipelines[name].Samples, s)
			fmt.Fprintf(o.Log, "round %d %-16s c=%-3d %8.0f spans/s  cpu %.3f s/10k  rss %.0f MiB  p99 %.0f ms  errors %d\n",
				round, name, s.Concurrency, s.SpansPerSec, s.CPUPer10k, s.PeakRSSMiB, s.Load.LatencyOK.P99, s.Load.Errors())
		}
	}
	for _, name := range pipelines {
		aggregate(res.Pipelines[name])
	}
	// Overload: OverloadFactor x the saturated throughput, open loop.
	for _, name := range o.OverloadPipelines {
		pr := res.Pipelines[name]
		if pr == nil || !slices.Contains(pipelines, name) || ctx.Err() != nil {
			continue
		}
		if pr.SpansPerSec <= 0 {
			fail("%s overload: no saturated throughput to double", name)
			continue
		}
		ov := overload(ctx, w, name, pr.SpansPerSec*o.OverloadFactor, o)
		if ov.Error != "" {
			fail("%s overload: %s", name, ov.Error)
		}
		res.Overload = append(res.Overload, ov)
	}
	// The console section: reads of a million stored spans.
	if len(o.Console.Backends) > 0 && ctx.Err() == nil {
		res.Console = RunConsole(ctx, w, o.Console, o.Log)
		for _, c := range res.Console {
			if c.Error != "" {
				fail("console on %s: %s", c.Backend, c.Error)
			}
		}
	}
	return nil
}

// loadConfig is the closed-loop load of one run.
func loadConfig(inst *Instance, key string, c int, d time.Duration, o Options) loadgen.Config {
	return loadgen.Config{URL: inst.URL, APIKey: key, Concurrency: c, Duration: d, Delivery: o.Delivery}
}

func calibrate(ctx context.Context, w *World, name string, o Options) ([]RampStep, int, error) {
	inst, err := w.Start(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	defer inst.Cleanup()
	defer inst.Proc.Stop(30 * time.Second)
	if _, err := loadgen.Run(ctx, loadConfig(inst, w.Key, o.RampLevels[0], o.Warmup, o)); err != nil {
		return nil, 0, err
	}
	// Every level runs (a 2-core machine shared with the load generator is
	// noisy: stopping at the first flat step picks a level by chance); the
	// level with the most acknowledged spans/s is the saturating one.
	var ramp []RampStep
	best, bestC := 0.0, o.RampLevels[0]
	for _, c := range o.RampLevels {
		r, err := loadgen.Run(ctx, loadConfig(inst, w.Key, c, o.RampStep, o))
		if err != nil {
			return ramp, bestC, err
		}
		ramp = append(ramp, RampStep{Concurrency: c, SpansPerSec: r.SpansPerSec, P99ms: r.LatencyOK.P99, Errors: r.Errors()})
		fmt.Fprintf(o.Log, "ramp  %-13s c=%-3d %8.0f spans/s  p99 %.0f ms  errors %d\n", name, c, r.SpansPerSec, r.LatencyOK.P99, r.Errors())
		if !inst.Proc.Alive() {
			return ramp, bestC, fmt.Errorf("collector died during the ramp: %v\n%s", inst.Proc.ExitError(), inst.Proc.LogTail(2048))
		}
		if r.SpansPerSec > best {
			best, bestC = r.SpansPerSec, c
		}
	}
	return ramp, bestC, nil
}

// settle is how long the harness waits after the load stops before reading
// the collector's CPU time, so a batch still in flight (the peer's batch
// processor flushes every 200 ms) is charged to the run.
const settle = 300 * time.Millisecond

func measure(ctx context.Context, w *World, name string, round, c int, o Options) (s Sample) {
	s = Sample{Round: round, Concurrency: c}
	inst, err := w.Start(ctx, name)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer inst.Cleanup()
	stopped := false
	defer func() {
		if !stopped {
			_ = inst.Proc.Stop(30 * time.Second)
		}
	}()
	warm, err := loadgen.Run(ctx, loadConfig(inst, w.Key, c, o.Warmup, o))
	if err != nil {
		s.Error = err.Error()
		return s
	}
	pid := inst.Proc.Pid()
	cpu0, err := CPUSeconds(pid)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	var db0 float64
	if inst.DBPid != 0 {
		db0, _ = TreeCPUSeconds(inst.DBPid)
	}
	gen0, _ := CPUSeconds(os.Getpid())
	profiled := w.captureProfile(ctx, inst, fmt.Sprintf("%s-r%d", name, round), o.Measure)
	s.Load, err = loadgen.Run(ctx, loadConfig(inst, w.Key, c, o.Measure, o))
	if perr := <-profiled; perr != nil {
		fmt.Fprintf(o.Log, "%s round %d: CPU profile: %v\n", name, round, perr)
	}
	if err != nil {
		s.Error = err.Error()
		return s
	}
	if gen1, err := CPUSeconds(os.Getpid()); err == nil {
		s.LoadgenCPUSeconds = gen1 - gen0
	}
	time.Sleep(settle)
	cpu1, err := CPUSeconds(pid)
	if err != nil {
		s.Error = fmt.Sprintf("collector gone after the run: %v; log tail:\n%s", inst.Proc.ExitError(), inst.Proc.LogTail(2048))
		return s
	}
	mem, err := ReadMemory(pid)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.SpansPerSec = s.Load.SpansPerSec
	s.CPUSeconds = cpu1 - cpu0
	if s.Load.AckedSpans > 0 {
		s.CPUPer10k = s.CPUSeconds / float64(s.Load.AckedSpans) * 1e4
		if inst.DBPid != 0 {
			if db1, err := TreeCPUSeconds(inst.DBPid); err == nil {
				v := (db1 - db0) / float64(s.Load.AckedSpans) * 1e4
				s.DBCPUPer10k = &v
			}
		}
	}
	s.PeakRSSMiB = float64(mem.PeakBytes) / mib
	s.AckedTotal = warm.AckedSpans + s.Load.AckedSpans
	if s.Load.AckedSpans == 0 {
		s.Error = fmt.Sprintf("no span acknowledged (status %v, transport errors %v); log tail:\n%s", s.Load.Status, s.Load.TransportErrors, inst.Proc.LogTail(2048))
	}
	stopped = true
	if err := inst.Proc.Stop(30 * time.Second); err != nil && s.Error == "" {
		s.Error = "stop: " + err.Error()
	}
	// Durability check: every acknowledged span must be in storage after a
	// clean shutdown.
	if inst.CountStored != nil {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := inst.CountStored(cctx)
		cancel()
		if err != nil {
			if s.Error == "" {
				s.Error = "count stored spans: " + err.Error()
			}
		} else {
			s.StoredSpans = &n
		}
	}
	return s
}

func overload(ctx context.Context, w *World, name string, target float64, o Options) (ov OverloadResult) {
	ov = OverloadResult{Pipeline: name, TargetSpansPerSec: target, SaturatedSpansPerSec: target / o.OverloadFactor, MemoryLimitMiB: o.MemoryLimitMiB}
	perRequest := float64(loadgen.SpansPerDelivery)
	ov.RequestsPerSec = target / perRequest
	inst, err := w.Start(ctx, name)
	if err != nil {
		ov.Error = err.Error()
		return ov
	}
	defer inst.Cleanup()
	pid := inst.Proc.Pid()

	// Sample the resident set while the load runs.
	var maxRSS int64
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := ReadMemory(pid); err == nil {
				mu.Lock()
				maxRSS = max(maxRSS, m.RSSBytes)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	gen0, _ := CPUSeconds(os.Getpid())
	col0, _ := CPUSeconds(pid)
	ov.Load, err = loadgen.Run(ctx, loadgen.Config{
		URL: inst.URL, APIKey: w.Key, Rate: ov.RequestsPerSec, MaxInFlight: o.OverloadMaxInFlight,
		Duration: o.OverloadDuration, Timeout: 10 * time.Second, Delivery: o.Delivery,
	})
	if gen1, err := CPUSeconds(os.Getpid()); err == nil {
		ov.LoadgenCPUSeconds = gen1 - gen0
	}
	if col1, err := CPUSeconds(pid); err == nil {
		ov.CollectorCPUSeconds = col1 - col0
	}
	close(done)
	wg.Wait()
	ov.MaxRSSMiB = float64(maxRSS) / mib
	if err != nil {
		ov.Error = err.Error()
	}
	ov.Throttled = ov.Load.Status[429] + ov.Load.Status[503]
	ov.ThrottledRetryAfter = ov.Load.RetryAfter[429] + ov.Load.RetryAfter[503]
	if m, err := ReadMemory(pid); err == nil {
		ov.PeakRSSMiB = float64(m.PeakBytes) / mib
	}
	ov.Survived = inst.Proc.Alive()
	if !ov.Survived {
		ov.Error = fmt.Sprintf("collector died under overload: %v; log tail:\n%s", inst.Proc.ExitError(), inst.Proc.LogTail(4096))
		return ov
	}
	// Recovery: a light load right after must be acknowledged again.
	time.Sleep(o.RecoveryPause)
	rec, err := loadgen.Run(ctx, loadConfig(inst, w.Key, 2, o.RecoveryDuration, o))
	if err == nil {
		ov.Recovery = &rec
	}
	if err := inst.Proc.Stop(30 * time.Second); err != nil {
		ov.Survived = false
		ov.Error = "after overload: " + err.Error()
	}
	fmt.Fprintf(o.Log, "overload %-13s target %.0f spans/s: acked %.0f spans/s, %d x 429/503 (%d with Retry-After), transport errors %v, shed %d, max RSS %.0f MiB (limit %d), survived %v\n",
		name, target, ov.Load.SpansPerSec, ov.Throttled, ov.ThrottledRetryAfter, ov.Load.TransportErrors, ov.Load.Shed, ov.MaxRSSMiB, o.MemoryLimitMiB, ov.Survived)
	return ov
}

func aggregate(pr *PipelineResult) {
	var sps, cpu, db, p50, p99, gen []float64
	var lost int64
	queryable := false
	for _, s := range pr.Samples {
		pr.Errors += s.Load.Errors()
		if s.Load.AckedSpans == 0 {
			continue
		}
		sps = append(sps, s.SpansPerSec)
		cpu = append(cpu, s.CPUPer10k)
		gen = append(gen, s.LoadgenCPUSeconds/float64(s.Load.AckedSpans)*1e4)
		p50 = append(p50, s.Load.LatencyOK.P50)
		p99 = append(p99, s.Load.LatencyOK.P99)
		if s.DBCPUPer10k != nil {
			db = append(db, *s.DBCPUPer10k)
		}
		pr.PeakRSSMiB = max(pr.PeakRSSMiB, s.PeakRSSMiB)
		if s.StoredSpans != nil {
			queryable = true
			lost += max(0, s.AckedTotal-*s.StoredSpans)
		}
	}
	if len(sps) == 0 {
		return
	}
	pr.SpansPerSec, pr.CPUPer10k, pr.LoadgenCPUPer10k = median(sps), median(cpu), median(gen)
	pr.SpansPerSMin, pr.SpansPerSMax = slices.Min(sps), slices.Max(sps)
	pr.P50ms, pr.P99ms = median(p50), median(p99)
	if len(db) > 0 {
		v := median(db)
		pr.DBCPUPer10k = &v
	}
	if queryable {
		pr.LostAcked = &lost
	}
}

func runAllMicro(ctx context.Context, o Options, res *Results, fail func(string, ...any)) {
	pkgs, err := discoverBenchmarks(o.Root)
	if err != nil {
		fail("discover benchmarks: %v", err)
	}
	for _, bp := range pkgs {
		if ctx.Err() != nil {
			return
		}
		r, err := runMicro(ctx, bp, o.Root, o.MicroBenchtime, o.MicroCount, o.Log)
		res.Micro = append(res.Micro, r...)
		if err != nil {
			fail("%v", err)
		}
	}
}
