package fallomauthextension

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"

	"github.com/fallom/fallom-collector/extension/fallomauthextension/internal/metadata"
	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/principal"
)

// startInstance starts a fallomauth instance named name (as fallomauth/read
// would be) outside any receiver, the way the console uses it: through
// CheckKey and CheckDigest. Its logs are returned for leak checks.
func startInstance(t *testing.T, name string, cfg *Config) (*authenticator, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	id := component.NewIDWithName(metadata.Type, name)
	ext, err := NewFactory().Create(context.Background(),
		extension.Settings{ID: id, TelemetrySettings: set, BuildInfo: component.NewDefaultBuildInfo()}, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext.(*authenticator), logs
}

// TestScopesThroughReceiver: the ingest instance in front of the stock OTLP
// receiver admits keys with the ingest scope (explicit or by default) and
// refuses a read-only key with 401 / Unauthenticated and a message naming the
// missing scope, counted as missing_scope with the key's name.
func TestScopesThroughReceiver(t *testing.T) {
	ks := genKeys(t, 3)
	sender, both, reader := ks[0], ks[1], ks[2]
	file := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, file, "keys:\n"+entryYAML("sender", "acme", sender)+
		entryYAML("both", "acme", both, "scopes: [ingest, read]")+
		entryYAML("reader", "acme", reader, "scopes: [read]"))
	h := newHarness(t, &Config{KeysFile: file, Scope: "ingest"}, withSecrets(ks...))

	h.requireAccepted(h.bearerHTTP(sender), "acme", "sender")
	h.requireAccepted(h.bearerHTTP(both), "acme", "both")
	h.requireAccepted(h.exportGRPC(map[string]string{"authorization": "Bearer " + both}), "acme", "both")

	res := h.bearerHTTP(reader)
	h.requireRejected(res, &principal.MissingScopeError{Scope: principal.Ingest})
	require.Equal(t, http.StatusUnauthorized, res.status)
	require.Contains(t, res.message, `API key lacks the "ingest" scope`)
	res = h.exportGRPC(map[string]string{"x-api-key": reader})
	h.requireRejected(res, &principal.MissingScopeError{Scope: principal.Ingest})
	require.Equal(t, codes.Unauthenticated, res.code)

	require.EqualValues(t, 2, h.requestCount(map[string]string{"reason": "missing_scope", "key_name": "reader"}))
}

// TestCheckKeyAndDigest: the console's calls on a read instance that shares
// the keys file with the ingest instance. Every way a login session dies
// (scope lost, revoked, expired, removed) is seen by CheckDigest from the
// reload on, and coming back is seen too.
func TestCheckKeyAndDigest(t *testing.T) {
	ks := genKeys(t, 3)
	both, sender, other := ks[0], ks[1], ks[2]
	file := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, file, "keys:\n"+entryYAML("both", "acme", both, "scopes: [ingest, read]")+
		entryYAML("sender", "acme", sender))
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	read, logs := startInstance(t, "read", &Config{KeysFile: file, Scope: "read"})
	var clock atomic.Int64 // read by the watcher goroutine too
	clock.Store(t0.UnixNano())
	read.now = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	ingest, _ := startInstance(t, "ingest", &Config{KeysFile: file, Scope: "ingest"})

	p, err := read.CheckKey(both)
	require.NoError(t, err)
	require.Equal(t, principal.Principal{ProjectID: "acme", KeyName: "both", Scopes: []principal.Scope{principal.Ingest, principal.Read}}, p)
	require.True(t, p.Has(principal.Read))
	// The caller's copy is its own: changing it changes nothing in the extension.
	p.Scopes[0] = "tampered"
	p2, err := read.CheckDigest(keys.DigestOf(both))
	require.NoError(t, err)
	require.Equal(t, principal.Ingest, p2.Scopes[0])

	_, err = read.CheckKey(sender)
	require.ErrorIs(t, err, principal.ErrMissingScope)
	require.ErrorIs(t, err, ErrMissingScope)
	require.EqualError(t, err, `API key lacks the "read" scope needed here (create a key with `+"`keys create --scopes read`"+`)`)
	var mse *principal.MissingScopeError
	require.True(t, errors.As(err, &mse))
	require.Equal(t, principal.Read, mse.Scope)
	_, err = ingest.CheckKey(sender)
	require.NoError(t, err, "the ingest instance admits the same key")

	_, err = read.CheckKey(other)
	require.ErrorIs(t, err, ErrUnknownKey)
	_, err = read.CheckKey("Bearer " + both)
	require.ErrorIs(t, err, ErrNotFlmKey)
	_, err = read.CheckKey("")
	require.ErrorIs(t, err, ErrNotFlmKey)

	session := keys.DigestOf(both)
	check := func() error { _, err := read.CheckDigest(session); return err }
	eventuallyErr := func(want error, msg string) {
		t.Helper()
		require.Eventually(t, func() bool {
			err := check()
			if want == nil {
				return err == nil
			}
			return errors.Is(err, want)
		}, 20*time.Second, 20*time.Millisecond, msg)
	}
	rewrite := func(entries string) { writeFileAtomic(t, file, "keys:\n"+entries) }

	rewrite(entryYAML("both", "acme", both, "scopes: [ingest]") + entryYAML("sender", "acme", sender))
	eventuallyErr(ErrMissingScope, "scope lost")
	rewrite(entryYAML("both", "acme", both, "scopes: [read]"))
	eventuallyErr(nil, "scope given back")
	rewrite(entryYAML("both", "acme", both, "scopes: [read]", "revoked: true"))
	eventuallyErr(ErrRevokedKey, "revoked")
	rewrite(entryYAML("both", "acme", both, "scopes: [read]", "expires_at: 2030-06-01T13:00:00Z"))
	eventuallyErr(nil, "revocation lifted")
	clock.Store(t0.Add(2 * time.Hour).UnixNano())
	require.ErrorIs(t, check(), ErrExpiredKey, "expiry is evaluated at each check, no reload needed")
	clock.Store(t0.UnixNano())
	rewrite(entryYAML("sender", "acme", sender))
	eventuallyErr(ErrUnknownKey, "removed")

	// Nothing of a key or of its digest in the read instance's logs.
	var text strings.Builder
	for _, e := range logs.All() {
		text.WriteString(e.Message)
		fmt.Fprintf(&text, " %v", e.ContextMap())
		text.WriteString("\n")
	}
	require.NotEmpty(t, text.String())
	for _, k := range ks {
		require.NotContains(t, text.String(), k[len(keys.Prefix):len(keys.Prefix)+12])
		require.NotContains(t, text.String(), keys.DigestOf(k).Hex()[:12])
	}
}
