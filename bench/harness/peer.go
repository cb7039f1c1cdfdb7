package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// The peer is built by ocb at the release its builder-config pins; see
// bench/peer/builder-config.yaml for why that release.
const (
	PeerBuilderVersion = "v0.161.0"
	peerBuilderConfig  = "bench/peer/builder-config.yaml"
	PeerConfig         = "bench/peer/config.yaml"
	peerOutputDir      = ".build/peer/src" // must match dist.output_path
	peerBinaryName     = "otelcol-peer"    // must match dist.name
)

// PeerBinary returns the path the peer binary is built to.
func PeerBinary(root string) string { return filepath.Join(root, peerOutputDir, peerBinaryName) }

// EnsurePeer builds the peer collector with ocb unless a build of the same
// builder-config with the same Go toolchain is already cached under .build/,
// and returns the binary's path. The first build downloads the stock
// modules through the Go module proxy and takes a few minutes on 2 cores.
func EnsurePeer(ctx context.Context, root string, log io.Writer) (string, error) {
	cfg, err := os.ReadFile(filepath.Join(root, peerBuilderConfig))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(cfg, []byte(runtime.Version()+PeerBuilderVersion)...))
	stamp := hex.EncodeToString(sum[:])
	bin := PeerBinary(root)
	stampPath := filepath.Join(root, ".build", "peer", "stamp")
	if old, err := os.ReadFile(stampPath); err == nil && strings.TrimSpace(string(old)) == stamp {
		if _, err := os.Stat(bin); err == nil {
			fmt.Fprintf(log, "peer: using cached build %s\n", bin)
			return bin, nil
		}
	}

	gobin := filepath.Join(root, ".build", "bin")
	builder := filepath.Join(gobin, "builder")
	if out, err := exec.CommandContext(ctx, builder, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), PeerBuilderVersion) {
		fmt.Fprintf(log, "peer: installing ocb %s into %s\n", PeerBuilderVersion, gobin)
		cmd := exec.CommandContext(ctx, "go", "install", "go.opentelemetry.io/collector/cmd/builder@"+PeerBuilderVersion)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("peer: go install ocb %s: %v\n%s", PeerBuilderVersion, err, out)
		}
	}

	fmt.Fprintf(log, "peer: building with ocb %s from %s (first time: a few minutes)\n", PeerBuilderVersion, peerBuilderConfig)
	if err := os.MkdirAll(filepath.Join(root, peerOutputDir), 0o755); err != nil {
		return "", err
	}
	_ = os.Remove(stampPath)
	cmd := exec.CommandContext(ctx, builder, "--config", peerBuilderConfig)
	cmd.Dir = root // output_path in the builder-config is relative to the root
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("peer: ocb build failed: %v\n%s", err, tail(string(out), 4000))
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("peer: ocb finished but %s is missing", bin)
	}
	if err := os.WriteFile(stampPath, []byte(stamp+"\n"), 0o644); err != nil {
		return "", err
	}
	return bin, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
