package sqlite

import (
	"context"
	"database/sql"

	"github.com/fallom/fallom-collector/internal/storage"
)

var _ storage.EventWriter = (*Store)(nil)

// WriteEvents implements storage.EventWriter: one IMMEDIATE transaction on
// the writer connection (so it queues with the span writes, never beside
// them), one prepared statement per table executed per event (events come
// a few per request; the statement is parsed once per write).
func (s *Store) WriteEvents(ctx context.Context, events storage.Events) (storage.EventResult, error) {
	if events.Len() == 0 {
		return storage.EventResult{}, nil
	}
	if err := s.writable(); err != nil {
		return storage.EventResult{}, err
	}
	storage.CleanEvents(&events)
	s.transactions.Add(1)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return storage.EventResult{}, classify(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	res, rejected, err := storage.WriteEventBatch(ctx, &sqliteEventTx{sqliteTx{tx: tx, store: s}}, events)
	if err != nil {
		return storage.EventResult{}, classify(err)
	}
	if err := tx.Commit(); err != nil {
		return storage.EventResult{}, classify(err)
	}
	return res, rejected
}

type sqliteEventTx struct{ sqliteTx }

const insertCallSQL = `INSERT INTO assignment_calls (project_id, config_key, config_version, session_id, received_at_unix_nano)
	VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`

// InsertAssignmentCalls implements storage.EventTx.
func (t *sqliteEventTx) InsertAssignmentCalls(ctx context.Context, calls []storage.Assignment) ([]storage.Assignment, error) {
	var fresh []storage.Assignment
	err := t.each(ctx, insertCallSQL, len(calls), func(st *sql.Stmt, i int) error {
		a := &calls[i]
		r, err := st.ExecContext(ctx, a.ProjectID, a.ConfigKey, a.ConfigVersion, a.SessionID, a.ReceivedAtUnixNano)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if n == 1 {
			fresh = append(fresh, *a)
		}
		return err
	})
	return fresh, err
}

// addAssignmentSQL adds one write's lookups to an assignment row; the
// model and customer follow the latest lookup (an older one arriving late
// does not overwrite them).
const addAssignmentSQL = `INSERT INTO assignments (project_id, config_key, config_version, session_id, assigned_model, customer_id,
		first_seen_unix_nano, last_seen_unix_nano, calls)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (project_id, config_key, config_version, session_id) DO UPDATE SET
		assigned_model = CASE WHEN excluded.last_seen_unix_nano >= assignments.last_seen_unix_nano
			THEN excluded.assigned_model ELSE assignments.assigned_model END,
		customer_id = CASE WHEN excluded.last_seen_unix_nano >= assignments.last_seen_unix_nano
			THEN coalesce(excluded.customer_id, assignments.customer_id) ELSE coalesce(assignments.customer_id, excluded.customer_id) END,
		first_seen_unix_nano = min(assignments.first_seen_unix_nano, excluded.first_seen_unix_nano),
		last_seen_unix_nano = max(assignments.last_seen_unix_nano, excluded.last_seen_unix_nano),
		calls = assignments.calls + excluded.calls`

// AddAssignments implements storage.EventTx.
func (t *sqliteEventTx) AddAssignments(ctx context.Context, rows []storage.AssignmentRow) error {
	return t.each(ctx, addAssignmentSQL, len(rows), func(st *sql.Stmt, i int) error {
		r := &rows[i]
		_, err := st.ExecContext(ctx, r.Key.ProjectID, r.Key.ConfigKey, r.Key.ConfigVersion, r.Key.SessionID, r.AssignedModel,
			r.CustomerID, r.FirstSeenUnixNano, r.LastSeenUnixNano, r.Calls)
		return err
	})
}

// upsertMetricSQL stores a value when it is newer than the stored one
// (storage.SessionMetric: later time, or equal time and larger value).
const upsertMetricSQL = `INSERT INTO session_metrics (project_id, config_key, session_id, name, value, updated_at_unix_nano)
	VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (project_id, config_key, session_id, name) DO UPDATE SET
		value = excluded.value, updated_at_unix_nano = excluded.updated_at_unix_nano
	WHERE excluded.updated_at_unix_nano > session_metrics.updated_at_unix_nano
		OR (excluded.updated_at_unix_nano = session_metrics.updated_at_unix_nano AND excluded.value > session_metrics.value)`

// UpsertMetrics implements storage.EventTx.
func (t *sqliteEventTx) UpsertMetrics(ctx context.Context, metrics []storage.SessionMetric) (int, error) {
	stored := 0
	err := t.each(ctx, upsertMetricSQL, len(metrics), func(st *sql.Stmt, i int) error {
		m := &metrics[i]
		r, err := st.ExecContext(ctx, m.ProjectID, m.ConfigKey, m.SessionID, m.Name, m.Value, m.UpdatedAtUnixNano)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		stored += int(n)
		return err
	})
	return stored, err
}

const insertEvalRunSQL = `INSERT INTO eval_runs (project_id, run_id, name, description, dataset_size, judge_model, results, scores,
		body, received_at_unix_nano)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`

// InsertEvalRuns implements storage.EventTx.
func (t *sqliteEventTx) InsertEvalRuns(ctx context.Context, runs []storage.EvalRun) (int, error) {
	stored := 0
	err := t.each(ctx, insertEvalRunSQL, len(runs), func(st *sql.Stmt, i int) error {
		r := &runs[i]
		res, err := st.ExecContext(ctx, r.ProjectID, r.RunID, r.Name, r.Description, r.DatasetSize, r.JudgeModel, r.Results,
			r.Scores, r.Body, r.ReceivedAtUnixNano)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		stored += int(n)
		return err
	})
	return stored, err
}

// each prepares query in the transaction and runs exec for 0..n-1.
func (t *sqliteEventTx) each(ctx context.Context, query string, n int, exec func(*sql.Stmt, int) error) error {
	st, err := t.tx.PrepareContext(ctx, query)
	if err != nil {
		return classify(err)
	}
	defer st.Close()
	for i := range n {
		if err := exec(st, i); err != nil {
			return classify(err)
		}
	}
	return nil
}
