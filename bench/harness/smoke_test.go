package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(raw, []byte("module github.com/fallom/fallom-collector\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "repository root not found")
		dir = parent
	}
}

// oursBinary fails (never skips) when the collector has not been built: the
// smoke run exists so that the harness cannot rot unnoticed.
func oursBinary(t *testing.T, root string) string {
	t.Helper()
	bin := OursBinary(root)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run make build (make test does it first)", bin)
	}
	return bin
}

// TestSmokeOursSQLite drives the whole harness end to end with a tiny load
// against the real binary on the shipped SQLite config: key creation with
// the CLI, collector start, measured round, overload phase, durability check
// against the database, JSON and Markdown output.
func TestSmokeOursSQLite(t *testing.T) {
	root := repoRoot(t)
	oursBinary(t, root)
	dir := t.TempDir()
	o := DefaultOptions(root)
	o.Pipelines = []string{OursSQLite}
	o.OverloadPipelines = []string{OursSQLite}
	o.Rounds = 1
	o.Concurrency = 2
	o.Warmup = 300 * time.Millisecond
	o.Measure = time.Second
	o.OverloadDuration = time.Second
	o.OverloadMaxInFlight = 16
	o.RecoveryPause = 100 * time.Millisecond
	o.RecoveryDuration = 500 * time.Millisecond
	o.Micro = false
	// The console section at a tiny size: every route and page answers on
	// the real binary, with timings and an RSS figure.
	o.Console = ConsoleOptions{Backends: []string{"sqlite"}, Spans: 3000, Sessions: 100, Customers: 10, Days: 30,
		Requests: 2, Concurrency: 2, LoadFor: time.Second}
	o.Delivery.PromptBytes, o.Delivery.CompletionBytes = 256, 64
	o.WorkDir = filepath.Join(dir, "work")
	o.JSONOut = filepath.Join(dir, "latest.json")
	o.MarkdownOut = filepath.Join(dir, "BENCHMARKS.md")
	var log bytes.Buffer
	o.Log = &log

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, o)
	require.NoError(t, err, "harness log:\n%s", log.String())

	pr := res.Pipelines[OursSQLite]
	require.NotNil(t, pr)
	require.Len(t, pr.Samples, 1)
	s := pr.Samples[0]
	assert.Positive(t, s.Load.AckedSpans)
	assert.Positive(t, pr.SpansPerSec)
	assert.Positive(t, pr.CPUPer10k)
	assert.Greater(t, pr.PeakRSSMiB, 1.0)
	require.NotNil(t, s.StoredSpans, "the SQLite database was counted")
	assert.GreaterOrEqual(t, *s.StoredSpans, s.AckedTotal, "every acknowledged span is in the database")
	if s.Load.Errors() == 0 {
		assert.Equal(t, s.AckedTotal, *s.StoredSpans, "nothing stored that was not acknowledged")
	}
	require.NotNil(t, pr.LostAcked)
	assert.Zero(t, *pr.LostAcked)

	require.Len(t, res.Overload, 1)
	ov := res.Overload[0]
	assert.True(t, ov.Survived, "collector survived the overload: %s", ov.Error)
	assert.Positive(t, ov.Load.Requests)
	assert.Positive(t, ov.PeakRSSMiB)
	require.NotNil(t, ov.Recovery)
	assert.Positive(t, ov.Recovery.AckedSpans, "acknowledges again after the overload")

	require.Len(t, res.Console, 1)
	cr := res.Console[0]
	require.Empty(t, cr.Error)
	assert.EqualValues(t, 1000, cr.Generations)
	assert.Len(t, cr.Routes, len(consoleRoutes(o.Console, time.Now())))
	for _, r := range cr.Routes {
		assert.Positive(t, r.P95Ms, r.Name)
	}
	assert.Positive(t, cr.PeakRSSMiB)
	assert.Positive(t, cr.PageLoadsPerS)

	// The JSON has the shape the issue fixes.
	raw, err := os.ReadFile(o.JSONOut)
	require.NoError(t, err)
	var doc struct {
		Pipelines map[string]any `json:"pipelines"`
		Processor map[string]any `json:"processor"`
		Auth      map[string]any `json:"auth"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	p, ok := doc.Pipelines[OursSQLite].(map[string]any)
	require.True(t, ok, "pipelines.ours_sqlite in %s", raw)
	for _, k := range []string{"spans_per_s", "cpu_s_per_10k_spans", "peak_rss_mib"} {
		v, ok := p[k].(float64)
		assert.True(t, ok && v > 0, "pipelines.ours_sqlite.%s = %v", k, p[k])
	}
	for _, k := range []string{"ours_ns_per_span", "ottl_ns_per_span"} {
		assert.Contains(t, doc.Processor, k)
	}
	for _, k := range []string{"ours_ns_10_keys", "ours_ns_10000_keys", "contrib_ns_10_keys"} {
		assert.Contains(t, doc.Auth, k)
	}
	t.Logf("harness log:\n%s", log.String())
	md, err := os.ReadFile(o.MarkdownOut)
	require.NoError(t, err)
	assert.Contains(t, string(md), "| ours_sqlite |")
	assert.Contains(t, string(md), "## Overload")
	assert.Contains(t, string(md), res.Machine.CPUModel)
}

// TestOverlayConfigsValidate checks that the shipped config with each bench
// overlay is a valid fallomcol config, with the real binary.
func TestOverlayConfigsValidate(t *testing.T) {
	root := repoRoot(t)
	bin := oursBinary(t, root)
	dir := t.TempDir()
	for _, overlay := range []string{"ours_nop.overlay.yaml", "ours_postgres.overlay.yaml"} {
		cmd := exec.Command(bin, "validate", "--config", filepath.Join(root, "config", "config.yaml"), "--config", filepath.Join(root, "bench", "configs", overlay))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"FALLOM_KEYS_FILE="+filepath.Join(dir, "keys.yaml"), "FALLOM_DB="+filepath.Join(dir, "x.db"),
			"BENCH_PG_DSN=postgres://bench@127.0.0.1:1/bench?sslmode=disable")
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s: %s", overlay, out)
	}
}

// peerComponentTypes maps each stock module of the peer's builder-config to
// the component type it provides.
var peerComponentTypes = map[string]string{
	"go.opentelemetry.io/collector/receiver/otlpreceiver":                                          "otlp",
	"go.opentelemetry.io/collector/processor/batchprocessor":                                       "batch",
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor":                               "memory_limiter",
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor":       "transform",
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter":              "file",
	"go.opentelemetry.io/collector/exporter/debugexporter":                                         "debug",
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension": "bearertokenauth",
	"go.opentelemetry.io/collector/confmap/provider/envprovider":                                   "",
	"go.opentelemetry.io/collector/confmap/provider/fileprovider":                                  "",
}

// TestPeerConfigMatchesItsBuild validates the peer without building it (an
// ocb build takes minutes): every module of the builder-config is at the one
// release the peer is pinned to, and every component its config uses is
// defined and provided by a module of the build. When a peer binary is
// already cached under .build/, its own `validate` runs too.
func TestPeerConfigMatchesItsBuild(t *testing.T) {
	root := repoRoot(t)
	var build struct {
		Dist struct {
			OutputPath string `yaml:"output_path"`
			Name       string
		}
		Receivers  []struct{ Gomod string }
		Processors []struct{ Gomod string }
		Exporters  []struct{ Gomod string }
		Extensions []struct{ Gomod string }
		Providers  []struct{ Gomod string }
	}
	raw, err := os.ReadFile(filepath.Join(root, peerBuilderConfig))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &build))
	assert.Equal(t, "./"+peerOutputDir, build.Dist.OutputPath)
	assert.Equal(t, peerBinaryName, build.Dist.Name)

	provided := map[string]string{} // type -> kind
	for kind, mods := range map[string][]struct{ Gomod string }{
		"receivers": build.Receivers, "processors": build.Processors, "exporters": build.Exporters,
		"extensions": build.Extensions, "providers": build.Providers,
	} {
		for _, m := range mods {
			path, version, ok := strings.Cut(m.Gomod, " ")
			require.True(t, ok, "gomod %q has a version", m.Gomod)
			// One release: contrib v0.161.0 and core v0.161.0 / v1.67.0.
			assert.Contains(t, []string{"v0.161.0", "v1.67.0"}, version, m.Gomod)
			typ, known := peerComponentTypes[path]
			require.True(t, known, "add %s to peerComponentTypes", path)
			if typ != "" {
				provided[typ] = kind
			}
		}
	}

	var cfg struct {
		Receivers  map[string]any
		Processors map[string]any
		Exporters  map[string]any
		Extensions map[string]any
		Service    struct {
			Extensions []string
			Pipelines  map[string]struct{ Receivers, Processors, Exporters []string }
		}
	}
	raw, err = os.ReadFile(filepath.Join(root, PeerConfig))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	check := func(kind string, defined map[string]any, ids []string) {
		require.NotEmpty(t, ids, kind)
		for _, id := range ids {
			_, ok := defined[id]
			assert.True(t, ok, "%s %q is used but not defined", kind, id)
			typ, _, _ := strings.Cut(id, "/")
			assert.Equal(t, kind, provided[typ], "%s %q: no module of the peer build provides type %q", kind, id, typ)
		}
	}
	check("extensions", cfg.Extensions, cfg.Service.Extensions)
	require.Contains(t, cfg.Service.Pipelines, "traces")
	tp := cfg.Service.Pipelines["traces"]
	check("receivers", cfg.Receivers, tp.Receivers)
	check("processors", cfg.Processors, tp.Processors)
	check("exporters", cfg.Exporters, tp.Exporters)
	assert.Equal(t, []string{"memory_limiter", "transform", "batch"}, tp.Processors)
	assert.Contains(t, string(raw), `fallom.session_id`)
	assert.Contains(t, string(raw), `fallom.total_cost_usd`)

	bin := PeerBinary(root)
	if _, err := os.Stat(bin); err == nil {
		cmd := exec.Command(bin, "validate", "--config", filepath.Join(root, PeerConfig))
		cmd.Env = append(os.Environ(), "BENCH_HTTP_ENDPOINT=127.0.0.1:1", "BENCH_TOKEN=flm_validate_only_0123456789",
			"BENCH_OUTPUT="+filepath.Join(t.TempDir(), "out.jsonl"), "BENCH_METRICS_PORT=1",
			"BENCH_MEMORY_LIMIT_MIB=512", "BENCH_MEMORY_SPIKE_MIB=128")
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s validate: %s", bin, out)
	}
}

func TestParseBenchOutput(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/fallom/fallom-collector/extension/fallomauthextension
cpu: Intel(R) Xeon(R) CPU @ 2.20GHz
BenchmarkAuthenticate/ours_10_keys-2         	 3000000	       400.0 ns/op	      64 B/op	       2 allocs/op
BenchmarkAuthenticate/ours_10_keys-2         	 3000000	       380.5 ns/op	      64 B/op	       2 allocs/op
BenchmarkAuthenticate/ours_10_keys-2         	 3000000	       420.0 ns/op	      64 B/op	       2 allocs/op
BenchmarkAuthenticate/contrib_10000_keys-2   	     100	   9000000 ns/op
BenchmarkProcessOpenRouter-2   	   10000	    120000 ns/op	       950.5 ns/span	   3.000 allocs/span
BenchmarkOTTLTransform   	   10000	    500000 ns/op	      4000 ns/span
PASS
ok  	github.com/fallom/fallom-collector/extension/fallomauthextension	12.3s
`
	res := ParseBenchOutput(out, "./x")
	require.Len(t, res, 4)
	assert.Equal(t, "BenchmarkAuthenticate/ours_10_keys", res[0].Name)
	assert.Equal(t, 3, res[0].Runs)
	assert.InDelta(t, 400.0, res[0].Metrics["ns/op"], 1e-9, "median of 380.5, 400, 420")
	assert.InDelta(t, 64.0, res[0].Metrics["B/op"], 1e-9)
	assert.InDelta(t, 9e6, res[1].Metrics["ns/op"], 1e-9)
	assert.Equal(t, "BenchmarkProcessOpenRouter", res[2].Name)
	assert.InDelta(t, 950.5, res[2].Metrics["ns/span"], 1e-9)
	assert.Equal(t, "BenchmarkOTTLTransform", res[3].Name)

	r := &Results{Micro: res, Pipelines: map[string]*PipelineResult{}, Ratios: map[string]float64{}}
	summarize(r)
	require.NotNil(t, r.Processor.OursNsPerSpan)
	require.NotNil(t, r.Processor.OTTLNsPerSpan)
	assert.InDelta(t, 4000/950.5, r.Ratios["ottl/ours_processor"], 1e-9)
	require.NotNil(t, r.Auth.Ours10)
	assert.Nil(t, r.Auth.Ours10000)
	assert.True(t, slices.ContainsFunc(r.Missing, func(m string) bool { return strings.Contains(m, "ours_10000_keys") }), "missing: %v", r.Missing)
}

