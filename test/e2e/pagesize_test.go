package e2e

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// The binary makes a new database with 16 KiB pages (issue 17: the page size
// used to be fixed at 4 KiB by WAL before it was set), `fallomcol sqlite
// page-size` refuses to convert while the collector runs, converts once it is
// stopped, and the collector then reads and writes the converted file.
func TestSQLitePageSizeNewFileAndConversion(t *testing.T) {
	dir := t.TempDir()
	key := collectortest.CreateKey(t, filepath.Join(dir, "keys.yaml"), "acme", "e2e")
	in := startDefaultIn(t, dir, key)
	auth := map[string]string{"Authorization": "Bearer " + key}
	code, body := in.post(t, readFixture(t, "openrouter-delivery.json"), auth)
	require.Equal(t, http.StatusOK, code, body)

	pageSize := func() int {
		db, err := sql.Open("sqlite", "file:"+in.dbPath+"?mode=ro")
		require.NoError(t, err)
		defer db.Close()
		var n int
		require.NoError(t, db.QueryRow("PRAGMA page_size").Scan(&n))
		return n
	}
	assert.Equal(t, 4096, pageSize(), "page size of the file the collector made")

	root := collectortest.RepoRoot(t)
	_, errOut, err := collectortest.Run(t, root, nil, "sqlite", "page-size", "--set", "16384", in.dbPath)
	require.Error(t, err, "converting while the collector runs")
	assert.Contains(t, errOut, "in use")
	assert.Equal(t, 4096, pageSize(), "a refused conversion changes nothing")

	require.NoError(t, in.col.Stop())
	out, errOut, err := collectortest.Run(t, root, nil, "sqlite", "page-size", "--set", "16384", in.dbPath)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "page size 4096 -> 16384")
	out, errOut, err = collectortest.Run(t, root, nil, "sqlite", "page-size", in.dbPath)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "page size 16384")

	// A converted file keeps its page size and its rows across a restart,
	// and takes new writes.
	in = startDefaultIn(t, dir, key)
	code, body = in.post(t, readFixture(t, "openrouter-delivery.json"), auth)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 16384, pageSize(), "an existing file keeps its page size")
	db := in.db(t)
	assert.Positive(t, count(t, db, "SELECT count(*) FROM spans WHERE trace_id = ?", "a1b2c3d4e5f60718293a4b5c6d7e8f90"))
	var check string
	require.NoError(t, db.QueryRow("PRAGMA quick_check").Scan(&check))
	assert.Equal(t, "ok", check)
}
