package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func query(t *testing.T, dsn, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// A database and its committed rows survive a fast restart and a crash
// (SIGKILL of the whole server) followed by a start on the same data dir.
func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	dsn, err := s.CreateDatabase("lifecycle")
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, dsn, "CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)")
	port := s.Port()

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := query(t, dsn, "SELECT count(*) FROM t"); got != 2 {
		t.Fatalf("after restart: %d rows, want 2", got)
	}

	execSQL(t, dsn, "INSERT INTO t VALUES (3)")
	s.Kill()
	ctx := context.Background()
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatal("connect succeeded after Kill")
	}
	if err := s.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Fatalf("port changed from %d to %d", port, s.Port())
	}
	if got := query(t, dsn, "SELECT count(*) FROM t"); got != 3 {
		t.Fatalf("after crash: %d rows, want 3", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatal("connect succeeded after Stop")
	}
}

// Two servers run side by side on different ports and data dirs.
func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Port() == b.Port() || a.Dir() == b.Dir() {
		t.Fatalf("servers share port or dir: %d %d %s %s", a.Port(), b.Port(), a.Dir(), b.Dir())
	}
	execSQL(t, a.DSN(), "CREATE TABLE only_a (v int)")
	if got := query(t, b.DSN(), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_a'"); got != 0 {
		t.Fatal("table created on a is visible on b")
	}
}
