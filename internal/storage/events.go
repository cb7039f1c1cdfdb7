package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Assignment is one model lookup the Fallom SDK reported (POST /sessions,
// DESIGN 6): a row of `assignments` is the sum of the lookups of one
// (project, config, version, session).
type Assignment struct {
	ProjectID     string
	ConfigKey     string
	ConfigVersion int64
	SessionID     string
	AssignedModel string
	CustomerID    *string
	// ReceivedAtUnixNano is when the receiver took the lookup in. It is the
	// lookup's identity: a redelivered record carries the same time and is
	// not counted again.
	ReceivedAtUnixNano int64
}

// AssignmentKey is the primary key of `assignments`.
type AssignmentKey struct {
	ProjectID, ConfigKey string
	ConfigVersion        int64
	SessionID            string
}

// Key returns the assignment row a lookup counts in.
func (a *Assignment) Key() AssignmentKey {
	return AssignmentKey{a.ProjectID, a.ConfigKey, a.ConfigVersion, a.SessionID}
}

// SessionMetric is one business metric value of a session (POST /spans).
// Per (project, config, session, name) the value with the latest
// UpdatedAtUnixNano wins, whatever order writes arrive in (on equal times,
// the larger value, so every order of arrival gives the same row).
type SessionMetric struct {
	ProjectID         string
	ConfigKey         string // "" when the SDK sent none
	SessionID         string
	Name              string
	Value             float64
	UpdatedAtUnixNano int64
}

// SessionMetricKey is the primary key of `session_metrics`.
type SessionMetricKey struct {
	ProjectID, ConfigKey, SessionID, Name string
}

// Key returns the primary key of m.
func (m *SessionMetric) Key() SessionMetricKey {
	return SessionMetricKey{m.ProjectID, m.ConfigKey, m.SessionID, m.Name}
}

// newer reports whether m replaces old under the latest-wins rule.
func (m *SessionMetric) newer(old *SessionMetric) bool {
	if m.UpdatedAtUnixNano != old.UpdatedAtUnixNano {
		return m.UpdatedAtUnixNano > old.UpdatedAtUnixNano
	}
	return m.Value > old.Value
}

// EvalRun is one upload of eval results (POST /api/sdk-evals). A run is
// stored once per (project, run id): the receiver makes the id, so a
// redelivery of the same record changes nothing.
type EvalRun struct {
	ProjectID   string
	RunID       string
	Name        *string
	Description *string
	DatasetSize *int64
	JudgeModel  *string
	// Results is the number of results in the upload.
	Results int64
	// Scores is a JSON object {"metric": {"mean": m, "n": n}} of the
	// metrics scored in the results (EvalScores computes it).
	Scores string
	// Body is the request's JSON object as sent.
	Body               string
	ReceivedAtUnixNano int64
}

// Events is one batch of SDK events, written in one transaction.
type Events struct {
	Assignments []Assignment
	Metrics     []SessionMetric
	EvalRuns    []EvalRun
}

// Len is the number of events in e.
func (e *Events) Len() int { return len(e.Assignments) + len(e.Metrics) + len(e.EvalRuns) }

// EventResult counts what one WriteEvents did. Stored events changed the
// database (a lookup counted, a metric value set, a run stored);
// Unchanged ones did not (a redelivery, an older metric value); Rejected
// ones can never be stored (their error is returned as permanent).
type EventResult struct {
	Stored    int
	Unchanged int
	Rejected  int
}

// EventWriter stores the Fallom SDK's events. Both backends implement it
// beside Store, on the same database and migrations.
type EventWriter interface {
	// WriteEvents stores the events of one batch in one transaction and
	// returns only after it is committed. As WriteSpans: errors that may
	// pass (busy, connection lost, schema not ready) are returned plain and
	// nothing is kept; events that can never be stored (EventProblem) are
	// left out, the others committed, and a permanent error names them.
	// A database refusal of a batch that passed those checks fails the
	// whole batch with a permanent error.
	WriteEvents(ctx context.Context, events Events) (EventResult, error)
}

// EventTx is what a backend does inside the transaction of WriteEvents;
// WriteEventBatch drives it.
type EventTx interface {
	// CheckSchema as Tx.CheckSchema.
	CheckSchema(ctx context.Context) error
	// InsertAssignmentCalls records lookups not recorded before (one row
	// per key and received time) and returns those it inserted.
	InsertAssignmentCalls(ctx context.Context, calls []Assignment) ([]Assignment, error)
	// AddAssignments upserts assignment rows: calls added, first and last
	// seen widened, model and customer those of the latest lookup.
	AddAssignments(ctx context.Context, rows []AssignmentRow) error
	// UpsertMetrics stores values that are newer than the stored ones
	// (SessionMetric.newer) and returns how many it stored.
	UpsertMetrics(ctx context.Context, metrics []SessionMetric) (int, error)
	// InsertEvalRuns stores runs not stored before and returns how many.
	InsertEvalRuns(ctx context.Context, runs []EvalRun) (int, error)
}

// AssignmentRow is what one write adds to a row of `assignments`.
type AssignmentRow struct {
	Key AssignmentKey
	// Model and customer of the latest lookup of the write.
	AssignedModel     string
	CustomerID        *string
	FirstSeenUnixNano int64
	LastSeenUnixNano  int64
	Calls             int64
}

// Limits of event fields, checked in Go before any statement.
const (
	// MaxMetricNameBytes bounds a business metric's name (a key of
	// session_metrics).
	MaxMetricNameBytes = 256
	// MaxEvalBodyBytes bounds the stored body of one eval run.
	MaxEvalBodyBytes = 16 << 20
)

func checkKeyText(name, v string, required bool) string {
	switch {
	case required && v == "":
		return "empty " + name
	case len(v) > MaxIndexedTextBytes:
		return fmt.Sprintf("%s is %d bytes, longer than the %d an index entry holds", name, len(v), MaxIndexedTextBytes)
	}
	return ""
}

func checkProject(p string) string {
	switch {
	case p == "":
		return "no project (fallom.project_id): an event is never stored without one"
	case len(p) > MaxProjectIDBytes:
		return fmt.Sprintf("project_id longer than %d bytes", MaxProjectIDBytes)
	}
	return ""
}

// AssignmentProblem says why a can never be stored, or "".
func AssignmentProblem(a *Assignment) string {
	if p := checkProject(a.ProjectID); p != "" {
		return p
	}
	for _, c := range []struct {
		name, v  string
		required bool
	}{{"config_key", a.ConfigKey, true}, {"session_id", a.SessionID, true}, {"assigned_model", a.AssignedModel, true}} {
		if p := checkKeyText(c.name, c.v, c.required); p != "" {
			return p
		}
	}
	if a.CustomerID != nil {
		if p := checkKeyText("customer_id", *a.CustomerID, false); p != "" {
			return p
		}
	}
	if a.ConfigVersion < 0 {
		return fmt.Sprintf("config_version %d is negative", a.ConfigVersion)
	}
	return ""
}

// MetricProblem says why m can never be stored, or "".
func MetricProblem(m *SessionMetric) string {
	if p := checkProject(m.ProjectID); p != "" {
		return p
	}
	if p := checkKeyText("config_key", m.ConfigKey, false); p != "" {
		return p
	}
	if p := checkKeyText("session_id", m.SessionID, true); p != "" {
		return p
	}
	switch {
	case m.Name == "":
		return "empty metric name"
	case len(m.Name) > MaxMetricNameBytes:
		return fmt.Sprintf("metric name is %d bytes, longer than %d", len(m.Name), MaxMetricNameBytes)
	case math.IsNaN(m.Value) || math.IsInf(m.Value, 0):
		return fmt.Sprintf("metric %q has the value %v, not a finite number", clip(m.Name, 64), m.Value)
	}
	return ""
}

// EvalRunProblem says why r can never be stored, or "".
func EvalRunProblem(r *EvalRun) string {
	if p := checkProject(r.ProjectID); p != "" {
		return p
	}
	if p := checkKeyText("run_id", r.RunID, true); p != "" {
		return p
	}
	switch {
	case len(r.Body) > MaxEvalBodyBytes:
		return fmt.Sprintf("eval run body is %d bytes, more than %d", len(r.Body), MaxEvalBodyBytes)
	case !json.Valid([]byte(r.Body)):
		return "eval run body is not JSON"
	case !json.Valid([]byte(r.Scores)):
		return "eval run scores are not JSON"
	}
	return ""
}

// eventRejection is one event that cannot be stored and why.
type eventRejection struct {
	what, reason string
}

func eventRejectionError(rejected []eventRejection) error {
	if len(rejected) == 0 {
		return nil
	}
	return NewPermanent(errors.New(rejectionText("SDK event", "SDK events", len(rejected), func(i int) string {
		return rejected[i].what + ": " + clip(rejected[i].reason, maxRejectionMessage)
	})))
}

// CleanEvents makes the text of every event storable (CleanText).
func CleanEvents(e *Events) {
	for i := range e.Assignments {
		a := &e.Assignments[i]
		a.ProjectID, a.ConfigKey, a.SessionID, a.AssignedModel = CleanText(a.ProjectID), CleanText(a.ConfigKey), CleanText(a.SessionID), CleanText(a.AssignedModel)
		if a.CustomerID != nil {
			c := CleanText(*a.CustomerID)
			a.CustomerID = &c
		}
	}
	for i := range e.Metrics {
		m := &e.Metrics[i]
		m.ProjectID, m.ConfigKey, m.SessionID, m.Name = CleanText(m.ProjectID), CleanText(m.ConfigKey), CleanText(m.SessionID), CleanText(m.Name)
	}
	for i := range e.EvalRuns {
		r := &e.EvalRuns[i]
		r.ProjectID, r.RunID, r.Body, r.Scores = CleanText(r.ProjectID), CleanText(r.RunID), CleanText(r.Body), CleanText(r.Scores)
		for _, p := range []**string{&r.Name, &r.Description, &r.JudgeModel} {
			if *p != nil {
				s := CleanText(**p)
				*p = &s
			}
		}
	}
}

// WriteEventBatch runs the shared algorithm of WriteEvents inside one
// backend transaction:
//
//  1. events that can never be stored are set aside (a permanent error
//     names them; the others are written);
//  2. lookups are recorded by (assignment, received time); only those not
//     recorded before add to their assignment row (calls, first and last
//     seen, latest model and customer);
//  3. metric values collapse to the latest per key and replace a stored
//     value only when newer;
//  4. eval runs are inserted unless their (project, run id) is stored.
//
// err is a database error: nothing of the transaction may be kept.
// Otherwise the caller commits, and rejected (permanent) names the events
// left out.
func WriteEventBatch(ctx context.Context, tx EventTx, e Events) (res EventResult, rejected, err error) {
	if err := tx.CheckSchema(ctx); err != nil {
		return EventResult{}, nil, err
	}
	var bad []eventRejection
	calls := dedupeCalls(e.Assignments, &bad)
	metrics := latestMetrics(e.Metrics, &bad)
	runs := dedupeRuns(e.EvalRuns, &bad)
	res.Rejected = len(bad)
	res.Unchanged = e.Len() - len(bad) - len(calls) - len(metrics) - len(runs) // duplicates within the batch

	if len(calls) > 0 {
		fresh, err := tx.InsertAssignmentCalls(ctx, calls)
		if err != nil {
			return EventResult{}, nil, err
		}
		if rows := assignmentRows(fresh); len(rows) > 0 {
			if err := tx.AddAssignments(ctx, rows); err != nil {
				return EventResult{}, nil, err
			}
		}
		res.Stored += len(fresh)
		res.Unchanged += len(calls) - len(fresh)
	}
	if len(metrics) > 0 {
		n, err := tx.UpsertMetrics(ctx, metrics)
		if err != nil {
			return EventResult{}, nil, err
		}
		res.Stored += n
		res.Unchanged += len(metrics) - n
	}
	if len(runs) > 0 {
		n, err := tx.InsertEvalRuns(ctx, runs)
		if err != nil {
			return EventResult{}, nil, err
		}
		res.Stored += n
		res.Unchanged += len(runs) - n
	}
	return res, eventRejectionError(bad), nil
}

type callKey struct {
	AssignmentKey
	at int64
}

// dedupeCalls drops bad lookups and repeats of one (assignment, time)
// within the batch, sorted by key (concurrent writers lock in one order).
func dedupeCalls(in []Assignment, rejected *[]eventRejection) []Assignment {
	seen := make(map[callKey]bool, len(in))
	out := make([]Assignment, 0, len(in))
	for i := range in {
		a := &in[i]
		if p := AssignmentProblem(a); p != "" {
			*rejected = append(*rejected, eventRejection{
				what: fmt.Sprintf("assignment of session %q to config %q", clip(a.SessionID, 64), clip(a.ConfigKey, 64)), reason: p})
			continue
		}
		k := callKey{a.Key(), a.ReceivedAtUnixNano}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, *a)
	}
	SortAssignments(out)
	return out
}

