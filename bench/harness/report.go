package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Machine describes where the numbers were taken.
type Machine struct {
	CPUs      int     `json:"nproc"`
	MemoryGiB float64 `json:"memory_gib"`
	CPUModel  string  `json:"cpu_model"`
	Kernel    string  `json:"kernel"`
	GoVersion string  `json:"go_version"`
	Commit    string  `json:"commit,omitempty"`
	// Load averages (1 min) when the run started and ended: other work on
	// the machine during the run shows here.
	LoadAvgStart float64 `json:"loadavg_start"`
	LoadAvgEnd   float64 `json:"loadavg_end"`
}

// LoadAvg is the 1-minute load average.
func LoadAvg() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// ReadMachine reads /proc and the toolchain.
func ReadMachine(root string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: LoadAvg()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			m.GoVersion = f[2]
		}
	}
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

func ptr(v float64) *float64 { return &v }

// findMicro returns the metric of the first result with that name (in that
// package, when pkg is not empty: two packages define the same floor).
func findMicro(res *Results, name, unit string, pkg ...string) *float64 {
	for _, r := range res.Micro {
		if r.Name == name && (len(pkg) == 0 || r.Package == pkg[0]) {
			if v, ok := r.Metrics[unit]; ok {
				return ptr(v)
			}
		}
	}
	return nil
}

// perSpan is a processor benchmark's cost per span: its ns/span metric.
func perSpan(res *Results, name string, pkg ...string) *float64 {
	return findMicro(res, name, "ns/span", pkg...)
}

const (
	processorPkg = "./processor/openroutermappingprocessor"
	ottlPkg      = "./bench/ottl"
)

// summarize derives the comparison fields, ratios and goals from the raw
// measurements.
func summarize(res *Results) {
	res.Processor = ProcessorResult{
		OursNsPerSpan:          perSpan(res, "BenchmarkProcessOpenRouter"),
		OTTLNsPerSpan:          perSpan(res, "BenchmarkOTTLTransform"),
		AttributeReadFloor:     perSpan(res, "BenchmarkAttributeReadFloor", processorPkg),
		OTTLAttributeReadFloor: perSpan(res, "BenchmarkAttributeReadFloor", ottlPkg),
	}
	res.Auth = AuthResult{
		Ours10:       findMicro(res, "BenchmarkAuthenticate/ours_10_keys", "ns/op"),
		Ours10000:    findMicro(res, "BenchmarkAuthenticate/ours_10000_keys", "ns/op"),
		Contrib10:    findMicro(res, "BenchmarkAuthenticate/contrib_10_keys", "ns/op"),
		Contrib10000: findMicro(res, "BenchmarkAuthenticate/contrib_10000_keys", "ns/op"),
	}
	for _, r := range res.Micro {
		if strings.HasPrefix(r.Name, "BenchmarkWrite") {
			if res.Storage == nil {
				res.Storage = map[string]float64{}
			}
			for unit, v := range r.Metrics {
				if unit != "B/op" && unit != "allocs/op" {
					res.Storage[r.Name+" "+unit] = v
				}
			}
		}
	}
	if res.Micro != nil || len(res.Pipelines) == 0 {
		want := map[string]*float64{
			"processor.ours_ns_per_span (BenchmarkProcessOpenRouter, ns/span)":             res.Processor.OursNsPerSpan,
			"processor.ottl_ns_per_span (BenchmarkOTTLTransform in ./bench/ottl, ns/span)": res.Processor.OTTLNsPerSpan,
			"auth.ours_ns_10_keys (BenchmarkAuthenticate/ours_10_keys)":                    res.Auth.Ours10,
			"auth.ours_ns_10000_keys (BenchmarkAuthenticate/ours_10000_keys)":              res.Auth.Ours10000,
			"auth.contrib_ns_10_keys (BenchmarkAuthenticate/contrib_10_keys)":              res.Auth.Contrib10,
		}
		for k, v := range want {
			if v == nil {
				res.Missing = append(res.Missing, k+": no such benchmark result")
			}
		}
	}
	pipe := func(name string) float64 {
		if p := res.Pipelines[name]; p != nil {
			return p.SpansPerSec
		}
		return 0
	}
	ratio := func(key string, a, b float64) *float64 {
		if a > 0 && b > 0 {
			res.Ratios[key] = a / b
			return ptr(a / b)
		}
		return nil
	}
	sqliteVsNop := ratio("ours_sqlite/ours_nop", pipe(OursSQLite), pipe(OursNop))
	sqliteVsPeer := ratio("ours_sqlite/peer", pipe(OursSQLite), pipe(Peer))
	sqliteVsBase := ratio("ours_sqlite/ours_sqlite_base", pipe(OursSQLite), pipe(OursSQLiteBase))
	ratio("ours_postgres/ours_nop", pipe(OursPostgres), pipe(OursNop))
	ratio("ours_postgres/peer", pipe(OursPostgres), pipe(Peer))
	ratio("ours_nop/peer", pipe(OursNop), pipe(Peer))
	if p := res.Processor; p.OursNsPerSpan != nil && p.OTTLNsPerSpan != nil {
		ratio("ottl/ours_processor", *p.OTTLNsPerSpan, *p.OursNsPerSpan)
	}
	if a := res.Auth; a.Ours10 != nil && a.Contrib10 != nil {
		ratio("contrib/ours_auth_10_keys", *a.Contrib10, *a.Ours10)
	}
	if a := res.Auth; a.Ours10000 != nil && a.Contrib10000 != nil {
		ratio("contrib/ours_auth_10000_keys", *a.Contrib10000, *a.Ours10000)
	}
	goal := func(name string, target float64, v *float64) {
		res.Goals = append(res.Goals, Goal{Name: name, Target: target, Value: v, Met: v != nil && *v >= target})
	}
	goal("ours_sqlite >= 60% of ours_nop (acknowledged spans/s)", 0.6, sqliteVsNop)
	goal("ours_sqlite >= 0.9x ours_sqlite_base (acknowledged spans/s; issue 11.7: the console's rollups cost ingest at most 10%)", 0.9, sqliteVsBase)
	goal("ours_sqlite >= 1.0x peer (acknowledged spans/s; issue 17: durable, 2xx after commit, against a peer that acknowledges from memory)", 1.0, sqliteVsPeer)
	sort.Strings(res.Missing)
}

