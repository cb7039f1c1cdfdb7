package fallomconsoleextension

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fallom/fallom-collector/internal/storage"
)

//go:embed web
var webFS embed.FS

// pageSet holds one parsed template set per page (the layout plus the
// page), so each page's "content" block is its own.
type pageSet struct{ byName map[string]*template.Template }

func loadPages() (*pageSet, error) {
	names, err := fs.Glob(webFS, "web/templates/*.html")
	if err != nil {
		return nil, err
	}
	ps := &pageSet{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || base == "partials.html" {
			continue
		}
		t, err := template.New(base).Funcs(templateFuncs).ParseFS(webFS, "web/templates/layout.html", "web/templates/partials.html", n)
		if err != nil {
			return nil, fmt.Errorf("fallomconsole: template %s: %w", base, err)
		}
		ps.byName[strings.TrimSuffix(base, ".html")] = t
	}
	return ps, nil
}

// frame is what the layout shows around every page.
type frame struct {
	Title   string
	Nav     string // the nav entry to mark current
	Project string
	KeyName string
}

// pageData is what every template receives: the frame and the page's own
// data in Body.
type pageData struct {
	frame
	Body any
}

// page serves a page for a logged-in browser; others go to the login form.
func (c *console) page(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.sessionPrincipal(r)
		if !ok {
			redirectToLogin(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.QueryTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		name, data, err := h(c, r, p)
		if err != nil {
			status, msg := c.classify(r, err)
			title := "Something went wrong"
			switch status {
			case http.StatusNotFound:
				title, msg = "Not found", "This project has nothing with that id."
			case http.StatusBadRequest:
				title = "Bad request"
			}
			c.renderFor(w, r, p, status, "error", title, "", errorBody{Message: msg})
			return
		}
		fr := frame{Project: p.projectID, KeyName: p.keyName}
		if t, ok := data.(titled); ok {
			fr.Title, fr.Nav = t.title()
		}
		c.render(w, r, http.StatusOK, name, pageData{frame: fr, Body: data})
	})
}

// titled page data names its page and nav entry.
type titled interface{ title() (title, nav string) }

type errorBody struct{ Message string }

func (c *console) renderFor(w http.ResponseWriter, r *http.Request, p principal, status int, name, title, nav string, body any) {
	c.render(w, r, status, name, pageData{frame: frame{Title: title, Nav: nav, Project: p.projectID, KeyName: p.keyName}, Body: body})
}

func (c *console) renderError(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	p, _ := c.sessionPrincipal(r)
	c.renderFor(w, r, p, status, "error", title, "", errorBody{Message: msg})
}

// render executes a page into a buffer first, so a template error never
// sends half a page.
func (c *console) render(w http.ResponseWriter, _ *http.Request, status int, name string, data pageData) {
	t := c.pages.byName[name]
	var buf bytes.Buffer
	if t == nil {
		c.logger.Error("console: no such template", zap.String("template", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		c.logger.Error("console: rendering failed", zap.String("template", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// redirectToLogin sends a browser to the login form, remembering the page.
func redirectToLogin(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext accepts only a path of this console as a place to go after login
// (no scheme, no host, no protocol-relative //, no backslash).
func safeNext(s string) string {
	if s == "" || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return s
}

type loginBody struct {
	Next  string
	Error string
}

func (c *console) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessionPrincipal(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", pageData{frame: frame{Title: "Log in"}, Body: loginBody{Next: safeNext(r.URL.Query().Get("next"))}})
}

func (c *console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site login refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	key := strings.TrimSpace(r.PostForm.Get("key"))
	fail := func(status int, msg string) {
		c.render(w, r, status, "login", pageData{frame: frame{Title: "Log in"}, Body: loginBody{Next: next, Error: msg}})
	}
	if key == "" {
		fail(http.StatusUnauthorized, "Enter an API key with the read scope.")
		return
	}
	p, cred, err := c.auth.login(key)
	if err != nil {
		status := http.StatusUnauthorized
		if c.auth.forbidden(err) {
			status = http.StatusForbidden
		}
		// The authenticator's messages name the problem, never the key.
		fail(status, "Login refused: "+err.Error())
		return
	}
	id, err := c.sessions.create(p, cred)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c.setSessionCookie(w, r, id, int(c.cfg.Login.MaxAge/time.Second))
	c.logger.Info("console login", zap.String("project_id", p.projectID), zap.String("key_name", p.keyName))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the login session. POST only (the layout's button is a
// form), and only from the console's own pages: a GET, which any other
// site can make a browser send (a link, an image), would let it log the
// user out; the mux answers a GET with 405.
func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site logout refused", http.StatusForbidden)
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.delete(ck.Value)
	}
	c.setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// templateFuncs format values for display. None of them marks text as safe
// HTML, CSS, JS or URL: html/template escapes every value by context.
var templateFuncs = template.FuncMap{
	"cost":     fmtCost,
	"costf":    func(v float64) string { return fmtCost(&v) },
	"int":      fmtInt,
	"intp":     fmtIntPtr,
	"ms":       fmtMs,
	"msp":      fmtMsPtr,
	"time":     fmtTime,
	"str":      fmtStr,
	"seg":      url.PathEscape,
	"pct":      fmtPct,
	"boolp":    fmtBoolPtr,
	"deref":    func(s *string) string { return fmtStr(s) },
	"hasValue": func(s *string) bool { return s != nil && *s != "" },
}

// pageURL is a link to a page of this console: a fixed path and the query
// values percent-encoded, so no stored value chooses where a link goes.
func pageURL(p string, vals url.Values) template.URL {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		panic("fallomconsole: pageURL needs a console path")
	}
	if len(vals) == 0 {
		return template.URL(p) //nolint:gosec // a constant path of ours
	}
	return template.URL(p + "?" + vals.Encode()) //nolint:gosec // constant path + encoded query
}

// filterValues returns the filters of q as query values (for links that
// keep the current view), without page position.
func filterValues(q *query, rangeName string) url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("range", rangeName)
	set("from", q.fromText)
	set("to", q.toText)
	f := &q.filter
	set("customer_id", f.CustomerID)
	set("session_id", f.SessionID)
	set("model", f.Model)
	set("provider", f.Provider)
	set("status_code", f.StatusCode)
	set("q", f.Q)
	return v
}

// listNav is the next-page and CSV links of a list page.
type listNav struct {
	Next template.URL // empty on the last page
	CSV  template.URL
}

func newListNav(pagePath, apiPath string, q *query, rangeName string, next *storage.Cursor) listNav {
	var n listNav
	if next != nil {
		v := filterValues(q, rangeName)
		if q.sortText != "" {
			v.Set("sort", q.sortText)
		}
		v.Set("cursor", next.Encode())
		n.Next = pageURL(pagePath, v)
	}
	v := filterValues(q, "")
	if q.sortText != "" {
		v.Set("sort", q.sortText)
	}
	if q.cursorText != "" {
		v.Set("cursor", q.cursorText)
	}
	v.Set("format", "csv")
	n.CSV = pageURL(apiPath, v)
	return n
}
