package fallomauthextension

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/internal/keys"
)

// withGRPCServer adds settings to the receiver's gRPC server config.
func withGRPCServer(extra map[string]any) harnessOption {
	return func(h *harness) { h.grpcExtra = extra }
}

// bigTraces is one span carrying size bytes of attribute.
func bigTraces(size int) ptrace.Traces {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("big")
	span.SetTraceID([16]byte{1})
	span.SetSpanID([8]byte{1})
	span.Attributes().PutStr("blob", strings.Repeat("x", size))
	return td
}

func (h *harness) exportBig(md map[string]string, size int) *status.Status {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if md != nil {
		ctx = grpcmetadata.NewOutgoingContext(ctx, grpcmetadata.New(md))
	}
	_, err := ptraceotlp.NewGRPCClient(h.grpcConn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(bigTraces(size)))
	return status.Convert(err)
}

// TestGRPCTapRefusesBeforeReadingTheMessage (issue 15 item 1): with
// fallomauth as a gRPC middleware, a request without an acceptable key is
// refused from its headers, before its message is read. The proof does not
// rely on timing: the server's message-size limit is checked while the
// message is read, so a 2 MiB message against a 1 MiB limit answers
// ResourceExhausted when it is read and Unauthenticated when it is not.
func TestGRPCTapRefusesBeforeReadingTheMessage(t *testing.T) {
	ks := genKeys(t, 2)
	good, revoked := ks[0], ks[1]
	h := newHarness(t, &Config{Keys: []KeyEntry{
		{Name: "good", Project: "acme", KeySHA256: keys.DigestOf(good).Hex()},
		{Name: "old", Project: "acme", KeySHA256: keys.DigestOf(revoked).Hex(), Revoked: true},
	}}, withSecrets(ks...), withGRPCServer(map[string]any{
		"max_recv_msg_size_mib": 1,
		"middlewares":           []any{map[string]any{"id": "fallomauth"}},
	}))
	const over = 2 << 20

	for name, tc := range map[string]struct {
		md   map[string]string
		want error
	}{
		"no key":       {nil, ErrMissingKey},
		"wrong scheme": {map[string]string{"authorization": "Basic dXNlcjpwYXNz"}, ErrWrongScheme},
		"not flm":      {map[string]string{"authorization": "Bearer sk-or-v1-0123456789"}, ErrNotFlmKey},
		"unknown":      {map[string]string{"x-api-key": "flm_" + strings.Repeat("u", 40)}, ErrUnknownKey},
		"revoked":      {map[string]string{"authorization": "Bearer " + revoked}, ErrRevokedKey},
	} {
		st := h.exportBig(tc.md, over)
		require.Equal(t, codes.Unauthenticated, st.Code(), "%s: %s", name, st.Message())
		require.Equal(t, tc.want.Error(), st.Message(), name)
		h.mu.Lock()
		h.bodies = append(h.bodies, st.Message())
		h.mu.Unlock()
	}
	// A valid key passes the tap; its message is then read and hits the limit.
	st := h.exportBig(map[string]string{"authorization": "Bearer " + good}, over)
	require.Equal(t, codes.ResourceExhausted, st.Code(), st.Message())
	// And a normal request goes all the way, with its principal.
	h.requireAccepted(h.exportGRPC(map[string]string{"authorization": "Bearer " + good}), "acme", "good")

	// Each request counted once: refusals by the tap, the acceptance by the interceptor.
	require.EqualValues(t, 1, h.requestCount(map[string]string{"reason": "missing_key"}))
	require.EqualValues(t, 1, h.requestCount(map[string]string{"reason": "revoked_key"}))
	require.EqualValues(t, 1, h.requestCount(map[string]string{"outcome": "accepted"}))
	require.Zero(t, h.sink.SpanCount()-1, "only the accepted small request reached the pipeline")
}
