package reliability

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// defaultReloadInterval is fallomauth's default reload_interval, which the
// shipped config keeps: the bound within which a revocation must apply even
// if no file-system event arrives.
const defaultReloadInterval = 30 * time.Second

// TestTenants runs two projects' keys concurrently against the shipped
// default config, some of them claiming the other project in their
// resource, and then revokes one key while it is in use.
func TestTenants(t *testing.T) {
	fig := newCase(t, "two tenants concurrently, then a key revoked (default config)")
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	alphaKey := collectortest.CreateKey(t, keysFile, "alpha", "alpha-key")
	betaKey := collectortest.CreateKey(t, keysFile, "beta", "beta-key")
	dbPath := filepath.Join(dir, "fallom.db")
	ep, env := defaultEnv(t, dir, keysFile, dbPath)
	c := start(t, fig, collectortest.Options{Args: []string{}, Dir: dir, Env: env, WaitAddrs: []string{ep.HTTP, ep.GRPC}}, ep)
	c.db = dbPath

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Alpha's senders claim to be beta in the resource (and in a span
	// attribute): the key decides the project, never the payload.
	spoof := func(td ptrace.Traces) {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			rs.Resource().Attributes().PutStr("fallom.project_id", "beta")
			rs.ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("fallom.project_id", "beta")
		}
	}
	alpha := &load{
		senders: pick(3, 6), deliveries: 3, promptBytes: 800, retry: true,
		transports: []string{viaJSON, viaGRPC, viaProtoGzip},
		key:        func(int) string { return alphaKey }, ep: ep,
		ids: newIDSource(0xa1fa000000000000), ledger: newLedger(), shape: spoof,
	}
	beta := &load{
		senders: pick(3, 6), deliveries: 3, promptBytes: 800, retry: true,
		transports: []string{viaGRPC, viaJSON},
		key:        func(int) string { return betaKey }, ep: ep,
		ids: newIDSource(0xbe7a000000000000), ledger: newLedger(),
	}
	stopAlpha := alpha.start(ctx)
	defer stopAlpha()
	stopBeta := beta.start(ctx)
	defer stopBeta()
	target := pick(600, 6000)
	waitAcked(t, alpha.ledger, target, 2*time.Minute)
	waitAcked(t, beta.ledger, target, 2*time.Minute)

	// Revoke beta's key while both keep sending.
	out, errOut, err := collectortest.Run(t, dir, nil, "keys", "revoke", "beta-key", "--keys-file", keysFile)
	require.NoError(t, err, "keys revoke: %s %s", out, errOut)
	revokedAt := time.Now()
	probe, probeKeys := openRouterTraces(beta.ids, 1, deliveryShape{})
	var refusal response
	waitFor(t, defaultReloadInterval+5*time.Second, "the revoked key refused", func() bool {
		refusal = post(c.url, jsonBody(probe), jsonType, bearer(betaKey))
		beta.ledger.record(probeKeys, refusal)
		return refusal.code == http.StatusUnauthorized
	})
	took := time.Since(revokedAt)
	stopBeta()
	// From now on every request with the revoked key is refused, and says
	// why without echoing the key.
	betaAfter := newLedger()
	for range 5 {
		td, keys := openRouterTraces(beta.ids, 1, deliveryShape{})
		r := post(c.url, jsonBody(td), jsonType, bearer(betaKey))
		betaAfter.record(keys, r)
		require.Equal(t, http.StatusUnauthorized, r.code, "%s", r)
		assert.Contains(t, strings.ToLower(decodeStatus(t, r).Message), "revoked", "%s", r)
		assert.NotContains(t, string(r.body), betaKey)
	}
	// Alpha is unaffected.
	more := alpha.ledger.ackedCount() + 60
	waitAcked(t, alpha.ledger, more, time.Minute)
	stopAlpha()
	c.requireUp(t)

	// Every row carries the project of its key.
	db := openSQLite(t, dbPath)
	alphaRows := storedKeys(t, db, "project_id = 'alpha'")
	betaRows := storedKeys(t, db, "project_id = 'beta'")
	assert.Equal(t, countRows(t, db, `SELECT count(*) FROM spans`), len(alphaRows)+len(betaRows), "rows of a third project")
	pa := checkPresence(t, fig, alpha.ledger, alphaRows, 1)
	pb := checkPresence(t, fig, beta.ledger, betaRows, 1)
	for k := range alpha.ledger.sent {
		if betaRows[k] > 0 {
			t.Errorf("alpha's span %s stored under beta (spoofed resource honoured)", k)
			break
		}
	}
	for k := range beta.ledger.sent {
		if alphaRows[k] > 0 {
			t.Errorf("beta's span %s stored under alpha", k)
			break
		}
	}
	for k := range betaAfter.sent {
		assert.Zero(t, betaRows[k]+alphaRows[k], "span sent with the revoked key was stored: %s", k)
	}
	fig.add(1, 0, 0, 0)
	t.Logf("revocation took effect after %s (reload_interval %s); refusal: %s", took.Round(10*time.Millisecond), defaultReloadInterval, refusal)
	fig.note("alpha %d / beta %d spans acknowledged concurrently, each row under its key's project (alpha's payloads claimed fallom.project_id=beta: ignored); `keys revoke` took effect after %s (file watch; bound: reload_interval %s), then %d/%d requests with the key answered 401 %q, none stored",
		pa.acked, pb.acked, took.Round(10*time.Millisecond), defaultReloadInterval, betaAfter.answers["401"], betaAfter.requests, firstLine(decodeStatus(t, refusal).Message))
}
