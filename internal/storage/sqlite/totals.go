package sqlite

import (
	"context"
	"database/sql"

	"github.com/fallom/fallom-collector/internal/storage"
)

// totalsDialect: SQLite's two-argument min and max are scalar functions,
// and its round() rounds half away from zero, as storage.NanoUSD does.
var totalsDialect = storage.TotalsDialect{
	Least: "min", Greatest: "max", True: "1",
	NanoUSD: "CAST(round(total_cost_usd * 1e9) AS INTEGER)",
	Spans:   func(index string) string { return "spans INDEXED BY " + index },
}

func sessionTotalsSQL(rows int) string {
	return storage.SessionTotals.UpsertSQL("VALUES "+valuesList(rows, storage.TotalsColumnCount), totalsDialect)
}

func customerTotalsSQL(rows int) string {
	return storage.CustomerTotals.UpsertSQL("VALUES "+valuesList(rows, storage.TotalsColumnCount), totalsDialect)
}

// pairsSQL inserts customer-session pairs, returning those that were new
// (a conflicting row is not returned).
func pairsSQL(rows int) string {
	return "INSERT INTO customer_sessions (project_id, customer_id, session_id) VALUES " + valuesList(rows, 3) +
		" ON CONFLICT DO NOTHING RETURNING project_id, customer_id"
}

func sessionTotalsOf(s *Store) map[int]*sql.Stmt  { return s.sessionTotals }
func customerTotalsOf(s *Store) map[int]*sql.Stmt { return s.customerTotals }
func pairsOf(s *Store) map[int]*sql.Stmt          { return s.pairs }

// AddTotals implements storage.Tx.
func (t *sqliteTx) AddTotals(ctx context.Context, c *storage.TotalsChanges) error {
	if err := t.addPairs(ctx, c); err != nil {
		return classify(err)
	}
	for _, u := range []struct {
		table  storage.TotalsTable
		deltas []storage.TotalsDelta
		cache  func(*Store) map[int]*sql.Stmt
		query  func(int) string
	}{
		{storage.SessionTotals, c.Sessions, sessionTotalsOf, sessionTotalsSQL},
		{storage.CustomerTotals, c.Customers, customerTotalsOf, customerTotalsSQL},
	} {
		args := make([]any, 0, storage.TotalsColumnCount*min(len(u.deltas), rowsPerStatement))
		for start := 0; start < len(u.deltas); {
			chunk := u.deltas[start : start+nextChunk(len(u.deltas)-start)]
			start += len(chunk)
			st, err := t.stmt(ctx, u.cache, len(chunk), u.query)
			if err != nil {
				return classify(err)
			}
			args = args[:0]
			for i := range chunk {
				args = append(args, u.table.Values(&chunk[i])...)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return classify(err)
			}
		}
	}
	return classify(recomputeTotals(ctx, t.tx, c.RecomputeSessions, c.RecomputeCustomers))
}

// addPairs inserts the customer-session pairs and adds those that were new
// to their customers' deltas.
func (t *sqliteTx) addPairs(ctx context.Context, c *storage.TotalsChanges) error {
	customer := make(map[storage.TotalsKey]*storage.TotalsDelta, len(c.Customers))
	for i := range c.Customers {
		customer[c.Customers[i].Key] = &c.Customers[i]
	}
	args := make([]any, 0, 3*min(len(c.Pairs), rowsPerStatement))
	for start := 0; start < len(c.Pairs); {
		chunk := c.Pairs[start : start+nextChunk(len(c.Pairs)-start)]
		start += len(chunk)
		st, err := t.stmt(ctx, pairsOf, len(chunk), pairsSQL)
		if err != nil {
			return err
		}
		args = args[:0]
		for _, p := range chunk {
			args = append(args, p.ProjectID, p.CustomerID, p.SessionID)
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k storage.TotalsKey
			if err := rows.Scan(&k.ProjectID, &k.ID); err != nil {
				rows.Close()
				return err
			}
			if d := customer[k]; d != nil {
				d.Sessions++
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// recomputeTotals sets the listed session and customer rows to the
// aggregate of the stored generations (storage.TotalsTable.RecomputeSQL).
// Rare (changed replays, retention): the statements are not cached.
func recomputeTotals(ctx context.Context, tx *sql.Tx, sessions, customers []storage.TotalsKey) error {
	for _, r := range []struct {
		table storage.TotalsTable
		keys  []storage.TotalsKey
	}{{storage.SessionTotals, sessions}, {storage.CustomerTotals, customers}} {
		for start := 0; start < len(r.keys); start += rowsPerStatement {
			chunk := r.keys[start:min(start+rowsPerStatement, len(r.keys))]
			args := make([]any, 0, 2*len(chunk))
			for _, k := range chunk {
				args = append(args, k.ProjectID, k.ID)
			}
			for _, q := range r.table.RecomputeSQL("(VALUES "+valuesList(len(chunk), 2)+")", totalsDialect) {
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
