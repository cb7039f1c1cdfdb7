// Package pgtest runs a real PostgreSQL server from the Debian postgresql
// package for tests and benchmarks: a throwaway data directory under /tmp, a
// free loopback port, trust authentication and fsync off.
//
// initdb and postgres refuse to run as root, so both run as the `postgres`
// system user (the process credentials are switched directly, so the pid this
// package holds is the postmaster itself and Kill really crashes the server).
// The data directory is created with mkdtemp under /tmp rather than under
// t.TempDir(), whose parents are not traversable by that user.
//
// initdb runs once per machine and PostgreSQL version: its result is kept as a
// template under /tmp and copied for every server, so starting a server costs
// a copy and a postmaster start.
package pgtest // import "github.com/fallom/fallom-collector/internal/testutil/pgtest"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

// templateVersion changes whenever the initdb options below change, so a
// stale template left in /tmp by an older version of this file is not used.
const templateVersion = "1"

// Server is one running (or stopped) PostgreSQL server.
type Server struct {
	dir     string // owned by the postgres user; holds data/ and the socket
	dataDir string
	binDir  string
	port    int
	uid     uint32
	gid     uint32

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

// BinDir returns the directory of the newest installed PostgreSQL server
// binaries, or an error that says how to install them.
func BinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		return "", errors.New("pgtest: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: " +
			"install Debian's postgresql package (apt-get install -y postgresql; .ci/run does this)")
	}
	sort.Slice(matches, func(i, j int) bool {
		return versionOf(matches[i]) > versionOf(matches[j])
	})
	return filepath.Dir(matches[0]), nil
}

func versionOf(postgresPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(postgresPath))))
	return v
}

// Start starts a server for a test and stops it (and removes its files) at
// the end of the test. A missing PostgreSQL installation fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer("")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Logf("pgtest: stop: %v", err)
		}
		_ = os.RemoveAll(s.dir)
	})
	return s
}

// StartServer starts a server whose files live in dir (created with mkdtemp
// under /tmp when dir is empty). The caller stops it with Stop and removes
// Dir() when done.
func StartServer(dir string) (*Server, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: the postgres system user is missing (it comes with Debian's postgresql package): %w", err)
	}
	uid, _ := strconv.ParseUint(pgUser.Uid, 10, 32)
	gid, _ := strconv.ParseUint(pgUser.Gid, 10, 32)
	if dir == "" {
		dir, err = os.MkdirTemp("/tmp", "pgtest-")
		if err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{
		dir: dir, dataDir: filepath.Join(dir, "data"), binDir: binDir,
		uid: uint32(uid), gid: uint32(gid), logs: &syncBuffer{},
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	tmpl, err := template(binDir, s.uid, s.gid)
	if err != nil {
		return nil, err
	}
	if out, err := exec.Command("cp", "-a", tmpl, s.dataDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: copy template data dir: %v: %s", err, out)
	}
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	s.port = port
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// template returns a data directory made by initdb, shared by every server
// of this machine. It is built in a private temp dir and renamed into place,
// so concurrent test binaries never see a half-written template.
func template(binDir string, uid, gid uint32) (string, error) {
	templateOnce.Do(func() {
		final := fmt.Sprintf("/tmp/pgtest-template-v%s-pg%d", templateVersion, versionOf(filepath.Join(binDir, "postgres")))
		if _, err := os.Stat(filepath.Join(final, "PG_VERSION")); err == nil {
			templateDir = final
			return
		}
		work, err := os.MkdirTemp("/tmp", "pgtest-initdb-")
		if err != nil {
			templateErr = fmt.Errorf("pgtest: %w", err)
			return
		}
		defer os.RemoveAll(work)
		if err := os.Chown(work, int(uid), int(gid)); err != nil {
			templateErr = fmt.Errorf("pgtest: %w", err)
			return
		}
		data := filepath.Join(work, "data")
		cmd := exec.Command(filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres",
			"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		cmd.Env = pgEnv()
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			templateErr = fmt.Errorf("pgtest: initdb: %v: %s", err, out)
			return
		}
		// Rename is atomic: whichever test binary gets there first wins and
		// the others use its template.
		if err := os.Rename(data, final); err != nil {
			if _, statErr := os.Stat(filepath.Join(final, "PG_VERSION")); statErr != nil {
				templateErr = fmt.Errorf("pgtest: install template: %w", err)
				return
			}
		}
		templateDir = final
	})
	return templateDir, templateErr
}

func pgEnv() []string {
	return []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "HOME=/tmp"}
}

// start launches the postmaster on the existing data dir and port and waits
// until it accepts queries. After a crash the port and shared memory can stay
// busy for a moment (dying backends still hold them), so a start that fails
// early is tried again for a while.
func (s *Server) start() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.startOnce()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Server) startOnce() error {
	s.mu.Lock()
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"),
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=100",
		"-c", "shared_buffers=64MB",
		"-c", "log_min_messages=warning",
	)
	// Own process group, so Kill takes the backends down with the postmaster
	// like a crash of the whole server would.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: s.uid, Gid: s.gid},
		Setpgid:    true,
	}
	cmd.Env = pgEnv()
	cmd.Dir = s.dir
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		select {
		case <-done:
			return fmt.Errorf("pgtest: postgres exited during start; logs:\n%s", s.logs.String())
		default:
		}
		conn, err := pgx.Connect(ctx, s.DSN())
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			s.Kill()
			return fmt.Errorf("pgtest: postgres not ready after 30s (%v); logs:\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DSN is the URL of the `postgres` database.
func (s *Server) DSN() string { return s.dsnFor("postgres") }

func (s *Server) dsnFor(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the TCP port the server listens on (kept across restarts).
func (s *Server) Port() int { return s.port }

// Dir is the directory holding the data directory and the socket.
func (s *Server) Dir() string { return s.dir }

// Logs returns what the server wrote so far.
func (s *Server) Logs() string { return s.logs.String() }

// CreateDatabase creates an empty database and returns its URL.
func (s *Server) CreateDatabase(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %q: %w", name, err)
	}
	return s.dsnFor(name), nil
}

// Stop shuts the server down (fast shutdown: open transactions are rolled
// back, connections are closed) and waits for it to exit.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		return nil
	case <-time.After(60 * time.Second):
		s.Kill()
		return errors.New("pgtest: postgres did not stop within 60s after SIGINT; killed")
	}
}

// Kill crashes the server: SIGKILL to the postmaster and all its backends.
// Start it again with Restart; PostgreSQL then runs crash recovery.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart stops the server if it runs and starts it again on the same data
// directory and port.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

// StartAgain starts a stopped or killed server on the same data directory
// and port.
func (s *Server) StartAgain() error { return s.start() }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the last 1 MiB: enough to explain a failure, bounded for long runs.
	if b.buf.Len() > 1<<20 {
		rest := b.buf.Bytes()[b.buf.Len()-(512<<10):]
		b.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Clone(b.buf.String())
}
