package openroutermappingprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cases := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: &Config{MaxValueBytes: 1 << 20, RetryAfter: defaultRetryAfter}},
		{id: component.NewIDWithName(metadata.Type, "private"), want: &Config{
			DefaultProjectID: "acme", DropContent: true, MaxValueBytes: 65536, PricingFile: "testdata/prices.yaml", RetryAfter: defaultRetryAfter,
		}},
		{id: component.NewIDWithName(metadata.Type, "sidecar"), want: &Config{KeepOriginalContent: true, TrustResourceProject: true, RetryAfter: defaultRetryAfter}},
		{id: component.NewIDWithName(metadata.Type, "contradiction"), wantErr: "drop_content and keep_original_content contradict"},
		{id: component.NewIDWithName(metadata.Type, "negative"), wantErr: "max_value_bytes must be 0 (no limit) or positive"},
		{id: component.NewIDWithName(metadata.Type, "tiny"), wantErr: "at least 256"},
		{id: component.NewIDWithName(metadata.Type, "missing_prices"), wantErr: "does-not-exist.yaml"},
	}
	for _, c := range cases {
		t.Run(c.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(c.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if c.wantErr != "" {
				assert.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, cfg)
		})
	}
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "openroutermapping", f.Type().String())
	assert.Equal(t, component.StabilityLevelAlpha, f.TracesStability())
	require.NoError(t, componenttest.CheckConfigStruct(f.CreateDefaultConfig()))
	_, consume := newPipeline(t, f.CreateDefaultConfig().(*Config))
	require.NoError(t, consume(ctxWithProject("acme"), loadTraces(t, "openrouter-delivery.json")))
}
