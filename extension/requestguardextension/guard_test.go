package requestguardextension

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fallom/fallom-collector/extension/requestguardextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

// The tests put the guard where a collector config puts it, in the stock
// OTLP receiver's `protocols.http.middlewares`, and talk HTTP to that
// receiver. testHost is the one piece of glue a component test needs in
// place of the collector service.
type testHost struct {
	extensions map[component.ID]component.Component
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

const maxBody = 64 << 10 // the receiver's max_request_body_size in these tests

type harness struct {
	url  string
	sink *consumertest.TracesSink
	tel  *componenttest.Telemetry
}

// newHarness starts the guard and an OTLP/HTTP receiver using it, in front of
// next (a sink when nil).
func newHarness(t *testing.T, cfg *Config, next consumer.Traces) *harness {
	t.Helper()
	h := &harness{sink: new(consumertest.TracesSink), tel: componenttest.NewTelemetry()}
	t.Cleanup(func() { require.NoError(t, h.tel.Shutdown(context.Background())) })
	if next == nil {
		next = h.sink
	}

	extID := component.NewID(metadata.Type)
	ext, err := NewFactory().Create(context.Background(),
		extension.Settings{ID: extID, TelemetrySettings: h.tel.NewTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}, cfg)
	require.NoError(t, err)
	host := &testHost{extensions: map[component.ID]component.Component{extID: ext}}
	require.NoError(t, ext.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })

	addr, err := freeport.Addr()
	require.NoError(t, err)

	// Configured as a user would, in the receiver's YAML shape.
	rf := otlpreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"http": map[string]any{
			"endpoint":              addr,
			"max_request_body_size": maxBody,
			"middlewares":           []any{map[string]any{"id": extID.String()}},
		}},
	}).Unmarshal(rcfg))
	rcv, err := rf.CreateTraces(context.Background(), receiver.Settings{
		ID: component.NewID(rf.Type()), TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo(),
	}, rcfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	h.url = "http://" + addr + "/v1/traces"
	return h
}

func defaultConfig() *Config { return createDefaultConfig().(*Config) }

// tracesJSON is an OTLP/JSON request of one span whose attribute value has
// valueBytes bytes.
func tracesJSON(name string, valueBytes int) []byte {
	return fmt.Appendf(nil, `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":%q,"attributes":[{"key":"gen_ai.prompt","value":{"stringValue":%q}}]}]}]}]}`,
		name, strings.Repeat("a", valueBytes))
}

type response struct {
	code        int
	contentType string
	retryAfter  string
	status      *spb.Status
}

func post(t *testing.T, url, contentType, encoding string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{code: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), retryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode != http.StatusOK {
		r.status = &spb.Status{}
		if r.contentType == pbContentType {
			require.NoError(t, proto.Unmarshal(raw, r.status), "protobuf Status: %q", raw)
		} else {
			require.NoError(t, protojson.Unmarshal(raw, r.status), "JSON Status: %s", raw)
		}
	}
	return r
}

func requireTooLarge(t *testing.T, r response, contentType string) {
	t.Helper()
	require.Equal(t, http.StatusRequestEntityTooLarge, r.code)
	require.Equal(t, contentType, r.contentType)
	require.Equal(t, int32(codes.InvalidArgument), r.status.GetCode())
	require.Contains(t, r.status.GetMessage(), fmt.Sprintf("request body too large: more than %d bytes", maxBody))
	require.Contains(t, r.status.GetMessage(), "max_request_body_size")
}

func TestBodyOverLimitIs413(t *testing.T) {
	h := newHarness(t, defaultConfig(), nil)

	t.Run("json", func(t *testing.T) {
		requireTooLarge(t, post(t, h.url, "application/json", "", tracesJSON("big", 2*maxBody)), jsonContentType)
	})
	t.Run("json with charset", func(t *testing.T) {
		requireTooLarge(t, post(t, h.url, "application/json; charset=utf-8", "", tracesJSON("big", 2*maxBody)), jsonContentType)
	})
	t.Run("protobuf answered in protobuf", func(t *testing.T) {
		td := ptrace.NewTraces()
		span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName("big")
		span.SetTraceID([16]byte{1})
		span.SetSpanID([8]byte{1})
		span.Attributes().PutStr("gen_ai.prompt", strings.Repeat("p", 2*maxBody))
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		requireTooLarge(t, post(t, h.url, pbContentType, "", body), pbContentType)
	})
	t.Run("gzip bomb", func(t *testing.T) {
		var buf bytes.Buffer
		gw := gzip.NewWriter(&buf)
		_, err := gw.Write(tracesJSON("bomb", 50*maxBody))
		require.NoError(t, err)
		require.NoError(t, gw.Close())
		require.Less(t, buf.Len(), maxBody, "the compressed bomb itself is under the limit")
		requireTooLarge(t, post(t, h.url, "application/json", "gzip", buf.Bytes()), jsonContentType)
	})
	t.Run("zstd bomb", func(t *testing.T) {
		var buf bytes.Buffer
		zw, err := zstd.NewWriter(&buf)
		require.NoError(t, err)
		_, err = zw.Write(tracesJSON("bomb", 50*maxBody))
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		require.Less(t, buf.Len(), maxBody)
		requireTooLarge(t, post(t, h.url, "application/json", "zstd", buf.Bytes()), jsonContentType)
	})

	// Nothing of the refused requests reached the pipeline; the receiver
	// still works, and its other errors are left as they are.
	require.Zero(t, h.sink.SpanCount())
	ok := post(t, h.url, "application/json", "", tracesJSON("small", 100))
	require.Equal(t, http.StatusOK, ok.code)
	require.Equal(t, 1, h.sink.SpanCount())
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, _ = gw.Write(tracesJSON("small-gzip", maxBody/2))
	require.NoError(t, gw.Close())
	require.Equal(t, http.StatusOK, post(t, h.url, "application/json", "gzip", gz.Bytes()).code)
	require.Equal(t, 2, h.sink.SpanCount())
	bad := post(t, h.url, "application/json", "", []byte(`{"resourceSpans":[{`))
	require.Equal(t, http.StatusBadRequest, bad.code, "malformed JSON stays the receiver's 400")

	requireRefusedMetric(t, h.tel, map[string]int64{"too_large": 5})
}

