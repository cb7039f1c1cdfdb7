package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultBaseRev is the commit the ours_sqlite_base pipeline is built from:
// the last one before the console's rollups (issue 11.7), which must cost
// ingest at most 10% against it, side by side in one run. BENCH_BASE_REV
// overrides it.
const DefaultBaseRev = "e4a6d04"

// basePatchDir holds, per base revision (bench/base/<rev>/*.patch), the
// changes made after it that are not the ones the comparison measures and
// that move ingest on their own (the exporter's queue consumers): they are
// applied to the base's tree before it is built, so the comparison
// isolates the rollups instead of crediting them with unrelated gains.
const basePatchDir = "bench/base"

// BaseRev is the revision of the ours_sqlite_base pipeline.
func BaseRev() string {
	if r := os.Getenv("BENCH_BASE_REV"); r != "" {
		return r
	}
	return DefaultBaseRev
}

// BasePatches returns the patches applied to revision rev's tree
// (bench/base/<rev>/*.patch under root, in name order; none when that
// directory does not exist).
func BasePatches(root, rev string) ([]string, error) {
	patches, err := filepath.Glob(filepath.Join(root, basePatchDir, rev, "*.patch"))
	sort.Strings(patches)
	return patches, err
}

// EnsureBase builds the collector of revision rev from the repository at
// root (git archive of that commit, its BasePatches applied, then go build
// of its cmd/fallomcol, whose ocb sources are committed) and returns the
// binary and the source tree, whose config/config.yaml the pipeline runs
// with. A build is kept under .build/base/<commit>[-<patches digest>] and
// reused.
func EnsureBase(ctx context.Context, root, rev string, log io.Writer) (bin, tree string, err error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("base: git rev-parse %s: %v", rev, err)
	}
	commit := strings.TrimSpace(string(out))
	patches, err := BasePatches(root, rev)
	if err != nil {
		return "", "", err
	}
	name := commit
	if len(patches) > 0 {
		digest := sha256.New()
		for _, p := range patches {
			b, err := os.ReadFile(p)
			if err != nil {
				return "", "", err
			}
			fmt.Fprintf(digest, "%s %d\n", filepath.Base(p), len(b))
			digest.Write(b)
		}
		name += "-" + hex.EncodeToString(digest.Sum(nil))[:12]
	}
	dir := filepath.Join(root, ".build", "base", name)
	tree, bin = filepath.Join(dir, "src"), filepath.Join(dir, "fallomcol")
	if _, err := os.Stat(bin); err == nil {
		fmt.Fprintf(log, "base: using cached build %s (%s, %d patches)\n", bin, rev, len(patches))
		return bin, tree, nil
	}
	fmt.Fprintf(log, "base: building %s (%s, %d patches) into %s\n", rev, commit[:12], len(patches), dir)
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
	for _, p := range patches {
		apply := exec.CommandContext(ctx, "git", "apply", p)
		apply.Dir = tree
		if out, err := apply.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("base: git apply %s to %s: %v: %s", p, rev, err, out)
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin+".tmp", ".")
	build.Dir = filepath.Join(tree, "cmd", "fallomcol")
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("base: go build of %s: %v\n%s", rev, err, tail(string(out), 4000))
	}
	return bin, tree, os.Rename(bin+".tmp", bin)
}
