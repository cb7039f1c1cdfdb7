package fallomconsoleextension

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	keyprincipal "github.com/fallom/fallom-collector/internal/principal"
)

// principal is who a request acts for: the project it may read and the
// name of the key that proved it.
type principal struct {
	projectID string
	keyName   string
}

// credential is what a login session keeps to check its key again on every
// request (so a revoked, expired or removed key, or one that lost the read
// scope, ends the session at once, hot reload included): the key's sha256,
// never the key.
type credential struct {
	digest [sha256.Size]byte
}

// keyChecker is what the console needs of the fallomauth extension named by
// its authenticator: Authenticate for API requests, CheckKey for the login
// form and CheckDigest to re-check a login session, each honouring the
// instance's scope (a valid key without it is refused with an error
// wrapping keyprincipal.ErrMissingScope).
type keyChecker interface {
	extensionauth.Server
	CheckKey(key string) (keyprincipal.Principal, error)
	CheckDigest(digest [sha256.Size]byte) (keyprincipal.Principal, error)
}

// authority checks keys for the console.
type authority struct{ kc keyChecker }

func findAuthority(host component.Host, id component.ID) (*authority, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("authenticator %q is not an extension of this collector: add it under extensions and service.extensions", id)
	}
	kc, ok := ext.(keyChecker)
	if !ok {
		return nil, fmt.Errorf("extension %q cannot check keys for the console (use a fallomauth instance, e.g. fallomauth/read with scope: read)", id)
	}
	return &authority{kc: kc}, nil
}

// authenticate checks the key in a request's headers (the API).
func (a *authority) authenticate(ctx context.Context, headers map[string][]string) (principal, error) {
	ctx, err := a.kc.Authenticate(ctx, headers)
	if err != nil {
		return principal{}, err
	}
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

// login checks a key typed into the login form.
func (a *authority) login(key string) (principal, credential, error) {
	p, err := a.kc.CheckKey(key)
	if err != nil {
		return principal{}, credential{}, err
	}
	return principal{projectID: p.ProjectID, keyName: p.KeyName}, credential{digest: sha256.Sum256([]byte(key))}, nil
}

// recheck checks a login session's key again.
func (a *authority) recheck(c credential) (principal, error) {
	p, err := a.kc.CheckDigest(c.digest)
	return principal{projectID: p.ProjectID, keyName: p.KeyName}, err
}

// forbidden reports whether err means "a valid key, without the read
// scope" (403) rather than "no valid key" (401).
func (*authority) forbidden(err error) bool { return errors.Is(err, keyprincipal.ErrMissingScope) }

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
	p, err := c.auth.recheck(ls.cred)
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
