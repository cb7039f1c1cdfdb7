// Package fallomconsoleextension serves the console: a web UI and a JSON
// query API over the spans the fallom exporter stores, from the collector
// binary itself, for keys with the read scope. See README.md.
package fallomconsoleextension // import "github.com/fallom/fallom-collector/extension/fallomconsoleextension"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"

	"github.com/fallom/fallom-collector/extension/fallomconsoleextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/storage/backend"
)

// DefaultEndpoint is the console's listen address: loopback, as the console
// shows stored prompts; set endpoint (FALLOM_CONSOLE_ENDPOINT in the default
// config) to serve it further, behind TLS.
const DefaultEndpoint = "localhost:4320"

// NewFactory creates the fallomconsole extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = DefaultEndpoint
	return &Config{
		ServerConfig:   srv,
		Storage:        backend.DefaultConfig(),
		Login:          LoginConfig{IdleTimeout: 12 * time.Hour, MaxAge: 7 * 24 * time.Hour, MaxSessions: 10000},
		QueryTimeout:   30 * time.Second,
		IngestEndpoint: "http://localhost:4318/v1/traces",
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newConsole(cfg.(*Config), set.TelemetrySettings), nil
}
