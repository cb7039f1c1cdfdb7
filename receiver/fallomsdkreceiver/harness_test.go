package fallomsdkreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/extension/fallomauthextension"
	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/testutil/freeport"
)

// Keys of the two projects of testdata/sdk.yaml, and a key of acme that
// may only read (no ingest scope).
const (
	keyAcme     = "flm_acmeIngestKeyForTheSDKReceiver_0001"
	keyBeta     = "flm_betaIngestKeyForTheSDKReceiver_0002"
	keyReadOnly = "flm_acmeReadOnlyKeyForTheSDKRecv_0003"
)

type testHost struct {
	extensions map[component.ID]component.Component
	mu         sync.Mutex
	statuses   []*componentstatus.Event
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

// Report records the component statuses the receiver reports.
func (h *testHost) Report(e *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.statuses = append(h.statuses, e)
}

func (h *testHost) lastStatus() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.statuses) == 0 {
		return nil
	}
	return h.statuses[len(h.statuses)-1]
}

// sinks are the next consumers of both pipelines; err, when set, is what
// they answer instead of storing.
type sinks struct {
	mu     sync.Mutex
	traces []ptrace.Traces
	logs   []plog.Logs
	err    error
}

func (s *sinks) consumeTraces(_ context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.traces = append(s.traces, td)
	return nil
}

func (s *sinks) consumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.logs = append(s.logs, ld)
	return nil
}

func (s *sinks) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *sinks) allTraces() []ptrace.Traces {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ptrace.Traces(nil), s.traces...)
}

func (s *sinks) allLogs() []plog.Logs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plog.Logs(nil), s.logs...)
}

type env struct {
	host    *testHost
	base    string
	sinks   *sinks
	sdkFile string
}

type envOptions struct {
	sdkFile  string // path; "" copies testdata/sdk.yaml to a temp dir
	noAuth   bool
	logger   *zap.Logger
	mutate   func(*Config)
	noTraces bool
	noLogs   bool
}

// start runs the receiver as the collector would: the real fallomauth
// extension (ingest scope) in front, both pipelines fed by one instance.
func start(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	host := &testHost{extensions: map[component.ID]component.Component{}}
	authID := component.MustNewID("fallomauth")
	if !o.noAuth {
		af := fallomauthextension.NewFactory()
		acfg := af.CreateDefaultConfig().(*fallomauthextension.Config)
		acfg.Keys = []keys.Entry{
			{Name: "acme-sdk", Project: "acme", Key: configopaque.String(keyAcme)},
			{Name: "beta-sdk", Project: "beta", Key: configopaque.String(keyBeta)},
			{Name: "acme-reader", Project: "acme", Key: configopaque.String(keyReadOnly), Scopes: []string{"read"}},
		}
		auth, err := af.Create(ctx, extension.Settings{ID: authID, TelemetrySettings: componenttest.NewNopTelemetrySettings(),
			BuildInfo: component.NewDefaultBuildInfo()}, acfg)
		require.NoError(t, err)
		require.NoError(t, auth.Start(ctx, host))
		t.Cleanup(func() { _ = auth.Shutdown(context.Background()) })
		host.extensions[authID] = auth
	}

	sdkPath := o.sdkFile
	if sdkPath == "" {
		sdkPath = filepath.Join(t.TempDir(), "sdk.yaml")
		data, err := os.ReadFile(filepath.Join("testdata", "sdk.yaml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(sdkPath, data, 0o600))
	}

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	port, err := freeport.Port()
	require.NoError(t, err)
	cfg.NetAddr.Endpoint = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.SDKFile = sdkPath
	if !o.noAuth {
		cfg.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	}
	if o.mutate != nil {
		o.mutate(cfg)
	}
	require.NoError(t, cfg.Validate())

	set := receivertest.NewNopSettings(f.Type())
	if o.logger != nil {
		set.Logger = o.logger
	}
	s := &sinks{}
	var comps []component.Component
	if !o.noTraces {
		tc, err := consumer.NewTraces(s.consumeTraces)
		require.NoError(t, err)
		tr, err := f.CreateTraces(ctx, set, cfg, tc)
		require.NoError(t, err)
		comps = append(comps, tr)
	}
	if !o.noLogs {
		lc, err := consumer.NewLogs(s.consumeLogs)
		require.NoError(t, err)
		lr, err := f.CreateLogs(ctx, set, cfg, lc)
		require.NoError(t, err)
		comps = append(comps, lr)
	}
	for _, c := range comps {
		require.NoError(t, c.Start(ctx, host))
	}
	t.Cleanup(func() {
		for _, c := range comps {
			require.NoError(t, c.Shutdown(context.Background()))
		}
	})
	return &env{host: host, base: "http://" + cfg.NetAddr.Endpoint, sinks: s, sdkFile: sdkPath}
}

type answer struct {
	code   int
	body   []byte
	header http.Header
}

func (a answer) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(a.body, &e), "error answer is not JSON: %s", a.body)
	return e.Error
}

func (e *env) do(t *testing.T, method, path, key string, body []byte, header map[string]string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{code: resp.StatusCode, body: b, header: resp.Header}
}

func (e *env) post(t *testing.T, path, key string, body []byte) answer {
	t.Helper()
	return e.do(t, http.MethodPost, path, key, body, nil)
}

func (e *env) get(t *testing.T, path, key string) answer {
	t.Helper()
	return e.do(t, http.MethodGet, path, key, nil, nil)
}

// getJSON GETs path with key, requires 200 and decodes the answer.
func (e *env) getJSON(t *testing.T, path, key string, into any) {
	t.Helper()
	a := e.get(t, path, key)
	require.Equal(t, http.StatusOK, a.code, "GET %s: %s", path, a.body)
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	require.NoError(t, json.Unmarshal(a.body, into), "GET %s answered %s", path, a.body)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// onlySpan returns the one span the sinks received.
func onlySpan(t *testing.T, s *sinks) (ptrace.ResourceSpans, ptrace.ScopeSpans, ptrace.Span) {
	t.Helper()
	all := s.allTraces()
	require.Len(t, all, 1)
	require.Equal(t, 1, all[0].SpanCount())
	rs := all[0].ResourceSpans().At(0)
	ss := rs.ScopeSpans().At(0)
	return rs, ss, ss.Spans().At(0)
}

func receivertestSettings(f receiver.Factory) receiver.Settings {
	return receivertest.NewNopSettings(f.Type())
}
