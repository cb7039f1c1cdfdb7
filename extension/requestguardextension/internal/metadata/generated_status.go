// Package metadata holds the component type and stability of requestguard.
package metadata

import "go.opentelemetry.io/collector/component"

var (
	Type      = component.MustNewType("requestguard")
	ScopeName = "github.com/fallom/fallom-collector/extension/requestguardextension"
)

const ExtensionStability = component.StabilityLevelAlpha
