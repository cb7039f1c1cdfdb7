package fallomconsoleextension

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/sdkfile"
	"github.com/fallom/fallom-collector/internal/storage"
	"github.com/fallom/fallom-collector/internal/storage/backend"
)

var _ extension.Extension = (*console)(nil)

// console is the fallomconsole extension.
type console struct {
	cfg    *Config
	set    component.TelemetrySettings
	logger *zap.Logger

	auth   *authority
	reader storage.Reader
	// weights are the configured variant weights of the experiments
	// analysis (nil: unknown).
	weights  weightSource
	sdkFile  *sdkfile.Watcher // nil: no sdk_file
	release  func() error
	sessions *sessionStore
	pages    *pageSet

	server *http.Server
	done   chan struct{}
	once   sync.Once
}

func newConsole(cfg *Config, set component.TelemetrySettings) *console {
	return &console{cfg: cfg, set: set, logger: set.Logger,
		sessions: newSessionStore(cfg.Login.IdleTimeout, cfg.Login.MaxAge, cfg.Login.MaxSessions)}
}

// Start finds the authenticator, opens the database and starts serving.
func (c *console) Start(ctx context.Context, host component.Host) error {
	auth, err := findAuthority(host, c.cfg.Authenticator)
	if err != nil {
		return err
	}
	c.auth = auth
	if c.pages, err = loadPages(); err != nil {
		return err
	}
	c.reader, c.release, err = openReader(ctx, c.cfg.Storage, c.logger)
	if err != nil {
		return err
	}
	c.startSDKFile()
	ln, err := c.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		_ = c.release()
		return fmt.Errorf("fallomconsole: listen on %s: %w", c.cfg.NetAddr.Endpoint, err)
	}
	c.server, err = c.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), c.set, c.handler())
	if err != nil {
		ln.Close()
		_ = c.release()
		return err
	}
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		if err := c.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	c.logger.Info("console listening", zap.String("url", consoleURL(ln.Addr(), c.cfg.TLS.HasValue())))
	return nil
}

func consoleURL(addr net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + addr.String() + "/"
}

// Shutdown stops serving (requests in flight get a few seconds) and closes
// the database.
func (c *console) Shutdown(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		if c.server != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if e := c.server.Shutdown(sctx); e != nil {
				_ = c.server.Close()
			}
			<-c.done
		}
		if c.sdkFile != nil {
			c.sdkFile.Close()
		}
		if c.release != nil {
			err = c.release()
		}
	})
	return err
}

// openReader acquires the database the fallom exporter writes (the same
// backend, shared through the registry) and its read side.
func openReader(ctx context.Context, st backend.Config, logger *zap.Logger) (storage.Reader, func() error, error) {
	h, err := backend.Acquire(ctx, st, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("fallomconsole: %w", err)
	}
	r, ok := h.Store().(storage.Reader)
	if !ok {
		_ = h.Release()
		return nil, nil, fmt.Errorf("fallomconsole: storage %s cannot be read (%T has no reader)", h.Describe(), h.Store())
	}
	return r, h.Release, nil
}
