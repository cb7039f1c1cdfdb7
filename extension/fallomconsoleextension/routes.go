package fallomconsoleextension

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/storage"
)

// The console's routes. Adding an API route or a page is one line in one of
// these tables plus its handler method: authentication, project scoping,
// headers and error answers are applied here for all of them.

// apiHandler serves one API route for an authenticated principal; the error
// it returns becomes the JSON error answer (see apiError).
type apiHandler func(c *console, w http.ResponseWriter, r *http.Request, p principal) error

var apiRoutes = []struct {
	pattern string
	handle  apiHandler
}{
	{"GET /api/v1/summary", (*console).apiSummary},
	{"GET /api/v1/usage", (*console).apiUsage},
	{"GET /api/v1/generations", (*console).apiGenerations},
	{"GET /api/v1/sessions", (*console).apiSessions},
	{"GET /api/v1/sessions/{session_id}", (*console).apiSession},
	{"GET /api/v1/customers", (*console).apiCustomers},
	{"GET /api/v1/customers/{customer_id}", (*console).apiCustomer},
	{"GET /api/v1/traces/{trace_id}", (*console).apiTrace},
	{"GET /api/v1/experiments", (*console).apiExperiments},
}

// pageHandler builds one page for a logged-in principal: the template to
// render and its data.
type pageHandler func(c *console, r *http.Request, p principal) (tmpl string, data any, err error)

var pageRoutes = []struct {
	pattern string
	handle  pageHandler
}{
	{"GET /{$}", (*console).pageOverview},
	{"GET /generations", (*console).pageGenerations},
	{"GET /generations/{trace_id}/{span_id}", (*console).pageGeneration},
	{"GET /sessions", (*console).pageSessions},
	{"GET /sessions/{session_id}", (*console).pageSession},
	{"GET /customers", (*console).pageCustomers},
	{"GET /customers/{customer_id}", (*console).pageCustomer},
	{"GET /traces/{trace_id}", (*console).pageTrace},
	{"GET /experiments", (*console).pageExperiments},
}

// contentSecurityPolicy allows nothing but the console's own files: no
// inline script or style, no eval, no frames, no form posts elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (c *console) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range apiRoutes {
		mux.Handle(rt.pattern, c.api(rt.handle))
	}
	mux.Handle("/api/", c.api(func(*console, http.ResponseWriter, *http.Request, principal) error {
		return storage.ErrNotFound
	}))
	for _, rt := range pageRoutes {
		mux.Handle(rt.pattern, c.page(rt.handle))
	}
	mux.HandleFunc("GET /login", c.loginForm)
	mux.HandleFunc("POST /login", c.loginSubmit)
	mux.HandleFunc("POST /logout", c.logout)
	mux.HandleFunc("/logout", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "log out with the console's Log out button (POST /logout)", http.StatusMethodNotAllowed)
	})
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(http.FileServerFS(static))))
	mux.HandleFunc("/", c.notFound)
	return securityHeaders(mux)
}

// securityHeaders sets the headers every answer carries, and
// Server-Timing: the server's time to the first byte of the answer (shown
// by browsers' developer tools; read by the console benchmark).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = &timedWriter{ResponseWriter: w, start: time.Now()}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			// Pages and answers hold stored prompts: keep them out of caches.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

type timedWriter struct {
	http.ResponseWriter
	start   time.Time
	written bool
}

func (t *timedWriter) WriteHeader(status int) {
	if !t.written {
		t.written = true
		ms := float64(time.Since(t.start).Microseconds()) / 1000
		t.Header().Set("Server-Timing", "app;dur="+strconv.FormatFloat(ms, 'f', 3, 64))
	}
	t.ResponseWriter.WriteHeader(status)
}

func (t *timedWriter) Write(b []byte) (int, error) {
	if !t.written {
		t.WriteHeader(http.StatusOK)
	}
	return t.ResponseWriter.Write(b)
}

func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// api authenticates an API request, bounds its database time and turns its
// error into a JSON answer. A key in Authorization or X-Api-Key is checked
// by the authenticator; without one, a logged-in browser's session cookie
// is accepted (the pages' CSV links), the API being read-only.
func (c *console) api(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p principal
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
			var err error
			if p, err = c.auth.authenticate(r.Context(), map[string][]string(r.Header)); err != nil {
				status := http.StatusUnauthorized
				if c.auth.forbidden(err) {
					status = http.StatusForbidden
				}
				writeError(w, status, err.Error())
				return
			}
		} else if sp, ok := c.sessionPrincipal(r); ok {
			p = sp
		} else {
			writeError(w, http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key> with a key that has the read scope")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.QueryTimeout)
		defer cancel()
		if err := h(c, w, r.WithContext(ctx), p); err != nil {
			status, msg := c.classify(r, err)
			writeError(w, status, msg)
		}
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Disposition")
	w.Header().Del("X-Next-Cursor")
	w.WriteHeader(status)
	_ = writeJSONBody(w, map[string]string{"error": msg})
}

// classify maps a handler error to a status and a message for the caller.
// Database errors are logged and answered without their text.
func (c *console) classify(r *http.Request, err error) (int, string) {
	var br *badRequest
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, br.msg
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, storage.ErrBadCursor):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "the query took longer than query_timeout: narrow the time range or the filters"
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "request canceled"
	}
	c.logger.Error("console query failed", zap.String("path", r.URL.Path), zap.Error(err))
	return http.StatusServiceUnavailable, "the database could not answer; see the collector log"
}

func (c *console) notFound(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessionPrincipal(r); !ok {
		redirectToLogin(w, r)
		return
	}
	c.renderError(w, r, http.StatusNotFound, "Not found", "There is no such page.")
}
