package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// writePprofOverlay writes a config overlay that adds the pprof extension
// (part of the distribution) on a free loopback port to the shipped config
// at shippedConfig, and returns its path and the extension's address. The
// overlay repeats the shipped service.extensions list, plus pprof, because
// the collector replaces lists when it merges configs.
func writePprofOverlay(shippedConfig, runDir string) (path, addr string, err error) {
	raw, err := os.ReadFile(shippedConfig)
	if err != nil {
		return "", "", err
	}
	var shipped struct {
		Service struct {
			Extensions []string `yaml:"extensions"`
		} `yaml:"service"`
	}
	if err := yaml.Unmarshal(raw, &shipped); err != nil {
		return "", "", fmt.Errorf("%s: %w", shippedConfig, err)
	}
	addr, err = FreeAddr()
	if err != nil {
		return "", "", err
	}
	overlay := fmt.Sprintf(`extensions:
  pprof:
    endpoint: %s
service:
  extensions: [%s]
`, addr, strings.Join(append(shipped.Service.Extensions, "pprof"), ", "))
	path = filepath.Join(runDir, "pprof.overlay.yaml")
	return path, addr, os.WriteFile(path, []byte(overlay), 0o644)
}

// captureProfile starts a CPU profile of d on inst (when it runs the pprof
// extension) and saves it as <ProfileDir>/<label>.pprof. The channel yields
// the outcome once the profile is written (nil at once when not profiling).
func (w *World) captureProfile(ctx context.Context, inst *Instance, label string, d time.Duration) <-chan error {
	done := make(chan error, 1)
	if w.ProfileDir == "" || inst.PprofAddr == "" {
		done <- nil
		return done
	}
	go func() {
		done <- func() error {
			if err := os.MkdirAll(w.ProfileDir, 0o755); err != nil {
				return err
			}
			secs := max(1, int(d.Round(time.Second)/time.Second))
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", inst.PprofAddr, secs)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			client := &http.Client{Timeout: d + time.Minute, Transport: &http.Transport{Proxy: nil}}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
				return fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, b)
			}
			f, err := os.Create(filepath.Join(w.ProfileDir, label+".pprof"))
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return done
}