func TestInFlightBoundSheds503WithRetryAfter(t *testing.T) {
	const bound = 2
	release := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(bound)
	var mu sync.Mutex
	consumed := map[string]bool{}
	blocking, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		name := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name()
		mu.Lock()
		consumed[name] = true
		mu.Unlock()
		if strings.HasPrefix(name, "hold") {
			entered.Done()
			<-release
		}
		return nil
	})
	require.NoError(t, err)
	cfg := defaultConfig()
	cfg.MaxInFlightRequests = bound
	cfg.RetryAfter = 7 * time.Second
	h := newHarness(t, cfg, blocking)

	// Fill every slot with a request the pipeline holds.
	held := make(chan response, bound)
	for i := range bound {
		go func() { held <- post(t, h.url, "application/json", "", tracesJSON(fmt.Sprintf("hold-%d", i), 10)) }()
	}
	entered.Wait()

	// One more is refused at once, in the request's encoding, retryable.
	r := post(t, h.url, "application/json", "", tracesJSON("shed-json", 10))
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	require.Equal(t, "7", r.retryAfter)
	require.Equal(t, int32(codes.Unavailable), r.status.GetCode())
	require.Contains(t, r.status.GetMessage(), "collector busy: 2 requests already in flight")
	require.Len(t, r.status.GetDetails(), 1)
	var ri errdetails.RetryInfo
	require.NoError(t, r.status.GetDetails()[0].UnmarshalTo(&ri))
	require.Equal(t, 7*time.Second, ri.GetRetryDelay().AsDuration())

	rpb := post(t, h.url, pbContentType, "", mustProto(t, "shed-proto"))
	require.Equal(t, http.StatusServiceUnavailable, rpb.code)
	require.Equal(t, pbContentType, rpb.contentType)
	require.Equal(t, "7", rpb.retryAfter)
	require.Equal(t, int32(codes.Unavailable), rpb.status.GetCode())

	// Releasing the held requests frees their slots: they succeed, and so
	// does the client's retry.
	close(release)
	for range bound {
		assert.Equal(t, http.StatusOK, (<-held).code)
	}
	require.Equal(t, http.StatusOK, post(t, h.url, "application/json", "", tracesJSON("retry", 10)).code)

	mu.Lock()
	defer mu.Unlock()
	require.False(t, consumed["shed-json"], "a shed request must not reach the pipeline")
	require.False(t, consumed["shed-proto"])
	require.True(t, consumed["retry"])
	requireRefusedMetric(t, h.tel, map[string]int64{"busy": 2})
}

func TestUnboundedPassesEverything(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxInFlightRequests = 0
	h := newHarness(t, cfg, nil)
	// Runs before the receiver's shutdown (cleanups run last-in first-out):
	// connections the 50 concurrent requests opened but left idle would
	// otherwise hold http.Server.Shutdown for its 5 s grace period.
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- post(t, h.url, "application/json", "", tracesJSON(fmt.Sprintf("s%d", i), 10)).code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		require.Equal(t, http.StatusOK, c)
	}
	require.Equal(t, 50, h.sink.SpanCount())
}

func mustProto(t *testing.T, name string) []byte {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName(name)
	span.SetTraceID([16]byte{2})
	span.SetSpanID([8]byte{2})
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

func requireRefusedMetric(t *testing.T, tel *componenttest.Telemetry, want map[string]int64) {
	t.Helper()
	m, err := tel.GetMetric(metricRefused)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		reason, _ := dp.Attributes.Value(attribute.Key(attrReason))
		got[reason.AsString()] += dp.Value
	}
	require.Equal(t, want, got)
}
