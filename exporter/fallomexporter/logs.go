package fallomexporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/storage"
)

// The Fallom SDK events the logs signal carries (the SDK contract between
// the fallomsdk receiver and this exporter): one LogRecord per event, its
// EventName saying which, the project on the resource.
const (
	EventAssignment    = "fallom.sdk.assignment"
	EventSessionMetric = "fallom.sdk.session_metric"
	EventEvalRun       = "fallom.sdk.eval_run"

	attrAssignedModel = "fallom.assigned_model"
	attrMetricName    = "fallom.metric.name"
	attrMetricValue   = "fallom.metric.value"
	attrEvalRunID     = "fallom.eval.run_id"
)

// invalidEvent is a log record that can never be stored.
type invalidEvent struct {
	event, reason string
}

// toEvents converts logs into SDK events. Records that are no SDK event,
// lack a field, or have no project are returned separately: an event is
// never stored under an empty or default project (the processor stamps the
// project of the key that sent it; a record without one came through a
// pipeline without authentication).
func toEvents(ld plog.Logs, now int64) (storage.Events, []invalidEvent) {
	var ev storage.Events
	var invalid []invalidEvent
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		project := ""
		if v, ok := rl.Resource().Attributes().Get(fallomattr.ProjectID); ok && v.Type() == pcommon.ValueTypeStr {
			project = v.Str()
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			records := sls.At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				lr := records.At(k)
				name := lr.EventName()
				if project == "" {
					invalid = append(invalid, invalidEvent{truncate(name, 64), "no project on the resource (" + fallomattr.ProjectID +
						"): SDK events are stored only for an authenticated project"})
					continue
				}
				if reason := addEvent(&ev, project, lr, now); reason != "" {
					invalid = append(invalid, invalidEvent{truncate(name, 64), reason})
				}
			}
		}
	}
	return ev, invalid
}

// eventTime is when the receiver took the event in (the record's
// timestamp, else its observed time, else now).
func eventTime(lr plog.LogRecord, now int64) int64 {
	for _, t := range []pcommon.Timestamp{lr.Timestamp(), lr.ObservedTimestamp()} {
		if t != 0 {
			return saturate(t)
		}
	}
	return now
}

// addEvent appends the event of lr to ev, or says why it cannot.
func addEvent(ev *storage.Events, project string, lr plog.LogRecord, now int64) string {
	attrs := lr.Attributes()
	at := eventTime(lr, now)
	switch lr.EventName() {
	case EventAssignment:
		a := storage.Assignment{ProjectID: project, ReceivedAtUnixNano: at}
		var problems []string
		a.ConfigKey = requiredStr(attrs, fallomattr.ConfigKey, &problems)
		a.SessionID = requiredStr(attrs, fallomattr.SessionID, &problems)
		a.AssignedModel = requiredStr(attrs, attrAssignedModel, &problems)
		if v, ok := attrs.Get(fallomattr.ConfigVersion); !ok || v.Type() != pcommon.ValueTypeInt {
			problems = append(problems, fallomattr.ConfigVersion+" must be an int")
		} else {
			a.ConfigVersion = v.Int()
		}
		if v, ok := attrs.Get(fallomattr.CustomerID); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
			c := v.Str()
			a.CustomerID = &c
		}
		if len(problems) > 0 {
			return strings.Join(problems, "; ")
		}
		ev.Assignments = append(ev.Assignments, a)
	case EventSessionMetric:
		m := storage.SessionMetric{ProjectID: project, UpdatedAtUnixNano: at}
		var problems []string
		if v, ok := attrs.Get(fallomattr.ConfigKey); ok {
			if v.Type() != pcommon.ValueTypeStr {
				problems = append(problems, fallomattr.ConfigKey+" must be a string")
			}
			m.ConfigKey = v.Str()
		}
		m.SessionID = requiredStr(attrs, fallomattr.SessionID, &problems)
		m.Name = requiredStr(attrs, attrMetricName, &problems)
		switch v, ok := attrs.Get(attrMetricValue); {
		case ok && v.Type() == pcommon.ValueTypeDouble:
			m.Value = v.Double()
		case ok && v.Type() == pcommon.ValueTypeInt:
			m.Value = float64(v.Int())
		default:
			problems = append(problems, attrMetricValue+" must be a number")
		}
		if len(problems) > 0 {
			return strings.Join(problems, "; ")
		}
		ev.Metrics = append(ev.Metrics, m)
	case EventEvalRun:
		var problems []string
		r := storage.EvalRun{ProjectID: project, ReceivedAtUnixNano: at}
		r.RunID = requiredStr(attrs, attrEvalRunID, &problems)
		if len(problems) > 0 {
			return strings.Join(problems, "; ")
		}
		if reason := fillEvalRun(&r, lr.Body()); reason != "" {
			return reason
		}
		ev.EvalRuns = append(ev.EvalRuns, r)
	case "":
		return "a log record without an event name is no Fallom SDK event"
	default:
		return fmt.Sprintf("unknown event %q (the fallom exporter stores %s, %s and %s)",
			truncate(lr.EventName(), 64), EventAssignment, EventSessionMetric, EventEvalRun)
	}
	return ""
}