// WriteJSON writes the results, indented, atomically.
func WriteJSON(path string, res *Results) error {
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

func opt(v *float64, format func(float64) string) string {
	if v == nil {
		return "n/a"
	}
	return format(*v)
}

func yesNo(b bool) string {
	if b {
		return "**met**"
	}
	return "**not met**"
}

// Markdown renders BENCHMARKS.md.
func Markdown(res *Results) string {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := res.Machine
	p("# Benchmarks\n\n")
	p("Generated by `make bench` (`go run ./bench/cmd/benchrun`) on %s UTC; do not edit by hand.\n", res.Started.Format("2006-01-02 15:04"))
	p("Raw figures: [`bench/results/latest.json`](bench/results/latest.json). How it works: [`bench/README.md`](bench/README.md).\n\n")
	p("Machine: %d CPUs (%s), %.1f GiB memory, Linux %s, %s", m.CPUs, m.CPUModel, m.MemoryGiB, m.Kernel, m.GoVersion)
	if m.Commit != "" {
		p(", commit %s", m.Commit)
	}
	p(". Load average (1 min) %.1f at the start, %.1f at the end", m.LoadAvgStart, m.LoadAvgEnd)
	if max(m.LoadAvgStart, m.LoadAvgEnd) > float64(m.CPUs)+1 {
		p(" (other work was running: absolute figures are depressed, and the interleaved rounds spread it over all pipelines)")
	}
	p(". The load generator runs on the same machine and competes with the collector for the same cores, alike for every pipeline. Run took %.0f s.\n\n", res.DurationS)

	if len(res.Pipelines) > 0 {
		s := res.Settings
		p("## Pipelines side by side\n\n")
		conc := "concurrency calibrated per pipeline (a ramp through " + intsList(s.RampLevels) + " connections, " + f0(s.RampStepS) + " s each, on a fresh collector; the level with the most acknowledged spans/s is used)"
		if s.FixedConcurrency > 0 {
			conc = "fixed concurrency " + strconv.Itoa(s.FixedConcurrency)
		}
		p("Each pipeline was driven to saturation with realistic OpenRouter Broadcast deliveries (OTLP/HTTP JSON, one delivery = root `LLM Generation` span with ~60 attributes + `provider attempt` + `generation` children, %d-byte prompts and %d-byte completions each sent three times as OpenRouter does, %d sessions of %d customers, %.0f%% failed generations), %s, in %d interleaved rounds (a fresh collector per run, %.0f s warm-up, %.0f s measured). ",
			s.Delivery.PromptBytes, s.Delivery.CompletionBytes, s.Delivery.Sessions, s.Delivery.Customers, s.Delivery.ErrorRate*100, conc, s.Rounds, s.WarmupS, s.MeasureS)
		p("Only spans in requests answered 2xx count. Spans/s and CPU are medians over the rounds; CPU is the collector process's utime+stime (/proc/<pid>/stat) over the measured window per 10k acknowledged spans; peak RSS is the highest VmHWM. memory_limiter: %d MiB (spike %d MiB) in every pipeline.\n\n", s.MemoryLimitMiB, s.MemorySpikeMiB)
		p("| pipeline | acked spans/s (min-max) | CPU s / 10k spans | peak RSS MiB | connections | p50 / p99 ms | errors | acked spans lost |\n")
		p("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, name := range AllPipelines {
			pr := res.Pipelines[name]
			if pr == nil {
				continue
			}
			if pr.SpansPerSec == 0 {
				p("| %s | failed: %s | | | | | | |\n", name, oneLine(pr.Error, pr.Samples))
				continue
			}
			cpu := f3(pr.CPUPer10k)
			if pr.DBCPUPer10k != nil {
				cpu += " (+" + f3(*pr.DBCPUPer10k) + " PostgreSQL server)"
			}
			lost := "not checked"
			if pr.LostAcked != nil {
				lost = strconv.FormatInt(*pr.LostAcked, 10)
			}
			p("| %s | %s (%s-%s) | %s | %s | %d | %s / %s | %d | %s |\n", name, f0(pr.SpansPerSec), f0(pr.SpansPerSMin), f0(pr.SpansPerSMax),
				cpu, f0(pr.PeakRSSMiB), pr.Concurrency, f1(pr.P50ms), f1(pr.P99ms), pr.Errors, lost)
		}
		p("\n")
		for _, name := range AllPipelines {
			if pr := res.Pipelines[name]; pr != nil {
				p("- `%s`: %s.\n", name, pr.Description)
			}
		}
		var gen []string
		for _, name := range AllPipelines {
			if pr := res.Pipelines[name]; pr != nil && pr.SpansPerSec > 0 {
				gen = append(gen, name+" "+f3(pr.LoadgenCPUPer10k))
			}
		}
		p("- The load generator's own CPU per 10k acknowledged spans (same cores): %s s.\n", strings.Join(gen, ", "))
		p("- \"acked spans lost\": acknowledged spans missing from the database after the collector's clean shutdown (the peer writes a JSON file that is not checked; its batch processor acknowledges before writing).\n\n")
	}

	p("## Ratios and goals\n\n")
	keys := make([]string, 0, len(res.Ratios))
	for k := range res.Ratios {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p("| ratio | value |\n| --- | --- |\n")
	for _, k := range keys {
		p("| %s | %s |\n", k, strconv.FormatFloat(res.Ratios[k], 'f', 2, 64))
	}
	p("\n")
	for _, g := range res.Goals {
		p("- Goal %s: %s (measured %s).\n", g.Name, yesNo(g.Met), opt(g.Value, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }))
	}
	p("\n")

	if len(res.Overload) > 0 {
		s := res.Settings
		p("## Overload\n\n")
		p("Each collector was sent %.0fx its saturated throughput for %.0f s, open loop (requests start on schedule whatever the answers, as independent OpenRouter deliveries do; at most %d outstanding, further due requests are shed by the client and counted; 10 s client timeout). Then a light load checks that it recovers.\n\n",
			s.OverloadFactor, s.OverloadS, s.OverloadMaxInFlight)
		p("| pipeline | offered spans/s | acked spans/s (vs saturated) | answers by status | 429/503 with Retry-After | no answer | shed by client | p99 ms (2xx) | max RSS MiB (limit) | CPU s collector / load generator | survived | recovery |\n")
		p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, ov := range res.Overload {
			rec := "n/a"
			if ov.Recovery != nil {
				rec = fmt.Sprintf("%d/%d spans acked", ov.Recovery.AckedSpans, ov.Recovery.SentSpans)
			}
			vs := "n/a"
			if ov.SaturatedSpansPerSec > 0 {
				vs = strconv.FormatFloat(100*ov.Load.SpansPerSec/ov.SaturatedSpansPerSec, 'f', 0, 64) + "%"
			}
			p("| %s | %s | %s (%s) | %s | %d of %d | %s | %d | %s | %s (%d) | %s / %s | %v | %s |\n", ov.Pipeline, f0(ov.TargetSpansPerSec), f0(ov.Load.SpansPerSec), vs,
				statusList(ov.Load.Status), ov.ThrottledRetryAfter, ov.Throttled, transportList(ov.Load.TransportErrors), ov.Load.Shed,
				f1(ov.Load.LatencyOK.P99), f0(ov.MaxRSSMiB), ov.MemoryLimitMiB, f1(ov.CollectorCPUSeconds), f1(ov.LoadgenCPUSeconds), ov.Survived, rec)
		}
		p("\n")
		noRetryAfter := false
		for _, ov := range res.Overload {
			noRetryAfter = noRetryAfter || ov.ThrottledRetryAfter < ov.Throttled
			p("- `%s`: %s\n", ov.Pipeline, overloadVerdict(ov))
			for _, code := range sortedKeys(ov.Load.ErrorSamples) {
				p("  - first HTTP %d answer: `%s`; Retry-After on %d of %d.\n", code, strings.ReplaceAll(oneLine(ov.Load.ErrorSamples[code], nil), "`", "'"), ov.Load.RetryAfter[code], ov.Load.Status[code])
			}
			for cause, msg := range ov.Load.TransportSamples {
				p("  - no answer (%s, %d requests), e.g. `%s`\n", cause, ov.Load.TransportErrors[cause], strings.ReplaceAll(oneLine(msg, nil), "`", "'"))
			}
		}
		if noRetryAfter {
			p("\nWhy some 429/503 carry no Retry-After: the stock OTLP receiver (otlpreceiver, `otlphttp.go` `writeStatusResponse`) sets Retry-After only when the pipeline returns a gRPC status with a `RetryInfo` detail. A plain error (the memory_limiter's \"data refused due to high memory usage\", exporterhelper's \"sending queue is full\") becomes 503 Unavailable without it. 503 is still retryable for OTLP exporters, which then back off on their own schedule.\n")
		}
		p("\n")
	}

	p("## Components (Go microbenchmarks)\n\n")
	p("`go test -run '^$' -bench ... -benchmem -benchtime %s -count %d`; medians of the runs.\n\n", res.Settings.MicroBenchtime, res.Settings.MicroCount)
	p("| comparison | ours | stock | stock / ours |\n| --- | --- | --- | --- |\n")
	pr, au := res.Processor, res.Auth
	ratioCell := func(a, b *float64) string {
		if a == nil || b == nil || *b == 0 {
			return "n/a"
		}
		return strconv.FormatFloat(*a / *b, 'f', 1, 64) + "x"
	}
	p("| mapping, ns/span (openroutermapping vs transform/OTTL) | %s | %s | %s |\n", opt(pr.OursNsPerSpan, f0), opt(pr.OTTLNsPerSpan, f0), ratioCell(pr.OTTLNsPerSpan, pr.OursNsPerSpan))
	p("| auth, ns/request, 10 keys (fallomauth vs bearertokenauth) | %s | %s | %s |\n", opt(au.Ours10, f0), opt(au.Contrib10, f0), ratioCell(au.Contrib10, au.Ours10))
	p("| auth, ns/request, 10000 keys | %s | %s | %s |\n", opt(au.Ours10000, f0), opt(au.Contrib10000, f0), ratioCell(au.Contrib10000, au.Ours10000))
	if sha, attach := findMicro(res, "BenchmarkAuthenticateFloor/sha256", "ns/op"), findMicro(res, "BenchmarkAuthenticateFloor/attach_principal", "ns/op"); sha != nil && attach != nil {
		p("\nAuth floor (BenchmarkAuthenticateFloor): the sha256 of the presented key costs %s ns and attaching the principal to client.Info %s ns (two allocations), %s ns together: what fallomauth must do and bearertokenauth does not (lookup by digest without raw keys in memory; an identity for the processor).\n", f0(*sha), f0(*attach), f0(*sha+*attach))
	}
	if pr.AttributeReadFloor != nil {
		p("\nFloor: reading every attribute once, string bytes included (BenchmarkAttributeReadFloor), costs %s ns/span in the processor's build", f0(*pr.AttributeReadFloor))
		if pr.OTTLAttributeReadFloor != nil {
			p(" and %s ns/span in bench/ottl's (contrib v0.161.0)", f0(*pr.OTTLAttributeReadFloor))
		}
		p(". Both mapping figures run on the same fixture: a realistic OpenRouter delivery (root with ~60 attributes, 6 KB prompt and 2 KB completion each three times, two children); the OTTL statements (bench/ottl/testdata/transform.yaml) are the processor's mapping written for the transform processor.\n")
	}
	if len(res.Micro) > 0 {
		p("\nAll results:\n\n| benchmark | package | metrics |\n| --- | --- | --- |\n")
		for _, r := range res.Micro {
			units := make([]string, 0, len(r.Metrics))
			for u := range r.Metrics {
				units = append(units, u)
			}
			slices.SortFunc(units, func(a, b string) int {
				if d := unitRank(a) - unitRank(b); d != 0 {
					return d
				}
				return strings.Compare(a, b)
			})
			var parts []string
			for _, u := range units {
				parts = append(parts, strconv.FormatFloat(r.Metrics[u], 'g', 4, 64)+" "+u)
			}
			p("| %s | %s | %s |\n", r.Name, r.Package, strings.Join(parts, ", "))
		}
	}
	if len(res.Console) > 0 {
		consoleMarkdown(p, res.Console)
	}
	if len(res.Missing) > 0 {
		p("\nNot measured:\n\n")
		for _, m := range res.Missing {
			p("- %s\n", m)
		}
	}
	return b.String()
}

func sortedKeys(m map[int]string) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func unitRank(u string) int {
	switch u {
	case "ns/op":
		return 0
	case "B/op":
		return 8
	case "allocs/op":
		return 9
	}
	return 1
}

func intsList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, "/")
}

