package fallomconsoleextension // import "github.com/fallom/fallom-collector/extension/fallomconsoleextension"

import (
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/fallom/fallom-collector/internal/storage/backend"
)

// Config configures the console: a web UI and a JSON query API on one
// confighttp listener, reading the database the fallom exporter writes.
type Config struct {
	// ServerConfig is the stock HTTP server section: endpoint, tls,
	// max_request_body_size, ... Its auth section must stay unset: the
	// console authenticates itself (API keys on the API, a login form and
	// sessions on the pages) through Authenticator.
	confighttp.ServerConfig `mapstructure:",squash"`

	// Authenticator is the fallomauth instance whose keys may read, e.g.
	// fallomauth/read (an instance with scope: read).
	Authenticator component.ID `mapstructure:"authenticator"`

	// Storage is the database to read: the fallom exporter's storage
	// section. Components naming the same database share one backend (one
	// pool, one migration run), so its sqlite/postgres tuning must match.
	Storage backend.Config `mapstructure:"storage"`

	// Login bounds the login sessions of the web console.
	Login LoginConfig `mapstructure:"login"`

	// QueryTimeout bounds one request's database work.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`

	// SDKFile is the Fallom SDK file (DESIGN 6) the fallomsdk receiver
	// serves, read here for the configured weights of the experiments
	// analysis (watched for edits). Empty: weights are unknown.
	SDKFile string `mapstructure:"sdk_file"`

	// IngestEndpoint is the OTLP/HTTP traces URL shown to a new user in the
	// empty states (where to send data). Display only.
	IngestEndpoint string `mapstructure:"ingest_endpoint"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LoginConfig bounds login sessions. A session also ends at once when its
// key is revoked, expires or is removed from the keys.
type LoginConfig struct {
	// IdleTimeout ends a session unused for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxAge ends a session this long after login.
	MaxAge time.Duration `mapstructure:"max_age"`
	// MaxSessions bounds the sessions kept; the least recently used goes.
	MaxSessions int `mapstructure:"max_sessions"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint is required, e.g. localhost:4320"))
	}
	if cfg.Auth.HasValue() {
		errs = append(errs, errors.New("auth is not supported here: the console checks keys itself (API keys and a login form); "+
			"name the fallomauth instance in authenticator instead"))
	}
	if cfg.Authenticator.Type().String() == "" {
		errs = append(errs, errors.New("authenticator is required: the id of a fallomauth extension whose keys may read, e.g. fallomauth/read"))
	}
	if err := cfg.Storage.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Login.IdleTimeout <= 0 || cfg.Login.MaxAge <= 0 {
		errs = append(errs, errors.New("login.idle_timeout and login.max_age must be positive"))
	}
	if cfg.Login.MaxSessions <= 0 {
		errs = append(errs, errors.New("login.max_sessions must be positive"))
	}
	if cfg.QueryTimeout <= 0 {
		errs = append(errs, errors.New("query_timeout must be positive"))
	}
	return errors.Join(errs...)
}
