package fallomauthextension

import (
	"errors"
	"strings"

	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/principal"
)

// reason is why a request was rejected. Each has a fixed message (DESIGN 2.2)
// that names the problem and never contains anything from the request.
type reason uint8

const (
	reasonNone reason = iota
	reasonMissingKey
	reasonWrongScheme
	reasonNotFlmKey
	reasonUnknownKey
	reasonRevokedKey
	reasonExpiredKey
	reasonMissingScope
	numReasons
)

// reasonNames are the values of the `reason` telemetry attribute.
var reasonNames = [numReasons]string{
	reasonNone:         "",
	reasonMissingKey:   "missing_key",
	reasonWrongScheme:  "wrong_scheme",
	reasonNotFlmKey:    "not_flm_key",
	reasonUnknownKey:   "unknown_key",
	reasonRevokedKey:   "revoked_key",
	reasonExpiredKey:   "expired_key",
	reasonMissingScope: "missing_scope",
}

// The rejection errors. They are plain errors: the HTTP server answers 401
// with the message and the gRPC server Unauthenticated with it. A key without
// the instance's scope gets a *principal.MissingScopeError naming the scope,
// which wraps ErrMissingScope (callers of CheckKey and CheckDigest map it to
// 403).
var (
	ErrMissingKey  = errors.New(`missing API key: send "Authorization: Bearer <key>" or "X-Api-Key: <key>"`)
	ErrWrongScheme = errors.New(`wrong authorization scheme: expected "Bearer <key>" (scheme Bearer, one space, then the key)`)
	ErrNotFlmKey   = errors.New("not an flm_ key: expected " + keys.FormatDescription)
	ErrUnknownKey  = errors.New("unknown API key")
	ErrRevokedKey  = errors.New("revoked API key")
	ErrExpiredKey  = errors.New("expired API key")
	// ErrMissingScope is principal.ErrMissingScope, here for callers that
	// already import this package.
	ErrMissingScope = principal.ErrMissingScope
)

var reasonErrors = [numReasons]error{
	reasonMissingKey:  ErrMissingKey,
	reasonWrongScheme: ErrWrongScheme,
	reasonNotFlmKey:   ErrNotFlmKey,
	reasonUnknownKey:  ErrUnknownKey,
	reasonRevokedKey:  ErrRevokedKey,
	reasonExpiredKey:  ErrExpiredKey,
}

const (
	// HTTP header names as Go's server canonicalizes them, and gRPC metadata
	// keys (always lowercase).
	headerAuthorization      = "Authorization"
	headerAuthorizationLower = "authorization"
	headerAPIKey             = "X-Api-Key"
	headerAPIKeyLower        = "x-api-key"
)

// extractKey finds the presented key in request headers or gRPC metadata.
//
//   - "Authorization: Bearer <key>": scheme case-insensitive, exactly one
//     space before the key.
//   - "X-Api-Key: <key>": for clients that cannot set Authorization.
//
// A Bearer Authorization wins. A non-Bearer Authorization (for example Basic
// credentials added by a proxy) defers to X-Api-Key when that is present, and
// is a wrong-scheme rejection otherwise. The returned key is not yet checked
// for the flm_ format.
func extractKey(sources map[string][]string) (string, reason) {
	auth, hasAuth := header(sources, headerAuthorization, headerAuthorizationLower)
	if hasAuth {
		scheme, token, hasSpace := strings.Cut(auth, " ")
		if hasSpace && strings.EqualFold(scheme, "bearer") {
			if token == "" || token[0] == ' ' || token[0] == '\t' {
				return "", reasonWrongScheme
			}
			return token, reasonNone
		}
	}
	if apiKey, ok := header(sources, headerAPIKey, headerAPIKeyLower); ok {
		return apiKey, reasonNone
	}
	if hasAuth {
		return "", reasonWrongScheme
	}
	return "", reasonMissingKey
}

// header returns the first value of a header, trimmed of surrounding blanks
// (HTTP servers already drop them; gRPC metadata keeps them). An empty value
// counts as absent. The exact canonical and lowercase spellings are looked up
// first (O(1)); any other spelling only costs a scan when both miss.
func header(sources map[string][]string, canonical, lower string) (string, bool) {
	v, ok := sources[canonical]
	if !ok {
		v, ok = sources[lower]
	}
	if !ok {
		for k, vv := range sources {
			if strings.EqualFold(k, canonical) {
				v, ok = vv, true
				break
			}
		}
	}
	if !ok || len(v) == 0 {
		return "", false
	}
	s := trimBlanks(v[0])
	return s, s != ""
}

// trimBlanks drops leading and trailing spaces and tabs.
func trimBlanks(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
