package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fallom/fallom-collector/internal/storage"
)

// totalsDialect: round(double precision) rounds half to even, so a cost
// exactly half a nano-USD is rounded away from zero by hand, as
// storage.NanoUSD (math.Round) does.
var totalsDialect = storage.TotalsDialect{
	Least: "least", Greatest: "greatest", True: "true",
	NanoUSD: "(CASE WHEN total_cost_usd * 1e9 - trunc(total_cost_usd * 1e9) IN (0.5, -0.5)" +
		" THEN trunc(total_cost_usd * 1e9) + sign(total_cost_usd * 1e9) ELSE round(total_cost_usd * 1e9) END)::bigint",
	Spans: func(string) string { return "spans" }, // the planner chooses by cost
}

// totalsUpsertSQL adds rows passed as one array per column of
// storage.TotalsTable.Columns.
func totalsUpsertSQL(t storage.TotalsTable) string {
	extra := "$3::bigint[]"
	if t.Extra == "customer_id" {
		extra = "$3::text[]"
	}
	params := []string{"$1::text[]", "$2::text[]", extra}
	for i := 4; i <= storage.TotalsColumnCount; i++ {
		params = append(params, fmt.Sprintf("$%d::bigint[]", i))
	}
	return t.UpsertSQL("SELECT * FROM unnest("+strings.Join(params, ", ")+")", totalsDialect)
}

var (
	sessionTotalsSQL  = totalsUpsertSQL(storage.SessionTotals)
	customerTotalsSQL = totalsUpsertSQL(storage.CustomerTotals)
	pairsSQL          = `INSERT INTO customer_sessions (project_id, customer_id, session_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING RETURNING project_id, customer_id`
	// recomputeKeys is the FROM term of the keys of a recompute.
	recomputeKeys = "unnest($1::text[], $2::text[])"
)

// AddTotals implements storage.Tx. Rows are locked in key order (the
// lists are sorted), so concurrent collectors do not deadlock on them.
func (t pgTx) AddTotals(ctx context.Context, c *storage.TotalsChanges) error {
	if err := t.addPairs(ctx, c); err != nil {
		return t.store.wrap(err)
	}
	for _, u := range []struct {
		table  storage.TotalsTable
		deltas []storage.TotalsDelta
		query  string
	}{
		{storage.SessionTotals, c.Sessions, sessionTotalsSQL},
		{storage.CustomerTotals, c.Customers, customerTotalsSQL},
	} {
		if len(u.deltas) == 0 {
			continue
		}
		n := len(u.deltas)
		projects, ids := make([]string, n), make([]string, n)
		customers, sessions := make([]*string, n), make([]int64, n)
		cols := make([][]int64, len(storage.TotalsCounterColumns)+2)
		for i := range cols {
			cols[i] = make([]int64, n)
		}
		for r := range u.deltas {
			d := &u.deltas[r]
			projects[r], ids[r], customers[r], sessions[r] = d.Key.ProjectID, d.Key.ID, d.CustomerID, d.Sessions
			for i, v := range append(d.Counters(), d.FirstSeenUnixNano, d.LastSeenUnixNano) {
				cols[i][r] = v
			}
		}
		args := []any{projects, ids, any(sessions)}
		if u.table.Extra == "customer_id" {
			args[2] = customers
		}
		for _, a := range cols {
			args = append(args, a)
		}
		if _, err := t.tx.Exec(ctx, u.query, args...); err != nil {
			return t.store.wrap(err)
		}
	}
	return t.store.wrap(recomputeTotals(ctx, t.tx, c.RecomputeSessions, c.RecomputeCustomers))
}

// addPairs inserts the customer-session pairs and adds those that were new
// to their customers' deltas.
func (t pgTx) addPairs(ctx context.Context, c *storage.TotalsChanges) error {
	if len(c.Pairs) == 0 {
		return nil
	}
	customer := make(map[storage.TotalsKey]*storage.TotalsDelta, len(c.Customers))
	for i := range c.Customers {
		customer[c.Customers[i].Key] = &c.Customers[i]
	}
	n := len(c.Pairs)
	projects, customers, sessions := make([]string, n), make([]string, n), make([]string, n)
	for i, p := range c.Pairs {
		projects[i], customers[i], sessions[i] = p.ProjectID, p.CustomerID, p.SessionID
	}
	rows, err := t.tx.Query(ctx, pairsSQL, projects, customers, sessions)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k storage.TotalsKey
		if err := rows.Scan(&k.ProjectID, &k.ID); err != nil {
			return err
		}
		if d := customer[k]; d != nil {
			d.Sessions++
		}
	}
	return rows.Err()
}

// recomputeTotals sets the listed session and customer rows to the
// aggregate of the stored generations (storage.TotalsTable.RecomputeSQL:
// its first statement locks the rows, in key order, so the aggregate that
// follows sees what concurrent writers of those rows committed).
func recomputeTotals(ctx context.Context, tx pgx.Tx, sessions, customers []storage.TotalsKey) error {
	for _, r := range []struct {
		table storage.TotalsTable
		keys  []storage.TotalsKey
	}{{storage.SessionTotals, sessions}, {storage.CustomerTotals, customers}} {
		if len(r.keys) == 0 {
			continue
		}
		projects, ids := make([]string, len(r.keys)), make([]string, len(r.keys))
		for i, k := range r.keys {
			projects[i], ids[i] = k.ProjectID, k.ID
		}
		for _, q := range r.table.RecomputeSQL(recomputeKeys, totalsDialect) {
			if _, err := tx.Exec(ctx, q, projects, ids); err != nil {
				return err
			}
		}
	}
	return nil
}
