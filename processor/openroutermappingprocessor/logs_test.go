package openroutermappingprocessor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/processor/openroutermappingprocessor/internal/metadata"
)

// sdkEvents is what the fallomsdk receiver sends (SDK contract in
// COORDINATION.md): one resource per request, one record per event. The
// second resource claims a project, as a hostile sender would.
func sdkEvents() plog.Logs {
	ld := plog.NewLogs()
	for _, claim := range []string{"", "victim-project"} {
		rl := ld.ResourceLogs().AppendEmpty()
		if claim != "" {
			rl.Resource().Attributes().PutStr(fallomattr.ProjectID, claim)
		}
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName("fallom.sdk.assignment")
		lr.Attributes().PutStr("fallom.config_key", "chat")
		lr.Attributes().PutInt("fallom.config_version", 3)
		lr.Attributes().PutStr("fallom.session_id", "sess-1")
	}
	return ld
}

func logsProjects(ld plog.Logs) []string {
	var out []string
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		v, _ := ld.ResourceLogs().At(i).Resource().Attributes().Get(fallomattr.ProjectID)
		out = append(out, v.AsString())
	}
	return out
}

func newLogsPipeline(t *testing.T, cfg *Config, next consumer.Logs) consumer.Logs {
	t.Helper()
	proc, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	return proc
}

// TestLogsProjectStamping: the logs side stamps fallom.project_id from the
// principal and fails closed without one, as the traces side does.
func TestLogsProjectStamping(t *testing.T) {
	sink := new(consumertest.LogsSink)
	proc := newLogsPipeline(t, createDefaultConfig(), sink)

	// An authenticated project overwrites what the sender claims.
	require.NoError(t, proc.ConsumeLogs(ctxWithProject("acme"), sdkEvents()))
	require.Len(t, sink.AllLogs(), 1)
	assert.Equal(t, []string{"acme", "acme"}, logsProjects(sink.AllLogs()[0]))
	rec := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, "fallom.sdk.assignment", rec.EventName(), "records are not changed")
	assert.Equal(t, map[string]any{"fallom.config_key": "chat", "fallom.config_version": int64(3), "fallom.session_id": "sess-1"}, rec.Attributes().AsRaw())

	// No principal (or one without a project): refused, permanently.
	for _, ctx := range []context.Context{
		context.Background(),
		client.NewContext(context.Background(), client.Info{Auth: authData{"subject": "x"}}),
	} {
		err := proc.ConsumeLogs(ctx, sdkEvents())
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err))
		assert.Equal(t, codes.Unauthenticated, status.Code(err))
		assert.Contains(t, err.Error(), "no authenticated project")
	}
	assert.Len(t, sink.AllLogs(), 1, "nothing refused reached the exporter")

	// default_project_id replaces the claim; trust_resource_project keeps it.
	cfg := createDefaultConfig()
	cfg.DefaultProjectID = "fallback"
	sink.Reset()
	require.NoError(t, newLogsPipeline(t, cfg, sink).ConsumeLogs(context.Background(), sdkEvents()))
	assert.Equal(t, []string{"fallback", "fallback"}, logsProjects(sink.AllLogs()[0]))

	cfg.TrustResourceProject = true
	sink.Reset()
	require.NoError(t, newLogsPipeline(t, cfg, sink).ConsumeLogs(context.Background(), sdkEvents()))
	assert.Equal(t, []string{"fallback", "victim-project"}, logsProjects(sink.AllLogs()[0]))
}

// TestLogsRetryAfter: a retryable refusal downstream (memory_limiter, the
// exporter's database) carries RetryInfo in a logs pipeline too.
func TestLogsRetryAfter(t *testing.T) {
	failing, err := consumer.NewLogs(func(context.Context, plog.Logs) error {
		return errors.New("data refused due to high memory usage")
	})
	require.NoError(t, err)
	cfg := createDefaultConfig()
	cfg.RetryAfter = 7 * time.Second
	err = newLogsPipeline(t, cfg, failing).ConsumeLogs(ctxWithProject("acme"), sdkEvents())
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok)
	assert.Equal(t, codes.Unavailable, st.Code())
	require.Len(t, st.Details(), 1)
	assert.Equal(t, 7*time.Second, st.Details()[0].(*errdetails.RetryInfo).RetryDelay.AsDuration())
}

func TestFactoryLogs(t *testing.T) {
	assert.Equal(t, component.StabilityLevelAlpha, NewFactory().LogsStability())
}