// SortAssignments sorts lookups by assignment key, then time: the order
// in which WriteEventBatch writes them and EventTx.InsertAssignmentCalls
// returns them.
func SortAssignments(calls []Assignment) {
	sort.Slice(calls, func(i, j int) bool {
		a, b := calls[i].Key(), calls[j].Key()
		if a != b {
			return assignmentKeyLess(a, b)
		}
		return calls[i].ReceivedAtUnixNano < calls[j].ReceivedAtUnixNano
	})
}

func assignmentKeyLess(a, b AssignmentKey) bool {
	return cmp.Or(cmp.Compare(a.ProjectID, b.ProjectID), cmp.Compare(a.ConfigKey, b.ConfigKey),
		cmp.Compare(a.ConfigVersion, b.ConfigVersion), cmp.Compare(a.SessionID, b.SessionID)) < 0
}

// assignmentRows sums lookups (sorted by key, then time) per assignment.
func assignmentRows(calls []Assignment) []AssignmentRow {
	var out []AssignmentRow
	for i := range calls {
		a := &calls[i]
		if len(out) == 0 || out[len(out)-1].Key != a.Key() {
			out = append(out, AssignmentRow{Key: a.Key(), FirstSeenUnixNano: a.ReceivedAtUnixNano})
		}
		r := &out[len(out)-1]
		r.Calls++
		r.LastSeenUnixNano = a.ReceivedAtUnixNano // sorted: the latest so far
		r.AssignedModel = a.AssignedModel
		if a.CustomerID != nil {
			r.CustomerID = a.CustomerID
		}
	}
	return out
}

