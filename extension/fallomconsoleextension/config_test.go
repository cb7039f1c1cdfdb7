package fallomconsoleextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fallom/fallom-collector/extension/fallomconsoleextension/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewIDWithName(metadata.Type, name)
	if name == "" {
		id = component.NewID(metadata.Type)
	}
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestConfigs(t *testing.T) {
	def := loadConfig(t, "")
	require.NoError(t, confmap.Validate(def))
	assert.Equal(t, DefaultEndpoint, def.NetAddr.Endpoint)
	assert.Equal(t, "fallomauth/read", def.Authenticator.String())
	assert.Equal(t, 12*time.Hour, def.Login.IdleTimeout)

	remote := loadConfig(t, "remote")
	require.NoError(t, confmap.Validate(remote))
	assert.True(t, remote.TLS.HasValue())
	assert.Equal(t, "postgres", remote.Storage.Driver)
	assert.Equal(t, 500, remote.Login.MaxSessions)
	assert.Equal(t, 10*time.Second, remote.QueryTimeout)

	err := confmap.Validate(loadConfig(t, "invalid"))
	require.Error(t, err)
	for _, want := range []string{"auth is not supported here", "authenticator is required", `storage.driver "mysql"`, "login.idle_timeout"} {
		assert.Contains(t, err.Error(), want)
	}
	// The DSN (and its password) never shows in the config's text.
	assert.NotContains(t, err.Error(), "s3cret")
}