func TestDiscoverBenchmarksFindsNestedModules(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(s), 0o644))
	}
	write("go.mod", "module example.com/root\n")
	write("a/x_test.go", "package a\nfunc BenchmarkAuthenticate(b *testing.B) {}\nfunc BenchmarkOther(b *testing.B) {}\n")
	write("bench/ottl/go.mod", "module example.com/ottl\n")
	write("bench/ottl/o_test.go", "package ottl\nfunc BenchmarkOTTLTransform(b *testing.B) {}\n")
	write(".build/peer/z_test.go", "package z\nfunc BenchmarkAuthenticate(b *testing.B) {}\n")
	pkgs, err := discoverBenchmarks(root)
	require.NoError(t, err)
	require.Len(t, pkgs, 2)
	assert.Equal(t, benchPackage{ModuleDir: root, Pkg: "./a", Funcs: []string{"BenchmarkAuthenticate"}}, pkgs[0])
	assert.Equal(t, benchPackage{ModuleDir: filepath.Join(root, "bench", "ottl"), Pkg: ".", Funcs: []string{"BenchmarkOTTLTransform"}}, pkgs[1])
}

func TestProcReadsThisProcess(t *testing.T) {
	pid := os.Getpid()
	// Burn a little CPU so the counter moves past one tick.
	c0, err := CPUSeconds(pid)
	require.NoError(t, err)
	x := 0
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		x++
	}
	c1, err := CPUSeconds(pid)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, c1, c0)
	assert.Positive(t, x)
	m, err := ReadMemory(pid)
	require.NoError(t, err)
	assert.Positive(t, m.RSSBytes)
	assert.GreaterOrEqual(t, m.PeakBytes, m.RSSBytes)
}
