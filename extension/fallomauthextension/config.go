package fallomauthextension // import "github.com/fallom/fallom-collector/extension/fallomauthextension"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/principal"
)

// KeyEntry is one configured key (DESIGN 2.2): name, project, key or
// key_sha256, expires_at, revoked. The keys file uses the same shape.
type KeyEntry = keys.Entry

// Config configures the fallomauth extension.
type Config struct {
	// KeysFile is a YAML file holding `keys:` entries. It is watched and
	// hot-reloaded; it may be missing at start and created later (for example
	// by `fallomcol keys create`).
	KeysFile string `mapstructure:"keys_file"`

	// Keys are entries configured inline. They are always active alongside
	// the keys file's entries; names and keys must not repeat across both.
	Keys []KeyEntry `mapstructure:"keys"`

	// ReloadInterval is how often the keys file is re-read even without a
	// file-system event: the safety net for file systems where change
	// notifications do not arrive (network mounts) and for a keys directory
	// that does not exist yet. Unchanged content is not re-applied. 0 disables
	// the periodic check.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`

	// Scope is what this instance admits keys for: "ingest" (receivers) or
	// "read" (the console and query API). A valid key without it is refused
	// with an error wrapping principal.ErrMissingScope. Several instances
	// (fallomauth/ingest, fallomauth/read) can share one keys file.
	Scope string `mapstructure:"scope"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

const defaultReloadInterval = 30 * time.Second

func createDefaultConfig() component.Config {
	return &Config{ReloadInterval: defaultReloadInterval, Scope: string(principal.Ingest)}
}

// Validate checks the config. Messages name the entry and the problem and
// never contain key material.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.KeysFile == "" && len(cfg.Keys) == 0 {
		errs = append(errs, errors.New("no keys configured: set keys_file (recommended) and/or keys"))
	}
	if cfg.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("reload_interval must not be negative (0 disables the periodic check), got %s", cfg.ReloadInterval))
	}
	if _, err := cfg.scope(); err != nil {
		errs = append(errs, err)
	}
	if _, err := keys.Validate("keys", cfg.Keys); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// scope is the configured scope; empty (a Config built in code) means ingest,
// the default.
func (cfg *Config) scope() (principal.Scope, error) {
	if cfg.Scope == "" {
		return principal.Ingest, nil
	}
	sc, err := principal.ParseScope(cfg.Scope)
	if err != nil {
		return "", fmt.Errorf("scope: %w", err)
	}
	return sc, nil
}
