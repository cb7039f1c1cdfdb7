package fallomauthextension

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/fallomattr"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	require.Equal(t, "fallomauth", f.Type().String())
	cfg := f.CreateDefaultConfig()
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	// The default config names no keys: it must be completed by the user.
	require.ErrorContains(t, confmap.Validate(cfg), "no keys configured")
}

// TestLifecycleInlineKeysOnly: without keys_file there is nothing to watch;
// Shutdown works with or without Start.
func TestLifecycleInlineKeysOnly(t *testing.T) {
	cfg := &Config{Keys: []KeyEntry{{Name: "dev", Project: "p", Key: configopaque.String(examplePlainKey)}}}
	require.NoError(t, confmap.Validate(cfg))

	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(context.Background()), "shutdown before start")

	ext, err = NewFactory().Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	srv, ok := ext.(extensionauth.Server)
	require.True(t, ok)

	// An existing client.Info (address, metadata) is kept; Auth is added.
	parent := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{"x-tenant": {"t1"}})})
	ctx, err := srv.Authenticate(parent, map[string][]string{"authorization": {"Bearer " + examplePlainKey}})
	require.NoError(t, err)
	info := client.FromContext(ctx)
	require.Equal(t, []string{"t1"}, info.Metadata.Get("x-tenant"))
	require.Equal(t, "p", info.Auth.GetAttribute(fallomattr.AuthProjectID))
	require.Equal(t, "dev", info.Auth.GetAttribute(fallomattr.AuthKeyName))
	require.Nil(t, info.Auth.GetAttribute("other"))

	require.NoError(t, ext.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()), "second shutdown")
}
