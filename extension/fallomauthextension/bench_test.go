package fallomauthextension

import (
	"context"
	"fmt"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/keys"
)

// BenchmarkAuthenticate measures one successful Authenticate with 10 and
// with 10,000 configured keys, for fallomauth (key_sha256 entries, as `keys
// create` writes them) and for contrib bearertokenauth configured with the
// same tokens in `tokens`. The presented key is the last configured one:
// contrib's worst case (it compares tokens one by one); for fallomauth the
// position does not matter. Both run with no-op telemetry.
//
//	go test -run '^$' -bench BenchmarkAuthenticate -benchmem ./extension/fallomauthextension/
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{10, 10000} {
		tokens := make([]string, n)
		for i := range tokens {
			k, err := keys.Generate()
			require.NoError(b, err)
			tokens[i] = k
		}
		headers := map[string][]string{"Authorization": {"Bearer " + tokens[n-1]}}

		b.Run(fmt.Sprintf("ours_%d_keys", n), func(b *testing.B) {
			entries := make([]KeyEntry, n)
			for i, k := range tokens {
				entries[i] = KeyEntry{Name: fmt.Sprintf("key-%d", i), Project: "bench", KeySHA256: keys.DigestOf(k).Hex()}
			}
			auth := startServerAuth(b, NewFactory(), &Config{Keys: entries})
			benchAuthenticate(b, auth, headers)
		})

		b.Run(fmt.Sprintf("contrib_%d_keys", n), func(b *testing.B) {
			f := bearertokenauthextension.NewFactory()
			cfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
			cfg.Tokens = make([]configopaque.String, n)
			for i, k := range tokens {
				cfg.Tokens[i] = configopaque.String(k)
			}
			auth := startServerAuth(b, f, cfg)
			benchAuthenticate(b, auth, headers)
		})
	}
}

func startServerAuth(b *testing.B, f extension.Factory, cfg component.Config) extensionauth.Server {
	b.Helper()
	set := extensiontest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(f.Type())
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(b, err)
	require.NoError(b, ext.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, ext.Shutdown(context.Background())) })
	return ext.(extensionauth.Server)
}

func benchAuthenticate(b *testing.B, auth extensionauth.Server, headers map[string][]string) {
	ctx := context.Background()
	// Outside the timed loop: the configured key must really be accepted.
	_, err := auth.Authenticate(ctx, headers)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auth.Authenticate(ctx, headers); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateFloor measures, alone, the two things Authenticate
// must do that contrib bearertokenauth does not: the sha256 of the presented
// key (lookup by digest, no raw key in memory) and attaching the principal
// to client.Info (two allocations: the boxed Info and the context). Their sum
// is the floor of fallomauth's cost whatever else it does; compare it with
// BenchmarkAuthenticate/contrib_10_keys in the same run.
//
//	go test -run '^$' -bench 'BenchmarkAuthenticate' -benchmem ./extension/fallomauthextension/
func BenchmarkAuthenticateFloor(b *testing.B) {
	key, err := keys.Generate()
	require.NoError(b, err)
	b.Run("sha256", func(b *testing.B) {
		var d keys.Digest
		for b.Loop() {
			d = keys.DigestOf(key)
		}
		require.NotEqual(b, keys.Digest{}, d)
	})
	b.Run("attach_principal", func(b *testing.B) {
		ctx := client.NewContext(context.Background(), client.Info{})
		p := &authData{projectID: "bench", keyName: "key-0"}
		var out context.Context
		b.ReportAllocs()
		for b.Loop() {
			info := client.FromContext(ctx)
			info.Auth = p
			out = client.NewContext(ctx, info)
		}
		require.Equal(b, p, client.FromContext(out).Auth)
	})
}
