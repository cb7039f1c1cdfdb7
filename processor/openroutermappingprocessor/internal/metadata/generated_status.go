// Package metadata holds the component type and stability of openroutermapping.
package metadata

import "go.opentelemetry.io/collector/component"

var (
	Type      = component.MustNewType("openroutermapping")
	ScopeName = "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"
)

const (
	TracesStability = component.StabilityLevelAlpha
	LogsStability   = component.StabilityLevelAlpha
)
