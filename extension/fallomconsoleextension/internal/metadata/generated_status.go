// Package metadata holds the component type and stability of fallomconsole.
package metadata

import "go.opentelemetry.io/collector/component"

var (
	Type      = component.MustNewType("fallomconsole")
	ScopeName = "github.com/fallom/fallom-collector/extension/fallomconsoleextension"
)

const ExtensionStability = component.StabilityLevelAlpha
