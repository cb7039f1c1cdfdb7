package fallomauthextension

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/keys"
)

func runKeysCLI(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := keys.NewCommand()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	require.NoError(t, cmd.Execute(), "keys %v: %s", args, stderr.String())
	return stdout.String(), stderr.String()
}

// TestCLIKeyAuthenticatesAfterReload is the quickstart: the collector runs
// with no keys file, `keys create` writes one, the watcher loads it and the
// printed key authenticates over HTTP and gRPC; `keys revoke` turns it off.
func TestCLIKeyAuthenticatesAfterReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	h := newHarness(t, &Config{KeysFile: file})

	stdout, _ := runKeysCLI(t, "create", "--project", "acme", "--name", "openrouter-prod", "--expires", "720h", "--keys-file", file)
	key := strings.TrimSpace(stdout)
	h.addSecret(key)
	require.True(t, keys.ValidFormat(key))

	h.eventually(func() bool { return h.status(key) == "" }, "created key never accepted")
	h.requireAccepted(h.bearerHTTP(key), "acme", "openrouter-prod")
	h.requireAccepted(h.exportGRPC(map[string]string{"authorization": "Bearer " + key}), "acme", "openrouter-prod")

	// A second key does not disturb the first.
	stdout, _ = runKeysCLI(t, "create", "--project", "beta", "--name", "ci", "--keys-file", file)
	second := strings.TrimSpace(stdout)
	h.addSecret(second)
	h.eventually(func() bool { return h.status(second) == "" }, "second key never accepted")
	h.requireAccepted(h.postHTTP(map[string]string{"X-Api-Key": second}, true), "beta", "ci")
	h.requireAccepted(h.bearerHTTP(key), "acme", "openrouter-prod")

	list, _ := runKeysCLI(t, "list", "--keys-file", file)
	require.Contains(t, list, "openrouter-prod")
	require.Contains(t, list, keys.DigestOf(key).Fingerprint())
	require.NotContains(t, list, key[len(keys.Prefix):])

	runKeysCLI(t, "revoke", "openrouter-prod", "--keys-file", file)
	h.eventually(func() bool { return h.status(key) == ErrRevokedKey.Error() }, "revoked key still accepted")
	h.requireRejected(h.exportGRPC(map[string]string{"x-api-key": key}), ErrRevokedKey)
	h.requireAccepted(h.bearerHTTP(second), "beta", "ci")
}
