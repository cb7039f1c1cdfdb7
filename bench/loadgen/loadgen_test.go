package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestPayloadIsARealisticOpenRouterDelivery(t *testing.T) {
	cfg := DefaultDeliveryConfig()
	cfg.PromptBytes = 300
	cfg.CompletionBytes = 100
	cfg.ErrorRate = 0
	g, err := NewGenerator(cfg)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 9))
	body, spans := g.Payload(nil, rng, 1, time.Unix(1794000000, 0))
	require.Equal(t, 3, spans)

	// OpenRouter's wire quirks: bare-number intValue, lowercase hex ids.
	assert.Regexp(t, `"intValue":\d`, string(body))
	assert.NotRegexp(t, `"intValue":"`, string(body))
	for _, m := range regexp.MustCompile(`"(?:traceId|spanId|parentSpanId)":"([^"]*)"`).FindAllStringSubmatch(string(body), -1) {
		assert.Regexp(t, `^[0-9a-f]{16}([0-9a-f]{16})?$`, m[1])
	}

	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
	require.NoError(t, err)
	require.Equal(t, 3, td.ResourceSpans().Len(), "each span in its own resourceSpans element")
	var root ptrace.Span
	names := map[string]bool{}
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		sn, _ := rs.Resource().Attributes().Get("service.name")
		assert.Equal(t, "openrouter", sn.Str())
		require.Equal(t, 1, rs.ScopeSpans().Len())
		assert.Equal(t, "openrouter", rs.ScopeSpans().At(0).Scope().Name())
		require.Equal(t, 1, rs.ScopeSpans().At(0).Spans().Len())
		sp := rs.ScopeSpans().At(0).Spans().At(0)
		names[sp.Name()] = true
		if sp.ParentSpanID().IsEmpty() {
			root = sp
		} else {
			assert.Equal(t, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SpanID(), sp.ParentSpanID())
		}
	}
	assert.True(t, names["LLM Generation"] && names["generation"], "span names: %v", names)
	assert.Len(t, names, 3)
	attrs := root.Attributes()
	assert.GreaterOrEqual(t, attrs.Len(), 55)
	assert.LessOrEqual(t, attrs.Len(), 92)
	typ, _ := attrs.Get("span.type")
	assert.Equal(t, "generation", typ.Str())
	in, ok := attrs.Get("gen_ai.usage.input_tokens")
	require.True(t, ok)
	assert.Equal(t, pcommon.ValueTypeInt, in.Type())
	cost, ok := attrs.Get("gen_ai.usage.total_cost")
	require.True(t, ok)
	assert.Equal(t, pcommon.ValueTypeDouble, cost.Type())
	assert.Positive(t, cost.Double())
	prompt, _ := attrs.Get("gen_ai.prompt")
	assert.Greater(t, len(prompt.Str()), 300)
	for _, k := range []string{"session.id", "user.id", "gen_ai.response.model", "trace.metadata.openrouter.provider_name", "span.input", "trace.output"} {
		_, ok := attrs.Get(k)
		assert.True(t, ok, k)
	}
}

func TestDeliveriesHaveUniqueIDsAndManySessions(t *testing.T) {
	cfg := DefaultDeliveryConfig()
	cfg.PromptBytes = 16
	cfg.CompletionBytes = 16
	cfg.ErrorRate = 0.5
	g, err := NewGenerator(cfg)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 1))
	body, spans := g.Payload(nil, rng, 500, time.Now())
	require.Equal(t, 1500, spans)
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
	require.NoError(t, err)
	traces, spanIDs, sessions, customers := map[pcommon.TraceID]bool{}, map[pcommon.SpanID]bool{}, map[string]bool{}, map[string]bool{}
	errorsSeen := 0
	for i := range td.ResourceSpans().Len() {
		sp := td.ResourceSpans().At(i).ScopeSpans().At(0).Spans().At(0)
		traces[sp.TraceID()] = true
		spanIDs[sp.SpanID()] = true
		if s, ok := sp.Attributes().Get("session.id"); ok {
			sessions[s.Str()] = true
			c, _ := sp.Attributes().Get("user.id")
			customers[c.Str()] = true
			if sp.Status().Code() == ptrace.StatusCodeError {
				errorsSeen++
				_, hasCost := sp.Attributes().Get("gen_ai.usage.total_cost")
				assert.False(t, hasCost, "failed generations carry no cost")
				assert.Equal(t, 1, sp.Events().Len())
			}
		}
	}
	assert.Len(t, traces, 500)
	assert.Len(t, spanIDs, 1500)
	assert.Greater(t, len(sessions), 400)
	assert.Greater(t, len(customers), 200)
	assert.Positive(t, errorsSeen)
	assert.Less(t, errorsSeen, 500)
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:4318/v1/traces", "http://localhost:1/x", "http://[::1]:4318/v1/traces", "http://127.9.9.9:80/"} {
		assert.NoError(t, CheckLoopback(ok), ok)
	}
	for _, bad := range []string{"http://10.0.0.1:4318/v1/traces", "http://192.168.1.1/", "http://example.com/", "ftp://127.0.0.1/", "://"} {
		assert.Error(t, CheckLoopback(bad), bad)
	}
	_, err := Run(context.Background(), Config{URL: "http://10.1.2.3:4318/v1/traces", Concurrency: 1, Requests: 1, Delivery: DefaultDeliveryConfig()})
	assert.ErrorContains(t, err, "loopback")
}

