package fallomauthextension

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/filewatch"
	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/principal"
)

var (
	_ extension.Extension  = (*authenticator)(nil)
	_ extensionauth.Server = (*authenticator)(nil)
)

// authenticator is the fallomauth extension. Requests are authenticated
// against an immutable keySet; the keys-file watcher swaps in a new one.
type authenticator struct {
	logger    *zap.Logger
	telSet    component.TelemetrySettings
	telemetry *telemetry

	// inline entries from the config, validated and hashed at creation; the
	// config's plaintext keys are not referenced afterwards.
	inline         []keys.Validated
	keysFile       string // absolute; "" when not configured
	reloadInterval time.Duration
	// scope this instance admits; scopeErr is its fixed refusal.
	scope    principal.Scope
	scopeErr error

	keys atomic.Pointer[keySet]
	// now is the clock for expiry; tests set it before Start.
	now func() time.Time

	// File watching; see watch.go.
	host      component.Host
	watch     *filewatch.Watcher // nil until Start watches a keys file
	fileState fileState
	// noNotify turns file-system notifications off (tests of the periodic
	// check, which is what remains on file systems without notifications).
	noNotify bool
}

func newAuthenticator(cfg *Config, set component.TelemetrySettings) (*authenticator, error) {
	inline, err := keys.Validate("keys", cfg.Keys)
	if err != nil {
		return nil, err
	}
	scope, err := cfg.scope()
	if err != nil {
		return nil, err
	}
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, fmt.Errorf("creating fallomauth telemetry: %w", err)
	}
	a := &authenticator{
		logger:         set.Logger,
		telSet:         set,
		telemetry:      tel,
		inline:         inline,
		reloadInterval: cfg.ReloadInterval,
		scope:          scope,
		scopeErr:       &principal.MissingScopeError{Scope: scope},
		now:            time.Now,
	}
	if cfg.KeysFile != "" {
		if a.keysFile, err = filepath.Abs(cfg.KeysFile); err != nil {
			return nil, fmt.Errorf("keys_file: %w", err)
		}
	}
	// Usable before Start (and if Start fails): inline keys only.
	initial, err := buildKeySet(inline, nil, tel)
	if err != nil {
		return nil, err
	}
	a.keys.Store(initial)
	return a, nil
}

// Start loads the keys file (a missing or empty file means no keys from it
// yet; an invalid one fails the start with the reason) and starts watching it.
func (a *authenticator) Start(_ context.Context, host component.Host) error {
	a.host = host
	if err := a.telemetry.registerKeysGauge(a.telSet, a.keys.Load, a.now); err != nil {
		return fmt.Errorf("registering fallomauth telemetry: %w", err)
	}
	if a.keysFile == "" {
		a.logger.Info("using keys from the config only", zap.Int("keys", len(a.inline)))
		return nil
	}
	if err := a.loadAtStart(); err != nil {
		return fmt.Errorf("keys file %s: %w", a.keysFile, err)
	}
	a.startWatching()
	return nil
}

// Shutdown stops the watcher. It is safe without Start and more than once.
func (a *authenticator) Shutdown(context.Context) error {
	a.watch.Close()
	a.telemetry.unregister()
	return nil
}

// Authenticate implements extensionauth.Server. Cost does not depend on the
// number of keys: a format check, one sha256, one map lookup, one
// constant-time compare of two 32-byte digests.
func (a *authenticator) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	key, r := extractKey(sources)
	if r != reasonNone {
		return ctx, a.reject(ctx, r, nil)
	}
	rec, err := a.checkKey(ctx, key, true)
	if err != nil {
		return ctx, err
	}
	info := client.FromContext(ctx)
	info.Auth = rec.authData
	return client.NewContext(ctx, info), nil
}

