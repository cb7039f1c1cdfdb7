package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/fallom/fallom-collector/internal/storage"
)

var _ storage.EventWriter = (*Store)(nil)

// WriteEvents implements storage.EventWriter: one READ COMMITTED
// transaction holding the migration lock shared (CheckSchema), one
// statement per table with one array per column. Collectors writing the
// same assignment at once serialize on its assignment_calls row, so a
// lookup is counted once; a deadlock or a serialization failure is retried
// in place as for spans.
func (s *Store) WriteEvents(ctx context.Context, events storage.Events) (storage.EventResult, error) {
	if events.Len() == 0 {
		return storage.EventResult{}, nil
	}
	if err := s.writable(); err != nil {
		return storage.EventResult{}, err
	}
	storage.CleanEvents(&events)
	var res storage.EventResult
	var rejected error
	err := s.readCommitted(ctx, func(tx pgx.Tx) error {
		var err error
		res, rejected, err = storage.WriteEventBatch(ctx, pgEventTx{pgTx{tx: tx, store: s}}, events)
		return err
	})
	if err != nil {
		return storage.EventResult{}, err
	}
	return res, rejected
}

type pgEventTx struct{ pgTx }

const insertCallsSQL = `INSERT INTO assignment_calls (project_id, config_key, config_version, session_id, received_at_unix_nano)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])
	ON CONFLICT DO NOTHING
	RETURNING project_id, config_key, config_version, session_id, received_at_unix_nano`