func TestRunNeedsABound(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1/v1/traces", Concurrency: 1, Delivery: DefaultDeliveryConfig()})
	assert.ErrorContains(t, err, "duration or a request count")
}

// startReceiver runs the stock OTLP receiver (HTTP only) on a free loopback
// port, feeding next, and returns its traces URL.
func startReceiver(t *testing.T, next consumer.Traces) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"protocols": map[string]any{"http": map[string]any{"endpoint": addr}},
	}).Unmarshal(cfg))
	rcv, err := factory.CreateTraces(context.Background(), receivertest.NewNopSettings(component.MustNewType("otlp")), cfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	return "http://" + addr + "/v1/traces"
}

// countingConsumer accepts or refuses requests by turn and counts the spans
// it accepted.
type countingConsumer struct {
	calls    atomic.Int64
	accepted atomic.Int64
	refuse   func(call int64) error
	mu       sync.Mutex
	traceIDs map[pcommon.TraceID]bool
}

func (c *countingConsumer) consume(_ context.Context, td ptrace.Traces) error {
	if err := c.refuse(c.calls.Add(1)); err != nil {
		return err
	}
	c.accepted.Add(int64(td.SpanCount()))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range td.ResourceSpans().Len() {
		c.traceIDs[td.ResourceSpans().At(i).ScopeSpans().At(0).Spans().At(0).TraceID()] = true
	}
	return nil
}

func newCounting(t *testing.T, refuse func(int64) error) (*countingConsumer, string) {
	c := &countingConsumer{refuse: refuse, traceIDs: map[pcommon.TraceID]bool{}}
	next, err := consumer.NewTraces(c.consume)
	require.NoError(t, err)
	return c, startReceiver(t, next)
}

func smallDeliveries() DeliveryConfig {
	d := DefaultDeliveryConfig()
	d.PromptBytes, d.CompletionBytes = 256, 64
	return d
}

func TestRunCountsOnlyAcknowledgedSpans(t *testing.T) {
	// Every third request is refused the way a throttling collector does it
	// (retryable status with RetryInfo: 503 + Retry-After), every fifth with
	// a plain error (503, no Retry-After); the rest are accepted.
	throttled := status.New(codes.Unavailable, "throttled")
	throttled, err := throttled.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)})
	require.NoError(t, err)
	c, url := newCounting(t, func(call int64) error {
		switch {
		case call%3 == 0:
			return throttled.Err()
		case call%5 == 0:
			return errors.New("queue is full")
		}
		return nil
	})

	res, err := Run(context.Background(), Config{
		URL: url, APIKey: "flm_loadgen_test_key_0123456789", Concurrency: 4, Requests: 90,
		DeliveriesPerRequest: 2, Delivery: smallDeliveries(),
	})
	require.NoError(t, err)

	assert.EqualValues(t, 90, res.Requests)
	assert.EqualValues(t, 90*2*SpansPerDelivery, res.SentSpans)
	assert.Equal(t, c.accepted.Load(), res.AckedSpans, "acked spans are exactly what the receiver accepted")
	// 90 calls: 30 throttled (multiples of 3), 12 plain errors (multiples of
	// 5 but not of 3), 48 accepted.
	assert.EqualValues(t, 48, res.Status[200])
	assert.EqualValues(t, 42, res.Status[503])
	assert.EqualValues(t, 30, res.RetryAfter[503])
	assert.EqualValues(t, 48*2*SpansPerDelivery, res.AckedSpans)
	assert.EqualValues(t, 42, res.Errors())
	assert.Regexp(t, `throttled|queue is full`, res.ErrorSamples[503], "the answer body says why")
	assert.Len(t, c.traceIDs, 48*2, "every accepted delivery had its own trace id")
	assert.Equal(t, 48, res.LatencyOK.Count)
	assert.Equal(t, 90, res.LatencyAll.Count)
	assert.LessOrEqual(t, res.LatencyOK.P50, res.LatencyOK.P99)
	assert.Positive(t, res.SpansPerSec)
}

func TestRunCountsTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there any more
	res, err := Run(context.Background(), Config{URL: "http://" + addr + "/v1/traces", Concurrency: 2, Requests: 6, Delivery: smallDeliveries()})
	require.NoError(t, err)
	assert.EqualValues(t, 6, res.TransportErrors["refused"])
	assert.Contains(t, res.TransportSamples["refused"], "connection refused")
	assert.Zero(t, res.AckedSpans)
	assert.EqualValues(t, 6, res.Errors())
}

func TestOpenLoopAccountsForEveryRequest(t *testing.T) {
	c, url := newCounting(t, func(int64) error { return nil })
	res, err := Run(context.Background(), Config{
		URL: url, Rate: 400, MaxInFlight: 8, Requests: 60, Duration: 20 * time.Second, Delivery: smallDeliveries(),
	})
	require.NoError(t, err)
	assert.EqualValues(t, 60, res.Requests, "shed requests do not count against the bound")
	assert.Equal(t, c.accepted.Load(), res.AckedSpans)
	assert.EqualValues(t, res.Requests*SpansPerDelivery, res.AckedSpans)
	assert.EqualValues(t, res.Requests, res.Status[200])
}
