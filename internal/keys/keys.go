// Package keys holds everything about fallom API keys that is not the
// request path: the flm_ key format, key generation, the sha256 digest that is
// the only thing stored, the keys file (parse, validate, atomic edits) and the
// `keys` CLI that creates, lists and revokes keys.
//
// Nothing in this package ever puts key material into an error message or a
// log line: errors name the entry (index and name) and the problem only.
package keys // import "github.com/fallom/fallom-collector/internal/keys"

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/fallom/fallom-collector/internal/principal"
)

const (
	// Prefix starts every fallom API key.
	Prefix = "flm_"
	// MinSecretLen and MaxSecretLen bound the part after the prefix.
	MinSecretLen = 16
	MaxSecretLen = 128
	// MaxKeyLen is the longest well-formed key, prefix included.
	MaxKeyLen = len(Prefix) + MaxSecretLen

	// generatedSecretBytes of randomness give 43 base64url characters (256 bits).
	generatedSecretBytes = 32

	// FormatDescription is how error messages describe a well-formed key.
	FormatDescription = "flm_ followed by 16 to 128 characters from A-Z a-z 0-9 _ -"
)

// ValidFormat reports whether s is a well-formed fallom API key:
// Prefix followed by MinSecretLen..MaxSecretLen characters of [A-Za-z0-9_-].
// It is checked before hashing, so malformed input (and oversized input) is
// rejected without spending a digest on it.
func ValidFormat(s string) bool {
	if len(s) < len(Prefix)+MinSecretLen || len(s) > MaxKeyLen || s[:len(Prefix)] != Prefix {
		return false
	}
	for i := len(Prefix); i < len(s); i++ {
		if !secretChar[s[i]] {
			return false
		}
	}
	return true
}

// secretChar marks the bytes allowed after the prefix: [A-Za-z0-9_-].
var secretChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'], t['-'] = true, true
	return t
}()

