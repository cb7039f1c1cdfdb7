package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// secured is the shipped default config on free ports, with two projects'
// keys and extra FALLOM_* settings.
type secured struct {
	col  *collectortest.Collector
	ep   collectortest.Endpoints
	keys map[string]string // project -> key
}

func startSecured(t *testing.T, projects []string, env ...string) *secured {
	t.Helper()
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	s := &secured{keys: map[string]string{}}
	for _, p := range projects {
		s.keys[p] = collectortest.CreateKey(t, keysFile, p, p+"-key")
	}
	s.ep = collectortest.NewEndpoints(t)
	s.col = collectortest.Start(t, collectortest.Options{
		Args: []string{}, // the shipped default config
		Dir:  dir,
		Env: append([]string{
			"FALLOM_KEYS_FILE=" + keysFile,
			"FALLOM_DB=" + filepath.Join(dir, "fallom.db"),
			"FALLOM_HTTP_ENDPOINT=" + s.ep.HTTP,
			"FALLOM_GRPC_ENDPOINT=" + s.ep.GRPC,
			fmt.Sprintf("FALLOM_HEALTH_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
			fmt.Sprintf("FALLOM_METRICS_PORT=%d", collectortest.FreePort(t)),
			fmt.Sprintf("FALLOM_CONSOLE_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
			fmt.Sprintf("FALLOM_SDK_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
		}, env...),
		WaitAddrs: []string{s.ep.HTTP, s.ep.GRPC},
	})
	return s
}

// TestDefaultConfigRefusesKeylessGRPCBeforeReading (issue 15 item 1, on the
// built binary): a keyless Export whose message is over the default 20 MiB
// limit is answered Unauthenticated, which it can only be if the stream was
// refused from its headers: reading the message would have answered
// ResourceExhausted (as it does for a valid key).
func TestDefaultConfigRefusesKeylessGRPCBeforeReading(t *testing.T) {
	s := startSecured(t, []string{"acme"})
	conn, err := grpc.NewClient(s.ep.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("big")
	span.SetTraceID([16]byte{1})
	span.SetSpanID([8]byte{1})
	span.Attributes().PutStr("blob", strings.Repeat("x", 21<<20))
	req := ptraceotlp.NewExportRequestFromTraces(td)

	export := func(md ...string) *status.Status {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if len(md) > 0 {
			ctx = metadataContext(ctx, md...)
		}
		_, err := client.Export(ctx, req)
		return status.Convert(err)
	}
	st := export()
	require.Equal(t, codes.Unauthenticated, st.Code(), st.Message())
	require.Contains(t, st.Message(), "missing API key")
	st = export("authorization", "Bearer flm_"+strings.Repeat("z", 43))
	require.Equal(t, codes.Unauthenticated, st.Code(), st.Message())
	require.Contains(t, st.Message(), "unknown API key")
	st = export("authorization", "Bearer "+s.keys["acme"])
	require.Equal(t, codes.ResourceExhausted, st.Code(), "a valid key passes the tap and meets max_recv_msg_size_mib: %s", st.Message())
}

// TestOneTenantCannotLockOutOthers (issue 15 item 4, on the built binary):
// with an in-flight bound of 3, project "other" opens connections whose
// bodies stall. It gets at most its share (2 of 3); "acme" is still served;
// the stalled requests are cut off by the default config's read_timeout.
func TestOneTenantCannotLockOutOthers(t *testing.T) {
	s := startSecured(t, []string{"acme", "other"},
		"FALLOM_MAX_IN_FLIGHT_REQUESTS=3", "FALLOM_HTTP_READ_TIMEOUT=10s")

	// A request whose headers are complete (so it authenticates and takes its
	// slots) and whose body stops after a few bytes.
	stall := func() net.Conn {
		conn, err := net.Dial("tcp", s.ep.HTTP)
		require.NoError(t, err)
		_, err = fmt.Fprintf(conn, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n{\"resourceSpans\":", s.keys["other"])
		require.NoError(t, err)
		return conn
	}
	readStatus := func(conn net.Conn) int {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("stalled request answered %d: %s", resp.StatusCode, b)
		return resp.StatusCode
	}

	// Three stalled requests of project "other": whichever two reach the
	// guard first hold their slots until read_timeout; the third is over
	// the project's share and is answered 503 at once, without its body.
	type answer struct{ code int }
	answers := make(chan answer, 3)
	for range 3 {
		conn := stall()
		defer conn.Close()
		go func() { answers <- answer{readStatus(conn)} }()
	}
	first := <-answers
	require.Equal(t, http.StatusServiceUnavailable, first.code, "the request over the project's share")

	// While the two stalled requests hold 2 of the 3 slots, another project
	// is still served.
	body := readFixture(t, "openrouter-delivery.json")
	acme := &instance{ep: s.ep}
	code, msg := acme.post(t, body, map[string]string{"Authorization": "Bearer " + s.keys["acme"]})
	require.Equal(t, http.StatusOK, code, msg)
	require.Zero(t, len(answers), "the stalled requests ended before acme was served: the test proved nothing (read_timeout too short for this machine?)")

	// read_timeout ends the stalled requests (400, the body read failed),
	// and frees their slots: "other" is served again.
	for range 2 {
		require.Equal(t, http.StatusBadRequest, (<-answers).code)
	}
	code, msg = acme.post(t, body, map[string]string{"Authorization": "Bearer " + s.keys["other"]})
	require.Equal(t, http.StatusOK, code, msg)
}

func metadataContext(ctx context.Context, kv ...string) context.Context {
	return grpcmetadata.AppendToOutgoingContext(ctx, kv...)
}
