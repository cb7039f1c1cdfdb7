package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/sdkfile"
)

const transportHTTP = "http"

// sdkReceiver is one HTTP server serving every route of FALLOM_SDK.md 7.
type sdkReceiver struct {
	cfg        *Config
	set        receiver.Settings
	nextTraces consumer.Traces
	nextLogs   consumer.Logs

	obsTraces *receiverhelper.ObsReport
	obsLogs   *receiverhelper.ObsReport

	sdk    *sdkfile.Watcher // nil: no SDK file configured
	server *http.Server
	wg     sync.WaitGroup

	now func() time.Time
}

func newReceiver(cfg *Config, set receiver.Settings) (*sdkReceiver, error) {
	r := &sdkReceiver{cfg: cfg, set: set, now: time.Now}
	var err error
	if r.obsTraces, err = receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: transportHTTP, ReceiverCreateSettings: set,
	}); err != nil {
		return nil, err
	}
	if r.obsLogs, err = receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: transportHTTP, ReceiverCreateSettings: set,
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// Start loads the SDK file (an invalid one stops the collector from
// starting: there is no last good file yet) and starts the HTTP server.
func (r *sdkReceiver) Start(ctx context.Context, host component.Host) error {
	if r.cfg.SDKFile != "" {
		r.sdk = sdkfile.NewWatcher(r.cfg.SDKFile, r.cfg.SDKFileReloadInterval, r.set.Logger, func(err error) {
			if err != nil {
				componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(err))
			} else {
				componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
			}
		})
		if err := r.sdk.Load(); err != nil {
			return err
		}
		r.sdk.Start()
	} else {
		r.set.Logger.Info("no sdk_file configured: GET /configs, /prompts, /prompt-ab-tests and /api/datasets answer empty lists and 404s")
	}

	var err error
	r.server, err = r.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, r.routes())
	if err != nil {
		r.stopWatcher()
		return err
	}
	var ln net.Listener
	if ln, err = r.cfg.ServerConfig.ToListener(ctx); err != nil {
		r.stopWatcher()
		return err
	}
	r.set.Logger.Info("Starting Fallom SDK HTTP server", zap.String("endpoint", ln.Addr().String()),
		zap.Bool("traces", r.nextTraces != nil), zap.Bool("logs", r.nextLogs != nil))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if errHTTP := r.server.Serve(ln); errHTTP != nil && !errors.Is(errHTTP, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(errHTTP))
		}
	}()
	return nil
}

// Shutdown stops the server (waiting for requests in flight) and the SDK
// file watcher.
func (r *sdkReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
	}
	r.wg.Wait()
	r.stopWatcher()
	return err
}

func (r *sdkReceiver) stopWatcher() {
	if r.sdk != nil {
		r.sdk.Close()
	}
}

func (r *sdkReceiver) routes() http.Handler {
	mux := http.NewServeMux()
	if r.nextTraces != nil {
		mux.HandleFunc("POST /v1/traces", r.handleTraces)
	} else {
		mux.HandleFunc("POST /v1/traces", notInPipeline("traces"))
	}
	if r.nextLogs != nil {
		mux.HandleFunc("POST /sessions", r.handleSessions)
		mux.HandleFunc("POST /spans", r.handleMetrics)
		mux.HandleFunc("POST /api/sdk-evals", r.handleEvals)
	} else {
		for _, p := range []string{"POST /sessions", "POST /spans", "POST /api/sdk-evals"} {
			mux.HandleFunc(p, notInPipeline("logs"))
		}
	}
	mux.HandleFunc("GET /configs", r.serveList((*sdkfile.Project).ConfigsJSON))
	mux.HandleFunc("GET /configs/{key}/version/{n}", r.handleConfigVersion)
	mux.HandleFunc("GET /prompts", r.serveList((*sdkfile.Project).PromptsJSON))
	mux.HandleFunc("GET /prompt-ab-tests", r.serveList((*sdkfile.Project).PromptABTestsJSON))
	mux.HandleFunc("GET /api/datasets/{key}", r.handleDataset)
	return mux
}

// notInPipeline answers a route whose signal has no pipeline: nothing
// would store it, so it must not be acknowledged.
func notInPipeline(signal string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("this route is not served: the fallomsdk receiver is in no %s pipeline", signal))
	}
}

// project is the project of the key that sent the request (set by
// fallomauth), else default_project_id; "" when there is neither.
func (r *sdkReceiver) project(ctx context.Context) string {
	if auth := client.FromContext(ctx).Auth; auth != nil {
		if p, _ := auth.GetAttribute(fallomattr.AuthProjectID).(string); p != "" {
			return p
		}
	}
	return r.cfg.DefaultProjectID
}

// readBody reads the whole body; confighttp has bounded it by
// max_request_body_size.
func readBody(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than max_request_body_size (%d bytes)", tooLarge.Limit))
		} else {
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Every answer depends on the key: no shared cache may keep it.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(errorBody{Error: msg})
	writeJSON(w, code, b)
}

// writePipelineError answers a refusal from the pipeline. A gRPC status
// (the mapping processor's Unauthenticated, or its RetryInfo under memory
// pressure) keeps its meaning; otherwise a permanent error is the data's
// fault (400) and anything else is worth retrying (503 with Retry-After).
func (r *sdkReceiver) writePipelineError(w http.ResponseWriter, err error) {
	code := http.StatusServiceUnavailable
	if consumererror.IsPermanent(err) {
		code = http.StatusBadRequest
	}
	retryAfter := r.cfg.RetryAfter
	msg := err.Error()
	var withStatus interface{ GRPCStatus() *status.Status }
	if errors.As(err, &withStatus) {
		// The innermost status's own message, without the wrappers' prefixes
		// ("not retryable error: Permanent error: rpc error: ...").
		st := withStatus.GRPCStatus()
		msg = st.Message()
		switch st.Code() {
		case codes.InvalidArgument:
			code = http.StatusBadRequest
		case codes.Unauthenticated:
			code = http.StatusUnauthorized
		case codes.PermissionDenied:
			code = http.StatusForbidden
		case codes.ResourceExhausted:
			code = http.StatusTooManyRequests
		case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted:
			code = http.StatusServiceUnavailable
		}
		if ri := retryInfo(st); ri != nil && ri.GetRetryDelay().AsDuration() >= time.Second {
			retryAfter = ri.GetRetryDelay().AsDuration()
		}
	}
	switch code {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.FormatInt(int64(retryAfter/time.Second), 10))
		msg = "not stored, retry later: " + msg
	case http.StatusBadRequest:
		msg = "the data was refused: " + msg
	}
	writeError(w, code, msg)
}

// retryInfo is the RetryInfo detail of a status, if it has one.
func retryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}
