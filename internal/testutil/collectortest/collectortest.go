// Package collectortest starts the real bin/fallomcol binary for end-to-end
// tests: a YAML config written to a temp dir, free loopback ports, readiness
// by polling the ports, and SIGTERM or SIGKILL at the end.
package collectortest // import "github.com/fallom/fallom-collector/internal/testutil/collectortest"

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

// RepoRoot returns the directory holding the root go.mod of this project.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(data, []byte("module github.com/fallom/fallom-collector\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("collectortest: cannot find the fallom-collector repository root above the working directory")
		}
		dir = parent
	}
}

// BinaryPath returns the path of bin/fallomcol and fails the test when it is
// missing: the end-to-end tests run the real binary that `make build` makes.
func BinaryPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FALLOMCOL_BIN"); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(t), "bin", "fallomcol")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("collectortest: %s is missing: run `make build` first (make test does)", p)
	}
	return p
}

// FreePort returns a loopback TCP port for a collector to listen on (see
// package freeport for why not port 0).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Options describe one collector process.
type Options struct {
	// Config is the YAML text of the collector config. It may use the
	// collector's ${env:VAR} syntax with variables from Env.
	Config string
	// Env is added to the process environment ("K=V").
	Env []string
	// Dir is the working directory (default: a new temp dir).
	Dir string
	// WaitAddrs are host:port addresses that must accept TCP connections
	// before Start returns (typically the OTLP HTTP and gRPC endpoints).
	WaitAddrs []string
	// Args replaces the default arguments ("--config <file>") when set.
	Args []string
}

// Collector is a running bin/fallomcol process.
type Collector struct {
	t          testing.TB
	Dir        string
	ConfigPath string
	cmd        *exec.Cmd
	logs       *syncBuffer
	done       chan struct{}
	waitErr    error
}

// Start runs the binary and waits until every Options.WaitAddrs accepts
// connections (or the process exits, which fails the test with its logs).
// The process is stopped (SIGTERM, then SIGKILL) at test cleanup.
func Start(t testing.TB, opts Options) *Collector {
	t.Helper()
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	c := &Collector{t: t, Dir: dir, logs: &syncBuffer{}, done: make(chan struct{})}
	args := opts.Args
	if args == nil {
		c.ConfigPath = filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(c.ConfigPath, []byte(opts.Config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"--config", c.ConfigPath}
	}
	c.cmd = exec.Command(BinaryPath(t), args...)
	c.cmd.Dir = dir
	c.cmd.Env = append(os.Environ(), opts.Env...)
	c.cmd.Stdout = c.logs
	c.cmd.Stderr = c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("collectortest: start: %v", err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.Stop() })
	for _, addr := range opts.WaitAddrs {
		c.waitForAddr(addr, 60*time.Second)
	}
	return c
}

func (c *Collector) waitForAddr(addr string, limit time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			c.t.Fatalf("collectortest: collector exited before %s was ready (%v); logs:\n%s", addr, c.waitErr, c.Logs())
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("collectortest: %s not ready after %v; logs:\n%s", addr, limit, c.Logs())
}

// Pid is the process id.
func (c *Collector) Pid() int { return c.cmd.Process.Pid }

// Logs returns everything the process wrote to stdout and stderr so far.
func (c *Collector) Logs() string { return c.logs.String() }

// Exited reports whether the process has ended.
func (c *Collector) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to end: a crash, with no
// chance to flush anything.
func (c *Collector) Kill() {
	if c.Exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// Stop sends SIGTERM and waits up to 30 s for a clean shutdown, then kills.
// It returns the process's exit error (nil on a clean exit).
func (c *Collector) Stop() error {
	if c.Exited() {
		return c.waitErr
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	}
	return c.waitErr
}

// Run runs the binary with args to completion (e.g. `keys create ...`,
// `validate --config ...`) and returns stdout and stderr separately.
func Run(t testing.TB, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, BinaryPath(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// CreateKey runs `fallomcol keys create` and returns the printed key (the
// default scopes: ingest).
func CreateKey(t testing.TB, keysFile, project, name string) string {
	t.Helper()
	return CreateKeyWithScopes(t, keysFile, project, name, "")
}

// CreateKeyWithScopes is CreateKey with --scopes (e.g. "ingest,read"; ""
// for the default).
func CreateKeyWithScopes(t testing.TB, keysFile, project, name, scopes string) string {
	t.Helper()
	args := []string{"keys", "create", "--keys-file", keysFile, "--project", project, "--name", name}
	if scopes != "" {
		args = append(args, "--scopes", scopes)
	}
	out, errOut, err := Run(t, filepath.Dir(keysFile), nil, args...)
	if err != nil {
		t.Fatalf("collectortest: keys create: %v\n%s", err, errOut)
	}
	key := strings.TrimSpace(out)
	if !strings.HasPrefix(key, "flm_") || strings.ContainsAny(key, " \n") {
		t.Fatalf("collectortest: keys create printed %q on stdout, want the key alone", out)
	}
	return key
}

// Endpoints picks free ports for the OTLP receiver.
type Endpoints struct {
	HTTP, GRPC string // host:port
}

// NewEndpoints returns two free loopback addresses.
func NewEndpoints(t testing.TB) Endpoints {
	return Endpoints{
		HTTP: fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		GRPC: fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
