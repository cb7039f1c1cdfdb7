// Package metadata holds the component type and stability of the fallomsdk receiver.
package metadata

import "go.opentelemetry.io/collector/component"

var (
	Type      = component.MustNewType("fallomsdk")
	ScopeName = "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"
)

const (
	TracesStability = component.StabilityLevelAlpha
	LogsStability   = component.StabilityLevelAlpha
)
