package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
)

// processLogs stamps fallom.project_id on each resource of a logs request
// (the Fallom SDK's assignments, session metrics and eval runs, which the
// fallomsdk receiver sends without a project) from the authenticated
// principal, failing closed exactly as processTraces does: no principal and
// neither default_project_id nor trust_resource_project means the request is
// refused. Log records are not otherwise changed.
func (p *mappingProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	stamp, err := p.stampFor(ctx)
	if err != nil {
		return ld, p.refuseUnauthenticated(ctx, "logs", ld.LogRecordCount())
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		stamp.apply(rls.At(i).Resource().Attributes())
	}
	return ld, nil
}
