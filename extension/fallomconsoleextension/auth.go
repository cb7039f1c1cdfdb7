package fallomconsoleextension

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// principal is who a request acts for: the project it may read and the
// name of the key that proved it.
type principal struct {
	projectID string
	keyName   string
}

// credential is what a login session keeps to check its key again on every
// request (so a revoked, expired or removed key ends the session at once).
type credential struct {
	key string // held in this process's memory only, never in the cookie
}

// authority checks keys for the console: the fallomauth instance named by
// the config's authenticator.
type authority interface {
	// authenticate checks the key in a request's headers (the API).
	authenticate(ctx context.Context, headers map[string][]string) (principal, error)
	// login checks a key typed into the login form.
	login(ctx context.Context, key string) (principal, credential, error)
	// recheck checks a login session's key again.
	recheck(ctx context.Context, c credential) (principal, error)
	// forbidden reports whether err means "valid key, but not allowed to
	// read" (403) rather than "no valid key" (401).
	forbidden(err error) bool
}

// serverAuthority adapts any extensionauth.Server (fallomauth) through its
// Authenticate method: the principal is read from client.Info.Auth.
type serverAuthority struct{ srv extensionauth.Server }

func findAuthority(host component.Host, id component.ID) (authority, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("authenticator %q is not an extension of this collector: add it under extensions and service.extensions", id)
	}
	srv, ok := ext.(extensionauth.Server)
	if !ok {
		return nil, fmt.Errorf("extension %q is not a server authenticator (use a fallomauth instance)", id)
	}
	return serverAuthority{srv: srv}, nil
}

func (a serverAuthority) authenticate(ctx context.Context, headers map[string][]string) (principal, error) {
	ctx, err := a.srv.Authenticate(ctx, headers)
	if err != nil {
		return principal{}, err
	}
	return principalOf(ctx)
}

func principalOf(ctx context.Context) (principal, error) {
	auth := client.FromContext(ctx).Auth
	if auth == nil {
		return principal{}, errors.New("the authenticator attached no principal")
	}
	project, _ := auth.GetAttribute(fallomattr.AuthProjectID).(string)
	name, _ := auth.GetAttribute(fallomattr.AuthKeyName).(string)
	if project == "" {
		return principal{}, errors.New("the authenticator attached no project")
	}
	return principal{projectID: project, keyName: name}, nil
}

func (a serverAuthority) login(ctx context.Context, key string) (principal, credential, error) {
	p, err := a.authenticate(ctx, map[string][]string{"Authorization": {"Bearer " + key}})
	return p, credential{key: key}, err
}

func (a serverAuthority) recheck(ctx context.Context, c credential) (principal, error) {
	p, _, err := a.login(ctx, c.key)
	return p, err
}

func (serverAuthority) forbidden(err error) bool {
	// Key scopes: a key without the read scope is refused with an error
	// that names the missing scope.
	return err != nil && strings.Contains(err.Error(), "scope")
}

// loginSession is one browser's login, kept server-side; the browser holds
// only a random id in an HttpOnly cookie.
type loginSession struct {
	principal principal
	cred      credential
	created   time.Time
	lastSeen  time.Time
}

// sessionStore holds login sessions in memory (a restart logs everyone
// out), bounded in number; ids are looked up by their sha256 so the map
// never holds a cookie value.
type sessionStore struct {
	mu       sync.Mutex
	byDigest map[[sha256.Size]byte]*loginSession
	idle     time.Duration
	maxAge   time.Duration
	max      int
	now      func() time.Time
}

func newSessionStore(idle, maxAge time.Duration, max int) *sessionStore {
	return &sessionStore{byDigest: map[[sha256.Size]byte]*loginSession{}, idle: idle, maxAge: maxAge, max: max, now: time.Now}
}

// create starts a session and returns the cookie value.
func (s *sessionStore) create(p principal, c credential) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	for len(s.byDigest) >= s.max {
		s.evictOldestLocked()
	}
	s.byDigest[sha256.Sum256([]byte(id))] = &loginSession{principal: p, cred: c, created: now, lastSeen: now}
	return id, nil
}

// get returns the live session of a cookie value, touching it.
func (s *sessionStore) get(id string) (*loginSession, bool) {
	if len(id) != 43 {
		return nil, false
	}
	d := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.byDigest[d]
	if ls == nil {
		return nil, false
	}
	if now.Sub(ls.lastSeen) > s.idle || now.Sub(ls.created) > s.maxAge {
		delete(s.byDigest, d)
		return nil, false
	}
	ls.lastSeen = now
	cp := *ls
	return &cp, true
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	delete(s.byDigest, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

func (s *sessionStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byDigest)
}

func (s *sessionStore) expireLocked(now time.Time) {
	for d, ls := range s.byDigest {
		if now.Sub(ls.lastSeen) > s.idle || now.Sub(ls.created) > s.maxAge {
			delete(s.byDigest, d)
		}
	}
}

func (s *sessionStore) evictOldestLocked() {
	var oldest [sha256.Size]byte
	var at time.Time
	for d, ls := range s.byDigest {
		if at.IsZero() || ls.lastSeen.Before(at) {
			oldest, at = d, ls.lastSeen
		}
	}
	delete(s.byDigest, oldest)
}

const sessionCookie = "fallom_console"

func (c *console) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// sessionPrincipal returns the principal of the request's login session,
// checking its key again; a session whose key no longer passes is ended.
func (c *console) sessionPrincipal(r *http.Request) (principal, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return principal{}, false
	}
	ls, ok := c.sessions.get(ck.Value)
	if !ok {
		return principal{}, false
	}
	p, err := c.auth.recheck(r.Context(), ls.cred)
	if err != nil || p.projectID != ls.principal.projectID {
		c.sessions.delete(ck.Value)
		return principal{}, false
	}
	return p, true
}

// sameOrigin refuses cross-site form posts (login CSRF, forced logout):
// browsers send Sec-Fetch-Site and Origin on POSTs.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		want := "http://" + r.Host
		if r.TLS != nil {
			want = "https://" + r.Host
		}
		return o == want
	}
	return true
}
