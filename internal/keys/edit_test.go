package keys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCLIWritesThroughSymlink (issue 15 item 6): a keys file that is a
// symbolic link stays one; the file it leads to gets the edit.
func TestCLIWritesThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "secrets", "keys.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(real), 0o700))
	require.NoError(t, os.WriteFile(real, []byte("keys: []\n"), 0o600))
	link := filepath.Join(dir, "conf", "keys.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o700))
	require.NoError(t, os.Symlink("../secrets/keys.yaml", link))

	stdout, _, err := runCLI(t, "create", "--project", "acme", "--name", "a", "--keys-file", link)
	require.NoError(t, err)
	_, _, err = runCLI(t, "revoke", "a", "--keys-file", link)
	require.NoError(t, err)

	fi, err := os.Lstat(link)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeSymlink, "the link was replaced by a regular file")
	entries, err := Parse(mustRead(t, real))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, DigestOf(strings.TrimSpace(stdout)).Hex(), entries[0].KeySHA256)
	require.True(t, entries[0].Revoked)
}

// TestCLIKeepsOwner (issue 15 item 3): run as root on a file another user
// owns (the collector's user), the rewrite keeps that owner, so the
// collector can still read the file and the revocation takes effect.
func TestCLIKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file another owner (CI runs as root)")
	}
	file := filepath.Join(t.TempDir(), "keys.yaml")
	_, _, err := runCLI(t, "create", "--project", "acme", "--name", "a", "--keys-file", file)
	require.NoError(t, err)
	const nobody = 65534
	require.NoError(t, os.Chown(file, nobody, nobody))

	_, _, err = runCLI(t, "revoke", "a", "--keys-file", file)
	require.NoError(t, err)
	_, _, err = runCLI(t, "create", "--project", "acme", "--name", "b", "--keys-file", file)
	require.NoError(t, err)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	require.Equal(t, uint32(nobody), st.Uid)
	require.Equal(t, uint32(nobody), st.Gid)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// TestCLIConcurrentEditsLoseNothing (issue 15 item 5): a revoke racing two
// creates, many rounds; every printed key is in the file and every
// revocation stays.
func TestCLIConcurrentEditsLoseNothing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	const rounds = 30
	printed := make([]string, 0, 2*rounds)
	var mu sync.Mutex
	for r := range rounds {
		victim := fmt.Sprintf("victim-%d", r)
		_, _, err := runCLI(t, "create", "--project", "acme", "--name", victim, "--keys-file", file)
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for i := range 2 {
			wg.Go(func() {
				stdout, _, err := runCLI(t, "create", "--project", "acme", "--name", fmt.Sprintf("new-%d-%d", r, i), "--keys-file", file)
				errs <- err
				mu.Lock()
				printed = append(printed, strings.TrimSpace(stdout))
				mu.Unlock()
			})
		}
		wg.Go(func() {
			_, _, err := runCLI(t, "revoke", victim, "--keys-file", file)
			errs <- err
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
	entries, err := Parse(mustRead(t, file))
	require.NoError(t, err)
	digests := map[string]bool{}
	for _, e := range entries {
		digests[e.KeySHA256] = true
		if strings.HasPrefix(e.Name, "victim-") {
			require.True(t, e.Revoked, "revocation of %s lost", e.Name)
		}
	}
	require.Len(t, entries, 3*rounds)
	for _, k := range printed {
		require.True(t, digests[DigestOf(k).Hex()], "a printed key is not in the file")
	}
}