// CheckKey checks a key presented outside a request's headers (the console's
// login form): the same checks, telemetry and errors as Authenticate,
// against the current (hot-reloaded) keys and this instance's scope. A
// valid key without the scope fails with an error wrapping ErrMissingScope.
func (a *authenticator) CheckKey(key string) (principal.Principal, error) {
	rec, err := a.checkKey(noCtx, key, true)
	if err != nil {
		return principal.Principal{}, err
	}
	return rec.principal(), nil
}

// CheckDigest re-checks a key known only by its sha256 (a console session
// made by CheckKey): a key removed from the keys, revoked, expired or that
// lost this instance's scope since is refused, with the errors of CheckKey.
func (a *authenticator) CheckDigest(digest [sha256.Size]byte) (principal.Principal, error) {
	rec, err := a.checkDigest(noCtx, digest, true)
	if err != nil {
		return principal.Principal{}, err
	}
	return rec.principal(), nil
}

// checkKey runs every check on a presented key. Refusals are counted and
// logged; an acceptance only when countAccepted (the gRPC tap handle leaves
// that to the interceptor that follows it).
func (a *authenticator) checkKey(ctx context.Context, key string, countAccepted bool) (*keyRecord, error) {
	// The format check bounds the input before hashing and turns anything
	// that is not a fallom key into a clear message.
	if !keys.ValidFormat(key) {
		return nil, a.reject(ctx, reasonNotFlmKey, nil)
	}
	return a.checkDigest(ctx, keys.DigestOf(key), countAccepted)
}

func (a *authenticator) checkDigest(ctx context.Context, digest keys.Digest, countAccepted bool) (*keyRecord, error) {
	rec := a.keys.Load().byDigest[digest]
	// The map finds the candidate by digest. Its own equality check is not
	// constant-time, but it only sees digests of the presented key, whose
	// timing says nothing about a stored key (that would take a preimage).
	// The decision is this constant-time compare of two fixed-length digests:
	// unlike comparing raw tokens, it leaks neither which key matched nor its
	// length.
	if rec == nil || subtle.ConstantTimeCompare(rec.digest[:], digest[:]) != 1 {
		return nil, a.reject(ctx, reasonUnknownKey, nil)
	}
	if rec.revoked {
		return nil, a.reject(ctx, reasonRevokedKey, rec)
	}
	// Only keys with an expiry read the clock (time.Now is not free).
	if !rec.expiresAt.IsZero() && rec.expired(a.now()) {
		return nil, a.reject(ctx, reasonExpiredKey, rec)
	}
	if !rec.has(a.scope) {
		return nil, a.reject(ctx, reasonMissingScope, rec)
	}
	if !countAccepted {
		return rec, nil
	}
	a.telemetry.requests.Add(ctx, 1, rec.acceptedOpts...)
	if ce := a.logger.Check(zap.DebugLevel, "request accepted"); ce != nil {
		ce.Write(zap.String("key_name", rec.name), zap.String("project_id", rec.authData.projectID))
	}
	return rec, nil
}

// reject counts and logs a rejection and returns its fixed error. rec is the
// matched key for revoked, expired and missing-scope refusals, nil otherwise.
func (a *authenticator) reject(ctx context.Context, r reason, rec *keyRecord) error {
	opts := a.telemetry.rejectOpts[r]
	keyName := ""
	if rec != nil {
		keyName = rec.name
		switch r {
		case reasonRevokedKey:
			opts = rec.revokedOpts
		case reasonExpiredKey:
			opts = rec.expiredOpts
		default:
			opts = rec.missingScopeOpts
		}
	}
	a.telemetry.requests.Add(ctx, 1, opts...)
	if ce := a.logger.Check(zap.DebugLevel, "request rejected"); ce != nil {
		fields := []zap.Field{zap.String("reason", reasonNames[r])}
		if keyName != "" {
			fields = append(fields, zap.String("key_name", keyName))
		}
		if addr := client.FromContext(ctx).Addr; addr != nil {
			fields = append(fields, zap.String("client_addr", addr.String()))
		}
		ce.Write(fields...)
	}
	if r == reasonMissingScope {
		return a.scopeErr
	}
	return reasonErrors[r]
}