func requiredStr(attrs pcommon.Map, key string, problems *[]string) string {
	v, ok := attrs.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
		*problems = append(*problems, key+" must be a non-empty string")
		return ""
	}
	return v.Str()
}

// fillEvalRun reads the upload (FALLOM_SDK.md 5.1) from the record's body,
// the request's JSON object as a string.
func fillEvalRun(r *storage.EvalRun, body pcommon.Value) string {
	if body.Type() != pcommon.ValueTypeStr {
		return "the body of an eval run must be the request's JSON object as a string"
	}
	text := body.Str()
	var head struct {
		Name        json.RawMessage `json:"name"`
		Description json.RawMessage `json:"description"`
		DatasetSize json.RawMessage `json:"dataset_size"`
		JudgeModel  json.RawMessage `json:"judge_model"`
	}
	if err := json.Unmarshal([]byte(text), &head); err != nil {
		return "the body of an eval run is not a JSON object: " + truncate(err.Error(), 120)
	}
	results, scores, err := storage.EvalScores([]byte(text))
	if err != nil {
		return truncate(err.Error(), 160)
	}
	r.Name, r.Description, r.JudgeModel = jsonString(head.Name), jsonString(head.Description), jsonString(head.JudgeModel)
	var size *float64
	if json.Unmarshal(head.DatasetSize, &size) == nil && size != nil && *size >= 0 && *size == math.Trunc(*size) && *size < 1<<53 {
		n := int64(*size)
		r.DatasetSize = &n
	}
	r.Results, r.Scores, r.Body = results, scores, text
	return ""
}

// jsonString returns a JSON string value, nil for null, absent or another type.
func jsonString(raw json.RawMessage) *string {
	var s *string
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return s
}

// pushLogs writes one (possibly merged) batch of SDK events in one
// transaction, with the error semantics of pushTraces: plain errors are
// retried, events that can never be stored are refused permanently (the
// others committed).
func (e *fallomExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	if e.store == nil {
		return errors.New("fallom exporter: storage is not open")
	}
	w, ok := e.store.(storage.EventWriter)
	if !ok {
		return consumererror.NewPermanent(fmt.Errorf("fallom exporter: storage %s does not store SDK events", e.describe()))
	}
	ev, invalid := toEvents(ld, e.now().UnixNano())
	res, err := w.WriteEvents(ctx, ev)
	if err != nil && !storage.IsPermanent(err) {
		return err
	}
	e.countEvents(ctx, res.Stored, res.Unchanged, res.Rejected+len(invalid))
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if len(invalid) > 0 {
		errs = append(errs, invalidEventsError(invalid))
	}
	if len(errs) > 0 {
		joined := errors.Join(errs...)
		e.logger.Warn("SDK events rejected", zap.Int("rejected", res.Rejected+len(invalid)), zap.Error(joined))
		return consumererror.NewPermanent(status.Error(codes.InvalidArgument, joined.Error()))
	}
	return nil
}

func (e *fallomExporter) countEvents(ctx context.Context, stored, unchanged, rejected int) {
	addOutcomes(ctx, e.eventsWritten, map[string]int{"stored": stored, "unchanged": unchanged, "rejected": rejected})
}

func invalidEventsError(invalid []invalidEvent) error {
	return listError("SDK event(s)", len(invalid), func(i int) string {
		return fmt.Sprintf("event %q: %s", invalid[i].event, invalid[i].reason)
	})
}
