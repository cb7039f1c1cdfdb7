package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultBaseRev is the commit the ours_sqlite_base pipeline is built from:
// the last one before the console's rollups (issue 11.7), which must cost
// ingest at most 10% against it, side by side in one run. BENCH_BASE_REV
// overrides it.
const DefaultBaseRev = "e4a6d04"

// BaseRev is the revision of the ours_sqlite_base pipeline.
func BaseRev() string {
	if r := os.Getenv("BENCH_BASE_REV"); r != "" {
		return r
	}
	return DefaultBaseRev
}

// EnsureBase builds the collector of revision rev from the repository at
// root (git archive of that commit, then go build of its cmd/fallomcol,
// whose ocb sources are committed) and returns the binary and the source
// tree, whose config/config.yaml the pipeline runs with. A build is kept
// under .build/base/<commit> and reused.
func EnsureBase(ctx context.Context, root, rev string, log io.Writer) (bin, tree string, err error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("base: git rev-parse %s: %v", rev, err)
	}
	commit := strings.TrimSpace(string(out))
	dir := filepath.Join(root, ".build", "base", commit)
	tree, bin = filepath.Join(dir, "src"), filepath.Join(dir, "fallomcol")
	if _, err := os.Stat(bin); err == nil {
		fmt.Fprintf(log, "base: using cached build %s (%s)\n", bin, rev)
		return bin, tree, nil
	}
	fmt.Fprintf(log, "base: building %s (%s) into %s\n", rev, commit[:12], dir)
	if err := os.RemoveAll(dir); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return "", "", err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", commit)
	var tarball, stderr bytes.Buffer
	archive.Stdout, archive.Stderr = &tarball, &stderr
	if err := archive.Run(); err != nil {
		return "", "", fmt.Errorf("base: git archive %s: %v: %s", commit, err, stderr.String())
	}
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", tree)
	untar.Stdin = &tarball
	if out, err := untar.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("base: tar: %v: %s", err, out)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin+".tmp", ".")
	build.Dir = filepath.Join(tree, "cmd", "fallomcol")
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("base: go build of %s: %v\n%s", rev, err, tail(string(out), 4000))
	}
	return bin, tree, os.Rename(bin+".tmp", bin)
}
