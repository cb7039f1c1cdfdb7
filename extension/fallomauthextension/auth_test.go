package fallomauthextension

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fallom/fallom-collector/internal/keys"
)

// authFixture is a config with every kind of key: hashed and plaintext
// inline keys, revoked, expired, expiring in the future, and a file key.
type authFixture struct {
	prod, dev, revoked, expired, future, fileKey, unknown string
	cfg                                                   *Config
}

func newAuthFixture(t *testing.T) (*authFixture, []harnessOption) {
	gen := func() string {
		k, err := keys.Generate()
		require.NoError(t, err)
		return k
	}
	f := &authFixture{prod: gen(), dev: gen(), revoked: gen(), expired: gen(), future: gen(), fileKey: gen(), unknown: gen()}
	keysFile := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, keysFile, "keys:\n"+entryYAML("filekey", "beta", f.fileKey))
	f.cfg = &Config{
		KeysFile: keysFile,
		Keys: []KeyEntry{
			{Name: "prod", Project: "acme", KeySHA256: keys.DigestOf(f.prod).Hex()},
			{Name: "dev", Project: "acme-dev", Key: configopaque.String(f.dev)},
			{Name: "old", Project: "acme", KeySHA256: keys.DigestOf(f.revoked).Hex(), Revoked: true},
			{Name: "lapsed", Project: "acme", KeySHA256: keys.DigestOf(f.expired).Hex(), ExpiresAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
			{Name: "future", Project: "acme", KeySHA256: strings.ToUpper(keys.DigestOf(f.future).Hex()), ExpiresAt: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)},
		},
	}
	// Keys that are only ever presented (never configured) are secrets too.
	return f, []harnessOption{func(h *harness) {
		for _, k := range []string{f.prod, f.dev, f.revoked, f.expired, f.future, f.fileKey, f.unknown} {
			h.addSecret(k)
		}
	}}
}

type authCase struct {
	name    string
	headers map[string]string // HTTP header names as sent; gRPC gets them lowercased
	wantErr error
	project string
	keyName string
	// httpOnly: grpc-go refuses to send the value (control characters).
	httpOnly bool
}

func authCases(f *authFixture) []authCase {
	long := keys.Prefix + strings.Repeat("a", keys.MaxSecretLen+1)
	return []authCase{
		{name: "bearer", headers: map[string]string{"Authorization": "Bearer " + f.prod}, project: "acme", keyName: "prod"},
		{name: "bearer lowercase scheme", headers: map[string]string{"Authorization": "bearer " + f.prod}, project: "acme", keyName: "prod"},
		{name: "bearer uppercase scheme", headers: map[string]string{"Authorization": "BEARER " + f.prod}, project: "acme", keyName: "prod"},
		{name: "bearer mixed-case scheme", headers: map[string]string{"Authorization": "bEaReR " + f.prod}, project: "acme", keyName: "prod"},
		{name: "lowercase header name", headers: map[string]string{"authorization": "Bearer " + f.prod}, project: "acme", keyName: "prod"},
		{name: "x-api-key", headers: map[string]string{"X-Api-Key": f.prod}, project: "acme", keyName: "prod"},
		{name: "x-api-key lowercase header name", headers: map[string]string{"x-api-key": f.prod}, project: "acme", keyName: "prod"},
		{name: "non-bearer authorization defers to x-api-key", headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": f.prod}, project: "acme", keyName: "prod"},
		{name: "plaintext inline key", headers: map[string]string{"Authorization": "Bearer " + f.dev}, project: "acme-dev", keyName: "dev"},
		{name: "keys file key", headers: map[string]string{"Authorization": "Bearer " + f.fileKey}, project: "beta", keyName: "filekey"},
		{name: "not yet expired", headers: map[string]string{"X-Api-Key": f.future}, project: "acme", keyName: "future"},

		{name: "no header", headers: map[string]string{}, wantErr: ErrMissingKey},
		{name: "empty authorization", headers: map[string]string{"Authorization": ""}, wantErr: ErrMissingKey},
		{name: "empty x-api-key", headers: map[string]string{"X-Api-Key": ""}, wantErr: ErrMissingKey},
		{name: "basic scheme", headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, wantErr: ErrWrongScheme},
		{name: "token scheme", headers: map[string]string{"Authorization": "Token " + f.prod}, wantErr: ErrWrongScheme},
		{name: "key without scheme", headers: map[string]string{"Authorization": f.prod}, wantErr: ErrWrongScheme},
		{name: "two spaces after bearer", headers: map[string]string{"Authorization": "Bearer  " + f.prod}, wantErr: ErrWrongScheme},
		{name: "tab after bearer", headers: map[string]string{"Authorization": "Bearer\t" + f.prod}, wantErr: ErrWrongScheme, httpOnly: true},
		{name: "bearer without key", headers: map[string]string{"Authorization": "Bearer"}, wantErr: ErrWrongScheme},
		{name: "openai-style key", headers: map[string]string{"Authorization": "Bearer sk-or-v1-0123456789abcdef0123456789abcdef"}, wantErr: ErrNotFlmKey},
		{name: "flm_ key too short", headers: map[string]string{"Authorization": "Bearer flm_short"}, wantErr: ErrNotFlmKey},
		{name: "flm_ key too long", headers: map[string]string{"Authorization": "Bearer " + long}, wantErr: ErrNotFlmKey},
		{name: "flm_ key with bad character", headers: map[string]string{"Authorization": "Bearer " + f.prod[:20] + "." + f.prod[21:]}, wantErr: ErrNotFlmKey},
		{name: "text after the key", headers: map[string]string{"Authorization": "Bearer " + f.prod + " extra"}, wantErr: ErrNotFlmKey},
		{name: "x-api-key not flm_", headers: map[string]string{"X-Api-Key": "sk-or-v1-0123456789abcdef0123456789abcdef"}, wantErr: ErrNotFlmKey},
		{name: "x-api-key with bearer prefix", headers: map[string]string{"X-Api-Key": "Bearer " + f.prod}, wantErr: ErrNotFlmKey},
		{name: "unknown key", headers: map[string]string{"Authorization": "Bearer " + f.unknown}, wantErr: ErrUnknownKey},
		{name: "unknown key in x-api-key", headers: map[string]string{"X-Api-Key": f.unknown}, wantErr: ErrUnknownKey},
		{name: "revoked key", headers: map[string]string{"Authorization": "Bearer " + f.revoked}, wantErr: ErrRevokedKey},
		{name: "expired key", headers: map[string]string{"Authorization": "Bearer " + f.expired}, wantErr: ErrExpiredKey},
	}
}

// TestAuthThroughOTLPReceiver sends every accept and reject case through the
// stock OTLP receiver over OTLP/HTTP JSON, OTLP/HTTP protobuf and OTLP/gRPC,
// checks the status and message, that accepted requests carry the principal
// to the next consumer, that rejected ones never reach it, and the request
// counter per outcome, reason and key name.
func TestAuthThroughOTLPReceiver(t *testing.T) {
	f, opts := newAuthFixture(t)
	h := newHarness(t, f.cfg, opts...)

	type counterKey struct{ outcome, reason, keyName string }
	want := map[counterKey]int64{}
	keyNameOf := map[error]string{ErrRevokedKey: "old", ErrExpiredKey: "lapsed"}

	var sent int64
	for _, tc := range authCases(f) {
		grpcMD := map[string]string{}
		for k, v := range tc.headers {
			grpcMD[strings.ToLower(k)] = v
		}
		results := []result{h.postHTTP(tc.headers, false), h.postHTTP(tc.headers, true)}
		if !tc.httpOnly {
			results = append(results, h.exportGRPC(grpcMD))
		}
		for _, res := range results {
			sent++
			res.transport = tc.name + " over " + res.transport
			if tc.wantErr == nil {
				h.requireAccepted(res, tc.project, tc.keyName)
				want[counterKey{"accepted", "", tc.keyName}]++
			} else {
				h.requireRejected(res, tc.wantErr)
				reason := ""
				for r, e := range reasonErrors {
					if e == tc.wantErr {
						reason = reasonNames[r]
					}
				}
				want[counterKey{"rejected", reason, keyNameOf[tc.wantErr]}]++
			}
		}
	}

	for k, n := range want {
		attrs := map[string]string{attrOutcome: k.outcome}
		if k.reason != "" {
			attrs[attrReason] = k.reason
		}
		if k.keyName != "" {
			attrs[attrKeyName] = k.keyName
		}
		require.Equal(t, n, h.requestCount(attrs), "requests counter for %+v", k)
	}
	require.Equal(t, sent, h.requestCount(nil), "every request counted once")

	m, err := h.tel.GetMetric(metricKeys)
	require.NoError(t, err)
	states := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		v, _ := dp.Attributes.Value(attrState)
		states[v.AsString()] = dp.Value
	}
	require.Equal(t, map[string]int64{"active": 4, "revoked": 1, "expired": 1}, states)
}

