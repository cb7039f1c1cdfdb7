package fallomsdkreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fallom/fallom-collector/receiver/fallomsdkreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub("receivers::" + id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestConfigs(t *testing.T) {
	def := loadConfig(t, "")
	require.NoError(t, confmap.Validate(def))
	assert.Equal(t, "localhost:4319", def.NetAddr.Endpoint, "loopback unless the deployer opens it")
	assert.Equal(t, SpanKindAPI, def.OTLPSpanKind)
	assert.Equal(t, int64(20<<20), def.MaxRequestBodySize)
	assert.Equal(t, 30*time.Second, def.SDKFileReloadInterval)
	assert.Empty(t, def.SDKFile)

	full := loadConfig(t, "full")
	require.NoError(t, confmap.Validate(full))
	assert.Equal(t, "0.0.0.0:4319", full.NetAddr.Endpoint)
	assert.True(t, full.Auth.HasValue())
	require.Len(t, full.Middlewares, 1)
	assert.Equal(t, int64(10485760), full.MaxRequestBodySize)
	assert.Equal(t, "./data/sdk.yaml", full.SDKFile)
	assert.Equal(t, SpanKindOTLP, full.OTLPSpanKind)
	assert.Equal(t, 2*time.Second, full.RetryAfter)

	bad := loadConfig(t, "bad_kind")
	err := confmap.Validate(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `otlp_span_kind must be "api" or "otlp", got "proto"`)
}
