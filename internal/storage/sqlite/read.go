package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// readConns is the size of the read-only connection pool: the console's
// concurrent page loads read in parallel (WAL readers do not wait for the
// writer, nor it for them), two per core of the machines we run on.
const readConns = 4

// readCacheKiB is the page cache of each read connection.
const readCacheKiB = 16 << 10

var sqliteDialect = storage.ReadDialect{
	Placeholder: func(n int) string { return "?" + strconv.Itoa(n) },
	True:        "1",
	ILike:       "LIKE", // case-insensitive for ASCII in SQLite
}

// openReader opens the read side of the store: a separate pool of
// query_only connections to the same file, so reads never queue behind the
// single writer connection (in WAL mode a reader sees the last commit and
// holds no lock the writer waits for).
//
// indexesReady reports whether the migrations are done: until then (an
// upgrade building the v5 indexes of a large table, or the v7 totals) the
// reads name no index and aggregate the spans instead of the totals.
func openReader(path string, busy time.Duration, indexesReady func() bool) (*sql.DB, *storage.SQLReader, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -readCacheKiB))
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	db.SetMaxOpenConns(readConns)
	db.SetMaxIdleConns(readConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	d := sqliteDialect
	d.UseIndex = func(index string) string {
		if !indexesReady() {
			return "spans"
		}
		return "spans INDEXED BY " + index
	}
	d.TotalsReady = indexesReady
	return db, storage.NewSQLReader(sqlQuerier{db}, d), nil
}

type sqlQuerier struct{ db *sql.DB }

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

var _ storage.Reader = (*Store)(nil)
