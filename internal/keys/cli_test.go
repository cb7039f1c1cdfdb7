package keys

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/principal"
)

// runCLI runs the keys command as the main program would, returning stdout,
// stderr and the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := NewCommand()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return stdout.String(), stderr.String(), err
}

func TestCLICreateListRevoke(t *testing.T) {
	file := filepath.Join(t.TempDir(), "fresh", "dir", "keys.yaml")

	stdout, stderr, err := runCLI(t, "create", "--project", "acme", "--name", "openrouter-prod", "--keys-file", file)
	require.NoError(t, err)
	// stdout is the key alone, so KEY=$(fallomcol keys create ...) works.
	require.Equal(t, 1, strings.Count(stdout, "\n"))
	key := strings.TrimSuffix(stdout, "\n")
	require.True(t, ValidFormat(key), "stdout is not a key: %q", stdout)
	require.Contains(t, stderr, "shown only once")
	abs, _ := filepath.Abs(file)
	require.Contains(t, stderr, abs)
	require.Contains(t, stderr, DigestOf(key).Fingerprint())
	require.NotContains(t, stderr, key[len(Prefix):])

	// The file (and its directory) were created private, and hold the
	// digest only.
	fi, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(file))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	content, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotContains(t, string(content), key[len(Prefix):])
	entries, err := Parse(content)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "openrouter-prod", entries[0].Name)
	require.Equal(t, "acme", entries[0].Project)
	require.Equal(t, DigestOf(key).Hex(), entries[0].KeySHA256)
	require.Empty(t, entries[0].Key)
	require.True(t, entries[0].ExpiresAt.IsZero())

	// A second key with an expiry; a duplicate name is refused and changes nothing.
	stdout, _, err = runCLI(t, "create", "--project", "beta", "--name", "ci", "--expires", "90d", "--keys-file", file)
	require.NoError(t, err)
	key2 := strings.TrimSpace(stdout)
	require.NotEqual(t, key, key2)
	before, err := os.ReadFile(file)
	require.NoError(t, err)
	stdout, _, err = runCLI(t, "create", "--project", "acme", "--name", "ci", "--keys-file", file)
	require.ErrorContains(t, err, `a key named "ci" already exists`)
	require.Empty(t, stdout, "no key printed when nothing was stored")
	after, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, before, after)

	// list: name, project, fingerprint, expiry, revocation; never a key.
	stdout, _, err = runCLI(t, "list", "--keys-file", file)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, []string{"NAME", "PROJECT", "SCOPES", "FINGERPRINT", "EXPIRES_AT", "REVOKED", "STATUS"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"openrouter-prod", "acme", "ingest", DigestOf(key).Fingerprint(), "never", "false", "active"}, strings.Fields(lines[1]))
	row2 := strings.Fields(lines[2])
	require.Equal(t, []string{"ci", "beta", "ingest", DigestOf(key2).Fingerprint()}, row2[:4])
	exp, err := time.Parse(time.RFC3339, row2[4])
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(90*24*time.Hour), exp, time.Hour)
	for _, k := range []string{key, key2} {
		require.NotContains(t, stdout, k[len(Prefix):])
		require.NotContains(t, stdout, DigestOf(k).Hex())
	}

	// revoke
	_, stderr, err = runCLI(t, "revoke", "openrouter-prod", "--keys-file", file)
	require.NoError(t, err)
	require.Contains(t, stderr, `Revoked key "openrouter-prod"`)
	entries, err = Parse(mustRead(t, file))
	require.NoError(t, err)
	require.True(t, entries[0].Revoked)
	require.False(t, entries[1].Revoked)
	stdout, _, err = runCLI(t, "list", "--keys-file", file)
	require.NoError(t, err)
	require.Equal(t, []string{"openrouter-prod", "acme", "ingest", DigestOf(key).Fingerprint(), "never", "true", "revoked"},
		strings.Fields(strings.Split(stdout, "\n")[1]))

	_, stderr, err = runCLI(t, "revoke", "openrouter-prod", "--keys-file", file)
	require.NoError(t, err)
	require.Contains(t, stderr, "already revoked")
	_, _, err = runCLI(t, "revoke", "nope", "--keys-file", file)
	require.ErrorContains(t, err, `no key named "nope"`)
}

func TestCLIKeysFileFromEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "env-keys.yaml")
	t.Setenv(EnvKeysFile, file)
	stdout, _, err := runCLI(t, "create", "--project", "p", "--name", "from-env")
	require.NoError(t, err)
	entries, err := Parse(mustRead(t, file))
	require.NoError(t, err)
	require.Equal(t, DigestOf(strings.TrimSpace(stdout)).Hex(), entries[0].KeySHA256)

	t.Setenv(EnvKeysFile, "")
	require.Equal(t, DefaultKeysFile, NewCommand().PersistentFlags().Lookup("keys-file").DefValue)
}

