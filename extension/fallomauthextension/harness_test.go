package fallomauthextension

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

// The tests run requests through the stock OTLP receiver (HTTP and gRPC)
// configured with `auth: {authenticator: fallomauth}`, exactly as a collector
// config would. The receiver finds the extension through testHost, the one
// piece of glue a component test needs in place of the service.

// testHost exposes the extensions to the receiver, as the collector service does.
type testHost struct {
	extensions map[component.ID]component.Component
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

// principalSeen is what the next consumer saw in client.Info for one span.
type principalSeen struct {
	projectID any
	keyName   any
	names     []string
}

// harness runs the extension and an OTLP receiver in front of a sink.
type harness struct {
	t        *testing.T
	auth     *authenticator
	logs     *observer.ObservedLogs
	tel      *componenttest.Telemetry
	sink     *consumertest.TracesSink
	httpURL  string
	grpcConn *grpc.ClientConn

	mu         sync.Mutex
	principals map[string]principalSeen // by span name
	bodies     []string                 // every rejection body/message seen
	secrets    []string                 // strings that must never appear in logs or bodies

	spanSeq atomic.Int64
	clock   atomic.Int64 // unix nanos, when the test controls the clock (withClock)

	grpcExtra map[string]any // more gRPC server settings (withGRPCServer)
}

type harnessOption func(*harness)

// newHarness starts fallomauth with cfg and an OTLP receiver (HTTP + gRPC)
// that requires it. Every log line, at debug level, of both components is
// captured; at the end of the test none may contain a secret.
func newHarness(t *testing.T, cfg *Config, opts ...harnessOption) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	h := &harness{
		t: t, logs: logs, tel: componenttest.NewTelemetry(),
		sink: new(consumertest.TracesSink), principals: map[string]principalSeen{},
	}
	for _, e := range cfg.Keys {
		if e.Key != "" {
			h.addSecret(string(e.Key))
		}
		if e.KeySHA256 != "" {
			h.secrets = append(h.secrets, strings.ToLower(e.KeySHA256))
		}
	}
	t.Cleanup(func() { require.NoError(t, h.tel.Shutdown(context.Background())) })

	telSet := h.tel.NewTelemetrySettings()
	telSet.Logger = logger
	extID := component.NewID(metadata.Type)
	ext, err := NewFactory().Create(context.Background(),
		extension.Settings{ID: extID, TelemetrySettings: telSet, BuildInfo: component.NewDefaultBuildInfo()}, cfg)
	require.NoError(t, err)
	h.auth = ext.(*authenticator)
	for _, o := range opts {
		o(h)
	}
	host := &testHost{extensions: map[component.ID]component.Component{extID: ext}}
	require.NoError(t, ext.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })

	// The next consumer records the principal the receiver passed on.
	next, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		info := client.FromContext(ctx)
		seen := principalSeen{}
		if info.Auth != nil {
			seen.projectID = info.Auth.GetAttribute(fallomattr.AuthProjectID)
			seen.keyName = info.Auth.GetAttribute(fallomattr.AuthKeyName)
			seen.names = info.Auth.GetAttributeNames()
		}
		h.mu.Lock()
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := 0; i < spans.Len(); i++ {
			h.principals[spans.At(i).Name()] = seen
		}
		h.mu.Unlock()
		return h.sink.ConsumeTraces(ctx, td)
	})
	require.NoError(t, err)

	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	rf := otlpreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig()
	grpcCfg := map[string]any{"endpoint": grpcAddr, "auth": map[string]any{"authenticator": extID.String()}}
	for k, v := range h.grpcExtra {
		grpcCfg[k] = v
	}
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{
			"http": map[string]any{"endpoint": httpAddr, "auth": map[string]any{"authenticator": extID.String()}},
			"grpc": grpcCfg,
		},
	}).Unmarshal(rcfg))
	rset := receiver.Settings{ID: component.NewID(rf.Type()), TelemetrySettings: telSet, BuildInfo: component.NewDefaultBuildInfo()}
	rcv, err := rf.CreateTraces(context.Background(), rset, rcfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })

	h.httpURL = "http://" + httpAddr + "/v1/traces"
	h.grpcConn, err = grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.grpcConn.Close() })

	// Registered last, so it runs first: the leak check covers everything the
	// test did, including the reloads it waited for.
	t.Cleanup(h.assertNoSecretLeaked)
	return h
}

