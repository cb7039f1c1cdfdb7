package fallomauthextension

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/keys"
)

const (
	examplePlainKey  = "flm_plaintext_for_local_dev_only"
	exampleHashedKey = "flm_openrouter_prod_example_key_0001"
	exampleDigest    = "ae18eaa7cbbef693e54a01a4bd9de504a36d7b9232b466a2682fe5d5e274d43b"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	require.Equal(t, "./data/keys.yaml", cfg.KeysFile)
	require.Equal(t, defaultReloadInterval, cfg.ReloadInterval)
	require.Empty(t, cfg.Keys)

	cfg = loadConfig(t, "inline")
	require.NoError(t, confmap.Validate(cfg))
	require.Equal(t, 10*time.Second, cfg.ReloadInterval)
	require.Len(t, cfg.Keys, 2)
	require.Equal(t, "openrouter-prod", cfg.Keys[0].Name)
	require.Equal(t, "acme", cfg.Keys[0].Project)
	require.Equal(t, exampleDigest, cfg.Keys[0].KeySHA256)
	require.True(t, cfg.Keys[0].ExpiresAt.IsZero())
	require.Equal(t, examplePlainKey, string(cfg.Keys[1].Key))
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), cfg.Keys[1].ExpiresAt.UTC())
	require.False(t, cfg.Keys[1].Revoked)
	require.Equal(t, "ingest", cfg.Scope, "default scope")

	cfg = loadConfig(t, "read")
	require.NoError(t, confmap.Validate(cfg))
	require.Equal(t, "read", cfg.Scope)
	require.Equal(t, []string{"ingest", "read"}, cfg.Keys[0].Scopes)
}

func TestConfigValidateErrors(t *testing.T) {
	for name, want := range map[string]string{
		"no_keys":           "no keys configured: set keys_file",
		"negative_interval": "reload_interval must not be negative",
		"key_and_digest":    `keys[0] ("both"): set either key or key_sha256, not both`,
		"neither":           `keys[0] ("none"): one of key or key_sha256 is required`,
		"not_flm":           `keys[0] ("openai"): key is not a valid fallom key (expected flm_ followed by 16 to 128 characters`,
		"bad_digest":        `keys[0] ("short"): key_sha256 must be 64 hex characters, got 16`,
		"duplicate_name":    `keys[1] ("same"): name is already used by keys[0]`,
		"duplicate_key":     `keys[1] ("two"): same key as keys[0]`,
		"missing_project":   `keys[0] ("orphan"): project is required`,
		"key_as_name":       `keys[0]: name looks like an API key`,
		"bad_scope":         `scope: unknown scope "admin" (known: ingest,read)`,
		"bad_entry_scope":   `keys[0] ("odd"): scopes: unknown scope "write"`,
	} {
		t.Run(name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, name))
			require.ErrorContains(t, err, want)
			for _, secret := range []string{examplePlainKey, exampleHashedKey, exampleDigest, "sk-proj-0123456789abcdefghijkl", "ae18eaa7cbbef693"} {
				require.NotContains(t, err.Error(), secret, "Validate echoed key material")
				require.NotContains(t, err.Error(), secret[4:])
			}
		})
	}
}

// TestConfigPrintRedactsPlaintextKey: the collector's print-config and debug
// output marshal the config; configopaque masks inline plaintext keys.
func TestConfigPrintRedactsPlaintextKey(t *testing.T) {
	conf := confmap.New()
	require.NoError(t, conf.Marshal(loadConfig(t, "inline")))
	printed := fmt.Sprint(conf.ToStringMap())
	require.Contains(t, printed, "[REDACTED]")
	require.Contains(t, printed, "local-dev")
	require.NotContains(t, printed, examplePlainKey)
}

// TestInlineAndFileExpiresAtAgree (issue 15 item 8): every expires_at form is
// accepted or refused alike inline (through the collector's YAML) and in the
// keys file, and means the same instant.
func TestInlineAndFileExpiresAtAgree(t *testing.T) {
	for form, accepted := range map[string]bool{
		"2027-01-01T00:00:00Z": true, "2027-01-01T02:00:00+02:00": true, "2027-01-01": true,
		"2027-01-01 00:00:00": true, "2027-1-1t00:00:00Z": true,
		"2027-01-01T00:00:00": false, "01/01/2027": false, "next week": false, "2027": false,
	} {
		t.Run(form, func(t *testing.T) {
			entry := "- name: a\n  project: p\n  key_sha256: " + exampleDigest + "\n  expires_at: " + form + "\n"
			conf, err := confmap.NewRetrievedFromYAML([]byte("keys:\n" + strings.ReplaceAll("  "+entry, "\n  ", "\n    ")))
			require.NoError(t, err)
			c, err := conf.AsConf()
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig().(*Config)
			inlineErr := c.Unmarshal(cfg)

			fileEntries, fileErr := keys.Parse([]byte("keys:\n" + strings.ReplaceAll("  "+entry, "\n  ", "\n    ")))
			require.Equal(t, accepted, fileErr == nil, "file: %v", fileErr)
			require.Equal(t, accepted, inlineErr == nil, "inline: %v", inlineErr)
			if fileErr == nil {
				require.True(t, cfg.Keys[0].ExpiresAt.Equal(fileEntries[0].ExpiresAt), "%s vs %s", cfg.Keys[0].ExpiresAt, fileEntries[0].ExpiresAt)
			}
		})
	}
}
