package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fallom/fallom-collector/internal/storage"
)

var postgresDialect = storage.ReadDialect{
	Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
	True:        "true",
	ILike:       "ILIKE",

	DistinctBySubquery: true,
}

// newReader returns the read side of the store, on the store's pool;
// totalsReady reports whether the totals tables can be read.
func newReader(pool *pgxpool.Pool, password string, totalsReady func() bool) *storage.SQLReader {
	d := postgresDialect
	d.TotalsReady = totalsReady
	return storage.NewSQLReader(pgQuerier{pool, password}, d)
}

type pgQuerier struct {
	pool     *pgxpool.Pool
	password string // scrubbed from error texts
}

func (q pgQuerier) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	rows, err := q.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, q.redact(err)
	}
	return pgRows{rows, q}, nil
}

func (q pgQuerier) redact(err error) error {
	if err != nil && q.password != "" {
		return &redactedError{err: err, password: q.password}
	}
	return err
}

type pgRows struct {
	pgx.Rows
	q pgQuerier
}

func (r pgRows) Err() error { return r.q.redact(r.Rows.Err()) }

var _ storage.Reader = (*Store)(nil)
