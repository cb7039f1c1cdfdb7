package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Event names and attributes of the SDK events carried as log records
// (the SDK contract of this session: the fallom exporter stores them).
const (
	EventAssignment    = "fallom.sdk.assignment"
	EventSessionMetric = "fallom.sdk.session_metric"
	EventEvalRun       = "fallom.sdk.eval_run"

	AttrConfigKey     = "fallom.config_key"
	AttrConfigVersion = "fallom.config_version"
	AttrSessionID     = "fallom.session_id"
	AttrAssignedModel = "fallom.assigned_model"
	AttrCustomerID    = "fallom.customer_id"
	AttrMetricName    = "fallom.metric.name"
	AttrMetricValue   = "fallom.metric.value"
	AttrEvalRunID     = "fallom.eval.run_id"
)

// newLogs returns logs with one resource and scope, ready for records. The
// resource carries no project: the mapping processor stamps the key's.
func newLogs() (plog.Logs, plog.LogRecordSlice) {
	logs := plog.NewLogs()
	sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	return logs, sl.LogRecords()
}

func (r *sdkReceiver) newRecord(records plog.LogRecordSlice, event string) plog.LogRecord {
	now := pcommon.NewTimestampFromTime(r.now())
	rec := records.AppendEmpty()
	rec.SetEventName(event)
	rec.SetTimestamp(now)
	rec.SetObservedTimestamp(now)
	return rec
}

