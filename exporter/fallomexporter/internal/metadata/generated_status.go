// Package metadata holds the component type and stability of the fallom exporter.
package metadata

import "go.opentelemetry.io/collector/component"

var (
	Type      = component.MustNewType("fallom")
	ScopeName = "github.com/fallom/fallom-collector/exporter/fallomexporter"
)

const (
	TracesStability = component.StabilityLevelAlpha
	LogsStability   = component.StabilityLevelAlpha
)