// TestAuthWithSDKExporters uses the official OTel Go SDK OTLP exporters as
// a client application would, configured with headers.
func TestAuthWithSDKExporters(t *testing.T) {
	f, opts := newAuthFixture(t)
	h := newHarness(t, f.cfg, opts...)
	ctx := context.Background()
	grpcTarget := h.grpcConn.Target()

	send := func(t *testing.T, useGRPC bool, headers map[string]string, spanName string) error {
		var exp interface {
			ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error
			Shutdown(context.Context) error
		}
		if useGRPC {
			e, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(grpcTarget), otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithHeaders(headers), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
			require.NoError(t, err)
			exp = e
		} else {
			e, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(h.httpURL),
				otlptracehttp.WithHeaders(headers), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
			require.NoError(t, err)
			exp = e
		}
		defer func() { require.NoError(t, exp.Shutdown(ctx)) }()
		return exp.ExportSpans(ctx, tracetest.SpanStubs{{Name: spanName}}.Snapshots())
	}

	for _, useGRPC := range []bool{false, true} {
		name := map[bool]string{false: "otlptracehttp", true: "otlptracegrpc"}[useGRPC]
		t.Run(name, func(t *testing.T) {
			span := name + "-accepted"
			require.NoError(t, send(t, useGRPC, map[string]string{"Authorization": "Bearer " + f.prod}, span))
			p, ok := h.principal(span)
			require.True(t, ok)
			require.Equal(t, "acme", p.projectID)
			require.Equal(t, "prod", p.keyName)

			span = name + "-x-api-key"
			require.NoError(t, send(t, useGRPC, map[string]string{"X-Api-Key": f.fileKey}, span))
			p, ok = h.principal(span)
			require.True(t, ok)
			require.Equal(t, "beta", p.projectID)

			span = name + "-rejected"
			err := send(t, useGRPC, map[string]string{"Authorization": "Bearer " + f.revoked}, span)
			require.Error(t, err)
			if useGRPC {
				require.Contains(t, err.Error(), "Unauthenticated")
			} else {
				require.Contains(t, err.Error(), "401")
			}
			require.Contains(t, err.Error(), ErrRevokedKey.Error())
			_, ok = h.principal(span)
			require.False(t, ok)
			h.mu.Lock()
			h.bodies = append(h.bodies, err.Error())
			h.mu.Unlock()
		})
	}
}
