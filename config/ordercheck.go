package config // import "github.com/fallom/fallom-collector/config"

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"
)

// mappingType is the processor that reads the request's authentication.
const mappingType = "openroutermapping"

// contextDroppers are processor types that hand data on later, with a new
// context: the request's client.Info (fallomauth's principal) is gone after
// them. batch is the one this distribution ships; the others are contrib's.
var contextDroppers = map[string]bool{"batch": true, "groupbytrace": true, "tail_sampling": true}

// PipelineOrderWarnings returns one warning per pipeline of conf in which a
// processor that drops the request's authentication comes before
// openroutermapping (issue 15 item 7): openroutermapping then sees no key's
// project, and refuses the data (or stamps default_project_id, or, with
// trust_resource_project, keeps what the sender claims).
func PipelineOrderWarnings(conf *confmap.Conf) []string {
	pipelines, _ := conf.Get("service::pipelines").(map[string]any)
	names := make([]string, 0, len(pipelines))
	for name := range pipelines {
		names = append(names, name)
	}
	sort.Strings(names)
	var warnings []string
	for _, name := range names {
		pipeline, _ := pipelines[name].(map[string]any)
		processors, _ := pipeline["processors"].([]any)
		dropper := ""
		for _, p := range processors {
			id, _ := p.(string)
			typ, _, _ := strings.Cut(id, "/")
			if contextDroppers[typ] && dropper == "" {
				dropper = id
			}
			if typ == mappingType && dropper != "" {
				warnings = append(warnings, fmt.Sprintf("pipeline %q: processor %q comes before %q: it hands data on without "+
					"the request's authentication, so %s sees no key's project and refuses the data "+
					"(or stamps default_project_id); put %s first", name, dropper, id, id, id))
				break
			}
		}
	}
	return warnings
}

// OrderCheck is a confmap converter that changes nothing and reports
// PipelineOrderWarnings of the resolved config: as warnings in the
// collector's log at start, and through Warnings for `fallomcol validate`,
// whose log is not printed.
type OrderCheck struct {
	mu       sync.Mutex
	warnings []string
}

// Factory returns the converter factory to put in the resolver settings.
func (c *OrderCheck) Factory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(set confmap.ConverterSettings) confmap.Converter {
		return orderConverter{check: c, logger: set.Logger}
	})
}

// Warnings are those of the config resolved last.
func (c *OrderCheck) Warnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.warnings...)
}

type orderConverter struct {
	check  *OrderCheck
	logger *zap.Logger
}

func (o orderConverter) Convert(_ context.Context, conf *confmap.Conf) error {
	warnings := PipelineOrderWarnings(conf)
	o.check.mu.Lock()
	o.check.warnings = warnings
	o.check.mu.Unlock()
	for _, w := range warnings {
		o.logger.Warn(w)
	}
	return nil
}