// Generate returns a new random key: Prefix + base64url (no padding) of 32
// bytes from crypto/rand.
func Generate() (string, error) {
	var secret [generatedSecretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(secret[:]), nil
}

// Digest is the sha256 of the whole key string (prefix included). It is what
// the keys file stores as key_sha256 and what the extension looks keys up by.
type Digest [sha256.Size]byte

// DigestOf hashes a key. Keys are at most MaxKeyLen bytes once ValidFormat
// passed; copying into a stack buffer keeps the hot path allocation-free.
func DigestOf(key string) Digest {
	var buf [MaxKeyLen]byte
	if len(key) <= len(buf) {
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}

// Hex is the lowercase hex form used in key_sha256.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// Fingerprint is the first 8 hex characters of the digest: enough to tell
// keys apart in `keys list`, useless for finding the key.
func (d Digest) Fingerprint() string { return hex.EncodeToString(d[:4]) }

// ParseDigestHex parses a key_sha256 value (64 hex characters, any case).
// The error never repeats the value.
func ParseDigestHex(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*len(d) {
		return d, fmt.Errorf("key_sha256 must be %d hex characters, got %d", 2*len(d), len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, errors.New("key_sha256 must contain only hex characters 0-9 a-f")
	}
	return d, nil
}

// Entry is one configured key: inline in the extension config (mapstructure)
// or in the keys file (same field names). Exactly one of Key and KeySHA256 is
// set. Key is a configopaque.String so printing the collector config never
// shows it.
type Entry struct {
	// Name identifies the key (unique); it becomes the key_name principal
	// attribute and the key_name telemetry attribute.
	Name string `mapstructure:"name"`
	// Project the key belongs to; it becomes the project_id principal attribute.
	Project string `mapstructure:"project"`
	// Key is the plaintext key (local development only). It is hashed at load
	// and the plaintext is not kept.
	Key configopaque.String `mapstructure:"key"`
	// KeySHA256 is the hex sha256 of the whole key string.
	KeySHA256 string `mapstructure:"key_sha256"`
	// ExpiresAt (RFC 3339) is when the key stops working; zero means never.
	ExpiresAt time.Time `mapstructure:"expires_at"`
	// Revoked keys are rejected with "revoked API key".
	Revoked bool `mapstructure:"revoked"`
	// Scopes the key is granted: "ingest" (send data), "read" (console and
	// query API). Absent means [ingest].
	Scopes []string `mapstructure:"scopes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Digest returns the entry's digest: parsed from KeySHA256 or computed from
// Key. It fails if both or neither are set, or the value is malformed; the
// error never contains the value.
func (e *Entry) Digest() (Digest, error) {
	switch {
	case e.Key != "" && e.KeySHA256 != "":
		return Digest{}, errors.New("set either key or key_sha256, not both")
	case e.Key != "":
		if !ValidFormat(string(e.Key)) {
			return Digest{}, errors.New("key is not a valid fallom key (expected " + FormatDescription + ")")
		}
		return DigestOf(string(e.Key)), nil
	case e.KeySHA256 != "":
		return ParseDigestHex(e.KeySHA256)
	default:
		return Digest{}, errors.New("one of key or key_sha256 is required")
	}
}

// MaxNameLen bounds names and projects: they end up in telemetry attributes
// and database rows.
const MaxNameLen = 128

// ValidateLabel checks a name or project value. what is "name" or "project".
func ValidateLabel(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is required", what)
	case len(v) > MaxNameLen:
		return fmt.Errorf("%s is longer than %d characters", what, MaxNameLen)
	case looksLikeKey(v):
		// A key pasted into the wrong field would otherwise be shown by
		// `keys list`, logs and telemetry.
		return fmt.Errorf("%s looks like an API key; use a descriptive label", what)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains control characters", what)
		}
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' {
		return fmt.Errorf("%s has leading or trailing spaces", what)
	}
	return nil
}

// looksLikeKey catches a key pasted where a label belongs.
func looksLikeKey(v string) bool { return ValidFormat(v) }

// Validated is an entry that passed validation, reduced to what the
// extension needs: the digest, never a plaintext key.
type Validated struct {
	Name      string
	Project   string
	Digest    Digest
	ExpiresAt time.Time
	Revoked   bool
	Scopes    []principal.Scope // never empty: DefaultScopes when the entry names none
}

// ValidateScopes checks an entry's scopes and returns them typed; none means
// principal.DefaultScopes.
func ValidateScopes(names []string) ([]principal.Scope, error) {
	if len(names) == 0 {
		return principal.DefaultScopes, nil
	}
	return principal.ParseScopeList(names)
}

// Validate checks a list of entries (names unique, each digest unique, labels
// well-formed) and returns them with plaintext keys replaced by digests.
// source prefixes error messages, e.g. "keys" or "keys file".
func Validate(source string, entries []Entry) ([]Validated, error) {
	out := make([]Validated, 0, len(entries))
	names := make(map[string]int, len(entries))
	digests := make(map[Digest]int, len(entries))
	var errs []error
	for i := range entries {
		e := &entries[i]
		where := entryRef(source, i, e.Name)
		// One line per entry, listing all of its problems.
		var problems []string
		if err := ValidateLabel("name", e.Name); err != nil {
			problems = append(problems, err.Error())
		} else if j, dup := names[e.Name]; dup {
			problems = append(problems, fmt.Sprintf("name is already used by %s[%d]", source, j))
		} else {
			names[e.Name] = i
		}
		if err := ValidateLabel("project", e.Project); err != nil {
			problems = append(problems, err.Error())
		}
		d, err := e.Digest()
		if err != nil {
			problems = append(problems, err.Error())
		} else if j, dup := digests[d]; dup {
			problems = append(problems, fmt.Sprintf("same key as %s[%d]", source, j))
		} else {
			digests[d] = i
		}
		scopes, err := ValidateScopes(e.Scopes)
		if err != nil {
			problems = append(problems, "scopes: "+err.Error())
		}
		if len(problems) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s", where, strings.Join(problems, "; ")))
			continue
		}
		out = append(out, Validated{
			Name: e.Name, Project: e.Project, Digest: d,
			ExpiresAt: e.ExpiresAt, Revoked: e.Revoked, Scopes: scopes,
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// entryRef names an entry in messages: keys[2] ("prod"). A name that looks
// like a key is not repeated.
func entryRef(source string, i int, name string) string {
	if name == "" || looksLikeKey(name) || len(name) > MaxNameLen {
		return fmt.Sprintf("%s[%d]", source, i)
	}
	return fmt.Sprintf("%s[%d] (%q)", source, i, name)
}
