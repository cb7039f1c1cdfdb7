package fallomsdkreceiver

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

func records(t *testing.T, s *sinks) []plog.LogRecord {
	t.Helper()
	var out []plog.LogRecord
	for _, ld := range s.allLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			_, has := rl.Resource().Attributes().Get("fallom.project_id")
			assert.False(t, has, "the receiver does not stamp the project: the processor does")
			for _, sl := range rl.ScopeLogs().All() {
				assert.Equal(t, ScopeName, sl.Scope().Name())
				for _, r := range sl.LogRecords().All() {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// POST /sessions as the SDK sends it after models.get (FALLOM_SDK.md 3.4).
func TestAssignment(t *testing.T) {
	e := start(t, envOptions{})
	a := e.post(t, "/sessions", keyAcme, []byte(`{"config_key":"my-agent","config_version":2,"session_id":"session-123","assigned_model":"gpt-4o"}`))
	require.Equal(t, http.StatusOK, a.code, "%s", a.body)
	a = e.post(t, "/sessions", keyAcme, []byte(`{"config_key":"my-agent","config_version":2,"session_id":"s-2","assigned_model":"claude-3-5-sonnet","customer_id":"vip-1"}`))
	require.Equal(t, http.StatusOK, a.code, "%s", a.body)
	recs := records(t, e.sinks)
	require.Len(t, recs, 2)
	assert.Equal(t, EventAssignment, recs[0].EventName())
	assert.NotZero(t, recs[0].Timestamp())
	assert.Equal(t, map[string]any{
		AttrConfigKey: "my-agent", AttrConfigVersion: int64(2), AttrSessionID: "session-123", AttrAssignedModel: "gpt-4o",
	}, recs[0].Attributes().AsRaw())
	assert.Equal(t, "vip-1", recs[1].Attributes().AsRaw()[AttrCustomerID])

	for body, want := range map[string]string{
		`{"config_version":2,"session_id":"s","assigned_model":"m"}`:                    "config_key is required",
		`{"config_key":"k","config_version":"2","session_id":"s","assigned_model":"m"}`: "config_version must be an integer",
		`{"config_key":"k","config_version":0,"session_id":"s","assigned_model":"m"}`:   "config_version must be positive",
		`{"config_key":"k","config_version":2,"assigned_model":"m"}`:                    "session_id is required",
		`{"config_key":"k","config_version":2,"session_id":"s"}`:                        "assigned_model is required",
		`["k"]`: "one JSON object",
	} {
		a := e.post(t, "/sessions", keyAcme, []byte(body))
		require.Equal(t, http.StatusBadRequest, a.code, body)
		assert.Contains(t, a.errorText(t), want, body)
	}
	assert.Len(t, records(t, e.sinks), 2)
}

// POST /spans (PY fallom.trace.span): one record per metric; a request
// with one bad value is refused whole.
func TestSessionMetrics(t *testing.T) {
	e := start(t, envOptions{})
	a := e.post(t, "/spans", keyAcme, []byte(`{"config_key":"my-agent","session_id":"session-123","data":{"outlier_score":0.8,"converted":true,"items":3}}`))
	require.Equal(t, http.StatusOK, a.code, "%s", a.body)
	recs := records(t, e.sinks)
	require.Len(t, recs, 3)
	got := map[string]float64{}
	for _, r := range recs {
		assert.Equal(t, EventSessionMetric, r.EventName())
		at := r.Attributes().AsRaw()
		assert.Equal(t, "my-agent", at[AttrConfigKey])
		assert.Equal(t, "session-123", at[AttrSessionID])
		got[at[AttrMetricName].(string)] = at[AttrMetricValue].(float64)
	}
	assert.Equal(t, map[string]float64{"outlier_score": 0.8, "converted": 1, "items": 3}, got)

	// No config key (set_session without one): stored with an empty key.
	require.Equal(t, http.StatusOK, e.post(t, "/spans", keyAcme, []byte(`{"session_id":"s","data":{"x":1}}`)).code)
	assert.Equal(t, "", records(t, e.sinks)[3].Attributes().AsRaw()[AttrConfigKey])

	bad := e.post(t, "/spans", keyAcme, []byte(`{"session_id":"s","data":{"ok":1,"label":"good"}}`))
	require.Equal(t, http.StatusBadRequest, bad.code)
	assert.Contains(t, bad.errorText(t), "data.label must be a number or a boolean")
	bad = e.post(t, "/spans", keyAcme, []byte(`{"session_id":"s","data":[1]}`))
	require.Equal(t, http.StatusBadRequest, bad.code)
	assert.Contains(t, bad.errorText(t), "data must be an object")
	assert.Len(t, records(t, e.sinks), 4)
}

// POST /api/sdk-evals: answered {run_id} once stored; the record carries
// the run id and the request as JSON.
func TestEvalRun(t *testing.T) {
	e := start(t, envOptions{})
	body := `{"name":"My run","description":null,"dataset_size":1,"judge_model":"openai/gpt-4o-mini",
  "results":[{"input":"q","system_message":null,"expected_output":null,"context":null,"metadata":null,
    "model":"m","output":"a","is_production":false,"answer_relevancy":0.9,"hallucination":null,
    "toxicity":null,"faithfulness":null,"completeness":null,"coherence":null,"bias":null,
    "reasoning":{"answer_relevancy":"..."},"latency_ms":12,"tokens_in":null,"tokens_out":null,"cost":null}]}`
	a := e.post(t, "/api/sdk-evals", keyAcme, []byte(body))
	require.Equal(t, http.StatusOK, a.code, "%s", a.body)
	var ans struct {
		RunID string `json:"run_id"`
	}
	require.NoError(t, json.Unmarshal(a.body, &ans))
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), ans.RunID)
	recs := records(t, e.sinks)
	require.Len(t, recs, 1)
	assert.Equal(t, EventEvalRun, recs[0].EventName())
	assert.Equal(t, ans.RunID, recs[0].Attributes().AsRaw()[AttrEvalRunID])
	var stored, sent any
	require.NoError(t, json.Unmarshal([]byte(recs[0].Body().Str()), &stored))
	require.NoError(t, json.Unmarshal([]byte(body), &sent))
	assert.Equal(t, sent, stored)

	second := e.post(t, "/api/sdk-evals", keyAcme, []byte(body))
	require.Equal(t, http.StatusOK, second.code)
	assert.NotEqual(t, string(a.body), string(second.body), "each run gets its own id")

	bad := e.post(t, "/api/sdk-evals", keyAcme, []byte(`{"name":"x"}`))
	require.Equal(t, http.StatusBadRequest, bad.code)
	assert.Contains(t, bad.errorText(t), "results must be an array")

	// No run id is promised for a run that was not stored.
	e.sinks.setErr(errors.New("disk full"))
	failed := e.post(t, "/api/sdk-evals", keyAcme, []byte(body))
	require.Equal(t, http.StatusServiceUnavailable, failed.code)
	assert.NotContains(t, string(failed.body), "run_id")
	assert.Len(t, records(t, e.sinks), 2)
}
