package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/pricing"
)

// connectionTestSpan is the span OpenRouter sends when a user saves a
// Broadcast destination; it must get a 2xx and must not be stored.
const connectionTestSpan = "openrouter-connection-test"

type mappingProcessor struct {
	cfg       *Config
	pricer    *pricing.Pricer
	logger    *zap.Logger
	telemetry *telemetry
	now       func() time.Time
	states    sync.Pool // *spanState
}

func newMappingProcessor(cfg *Config, set component.TelemetrySettings) (*mappingProcessor, error) {
	logger := set.Logger
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, err
	}
	var user *pricing.Table
	if cfg.PricingFile != "" {
		t, err := pricing.LoadFile(cfg.PricingFile)
		if err != nil {
			return nil, err
		}
		user = t
		logger.Info("Loaded user pricing file", zap.String("path", cfg.PricingFile), zap.Int("models", t.Len()))
	}
	p := &mappingProcessor{cfg: cfg, pricer: pricing.NewPricer(user), logger: logger, telemetry: tel, now: time.Now}
	p.states.New = func() any { return &spanState{} }
	return p, nil
}

// processTraces stamps the project, drops connection tests and maps every
// span. It never fails a batch: odd values are skipped, not rejected.
func (p *mappingProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	stamp, err := p.stampFor(ctx)
	if err != nil {
		return td, p.refuseUnauthenticated(ctx, "traces", td.SpanCount())
	}
	now := p.now()
	st := p.states.Get().(*spanState)
	defer p.states.Put(st)

	var counts batchCounts
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		stamp.apply(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			counts.connectionTests += int64(removeConnectionTests(spans))
			scopeDialect := scopeDialects[ss.Scope().Name()]
			for k := 0; k < spans.Len(); k++ {
				p.mapSpan(st, spans.At(k), scopeDialect, now, &counts)
			}
		}
	}
	st.reset()
	p.record(ctx, &counts)
	if counts.connectionTests > 0 {
		// Containers emptied by the removal go too, so that a delivery that
		// was only a connection test becomes an empty batch.
		rss.RemoveIf(func(rs ptrace.ResourceSpans) bool {
			rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool { return ss.Spans().Len() == 0 })
			return rs.ScopeSpans().Len() == 0
		})
	}
	if rss.Len() == 0 {
		// Nothing to store; the receiver still answers 2xx.
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}

// removeConnectionTests removes OpenRouter's test spans and counts them.
func removeConnectionTests(spans ptrace.SpanSlice) int {
	found := 0
	for k := 0; k < spans.Len(); k++ {
		if spans.At(k).Name() == connectionTestSpan {
			found++
		}
	}
	if found > 0 {
		spans.RemoveIf(func(s ptrace.Span) bool { return s.Name() == connectionTestSpan })
	}
	return found
}

func (p *mappingProcessor) record(ctx context.Context, c *batchCounts) {
	if c.generations > 0 {
		p.telemetry.generations.Add(ctx, c.generations)
	}
	if c.connectionTests > 0 {
		p.telemetry.connectionTests.Add(ctx, c.connectionTests)
	}
	if c.truncated > 0 {
		p.telemetry.truncated.Add(ctx, c.truncated)
	}
	if c.suspectTimes > 0 {
		p.telemetry.suspectTimes.Add(ctx, c.suspectTimes)
	}
}

// authProject is the project of the API key that sent the request, set by
// the fallomauth extension. It does not survive batching or queues, which
// is why it is stamped onto the resource here.
func authProject(ctx context.Context) string {
	info := client.FromContext(ctx)
	if info.Auth == nil {
		return ""
	}
	s, _ := info.Auth.GetAttribute(fallomattr.AuthProjectID).(string)
	return s
}

// projectStamp is what a request's resources get as fallom.project_id.
type projectStamp struct {
	// project is written on every resource (when keepOwn, only on those
	// without a project of their own; "" then writes nothing).
	project string
	keepOwn bool
}

// errNoPrincipal refuses data that reached the processor without an
// authenticated project. Permanent (resending cannot help) and
// Unauthenticated, which the OTLP receiver answers with HTTP 401.
var errNoPrincipal = consumererror.NewPermanent(status.Error(codes.Unauthenticated,
	"openroutermapping: refused: the request carries no authenticated project "+
		"(no fallomauth principal in its context: the receiver has no auth, or a batch processor or queue before openroutermapping dropped it); "+
		"set default_project_id, or trust_resource_project for trusted senders"))

// stampFor decides the project of a request. An authenticated project
// always wins over whatever the resources claim (a client must not write
// into another project). Without one the sender's fallom.project_id is
// trusted only with trust_resource_project; otherwise it is replaced by
// default_project_id, or the request is refused: failing closed, so that a
// lost principal (a batch before this processor) never lets a sender choose
// the project.
func (p *mappingProcessor) stampFor(ctx context.Context) (projectStamp, error) {
	if project := authProject(ctx); project != "" {
		return projectStamp{project: project}, nil
	}
	switch {
	case p.cfg.TrustResourceProject:
		return projectStamp{project: p.cfg.DefaultProjectID, keepOwn: true}, nil
	case p.cfg.DefaultProjectID != "":
		return projectStamp{project: p.cfg.DefaultProjectID}, nil
	default:
		return projectStamp{}, errNoPrincipal
	}
}

// apply stamps one resource's attributes.
func (s projectStamp) apply(attrs pcommon.Map) {
	if s.keepOwn {
		if v, ok := attrs.Get(fallomattr.ProjectID); ok && v.AsString() != "" {
			return
		}
	}
	if s.project != "" {
		attrs.PutStr(fallomattr.ProjectID, s.project)
	}
}

// refuseUnauthenticated counts and logs a refusal: with a batch before the
// processor the client got its 2xx already, so the log and the metric are
// where the loss shows.
func (p *mappingProcessor) refuseUnauthenticated(ctx context.Context, signal string, items int) error {
	p.telemetry.unauthenticated.Add(ctx, 1)
	p.logger.Warn("Refused data without an authenticated project",
		zap.String("signal", signal), zap.Int("items", items), zap.Error(errNoPrincipal))
	return errNoPrincipal
}
