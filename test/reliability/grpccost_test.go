package reliability

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// TestKeylessGRPCCost measures issue 15 item 1 side by side, in one run: the
// CPU seconds and peak RSS a collector spends on keyless OTLP/gRPC Export
// calls of about 2.3 MB, on the shipped default config ("after": fallomauth's
// tap handle, max_recv_msg_size_mib, max_concurrent_streams, keepalive) and on
// the same config with the gRPC server as it was before ("before": `auth:`
// only, so every message is read, decompressed and decoded before the
// interceptor refuses it). Every call must be refused Unauthenticated in
// both. It is a measurement (minutes of CPU on a loaded machine), so it runs
// only with FALLOM_GRPC_COST=1:
//
//	make build && FALLOM_GRPC_COST=1 go test -count=1 -v -run TestKeylessGRPCCost ./test/reliability/
func TestKeylessGRPCCost(t *testing.T) {
	if os.Getenv("FALLOM_GRPC_COST") != "1" {
		t.Skip("measurement: run with FALLOM_GRPC_COST=1 (see the doc comment)")
	}
	defaultYAML, err := os.ReadFile(filepath.Join(collectortest.RepoRoot(t), "config", "config.yaml"))
	require.NoError(t, err)
	before := beforeGRPCConfig(t, string(defaultYAML))
	payload := keylessPayload()

	const calls = 200
	type figure struct {
		config      string
		concurrency int
		cpuSeconds  float64
		peakMiB     float64
	}
	var figures []figure
	for _, concurrency := range []int{20, 100} {
		for _, cfg := range []struct{ name, yaml string }{{"before", before}, {"after", string(defaultYAML)}} {
			cpu, peak := measureKeyless(t, cfg.yaml, payload, calls, concurrency)
			figures = append(figures, figure{cfg.name, concurrency, cpu, peak})
			t.Logf("%-6s concurrency %3d: %d keyless calls, %.2f CPU-s, peak RSS %.0f MiB", cfg.name, concurrency, calls, cpu, peak)
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "| concurrency | config | CPU-s | peak RSS MiB |\n| ---: | --- | ---: | ---: |\n")
	for _, f := range figures {
		fmt.Fprintf(&report, "| %d | %s | %.2f | %.0f |\n", f.concurrency, f.config, f.cpuSeconds, f.peakMiB)
	}
	for i := 0; i+1 < len(figures); i += 2 {
		b, a := figures[i], figures[i+1]
		fmt.Fprintf(&report, "\nconcurrency %d: CPU after/before %.3f, peak RSS after/before %.2f", b.concurrency, a.cpuSeconds/b.cpuSeconds, a.peakMiB/b.peakMiB)
	}
	t.Log("\n" + report.String())
}

// beforeGRPCConfig is the default config with its gRPC server as it was
// before issue 15: the authenticator and nothing else.
func beforeGRPCConfig(t *testing.T, yaml string) string {
	start := strings.Index(yaml, "      grpc:\n")
	end := strings.Index(yaml, "\nprocessors:")
	require.True(t, start > 0 && end > start, "config/config.yaml no longer has the expected shape")
	return yaml[:start] + `      grpc:
        endpoint: ${env:FALLOM_GRPC_ENDPOINT}
        auth:
          authenticator: fallomauth
` + yaml[end:]
}

// keylessPayload is one Export request of about 2.3 MB: 1,000 spans with a
// 2 KiB prompt each, like a large OpenRouter batch.
func keylessPayload() ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	prompt := strings.Repeat("lorem ipsum dolor sit amet ", 85)
	for i := range 1000 {
		s := spans.AppendEmpty()
		s.SetName("chat")
		s.SetTraceID([16]byte{byte(i), byte(i >> 8), 1})
		s.SetSpanID([8]byte{byte(i), byte(i >> 8), 2})
		s.Attributes().PutStr("gen_ai.prompt", prompt)
		s.Attributes().PutStr("gen_ai.request.model", "openai/gpt-4o")
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func measureKeyless(t *testing.T, yaml string, req ptraceotlp.ExportRequest, calls, concurrency int) (cpuSeconds, peakMiB float64) {
	t.Helper()
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	collectortest.CreateKey(t, keysFile, "acme", "cost")
	ep, env := defaultEnv(t, dir, keysFile, filepath.Join(dir, "fallom.db"))
	col := collectortest.Start(t, collectortest.Options{Config: yaml, Dir: dir, Env: env, WaitAddrs: []string{ep.HTTP, ep.GRPC}})
	defer col.Stop()

	conn, err := grpc.NewClient(ep.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	cpu0 := cpuSecondsOf(t, col.Pid())
	rss := sampleRSS(col.Pid())
	work := make(chan struct{}, calls)
	for range calls {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codesSeen := map[codes.Code]int{}
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				_, err := client.Export(ctx, req)
				cancel()
				mu.Lock()
				codesSeen[status.Code(err)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	peakMiB, _ = rss.finish()
	cpuSeconds = cpuSecondsOf(t, col.Pid()) - cpu0
	require.Equal(t, map[codes.Code]int{codes.Unauthenticated: calls}, codesSeen)
	return cpuSeconds, peakMiB
}

// cpuSecondsOf reads user + system CPU time of a process (/proc/PID/stat,
// fields 14 and 15, in clock ticks of 1/100 s on Linux).
func cpuSecondsOf(t *testing.T, pid int) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	require.NoError(t, err)
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(line[strings.LastIndexByte(line, ')')+2:])
	utime, err := strconv.ParseFloat(fields[11], 64)
	require.NoError(t, err)
	stime, err := strconv.ParseFloat(fields[12], 64)
	require.NoError(t, err)
	return (utime + stime) / 100
}
