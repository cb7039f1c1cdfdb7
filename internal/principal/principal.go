// Package principal is who a fallom API key speaks for: its project, its
// name and the scopes it was granted (DESIGN 2.2). It is shared by the
// fallomauth extension, which checks keys, and by the components that ask it
// to (the console's login and session re-checks), so they need not import
// each other.
package principal // import "github.com/fallom/fallom-collector/internal/principal"

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Scope is what a key may do.
type Scope string

const (
	// Ingest sends data: the OTLP receiver and the fallomsdk receiver
	// (including the SDK's reads of configs and prompts).
	Ingest Scope = "ingest"
	// Read opens the console and the query API.
	Read Scope = "read"
)

// All lists every scope, in the order they are shown.
var All = []Scope{Ingest, Read}

// DefaultScopes are the scopes of an entry that names none.
var DefaultScopes = []Scope{Ingest}

// ParseScope reads one scope name (exact, lowercase).
func ParseScope(s string) (Scope, error) {
	for _, sc := range All {
		if s == string(sc) {
			return sc, nil
		}
	}
	return "", fmt.Errorf("unknown scope %q (known: %s)", shown(s), Join(All))
}

// ParseScopes reads a comma-separated list such as "ingest,read". Blanks
// around names are ignored; an empty list and repeated names are errors.
func ParseScopes(list string) ([]Scope, error) {
	parts := strings.Split(list, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return ParseScopeList(parts)
}

// ParseScopeList reads scope names; unknown and repeated names are errors.
func ParseScopeList(names []string) ([]Scope, error) {
	out := make([]Scope, 0, len(names))
	for _, n := range names {
		sc, err := ParseScope(n)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, sc) {
			return nil, fmt.Errorf("scope %q is listed twice", sc)
		}
		out = append(out, sc)
	}
	return out, nil
}

// Join renders scopes as "ingest,read".
func Join(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, sc := range scopes {
		parts[i] = string(sc)
	}
	return strings.Join(parts, ",")
}

// shown keeps a message short and free of anything long enough to be a key.
func shown(s string) string {
	if len(s) > 16 {
		return "(value not shown)"
	}
	return s
}

// Principal is an authenticated key: the project it belongs to, its name and
// its scopes. It never carries key material.
type Principal struct {
	ProjectID string
	KeyName   string
	Scopes    []Scope
}

// Has reports whether the principal was granted scope.
func (p Principal) Has(scope Scope) bool { return slices.Contains(p.Scopes, scope) }

// ErrMissingScope is wrapped by every refusal of a valid key that lacks the
// scope the endpoint needs: the console and query API map it to 403, the
// receivers (whose authentication errors are all 401) pass it on as is.
var ErrMissingScope = errors.New("API key lacks the scope this endpoint needs")

// MissingScopeError names the scope a valid key lacks. errors.Is(err,
// ErrMissingScope) holds for it.
type MissingScopeError struct {
	Scope Scope
}

func (e *MissingScopeError) Error() string {
	return fmt.Sprintf("API key lacks the %q scope needed here (create a key with `keys create --scopes %s`)", e.Scope, e.Scope)
}

// Is makes errors.Is(err, ErrMissingScope) true.
func (e *MissingScopeError) Is(target error) bool { return target == ErrMissingScope }
