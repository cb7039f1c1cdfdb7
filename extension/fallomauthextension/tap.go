package fallomauthextension

import (
	"context"

	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

var _ extensionmiddleware.GRPCServer = (*authenticator)(nil)

// GetGRPCServerOptions makes fallomauth a gRPC server middleware too
// (`middlewares: [{id: fallomauth}]` on a gRPC server). The collector's gRPC
// authentication is an interceptor, and interceptors run only once the
// request message has been read, decompressed and decoded: a keyless 20 MB
// Export costs its full decode before it is refused. The tap handle below
// runs when the stream's headers arrive, in the connection's reader, and
// refuses the stream before any of its message is read, so a refusal costs
// one header parse and (for a well-formed key) one sha256.
//
// Accepted streams go on to the `auth:` interceptor, which attaches the
// principal (a tap handle cannot hand a client.Info to the handler in a way
// the receiver keeps). gRPC allows one tap handle per server: list no other
// middleware that installs one.
func (a *authenticator) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	return []grpc.ServerOption{grpc.InTapHandle(a.tapHandle)}, nil
}

// tapHandle refuses a stream whose metadata carries no acceptable key, with
// the same Unauthenticated status and message the interceptor would give.
// Acceptance is counted by the interceptor, not here, so each request counts
// once.
func (a *authenticator) tapHandle(ctx context.Context, info *tap.Info) (context.Context, error) {
	key, r := extractKey(info.Header)
	if r != reasonNone {
		return ctx, status.Error(codes.Unauthenticated, a.reject(ctx, r, nil).Error())
	}
	if _, err := a.checkKey(ctx, key, false); err != nil {
		return ctx, status.Error(codes.Unauthenticated, err.Error())
	}
	return ctx, nil
}