// withClock makes the test control the extension's clock (expiry is
// evaluated at request time against it).
func withClock(start time.Time) harnessOption {
	return func(h *harness) {
		h.clock.Store(start.UnixNano())
		h.auth.now = func() time.Time { return time.Unix(0, h.clock.Load()).UTC() }
	}
}

func (h *harness) setClock(t time.Time) { h.clock.Store(t.UnixNano()) }

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

// addSecret registers a key (and its parts and digest) as something that
// must never show up in logs or responses.
func (h *harness) addSecret(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secrets = append(h.secrets, key, strings.TrimPrefix(key, keys.Prefix), keys.DigestOf(key).Hex())
}

// newKey generates a key and registers it as a secret.
func (h *harness) newKey() string {
	k, err := keys.Generate()
	require.NoError(h.t, err)
	h.addSecret(k)
	return k
}

func (h *harness) assertNoSecretLeaked() {
	h.mu.Lock()
	defer h.mu.Unlock()
	var logText strings.Builder
	for _, e := range h.logs.All() {
		fmt.Fprintf(&logText, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	require.NotZero(h.t, h.logs.Len(), "no logs captured: the leak check would be vacuous")
	all := logText.String()
	// Any 12 consecutive characters of a secret count as a leak, so partial
	// echoes (a truncated value in a parser message) are caught too.
	const window = 12
	for _, s := range h.secrets {
		for i := 0; i+window <= len(s); i++ {
			part := s[i : i+window]
			if strings.HasPrefix(part, keys.Prefix) {
				continue // "flm_" plus a few characters is not secret
			}
			require.NotContains(h.t, all, part, "part of a key (or of its digest) appeared in a log line")
			for _, b := range h.bodies {
				require.NotContains(h.t, b, part, "part of a key (or of its digest) appeared in an error response")
			}
		}
	}
}

// traces builds one span whose name identifies the request.
func (h *harness) traces() (ptrace.Traces, string) {
	name := fmt.Sprintf("span-%d", h.spanSeq.Add(1))
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName(name)
	span.SetTraceID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	span.SetSpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	return td, name
}

// result is the outcome of one request over either transport.
type result struct {
	ok        bool
	message   string // error message (HTTP status body message or gRPC status message)
	spanName  string
	transport string
	grpc      bool
	status    int        // HTTP status of a rejection
	code      codes.Code // gRPC code of a rejection
}

// postHTTP sends OTLP/HTTP (JSON or protobuf) with the given headers.
func (h *harness) postHTTP(headers map[string]string, protobuf bool) result {
	h.t.Helper()
	td, name := h.traces()
	req := ptraceotlp.NewExportRequestFromTraces(td)
	var body []byte
	var err error
	contentType := "application/json"
	if protobuf {
		body, err = req.MarshalProto()
		contentType = "application/x-protobuf"
	} else {
		body, err = req.MarshalJSON()
	}
	require.NoError(h.t, err)
	hr, err := http.NewRequest(http.MethodPost, h.httpURL, bytes.NewReader(body))
	require.NoError(h.t, err)
	hr.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		hr.Header[k] = []string{v} // exactly as given: no canonicalization by the test
	}
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	transport := "http/json"
	if protobuf {
		transport = "http/protobuf"
	}
	res := result{ok: resp.StatusCode == http.StatusOK, spanName: name, transport: transport}
	if !res.ok {
		res.status = resp.StatusCode
		h.mu.Lock()
		h.bodies = append(h.bodies, string(respBody))
		h.mu.Unlock()
		if protobuf {
			res.message = string(respBody) // the message is a raw string field in the rpc.Status
		} else {
			res.message = jsonStatusMessage(h.t, respBody)
		}
	}
	return res
}

// exportGRPC sends OTLP/gRPC with the given metadata (keys lowercased, as
// gRPC always sends them).
func (h *harness) exportGRPC(md map[string]string) result {
	h.t.Helper()
	td, name := h.traces()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = grpcmetadata.NewOutgoingContext(ctx, grpcmetadata.New(md))
	_, err := ptraceotlp.NewGRPCClient(h.grpcConn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	res := result{ok: err == nil, spanName: name, transport: "grpc", grpc: true}
	if err != nil {
		st := status.Convert(err)
		res.code = st.Code()
		res.message = st.Message()
		h.mu.Lock()
		h.bodies = append(h.bodies, err.Error())
		h.mu.Unlock()
	}
	return res
}

// principal returns what the next consumer saw for a span.
func (h *harness) principal(spanName string) (principalSeen, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.principals[spanName]
	return p, ok
}

// requireAccepted checks the request went through and the next consumer got
// the key's principal.
func (h *harness) requireAccepted(res result, project, keyName string) {
	h.t.Helper()
	require.True(h.t, res.ok, "%s request rejected: %s", res.transport, res.message)
	p, ok := h.principal(res.spanName)
	require.True(h.t, ok, "%s: span did not reach the next consumer", res.transport)
	require.Equal(h.t, project, p.projectID, "%s: project_id", res.transport)
	require.Equal(h.t, keyName, p.keyName, "%s: key_name", res.transport)
	require.ElementsMatch(h.t, []string{fallomattr.AuthProjectID, fallomattr.AuthKeyName}, p.names)
}

// requireRejected checks the request was refused with the expected message
// and did not reach the next consumer.
func (h *harness) requireRejected(res result, want error) {
	h.t.Helper()
	require.False(h.t, res.ok, "%s request accepted, want %q", res.transport, want)
	if res.grpc {
		require.Equal(h.t, codes.Unauthenticated, res.code, "%s: %s", res.transport, res.message)
	} else {
		require.Equal(h.t, http.StatusUnauthorized, res.status, "%s", res.transport)
	}
	require.Contains(h.t, res.message, want.Error(), "%s", res.transport)
	_, reached := h.principal(res.spanName)
	require.False(h.t, reached, "%s: rejected span reached the consumer", res.transport)
}

// bearer sends the key over both transports in Authorization.
func (h *harness) bearerHTTP(key string) result {
	return h.postHTTP(map[string]string{"Authorization": "Bearer " + key}, false)
}

// eventually waits (bounded) for a condition that depends on the watcher.
func (h *harness) eventually(cond func() bool, msg string) {
	h.t.Helper()
	require.Eventually(h.t, cond, 20*time.Second, 20*time.Millisecond, msg)
}

// logCount counts captured log lines whose message contains snippet.
func (h *harness) logCount(snippet string) int {
	return h.logs.FilterMessageSnippet(snippet).Len()
}

// requestCount reads otelcol_fallomauth_requests for an attribute match.
func (h *harness) requestCount(want map[string]string) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric(metricRequests)
	require.NoError(h.t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(h.t, ok, "%s is a %T", metricRequests, m.Data)
	var total int64
	for _, dp := range sum.DataPoints {
		match := true
		for k, v := range want {
			got, present := dp.Attributes.Value(attribute.Key(k))
			if !present || got.AsString() != v {
				match = false
			}
		}
		if match {
			total += dp.Value
		}
	}
	return total
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

// writeFileAtomic replaces a file the way `keys create` and editors do.
func writeFileAtomic(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, keys.WriteFileAtomic(path, []byte(content)))
}

// entryYAML renders one key_sha256 entry.
func entryYAML(name, project, key string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    project: %s\n    key_sha256: %s\n", name, project, keys.DigestOf(key).Hex())
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

// jsonStatusMessage reads the message of the OTLP JSON error body (an
// rpc.Status), failing if the body is not one.
func jsonStatusMessage(t *testing.T, body []byte) string {
	t.Helper()
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(body, &st), "body: %s", body)
	return st.Message
}