// consumeLogs sends logs down the logs pipeline and answers; ok is the
// answer on success.
func (r *sdkReceiver) consumeLogs(w http.ResponseWriter, req *http.Request, logs plog.Logs, ok []byte) {
	n := logs.LogRecordCount()
	if n > 0 {
		ctx := r.obsLogs.StartLogsOp(req.Context())
		err := r.nextLogs.ConsumeLogs(ctx, logs)
		r.obsLogs.EndLogsOp(ctx, "json", n, err)
		if err != nil {
			r.writePipelineError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, ok)
}

// handleSessions is POST /sessions: the SDK's model A/B assignment record
// (FALLOM_SDK.md 3.4), sent on every non-fallback models.get().
func (r *sdkReceiver) handleSessions(w http.ResponseWriter, req *http.Request) {
	m, ok := readObject(w, req)
	if !ok {
		return
	}
	var fe fieldErrors
	configKey := fe.str(m, "config_key", true)
	sessionID := fe.str(m, "session_id", true)
	model := fe.str(m, "assigned_model", true)
	customerID := fe.str(m, "customer_id", false)
	version := int64(1) // the SDK's default for a config without a version
	if v, ok := m.Get("config_version"); ok && v.Type() != pcommon.ValueTypeEmpty {
		if err := checkType("config_version", v, pcommon.ValueTypeInt); err != nil {
			fe = append(fe, err.Error())
		} else if version = v.Int(); version < 1 {
			fe = append(fe, fmt.Sprintf("config_version must be positive, got %d", version))
		}
	}
	if fe.refused(w, "assignment") {
		return
	}
	logs, records := newLogs()
	rec := r.newRecord(records, EventAssignment)
	a := rec.Attributes()
	a.PutStr(AttrConfigKey, configKey)
	a.PutInt(AttrConfigVersion, version)
	a.PutStr(AttrSessionID, sessionID)
	a.PutStr(AttrAssignedModel, model)
	if customerID != "" {
		a.PutStr(AttrCustomerID, customerID)
	}
	r.consumeLogs(w, req, logs, emptyObject)
}

// handleMetrics is POST /spans: a session's business metrics
// {"config_key","session_id","data":{name: value}} (FALLOM_SDK.md 5.2), one
// record per metric. Values are numbers; a boolean counts as 1 or 0 (a
// conversion flag). Any other value refuses the whole request, so a
// request is stored entirely or not at all.
func (r *sdkReceiver) handleMetrics(w http.ResponseWriter, req *http.Request) {
	m, ok := readObject(w, req)
	if !ok {
		return
	}
	var fe fieldErrors
	configKey := fe.str(m, "config_key", false)
	sessionID := fe.str(m, "session_id", true)
	data := fe.value(m, "data", pcommon.ValueTypeMap, "an object of metric names and numbers")
	if fe.refused(w, "metrics") {
		return
	}
	logs, records := newLogs()
	for name, v := range data.Map().All() {
		var value float64
		switch v.Type() {
		case pcommon.ValueTypeInt:
			value = float64(v.Int())
		case pcommon.ValueTypeDouble:
			value = v.Double()
		case pcommon.ValueTypeBool:
			if v.Bool() {
				value = 1
			}
		default:
			fe = append(fe, fmt.Sprintf("data.%s must be a number or a boolean, got %s", clip(name), typeName(v)))
			continue
		}
		if name == "" {
			fe = append(fe, "data has a metric with an empty name")
			continue
		}
		rec := r.newRecord(records, EventSessionMetric)
		a := rec.Attributes()
		a.PutStr(AttrConfigKey, configKey)
		a.PutStr(AttrSessionID, sessionID)
		a.PutStr(AttrMetricName, name)
		a.PutDouble(AttrMetricValue, value)
	}
	if fe.refused(w, "metrics") {
		return
	}
	r.consumeLogs(w, req, logs, emptyObject)
}

// handleEvals is POST /api/sdk-evals: an eval run's results (FALLOM_SDK.md
// 5.1). The receiver names the run and answers {"run_id"} once it is
// stored; the SDK prints a link with it.
func (r *sdkReceiver) handleEvals(w http.ResponseWriter, req *http.Request) {
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	m, err := parseObject(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var fe fieldErrors
	fe.value(m, "results", pcommon.ValueTypeSlice, "an array of results")
	fe.str(m, "name", false)
	if fe.refused(w, "eval run") {
		return
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		writeError(w, http.StatusBadRequest, "eval run: "+err.Error())
		return
	}
	runID := newRunID()
	logs, records := newLogs()
	rec := r.newRecord(records, EventEvalRun)
	rec.Attributes().PutStr(AttrEvalRunID, runID)
	rec.Body().SetStr(compact.String())
	answer, _ := json.Marshal(struct {
		RunID string `json:"run_id"`
	}{runID})
	r.consumeLogs(w, req, logs, answer)
}

// newRunID is a random UUID (version 4): unguessable, so a run id shown in
// a link says nothing about other runs.
func newRunID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// readObject reads a body that must be one JSON object; a bad one is
// answered 400.
func readObject(w http.ResponseWriter, req *http.Request) (pcommon.Map, bool) {
	body, ok := readBody(w, req)
	if !ok {
		return pcommon.Map{}, false
	}
	m, err := parseObject(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return pcommon.Map{}, false
	}
	return m, true
}

// fieldErrors collects every problem of a request, so one answer names
// them all.
type fieldErrors []string

func (fe *fieldErrors) str(m pcommon.Map, field string, required bool) string {
	s, err := str(m, field, required)
	if err != nil {
		*fe = append(*fe, err.Error())
	}
	return s
}

// value returns the field when it has type want, else records what it is.
func (fe *fieldErrors) value(m pcommon.Map, field string, want pcommon.ValueType, what string) pcommon.Value {
	v, ok := m.Get(field)
	if ok && v.Type() == want {
		return v
	}
	got := "nothing"
	if ok {
		got = typeName(v)
	}
	*fe = append(*fe, fmt.Sprintf("%s must be %s, got %s", field, what, got))
	return pcommon.NewValueEmpty()
}

// refused answers 400 naming every problem, if there is one.
func (fe fieldErrors) refused(w http.ResponseWriter, what string) bool {
	if len(fe) == 0 {
		return false
	}
	writeError(w, http.StatusBadRequest, what+": "+strings.Join(fe, "; "))
	return true
}
