package requestguardextension // import "github.com/fallom/fallom-collector/extension/requestguardextension"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/client"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// guard is the extension: an extensionmiddleware.HTTPServer. confighttp puts
// server middlewares inside its body-size limit and decompressor, so the
// request body the guard sees already fails with *http.MaxBytesError once
// it (or its decompressed form) passes max_request_body_size.
type guard struct {
	cfg *Config
	tel *telemetry

	// slots holds one token per request in flight; nil when unbounded.
	slots chan struct{}
	// busy is the 503 answer, encoded once: refusing must stay cheap under
	// overload.
	busy       encodedStatus
	retryAfter string

	// Per-project share of the slots: perProject requests at most, counted
	// in inFlightByProject (under mu). perProject is 0 when there is no share.
	perProject        int
	projectBusy       encodedStatus
	mu                sync.Mutex
	inFlightByProject map[string]int
}

var (
	_ extension.Extension            = (*guard)(nil)
	_ extensionmiddleware.HTTPServer = (*guard)(nil)
)

func newGuard(cfg *Config, set component.TelemetrySettings) (*guard, error) {
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, err
	}
	g := &guard{cfg: cfg, tel: tel, retryAfter: strconv.FormatInt(int64(cfg.RetryAfter.Seconds()), 10)}
	if cfg.MaxInFlightRequests > 0 {
		g.slots = make(chan struct{}, cfg.MaxInFlightRequests)
		if err := tel.registerInFlight(set, g.slots); err != nil {
			return nil, err
		}
		st, err := status.New(codes.Unavailable, fmt.Sprintf(
			"collector busy: %d requests already in flight (requestguard max_in_flight_requests); retry after %s",
			cfg.MaxInFlightRequests, g.retryAfter+"s")).
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(cfg.RetryAfter)})
		if err != nil {
			return nil, err
		}
		if g.busy, err = encodeStatus(st); err != nil {
			return nil, err
		}
		if share := int(cfg.MaxProjectShare * float64(cfg.MaxInFlightRequests)); cfg.MaxProjectShare > 0 && cfg.MaxProjectShare < 1 {
			g.perProject = max(share, 1)
			g.inFlightByProject = make(map[string]int)
			st, err := status.New(codes.Unavailable, fmt.Sprintf(
				"collector busy: this project already has %d requests in flight, its share of the collector (requestguard max_project_share); retry after %s",
				g.perProject, g.retryAfter+"s")).
				WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(cfg.RetryAfter)})
			if err != nil {
				return nil, err
			}
			if g.projectBusy, err = encodeStatus(st); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

func (g *guard) Start(context.Context, component.Host) error { return nil }

func (g *guard) Shutdown(context.Context) error {
	g.tel.shutdown()
	return nil
}

// GetHTTPHandler implements extensionmiddleware.HTTPServer.
func (g *guard) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return func(_ context.Context, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.serveHTTP(next, w, r)
		}), nil
	}, nil
}

func (g *guard) serveHTTP(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if g.perProject > 0 {
		// The authenticator runs before server middlewares, so the
		// request's project is known here, before the body is read.
		if project := requestProject(r.Context()); project != "" {
			if !g.acquireProjectSlot(project) {
				g.tel.refused(r.Context(), reasonProjectBusy)
				g.shed(w, r, g.projectBusy)
				return
			}
			defer g.releaseProjectSlot(project)
		}
	}
	if g.slots != nil {
		select {
		case g.slots <- struct{}{}:
			defer func() { <-g.slots }()
		default:
			g.tel.refused(r.Context(), reasonBusy)
			g.shed(w, r, g.busy)
			return
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		next.ServeHTTP(w, r)
		return
	}
	body := &limitWatchingBody{ReadCloser: r.Body}
	r.Body = body
	next.ServeHTTP(&tooLargeResponseWriter{ResponseWriter: w, body: body, req: r, tel: g.tel}, r)
}

// shed answers 503 with Retry-After without reading the request's body.
// "Connection: close" matters: before answering, Go's HTTP/1.1 server reads
// up to 256 KiB of a body the handler left unread (to keep the connection
// alive), so a refusal of a request whose body trickles in would otherwise
// wait for that body, or for read_timeout.
func (g *guard) shed(w http.ResponseWriter, r *http.Request, answer encodedStatus) {
	w.Header().Set("Retry-After", g.retryAfter)
	w.Header().Set("Connection", "close")
	answer.write(w, r, http.StatusServiceUnavailable)
}

// requestProject is the project_id of the key that authenticated the request.
func requestProject(ctx context.Context) string {
	info := client.FromContext(ctx)
	if info.Auth == nil {
		return ""
	}
	p, _ := info.Auth.GetAttribute(fallomattr.AuthProjectID).(string)
	return p
}

func (g *guard) acquireProjectSlot(project string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlightByProject[project] >= g.perProject {
		return false
	}
	g.inFlightByProject[project]++
	return true
}

func (g *guard) releaseProjectSlot(project string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.inFlightByProject[project] - 1; n > 0 {
		g.inFlightByProject[project] = n
	} else {
		delete(g.inFlightByProject, project)
	}
}

// limitWatchingBody remembers that a read failed on the body-size limit.
// The receiver then answers with an error status; tooLargeResponseWriter
// replaces that answer with a 413.
type limitWatchingBody struct {
	io.ReadCloser
	tooLarge *http.MaxBytesError
}

func (b *limitWatchingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.tooLarge == nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			b.tooLarge = mbe
		}
	}
	return n, err
}

// tooLargeResponseWriter turns the error answer the receiver gives to a body
// over the limit (400 "http: request body too large") into 413 Content Too
// Large, encoded like every OTLP error (a google.rpc.Status in the request's
// encoding). Every other answer passes through untouched.
type tooLargeResponseWriter struct {
	http.ResponseWriter
	body     *limitWatchingBody
	req      *http.Request
	tel      *telemetry
	replaced bool // the 413 was written; the receiver's own body is dropped
	wrote    bool
}

func (w *tooLargeResponseWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code >= 400 && w.body.tooLarge != nil {
		w.replaced = true
		w.tel.refused(w.req.Context(), reasonTooLarge)
		st := status.New(codes.InvalidArgument, fmt.Sprintf(
			"request body too large: more than %d bytes (max_request_body_size, counted after decompression); send smaller batches or raise the receiver's max_request_body_size",
			w.body.tooLarge.Limit))
		// A Status of a code and a message always marshals.
		enc, _ := encodeStatus(st)
		enc.write(w.ResponseWriter, w.req, http.StatusRequestEntityTooLarge)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tooLargeResponseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *tooLargeResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

const (
	pbContentType   = "application/x-protobuf"
	jsonContentType = "application/json"
)

// encodedStatus is a google.rpc.Status in both OTLP/HTTP encodings.
type encodedStatus struct {
	json, proto []byte
}

func encodeStatus(st *status.Status) (encodedStatus, error) {
	var e encodedStatus
	var err error
	if e.json, err = protojson.Marshal(st.Proto()); err != nil {
		return e, err
	}
	e.proto, err = proto.Marshal(st.Proto())
	return e, err
}

// write answers code with the Status in the request's encoding: protobuf for
// a protobuf request, JSON for anything else, as the OTLP receiver does.
func (e encodedStatus) write(w http.ResponseWriter, r *http.Request, code int) {
	contentType, msg := jsonContentType, e.json
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mediaType == pbContentType {
		contentType, msg = pbContentType, e.proto
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Del("Content-Length")
	w.WriteHeader(code)
	_, _ = w.Write(msg)
}
