package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

// Process is one collector run by the harness.
type Process struct {
	Name    string
	cmd     *exec.Cmd
	logFile *os.File
	logPath string
	done    chan struct{}
	waitErr error
}

// StartProcess runs bin with args and env (added to the harness's own
// environment), writing its output to logPath.
func StartProcess(name, bin string, args, env []string, dir, logPath string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &Process{Name: name, cmd: cmd, logFile: logFile, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Alive reports whether the process is still running.
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitError is how the process ended (nil while running or on a clean exit).
func (p *Process) ExitError() error {
	if p.Alive() {
		return nil
	}
	return p.waitErr
}

// LogTail returns the last n bytes of the process's output.
func (p *Process) LogTail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// WaitReady polls url with an empty OTLP request carrying the bearer key until
// the collector answers 2xx: its HTTP server, authenticator and pipeline are
// up. It fails early, with the log tail, if the process exits.
func (p *Process) WaitReady(ctx context.Context, url, key string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(`{}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); log tail:\n%s", p.Name, p.waitErr, p.LogTail(4096))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (last answer: %s); log tail:\n%s", p.Name, limit, last, p.LogTail(4096))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills.
// It returns an error when the process had already died or did not exit
// cleanly.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Alive() {
		return fmt.Errorf("%s had already exited: %v", p.Name, p.waitErr)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v after SIGTERM and was killed", p.Name, grace)
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return fmt.Errorf("%s exited with %v; log tail:\n%s", p.Name, p.waitErr, p.LogTail(2048))
	}
	return p.waitErr
}

// FreeAddr returns a loopback host:port for a server to listen on (see
// package freeport for why not port 0).
func FreeAddr() (string, error) { return freeport.Addr() }

// FreePort returns a loopback port for a server to listen on.
func FreePort() (int, error) { return freeport.Port() }
