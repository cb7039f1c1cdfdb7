package requestguardextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fallom/fallom-collector/extension/requestguardextension/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{name: "", want: &Config{MaxInFlightRequests: 512, RetryAfter: 5 * time.Second, MaxProjectShare: 0.75}},
		{name: "unbounded", want: &Config{MaxInFlightRequests: 0, RetryAfter: 5 * time.Second, MaxProjectShare: 0.75}},
		{name: "no_share", want: &Config{MaxInFlightRequests: 512, RetryAfter: 5 * time.Second, MaxProjectShare: 1}},
		{name: "zero_share", wantErr: "max_project_share must be above 0 and at most 1"},
		{name: "over_share", wantErr: "max_project_share must be above 0 and at most 1"},
		{name: "negative", wantErr: "max_in_flight_requests must be 0 (no bound) or positive"},
		{name: "subsecond", wantErr: "retry_after must be at least 1s"},
	}
	for _, tt := range tests {
		t.Run("requestguard/"+tt.name, func(t *testing.T) {
			id := component.NewID(metadata.Type)
			if tt.name != "" {
				id = component.NewIDWithName(metadata.Type, tt.name)
			}
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig()
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, confmap.Validate(NewFactory().CreateDefaultConfig()))
}