// InsertAssignmentCalls implements storage.EventTx.
func (t pgEventTx) InsertAssignmentCalls(ctx context.Context, calls []storage.Assignment) ([]storage.Assignment, error) {
	n := len(calls)
	projects, configs, versions, sessions, times := make([]string, n), make([]string, n), make([]int64, n), make([]string, n), make([]int64, n)
	type callKey struct {
		storage.AssignmentKey
		at int64
	}
	byKey := make(map[callKey]*storage.Assignment, n)
	for i := range calls {
		a := &calls[i]
		projects[i], configs[i], versions[i], sessions[i], times[i] = a.ProjectID, a.ConfigKey, a.ConfigVersion, a.SessionID, a.ReceivedAtUnixNano
		byKey[callKey{a.Key(), a.ReceivedAtUnixNano}] = a
	}
	rows, err := t.tx.Query(ctx, insertCallsSQL, projects, configs, versions, sessions, times)
	if err != nil {
		return nil, t.store.wrap(err)
	}
	defer rows.Close()
	var fresh []storage.Assignment
	for rows.Next() {
		var k callKey
		if err := rows.Scan(&k.ProjectID, &k.ConfigKey, &k.ConfigVersion, &k.SessionID, &k.at); err != nil {
			return nil, t.store.wrap(err)
		}
		if a := byKey[k]; a != nil {
			fresh = append(fresh, *a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, t.store.wrap(err)
	}
	// RETURNING gives no order; the algorithm sums per key in time order.
	storage.SortAssignments(fresh)
	return fresh, nil
}

// addAssignmentsSQL adds one write's lookups to assignment rows; the model
// and customer follow the latest lookup.
const addAssignmentsSQL = `INSERT INTO assignments AS a (project_id, config_key, config_version, session_id, assigned_model, customer_id,
		first_seen_unix_nano, last_seen_unix_nano, calls)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[])
	ON CONFLICT (project_id, config_key, config_version, session_id) DO UPDATE SET
		assigned_model = CASE WHEN EXCLUDED.last_seen_unix_nano >= a.last_seen_unix_nano
			THEN EXCLUDED.assigned_model ELSE a.assigned_model END,
		customer_id = CASE WHEN EXCLUDED.last_seen_unix_nano >= a.last_seen_unix_nano
			THEN coalesce(EXCLUDED.customer_id, a.customer_id) ELSE coalesce(a.customer_id, EXCLUDED.customer_id) END,
		first_seen_unix_nano = least(a.first_seen_unix_nano, EXCLUDED.first_seen_unix_nano),
		last_seen_unix_nano = greatest(a.last_seen_unix_nano, EXCLUDED.last_seen_unix_nano),
		calls = a.calls + EXCLUDED.calls`

// AddAssignments implements storage.EventTx.
func (t pgEventTx) AddAssignments(ctx context.Context, rows []storage.AssignmentRow) error {
	n := len(rows)
	projects, configs, versions, sessions := make([]string, n), make([]string, n), make([]int64, n), make([]string, n)
	models, customers, first, last, calls := make([]string, n), make([]*string, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range rows {
		r := &rows[i]
		projects[i], configs[i], versions[i], sessions[i] = r.Key.ProjectID, r.Key.ConfigKey, r.Key.ConfigVersion, r.Key.SessionID
		models[i], customers[i], first[i], last[i], calls[i] = r.AssignedModel, r.CustomerID, r.FirstSeenUnixNano, r.LastSeenUnixNano, r.Calls
	}
	_, err := t.tx.Exec(ctx, addAssignmentsSQL, projects, configs, versions, sessions, models, customers, first, last, calls)
	return t.store.wrap(err)
}

// upsertMetricsSQL stores values newer than the stored ones
// (storage.SessionMetric: later time, or equal time and larger value).
const upsertMetricsSQL = `INSERT INTO session_metrics AS m (project_id, config_key, session_id, name, value, updated_at_unix_nano)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bigint[])
	ON CONFLICT (project_id, config_key, session_id, name) DO UPDATE SET
		value = EXCLUDED.value, updated_at_unix_nano = EXCLUDED.updated_at_unix_nano
	WHERE EXCLUDED.updated_at_unix_nano > m.updated_at_unix_nano
		OR (EXCLUDED.updated_at_unix_nano = m.updated_at_unix_nano AND EXCLUDED.value > m.value)`

// UpsertMetrics implements storage.EventTx.
func (t pgEventTx) UpsertMetrics(ctx context.Context, metrics []storage.SessionMetric) (int, error) {
	n := len(metrics)
	projects, configs, sessions, names, values, times := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]float64, n), make([]int64, n)
	for i := range metrics {
		m := &metrics[i]
		projects[i], configs[i], sessions[i], names[i], values[i], times[i] = m.ProjectID, m.ConfigKey, m.SessionID, m.Name, m.Value, m.UpdatedAtUnixNano
	}
	tag, err := t.tx.Exec(ctx, upsertMetricsSQL, projects, configs, sessions, names, values, times)
	if err != nil {
		return 0, t.store.wrap(err)
	}
	return int(tag.RowsAffected()), nil
}

const insertEvalRunsSQL = `INSERT INTO eval_runs (project_id, run_id, name, description, dataset_size, judge_model, results, scores,
		body, received_at_unix_nano)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[],
		$9::text[], $10::bigint[])
	ON CONFLICT DO NOTHING`

// InsertEvalRuns implements storage.EventTx.
func (t pgEventTx) InsertEvalRuns(ctx context.Context, runs []storage.EvalRun) (int, error) {
	n := len(runs)
	projects, ids, names, descs, sizes, judges := make([]string, n), make([]string, n), make([]*string, n), make([]*string, n), make([]*int64, n), make([]*string, n)
	results, scores, bodies, times := make([]int64, n), make([]string, n), make([]string, n), make([]int64, n)
	for i := range runs {
		r := &runs[i]
		projects[i], ids[i], names[i], descs[i], sizes[i], judges[i] = r.ProjectID, r.RunID, r.Name, r.Description, r.DatasetSize, r.JudgeModel
		results[i], scores[i], bodies[i], times[i] = r.Results, r.Scores, r.Body, r.ReceivedAtUnixNano
	}
	tag, err := t.tx.Exec(ctx, insertEvalRunsSQL, projects, ids, names, descs, sizes, judges, results, scores, bodies, times)
	if err != nil {
		return 0, t.store.wrap(err)
	}
	return int(tag.RowsAffected()), nil
}