func statusList(m map[int]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func transportList(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func overloadVerdict(ov OverloadResult) string {
	var parts []string
	switch {
	case ov.Throttled == 0:
		parts = append(parts, "never answered 429/503: under overload it "+noThrottleHow(ov))
	case ov.ThrottledRetryAfter == ov.Throttled:
		parts = append(parts, fmt.Sprintf("answered %d requests 429/503, all with Retry-After (retryable for OTLP clients)", ov.Throttled))
	case ov.ThrottledRetryAfter == 0:
		parts = append(parts, fmt.Sprintf("answered %d requests 429/503 (retryable), none with a Retry-After header", ov.Throttled))
	default:
		parts = append(parts, fmt.Sprintf("answered %d requests 429/503, %d of them with Retry-After", ov.Throttled, ov.ThrottledRetryAfter))
	}
	if ov.SaturatedSpansPerSec > 0 {
		parts = append(parts, fmt.Sprintf("while overloaded it acknowledged %s spans/s, %s%% of its saturated throughput",
			f0(ov.Load.SpansPerSec), f0(100*ov.Load.SpansPerSec/ov.SaturatedSpansPerSec)))
	}
	if ov.MaxRSSMiB > 0 {
		if ov.MaxRSSMiB < float64(ov.MemoryLimitMiB) {
			parts = append(parts, fmt.Sprintf("RSS stayed under the memory_limiter setting (max %s MiB < %d MiB)", f0(ov.MaxRSSMiB), ov.MemoryLimitMiB))
		} else {
			parts = append(parts, fmt.Sprintf("RSS went over the memory_limiter setting (max %s MiB >= %d MiB)", f0(ov.MaxRSSMiB), ov.MemoryLimitMiB))
		}
	}
	if ov.Survived {
		parts = append(parts, "it never died")
	} else {
		parts = append(parts, "it DIED or failed to stop cleanly: "+oneLine(ov.Error, nil))
	}
	return strings.Join(parts, "; ") + "."
}

func noThrottleHow(ov OverloadResult) string {
	var other []string
	for code, n := range ov.Load.Status {
		if code/100 != 2 {
			other = append(other, fmt.Sprintf("%d x HTTP %d", n, code))
		}
	}
	sort.Strings(other)
	s := fmt.Sprintf("kept every request waiting (p99 %s ms, max %s ms)", f0(ov.Load.LatencyAll.P99), f0(ov.Load.LatencyAll.Max))
	if len(other) > 0 {
		s += " and answered " + strings.Join(other, ", ")
	}
	if n := ov.Load.TransportErrors["timeout"]; n > 0 {
		s += fmt.Sprintf("; %d requests timed out client-side", n)
	}
	return s
}

func oneLine(err string, samples []Sample) string {
	if err == "" {
		for _, s := range samples {
			if s.Error != "" {
				err = s.Error
				break
			}
		}
	}
	err, _, _ = strings.Cut(err, "\n")
	if len(err) > 200 {
		err = err[:200] + "..."
	}
	return strings.ReplaceAll(err, "|", "\\|")
}

// consoleMarkdown writes the console section (issue 11.7).
func consoleMarkdown(p func(string, ...any), results []ConsoleResult) {
	p("\n## Console: reads of a million stored spans\n\n")
	p("The real binary on the shipped config serves the console over a database holding the generated data (a generation and its two children per trace, over 30 days; loaded through the storage write path the exporter uses; on PostgreSQL then `VACUUM (ANALYZE)`, the state autovacuum brings a table to once it rests). ")
	p("Each route or page is requested 3 times to warm up, then measured sequentially; the figure is the server's time to the first byte of the answer (its `Server-Timing` header; pages are rendered whole before the first byte). Goals: p95 at most 100 ms, summary and overview at most 50 ms. ")
	p("Then concurrent browsers (logged-in clients) cycle through the pages while the process's RSS is sampled every 50 ms.\n\n")
	for _, c := range results {
		p("### %s\n\n", c.Backend)
		if c.Error != "" {
			p("Failed: %s\n\n", oneLine(c.Error, nil))
			if len(c.Routes) == 0 {
				continue
			}
		}
		p("%d spans, %d generations", c.Spans, c.Generations)
		if c.DatabaseBytes > 0 {
			p(", database file %.0f MiB", float64(c.DatabaseBytes)/mib)
		}
		if c.LoadS > 0 {
			p(", loaded in %.0f s (%.0f spans/s through the write path)", c.LoadS, float64(c.Spans)/c.LoadS)
		}
		p(".\n\n| route | p50 ms | p95 ms | max ms | goal p95 ms | met | client p95 ms |\n| --- | ---: | ---: | ---: | ---: | --- | ---: |\n")
		met := 0
		for _, r := range c.Routes {
			if r.Met {
				met++
			}
			p("| %s `%s` | %s | %s | %s | %s | %s | %s |\n", r.Name, r.Path, f1(r.P50Ms), f1(r.P95Ms), f1(r.MaxMs), f0(r.GoalMs), yesNo(r.Met), f1(r.ClientP95))
		}
		p("\n%d of %d routes within their goal. ", met, len(c.Routes))
		if c.PeakRSSMiB > 0 {
			p("Concurrent page loads: %.1f pages/s, p95 %.0f ms under that load, **peak RSS %.0f MiB** (load average %.1f).\n\n", c.PageLoadsPerS, c.LoadP95Ms, c.PeakRSSMiB, c.LoadAvg)
		}
	}
}