// latestMetrics drops bad values and keeps the newest value per key.
func latestMetrics(in []SessionMetric, rejected *[]eventRejection) []SessionMetric {
	best := make(map[SessionMetricKey]int, len(in))
	var order []SessionMetricKey
	for i := range in {
		m := &in[i]
		if p := MetricProblem(m); p != "" {
			*rejected = append(*rejected, eventRejection{
				what: fmt.Sprintf("metric %q of session %q", clip(m.Name, 64), clip(m.SessionID, 64)), reason: p})
			continue
		}
		k := m.Key()
		j, ok := best[k]
		if !ok {
			order = append(order, k)
			best[k] = i
		} else if m.newer(&in[j]) {
			best[k] = i
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.ProjectID != b.ProjectID {
			return a.ProjectID < b.ProjectID
		}
		if a.ConfigKey != b.ConfigKey {
			return a.ConfigKey < b.ConfigKey
		}
		if a.SessionID != b.SessionID {
			return a.SessionID < b.SessionID
		}
		return a.Name < b.Name
	})
	out := make([]SessionMetric, len(order))
	for i, k := range order {
		out[i] = in[best[k]]
	}
	return out
}

// dedupeRuns drops bad runs and repeats of one (project, run id).
func dedupeRuns(in []EvalRun, rejected *[]eventRejection) []EvalRun {
	type key struct{ p, r string }
	seen := make(map[key]bool, len(in))
	var out []EvalRun
	for i := range in {
		r := &in[i]
		if p := EvalRunProblem(r); p != "" {
			*rejected = append(*rejected, eventRejection{what: fmt.Sprintf("eval run %q", clip(r.RunID, 64)), reason: p})
			continue
		}
		k := key{r.ProjectID, r.RunID}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ProjectID != out[j].ProjectID {
			return out[i].ProjectID < out[j].ProjectID
		}
		return out[i].RunID < out[j].RunID
	})
	return out
}

