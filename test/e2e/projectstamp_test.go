package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// batchFirstConfig is a config with the mistake of issue 15 item 7: batch
// before openroutermapping. The batch processor sends its batches on with a
// new context, so the request's authentication (fallomauth's principal)
// never reaches openroutermapping.
const batchFirstConfig = `
extensions:
  fallomauth:
    keys_file: %[1]s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %[2]s
        auth:
          authenticator: fallomauth
processors:
  batch:
    timeout: 100ms
  openroutermapping: {}
exporters:
  fallom:
    storage:
      driver: sqlite
      dsn: %[3]s
service:
  extensions: [fallomauth]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch, openroutermapping]
      exporters: [fallom]
`

// claimingProject is one span whose resource names the project it wants
// to be stored in.
func claimingProject(t *testing.T, project string) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "intruder")
	rs.Resource().Attributes().PutStr("fallom.project_id", project)
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("chat")
	span.SetTraceID(pcommon.TraceID{7, 7, 7})
	span.SetSpanID(pcommon.SpanID{7})
	start := time.Now().Add(-time.Minute)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	span.Attributes().PutStr("gen_ai.request.model", "openai/gpt-4o")
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

// TestBatchBeforeMappingCannotChooseProject (issue 15 item 7, on the built
// binary): with [batch, openroutermapping] a client of project acme sends a
// resource claiming fallom.project_id "victim". Before the fix the span was
// stored under victim. Now openroutermapping sees no principal and, with its
// default settings, refuses the data; `validate` and the start log warn
// about the order.
func TestBatchBeforeMappingCannotChooseProject(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	key := collectortest.CreateKey(t, keysFile, "acme", "acme-key")
	ep := collectortest.NewEndpoints(t)
	dbPath := filepath.Join(dir, "fallom.db")
	cfg := fmt.Sprintf(batchFirstConfig, keysFile, ep.HTTP, dbPath)

	// validate passes (the config is valid) but warns about the order.
	cfgPath := filepath.Join(dir, "batch-first.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	stdout, stderr, err := collectortest.Run(t, dir, nil, "validate", "--config", cfgPath)
	require.NoError(t, err, "validate: %s%s", stdout, stderr)
	assert.Contains(t, stderr, `pipeline "traces": processor "batch" comes before "openroutermapping"`, "validate warns")

	col := collectortest.Start(t, collectortest.Options{Config: cfg, Dir: dir, WaitAddrs: []string{ep.HTTP}})
	in := &instance{col: col, ep: ep, dbPath: dbPath}
	assert.Contains(t, col.Logs(), `processor "batch" comes before "openroutermapping"`, "the start log warns")

	// batch answers 200 before openroutermapping runs: that is why the
	// order is a mistake, and why the outcome is read from the log and the
	// database.
	code, msg := in.post(t, claimingProject(t, "victim"), map[string]string{"Authorization": "Bearer " + key})
	require.Equal(t, 200, code, msg)

	const refusal = "no authenticated project"
	db := in.db(t)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(col.Logs(), refusal) || count(t, db, `SELECT COUNT(*) FROM spans`) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Zero(t, count(t, db, `SELECT COUNT(*) FROM spans WHERE project_id = 'victim'`), "a sender chose the project")
	assert.Zero(t, count(t, db, `SELECT COUNT(*) FROM spans`), "data without a principal is refused")
	require.Contains(t, col.Logs(), refusal, "the refusal is logged")
	assert.NotContains(t, col.Logs(), key, "no key in the log")
}
