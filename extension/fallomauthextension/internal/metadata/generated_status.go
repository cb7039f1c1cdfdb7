// Package metadata holds the component type and stability of fallomauth.
package metadata

import "go.opentelemetry.io/collector/component"

var (
	Type      = component.MustNewType("fallomauth")
	ScopeName = "github.com/fallom/fallom-collector/extension/fallomauthextension"
)

const ExtensionStability = component.StabilityLevelAlpha
