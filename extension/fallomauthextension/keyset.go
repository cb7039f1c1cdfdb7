package fallomauthextension

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/keys"
	"github.com/fallom/fallom-collector/internal/principal"
)

// keyRecord is one usable key. It holds the digest only: plaintext keys from
// the config or the file are hashed at load and dropped.
type keyRecord struct {
	digest    keys.Digest
	name      string
	expiresAt time.Time // zero: never expires
	revoked   bool
	// scopes the key was granted; the instance's scope is checked per request.
	scopes   []principal.Scope
	authData *authData

	// Pre-built telemetry attribute sets, held in slices so that passing
	// them to the variadic Add allocates nothing per request.
	acceptedOpts, revokedOpts, expiredOpts, missingScopeOpts []metric.AddOption
}

// keySet is an immutable snapshot of all keys, swapped atomically on reload.
type keySet struct {
	byDigest map[keys.Digest]*keyRecord
	fromFile int
}

// buildKeySet merges inline and file entries (each already validated on its
// own) and rejects names or keys that appear in both.
func buildKeySet(inline, fromFile []keys.Validated, tel *telemetry) (*keySet, error) {
	set := &keySet{byDigest: make(map[keys.Digest]*keyRecord, len(inline)+len(fromFile)), fromFile: len(fromFile)}
	names := make(map[string]struct{}, len(inline))
	for _, v := range inline {
		set.byDigest[v.Digest] = newKeyRecord(v, tel)
		names[v.Name] = struct{}{}
	}
	var errs []error
	for i, v := range fromFile {
		if _, dup := names[v.Name]; dup {
			errs = append(errs, fmt.Errorf("keys[%d] (%q): name is already used by a key in the collector config", i, v.Name))
			continue
		}
		if _, dup := set.byDigest[v.Digest]; dup {
			errs = append(errs, fmt.Errorf("keys[%d] (%q): same key as a key in the collector config", i, v.Name))
			continue
		}
		set.byDigest[v.Digest] = newKeyRecord(v, tel)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

func newKeyRecord(v keys.Validated, tel *telemetry) *keyRecord {
	return &keyRecord{
		digest:           v.Digest,
		name:             v.Name,
		expiresAt:        v.ExpiresAt,
		revoked:          v.Revoked,
		scopes:           v.Scopes,
		authData:         &authData{projectID: v.Project, keyName: v.Name},
		acceptedOpts:     []metric.AddOption{tel.acceptedOption(v.Name)},
		revokedOpts:      []metric.AddOption{tel.rejectedOption(reasonRevokedKey, v.Name)},
		expiredOpts:      []metric.AddOption{tel.rejectedOption(reasonExpiredKey, v.Name)},
		missingScopeOpts: []metric.AddOption{tel.rejectedOption(reasonMissingScope, v.Name)},
	}
}

// has reports whether the key was granted scope (one or two entries: a scan
// costs less than a map).
func (r *keyRecord) has(scope principal.Scope) bool {
	for _, s := range r.scopes {
		if s == scope {
			return true
		}
	}
	return false
}

func (r *keyRecord) expired(now time.Time) bool {
	return !r.expiresAt.IsZero() && !now.Before(r.expiresAt)
}

// counts returns how many keys are active, revoked and expired at now.
func (s *keySet) counts(now time.Time) (active, revoked, expired int) {
	for _, r := range s.byDigest {
		switch {
		case r.revoked:
			revoked++
		case r.expired(now):
			expired++
		default:
			active++
		}
	}
	return active, revoked, expired
}

// principal returns the key's principal.Principal (a copy the caller may keep).
func (r *keyRecord) principal() principal.Principal {
	return principal.Principal{ProjectID: r.authData.projectID, KeyName: r.name, Scopes: slices.Clone(r.scopes)}
}

// authData is the client.AuthData of an authenticated request. Attributes:
// "project_id" (string) and "key_name" (string), see internal/fallomattr.
type authData struct {
	projectID string
	keyName   string
}

func (p *authData) GetAttribute(name string) any {
	switch name {
	case fallomattr.AuthProjectID:
		return p.projectID
	case fallomattr.AuthKeyName:
		return p.keyName
	}
	return nil
}

func (*authData) GetAttributeNames() []string {
	return []string{fallomattr.AuthProjectID, fallomattr.AuthKeyName}
}
