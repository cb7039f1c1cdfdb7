package config

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestPipelineOrderWarnings(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"service": map[string]any{"pipelines": map[string]any{
			// the mistake of issue 15 item 7
			"traces": map[string]any{"processors": []any{"batch", "openroutermapping", "memory_limiter"}},
			// named instances, one between
			"logs/sdk": map[string]any{"processors": []any{"batch/small", "memory_limiter", "openroutermapping/sdk"}},
			// the right order
			"traces/ok": map[string]any{"processors": []any{"openroutermapping", "memory_limiter", "batch"}},
			// no openroutermapping at all
			"metrics": map[string]any{"processors": []any{"batch"}},
		}},
	})
	assert.Equal(t, []string{
		`pipeline "logs/sdk": processor "batch/small" comes before "openroutermapping/sdk": it hands data on without the request's authentication, so openroutermapping/sdk sees no key's project and refuses the data (or stamps default_project_id); put openroutermapping/sdk first`,
		`pipeline "traces": processor "batch" comes before "openroutermapping": it hands data on without the request's authentication, so openroutermapping sees no key's project and refuses the data (or stamps default_project_id); put openroutermapping first`,
	}, PipelineOrderWarnings(conf))

	// The shipped default config is in the right order.
	r, err := confmap.NewRetrievedFromYAML(DefaultYAML)
	require.NoError(t, err)
	def, err := r.AsConf()
	require.NoError(t, err)
	assert.Empty(t, PipelineOrderWarnings(def))
}

func TestOrderCheckLogsAndKeepsWarnings(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	check := &OrderCheck{}
	conv := check.Factory().Create(confmap.ConverterSettings{Logger: zap.New(core)})
	conf := confmap.NewFromStringMap(map[string]any{
		"service": map[string]any{"pipelines": map[string]any{
			"traces": map[string]any{"processors": []any{"batch", "openroutermapping"}},
		}},
	})
	before := conf.ToStringMap()
	require.NoError(t, conv.Convert(context.Background(), conf))
	assert.Equal(t, before, conf.ToStringMap(), "the converter changes nothing")
	require.Len(t, check.Warnings(), 1)
	require.Equal(t, 1, logs.Len())
	assert.Equal(t, check.Warnings()[0], logs.All()[0].Message)

	// A later resolve (config reload) replaces the warnings.
	fixed := confmap.NewFromStringMap(map[string]any{
		"service": map[string]any{"pipelines": map[string]any{
			"traces": map[string]any{"processors": []any{"openroutermapping", "batch"}},
		}},
	})
	require.NoError(t, conv.Convert(context.Background(), fixed))
	assert.Empty(t, check.Warnings())
}