// EvalScoreMetrics are the score fields of an eval result (FALLOM_SDK.md
// 5.1), each 0..1 or null.
var EvalScoreMetrics = []string{
	"answer_relevancy", "hallucination", "toxicity", "faithfulness", "completeness", "coherence", "bias",
}

// EvalScore is the mean of one metric over the results that scored it.
type EvalScore struct {
	Mean float64 `json:"mean"`
	N    int64   `json:"n"`
}

// EvalScores reads an eval upload's body ({"results": [...]}) and returns
// the number of results and the scores JSON of EvalRun.Scores. A body
// without a results array has 0 results and no scores.
func EvalScores(body []byte) (results int64, scores string, err error) {
	var doc struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return 0, "", fmt.Errorf("eval run body: %w", err)
	}
	sums := map[string]*EvalScore{}
	for _, r := range doc.Results {
		for _, name := range EvalScoreMetrics {
			raw, ok := r[name]
			if !ok {
				continue
			}
			var v *float64
			if err := json.Unmarshal(raw, &v); err != nil || v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
				continue // null (not scored) or not a number
			}
			s := sums[name]
			if s == nil {
				s = &EvalScore{}
				sums[name] = s
			}
			s.Mean += *v
			s.N++
		}
	}
	for _, s := range sums {
		s.Mean /= float64(s.N)
	}
	b, err := json.Marshal(sums)
	if err != nil {
		return 0, "", err
	}
	return int64(len(doc.Results)), string(b), nil
}
