package atomicfile

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const nobody = 65534

func ownerOf(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func TestWriteNewAndExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	path := filepath.Join(dir, "f.yaml")
	require.NoError(t, Write(path, []byte("one"), 0o600, 0o700))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a new file gets newMode")
	di, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "a missing directory gets dirMode")

	require.NoError(t, os.Chmod(path, 0o640))
	require.NoError(t, Write(path, []byte("two"), 0o600, 0o700))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two", string(got))
	fi, err = os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "an existing file keeps its mode")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
}

// TestWriteKeepsOwner: run as root on a file another user owns (the
// collector's user), the rewrite keeps that owner and group.
func TestWriteKeepsOwner(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "f.yaml")
	require.NoError(t, os.WriteFile(path, []byte("one"), 0o600))
	require.NoError(t, os.Chown(path, nobody, nobody))
	require.NoError(t, Write(path, []byte("two"), 0o644, 0o755))
	uid, gid := ownerOf(t, path)
	require.Equal(t, [2]uint32{nobody, nobody}, [2]uint32{uid, gid})
}

// TestWriteRefusesWhenOwnerCannotBeKept: a user who may not give the file
// its owner back (here nobody, on a root-owned file in a directory it may
// write) gets *OwnerError and the file is unchanged. The write runs in a
// child process (this test binary) with nobody's credentials.
func TestWriteRefusesWhenOwnerCannotBeKept(t *testing.T) {
	if target := os.Getenv("ATOMICFILE_CHILD_TARGET"); target != "" {
		err := Write(target, []byte("changed"), 0o600, 0o700)
		var owner *OwnerError
		if !errors.As(err, &owner) || owner.UID != 0 || owner.GID != 0 {
			t.Fatalf("want *OwnerError for uid 0 gid 0, got %v", err)
		}
		return
	}
	requireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755)) // the test's own temp root, 0700
	require.NoError(t, os.Chmod(dir, 0o777))
	path := filepath.Join(dir, "f.yaml")
	require.NoError(t, os.WriteFile(path, []byte("root's"), 0o644))

	// The test binary may sit in a directory only root can enter.
	bin := filepath.Join(dir, "child.test")
	src, err := os.Open(os.Args[0])
	require.NoError(t, err)
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, src.Close())
	require.NoError(t, dst.Close())

	cmd := exec.Command(bin, "-test.run=^TestWriteRefusesWhenOwnerCannotBeKept$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ATOMICFILE_CHILD_TARGET="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "PASS")

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "root's", string(got), "nothing was changed")
	uid, gid := ownerOf(t, path)
	require.Equal(t, [2]uint32{0, 0}, [2]uint32{uid, gid})
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary file left behind (the file and the binary)")
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test gives files another owner: run it as root (CI does)")
	}
}
