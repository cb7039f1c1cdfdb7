// Package fallomsdkreceiver is the backend of the Fallom SDKs (TypeScript
// @fallom/trace, Python fallom): one HTTP server that takes their traces into
// a traces pipeline, their assignments, business metrics and eval runs into a
// logs pipeline, and serves the configs, prompts, prompt A/B tests and
// datasets of the SDK file to each key's project (DESIGN 6, FALLOM_SDK.md).
package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/fallom/fallom-collector/internal/sharedcomponent"
	"github.com/fallom/fallom-collector/receiver/fallomsdkreceiver/internal/metadata"
)

const (
	// defaultEndpoint is loopback, like the core receivers: opening it to
	// the network is the deployer's choice (the shipped config does, with
	// keys required).
	defaultEndpoint       = "localhost:4319"
	defaultReloadInterval = 30 * time.Second
	defaultRetryAfter     = 5 * time.Second
	// defaultMaxRequestBodySize: a TraceData carries one call's request and
	// response; eval uploads carry a run's results.
	defaultMaxRequestBodySize = 20 << 20
)

// NewFactory creates the fallomsdk receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithLogs(createLogs, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	server.MaxRequestBodySize = defaultMaxRequestBodySize
	return &Config{
		ServerConfig:          server,
		SDKFileReloadInterval: defaultReloadInterval,
		OTLPSpanKind:          SpanKindAPI,
		RetryAfter:            defaultRetryAfter,
	}
}

// receivers shares one instance (one HTTP server) between the traces and
// the logs pipeline of the same component id.
var receivers = sharedcomponent.NewMap[*Config, *sdkReceiver]()

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := receivers.LoadOrStore(cfg.(*Config), func() (*sdkReceiver, error) { return newReceiver(cfg.(*Config), set) })
	if err != nil {
		return nil, err
	}
	r.Unwrap().nextTraces = next
	return r, nil
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := receivers.LoadOrStore(cfg.(*Config), func() (*sdkReceiver, error) { return newReceiver(cfg.(*Config), set) })
	if err != nil {
		return nil, err
	}
	r.Unwrap().nextLogs = next
	return r, nil
}