func TestCLICreateValidation(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--name", "x"}, `required flag(s) "project" not set`},
		{[]string{"create", "--project", "p"}, `required flag(s) "name" not set`},
		{[]string{"create", "--project", "p", "--name", "x", "--expires", "soon"}, "--expires \"soon\": expected an RFC 3339 time"},
		{[]string{"create", "--project", "p", "--name", "x", "--expires", "-5h"}, "expected an RFC 3339 time"},
		{[]string{"create", "--project", "p", "--name", "x", "--expires", "2001-01-01T00:00:00Z"}, "--expires is in the past"},
		{[]string{"create", "--project", "p", "--name", "flm_0123456789abcdefXYZ"}, "--name looks like an API key"},
		{[]string{"create", "--project", "", "--name", "x"}, "--project is required"},
		{[]string{"revoke"}, "accepts 1 arg(s)"},
	} {
		_, _, err := runCLI(t, append(tc.args, "--keys-file", file)...)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	_, err := os.Stat(file)
	require.ErrorIs(t, err, os.ErrNotExist, "a refused create must not write the file")

	expiry, err := ParseExpiry("2030-05-06T07:08:09+02:00", time.Now())
	require.NoError(t, err)
	require.Equal(t, time.Date(2030, 5, 6, 5, 8, 9, 0, time.UTC), expiry)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	expiry, err = ParseExpiry("720h", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(720*time.Hour), expiry)
}

// TestCLIKeepsExistingFile: create refuses to touch a file the collector
// would refuse, and edits of a hand-written file keep its comments and
// plaintext entries.
func TestCLIKeepsExistingFile(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	require.NoError(t, os.WriteFile(broken, []byte("keys:\n  - name: a\n    project: [\n"), 0o640))
	stdout, _, err := runCLI(t, "create", "--project", "p", "--name", "b", "--keys-file", broken)
	require.ErrorContains(t, err, "not valid YAML")
	require.Empty(t, stdout)
	require.Equal(t, "keys:\n  - name: a\n    project: [\n", string(mustRead(t, broken)))

	invalid := filepath.Join(dir, "invalid.yaml")
	require.NoError(t, os.WriteFile(invalid, []byte("keys:\n  - name: a\n    project: p\n"), 0o640))
	_, _, err = runCLI(t, "create", "--project", "p", "--name", "b", "--keys-file", invalid)
	require.ErrorContains(t, err, "has errors, fix them first")
	require.ErrorContains(t, err, "one of key or key_sha256 is required")

	hand := filepath.Join(dir, "hand.yaml")
	plain := "flm_plaintext_for_local_dev_only"
	require.NoError(t, os.WriteFile(hand, []byte("# hand-written\nkeys:\n  - name: dev # local\n    project: p\n    key: "+plain+"\n"), 0o640))
	_, _, err = runCLI(t, "create", "--project", "p", "--name", "b", "--keys-file", hand)
	require.NoError(t, err)
	_, _, err = runCLI(t, "revoke", "dev", "--keys-file", hand)
	require.NoError(t, err)
	text := string(mustRead(t, hand))
	require.Contains(t, text, "# hand-written")
	require.Contains(t, text, "# local")
	require.Contains(t, text, "key: "+plain, "plaintext entries are kept as written")
	fi, err := os.Stat(hand)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "an existing file keeps its mode")
	leftovers, err := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "temporary files left behind")

	stdout, stderr, err := runCLI(t, "list", "--keys-file", filepath.Join(dir, "missing.yaml"))
	require.NoError(t, err)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "does not exist yet")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestCLIScopes: --scopes is written to the file (only when it is not the
// default), shown by list, and bad lists are refused without writing.
func TestCLIScopes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	_, stderr, err := runCLI(t, "create", "--project", "acme", "--name", "console", "--scopes", "ingest, read", "--keys-file", file)
	require.NoError(t, err)
	require.Contains(t, stderr, "with scopes ingest,read")
	_, _, err = runCLI(t, "create", "--project", "acme", "--name", "reader", "--scopes", "read", "--keys-file", file)
	require.NoError(t, err)
	_, _, err = runCLI(t, "create", "--project", "acme", "--name", "sender", "--keys-file", file)
	require.NoError(t, err)

	content := string(mustRead(t, file))
	require.Contains(t, content, "scopes: [ingest, read]")
	require.Contains(t, content, "scopes: [read]")
	entries, err := Parse([]byte(content))
	require.NoError(t, err)
	require.Len(t, entries, 3)
	require.Equal(t, []string{"ingest", "read"}, entries[0].Scopes)
	require.Equal(t, []string{"read"}, entries[1].Scopes)
	require.Nil(t, entries[2].Scopes, "the default scope is not written: absent means [ingest]")
	validated, err := Validate("keys", entries)
	require.NoError(t, err)
	require.Equal(t, []principal.Scope{principal.Ingest}, validated[2].Scopes)

	stdout, _, err := runCLI(t, "list", "--keys-file", file)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Equal(t, "ingest,read", strings.Fields(lines[1])[2])
	require.Equal(t, "read", strings.Fields(lines[2])[2])
	require.Equal(t, "ingest", strings.Fields(lines[3])[2])

	for _, bad := range []struct{ scopes, want string }{
		{"admin", `unknown scope "admin" (known: ingest,read)`},
		{"read,read", `scope "read" is listed twice`},
		{"", `unknown scope ""`},
	} {
		stdout, _, err := runCLI(t, "create", "--project", "acme", "--name", "x", "--scopes", bad.scopes, "--keys-file", file)
		require.ErrorContains(t, err, bad.want, bad.scopes)
		require.Empty(t, stdout)
	}
	require.Equal(t, content, string(mustRead(t, file)), "refused creates wrote nothing")
}
