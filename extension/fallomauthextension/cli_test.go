package fallomauthextension

import (
	"bytes"
	"os"
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

// TestRevokeTakesEffectDespiteABrokenEntry is issue 15 item 2: a hand edit
// left an entry the collector refuses (key_sha256: abcd); `keys revoke` of
// another key must still take effect (the refused file is applied fail
// safe: its revocations and removals, never additions), the CLI must say
// that the collector refuses the file, and the refusal shows in telemetry.
// A `revoked: yes` typo on an entry removes that key rather than leaving it
// working.
func TestRevokeTakesEffectDespiteABrokenEntry(t *testing.T) {
	ks := genKeys(t, 4)
	keep, victim, typo, added := ks[0], ks[1], ks[2], ks[3]
	file := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, file, "keys:\n"+entryYAML("keep", "acme", keep)+entryYAML("victim", "acme", victim)+entryYAML("typo", "acme", typo))
	h := newHarness(t, &Config{KeysFile: file}, withSecrets(ks...))
	for name, k := range map[string]string{"keep": keep, "victim": victim, "typo": typo} {
		h.requireAccepted(h.bearerHTTP(k), "acme", name)
	}
	require.Equal(t, int64(0), h.refusedGauge())

	// The hand edit: a broken entry and a new key the collector must not take.
	writeFileAtomic(t, file, "keys:\n"+entryYAML("keep", "acme", keep)+entryYAML("victim", "acme", victim)+
		entryYAML("typo", "acme", typo)+"  - name: broken\n    project: acme\n    key_sha256: abcd\n"+entryYAML("added", "acme", added))
	h.eventually(func() bool { return h.refusedGauge() == 1 }, "refusal not in telemetry")

	_, stderr := runKeysCLI(t, "revoke", "victim", "--keys-file", file)
	require.Contains(t, stderr, `Revoked key "victim"`)
	require.Contains(t, stderr, "the running collector refuses it as a whole")
	require.Contains(t, stderr, "key_sha256 must be 64 hex characters")
	require.Contains(t, stderr, "warning: the collector refuses")

	h.eventually(func() bool { return h.status(victim) == ErrRevokedKey.Error() }, "revocation in a refused file not applied")
	h.requireAccepted(h.bearerHTTP(keep), "acme", "keep")
	h.requireRejected(h.bearerHTTP(added), ErrUnknownKey)
	require.Equal(t, int64(1), h.refusedGauge())

	// `revoked: yes` is not a boolean the file accepts: the entry cannot be
	// read, so its key stops working (closed, not open).
	data := strings.Replace(string(mustReadFile(t, file)), "    key_sha256: "+keys.DigestOf(typo).Hex()+"\n",
		"    key_sha256: "+keys.DigestOf(typo).Hex()+"\n    revoked: yes\n", 1)
	writeFileAtomic(t, file, data)
	h.eventually(func() bool { return h.status(typo) == ErrUnknownKey.Error() }, "key with an unreadable entry still accepted")
	h.requireAccepted(h.bearerHTTP(keep), "acme", "keep")

	// Fixing the file applies it as a whole again.
	writeFileAtomic(t, file, "keys:\n"+entryYAML("keep", "acme", keep)+entryYAML("added", "acme", added))
	h.eventually(func() bool { return h.status(added) == "" }, "fixed file not applied")
	require.Equal(t, int64(0), h.refusedGauge())
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
