// Package config ships the default collector config inside the binary, so
// `fallomcol` with no --config runs it (DESIGN 2.1).
package config // import "github.com/fallom/fallom-collector/config"

import (
	"context"
	_ "embed"
	"fmt"

	"go.opentelemetry.io/collector/confmap"
)

// DefaultYAML is config/config.yaml as shipped.
//
//go:embed config.yaml
var DefaultYAML []byte

// Scheme is the config URI scheme of the embedded configs.
const Scheme = "builtin"

// DefaultURI names the shipped default config.
const DefaultURI = Scheme + ":default"

// NewProviderFactory returns a confmap provider that serves DefaultYAML for
// DefaultURI. The collector resolves ${env:...} references in it as in any
// config file.
func NewProviderFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider { return builtinProvider{} })
}

type builtinProvider struct{}

func (builtinProvider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	if uri != DefaultURI {
		return nil, fmt.Errorf("unknown built-in config %q: the only one is %q", uri, DefaultURI)
	}
	return confmap.NewRetrievedFromYAML(DefaultYAML)
}

func (builtinProvider) Scheme() string { return Scheme }

func (builtinProvider) Shutdown(context.Context) error { return nil }
