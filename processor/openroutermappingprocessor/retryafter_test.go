package openroutermappingprocessor

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

// What an OTLP/HTTP client sees when a stage after the processor refuses
// data: the stock receiver in front of the processor, in front of a consumer
// that fails the way the memory_limiter (plain error) and the exporter
// (plain or permanent error) do.
func TestRetryableDownstreamErrorsAnswer503WithRetryAfter(t *testing.T) {
	var downstreamErr error
	failing := consumer.Traces(mustTraces(t, func(context.Context, ptrace.Traces) error { return downstreamErr }))

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.RetryAfter = 7 * time.Second
	cfg.DefaultProjectID = "acme" // the receiver here has no auth
	proc, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), cfg, failing)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()
	url := startOTLPHTTPReceiver(t, proc)

	body := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"chat","attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}}]}]}]}]}`)
	post := func() *http.Response {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}

	downstreamErr = errors.New("data refused due to high memory usage")
	resp := post()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "7", resp.Header.Get("Retry-After"))

	downstreamErr = consumererror.NewPermanent(errors.New("span can never be stored"))
	resp = post()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Retry-After"), "a permanent error must not invite a retry")

	downstreamErr = nil
	resp = post()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestRetryAfterOffLeavesErrorsAlone(t *testing.T) {
	plain := errors.New("busy")
	next := mustTraces(t, func(context.Context, ptrace.Traces) error { return plain })
	wrapped, err := withRetryAfter(next, 0)
	require.NoError(t, err)
	assert.Same(t, plain, wrapped.ConsumeTraces(context.Background(), ptrace.NewTraces()))
}

func mustTraces(t *testing.T, fn consumer.ConsumeTracesFunc) consumer.Traces {
	t.Helper()
	c, err := consumer.NewTraces(fn)
	require.NoError(t, err)
	return c
}

func startOTLPHTTPReceiver(t *testing.T, next consumer.Traces) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
	r, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return "http://" + addr + "/v1/traces"
}
