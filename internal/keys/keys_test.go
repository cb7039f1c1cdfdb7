package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fallom/fallom-collector/internal/principal"
	"go.opentelemetry.io/collector/config/configopaque"
)

func TestValidFormat(t *testing.T) {
	for s, want := range map[string]bool{
		"flm_" + strings.Repeat("a", 16):                 true,
		"flm_" + strings.Repeat("Z", 128):                true,
		"flm_abcdefghijklmnop_-0123456789ABCDEFGHIJKLMN": true,
		"flm_" + strings.Repeat("a", 15):                 false,
		"flm_" + strings.Repeat("a", 129):                false,
		"FLM_" + strings.Repeat("a", 16):                 false,
		"flm-" + strings.Repeat("a", 16):                 false,
		"sk-" + strings.Repeat("a", 16):                  false,
		"flm_" + strings.Repeat("a", 15) + "=":           false,
		"flm_" + strings.Repeat("a", 15) + " ":           false,
		"flm_" + strings.Repeat("a", 15) + "é":           false,
		"flm_" + strings.Repeat("a", 15) + "\x00":        false,
		"":     false,
		"flm_": false,
	} {
		require.Equal(t, want, ValidFormat(s), "%q", s)
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := Generate()
		require.NoError(t, err)
		require.True(t, ValidFormat(k), k)
		// 32 random bytes: 43 base64url characters after the prefix, more
		// than the 32 DESIGN 2.2 asks for.
		require.Len(t, k, len(Prefix)+43)
		require.False(t, seen[k], "duplicate key generated")
		seen[k] = true
	}
}

func TestDigest(t *testing.T) {
	for _, k := range []string{"flm_abcdefghijklmnop", "flm_" + strings.Repeat("x", 128), strings.Repeat("y", 500)} {
		want := sha256.Sum256([]byte(k))
		d := DigestOf(k)
		require.Equal(t, want[:], d[:])
		require.Equal(t, hex.EncodeToString(want[:]), d.Hex())
		require.Equal(t, hex.EncodeToString(want[:4]), d.Fingerprint())
		parsed, err := ParseDigestHex(strings.ToUpper(d.Hex()))
		require.NoError(t, err)
		require.Equal(t, d, parsed)
	}
	_, err := ParseDigestHex("abc")
	require.EqualError(t, err, "key_sha256 must be 64 hex characters, got 3")
	_, err = ParseDigestHex(strings.Repeat("g", 64))
	require.EqualError(t, err, "key_sha256 must contain only hex characters 0-9 a-f")
}

func TestDigestOfDoesNotAllocate(t *testing.T) {
	k := "flm_" + strings.Repeat("k", 43)
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = DigestOf(k) }))
}

func TestValidate(t *testing.T) {
	k1, k2 := mustGenerate(t), mustGenerate(t)
	d1 := DigestOf(k1)
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	got, err := Validate("keys", []Entry{
		{Name: "plain", Project: "p", Key: configopaque.String(k1), ExpiresAt: exp},
		{Name: "hashed", Project: "p", KeySHA256: DigestOf(k2).Hex(), Revoked: true},
	})
	require.NoError(t, err)
	require.Equal(t, []Validated{
		{Name: "plain", Project: "p", Digest: d1, ExpiresAt: exp, Scopes: []principal.Scope{principal.Ingest}},
		{Name: "hashed", Project: "p", Digest: DigestOf(k2), Revoked: true, Scopes: []principal.Scope{principal.Ingest}},
	}, got)

	_, err = Validate("keys", []Entry{
		{Name: "", Project: "p", Key: configopaque.String(k1)},
		{Name: "a", Project: "", KeySHA256: d1.Hex()},
		{Name: "b", Project: "p\n", Key: "flm_bad!"},
		{Name: k2, Project: "p", Key: configopaque.String(k2)},
		{Name: " c", Project: strings.Repeat("p", 129)},
	})
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"keys[0]: name is required",
		`keys[1] ("a"): project is required`,
		`keys[1] ("a"): project is required; same key as keys[0]`,
		`keys[2] ("b"): project contains control characters`,
		`keys[2] ("b"): project contains control characters; key is not a valid fallom key`,
		"keys[3]: name looks like an API key",
		`keys[4] (" c"): name has leading or trailing spaces`,
		"project is longer than 128 characters",
		"one of key or key_sha256 is required",
	} {
		require.Contains(t, msg, want)
	}
	for _, secret := range []string{k1[4:], k2[4:], d1.Hex()} {
		requireNoPartOf(t, msg, secret)
	}
	require.NotContains(t, msg, "flm_bad!")
	require.Equal(t, 1, strings.Count(msg, "keys[1]"), "one line per entry: %s", msg)
}

func TestParse(t *testing.T) {
	k := mustGenerate(t)
	entries, err := Parse([]byte(`# comment
keys:
  - name: a
    project: p
    key_sha256: ` + DigestOf(k).Hex() + `
    expires_at: 2030-01-01T00:00:00Z
    revoked: true
  - &plain
    name: b
    project: "q"
    key: ` + k + `
    revoked: false
    expires_at: ~
`))
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "a", entries[0].Name)
	require.Equal(t, DigestOf(k).Hex(), entries[0].KeySHA256)
	require.Equal(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), entries[0].ExpiresAt)
	require.True(t, entries[0].Revoked)
	require.Equal(t, k, string(entries[1].Key))
	require.True(t, entries[1].ExpiresAt.IsZero())

	entries, err = Parse([]byte("keys:\n"))
	require.NoError(t, err)
	require.Empty(t, entries)
	entries, err = Parse([]byte("keys: []\n"))
	require.NoError(t, err)
	require.Empty(t, entries)

	for _, empty := range []string{"", "  \n\n", "# only a comment\n"} {
		_, err = Parse([]byte(empty))
		require.ErrorIs(t, err, ErrEmptyFile, "%q", empty)
	}
}

func TestParseErrorsNeverQuoteValues(t *testing.T) {
	k := mustGenerate(t)
	secret := k[len(Prefix):]
	for content, want := range map[string]string{
		"keys: [": "not valid YAML",
		"keys:\n  - name: a\n    key: " + k + "\n   bad: [":      "not valid YAML",
		"keys:\n  - name: a\n    key: \"" + k + "\n":             "not valid YAML",
		"keys:\n  - name: a\n    revoked: " + k + "\n":           "line 2: keys[0]: revoked must be true or false",
		"keys:\n  - name: a\n    expires_at: " + k + "\n":        "expires_at must be an RFC 3339 time",
		"keys:\n  - name: a\n    " + k + ": x\n":                 "unknown field (name not shown)",
		"keys:\n  - name: a\n    expire: 2030-01-01T00:00:00Z\n": `unknown field "expire" (known: name, project, key, key_sha256, expires_at, revoked, scopes)`,
		"keys:\n  - name: a\n    name: b\n":                      `field "name" appears twice`,
		"keys:\n  - name: [" + k + "]\n":                         `field "name" must be a single value`,
		"keys:\n  - " + k + "\n":                                 "entry must be a mapping",
		"keys: " + k + "\n":                                      "line 1: `keys` must be a list of entries",
		k + ": []\n":                                             "unknown top-level field (name not shown)",
		"- " + k + "\n":                                          "keys file must be a mapping",
		"other: 1\n":                                             `unknown top-level field "other"`,
		"keys: []\nkeys: []\n":                                   "`keys` appears twice",
		"{}\n":                                                   "keys file has no `keys:` list",
		"keys:\n  - name: a\n    key: '" + k + "'\n    key: '" + k + "'\n": `field "key" appears twice`,
	} {
		_, err := Parse([]byte(content))
		require.Error(t, err, content)
		require.Contains(t, err.Error(), want, content)
		requireNoPartOf(t, err.Error(), secret)
	}
}

// requireNoPartOf fails if any 12 consecutive characters of secret appear in msg.
func requireNoPartOf(t *testing.T, msg, secret string) {
	t.Helper()
	for i := 0; i+12 <= len(secret); i++ {
		require.NotContains(t, msg, secret[i:i+12], "message quotes part of a key")
	}
}

func TestScrub(t *testing.T) {
	k := mustGenerate(t)
	require.Equal(t, "x [redacted] y", Scrub("x "+k+" y"))
	require.Equal(t, "near [redacted]", Scrub("near "+k[len(Prefix):]))
	require.Equal(t, "line 3: did not find expected key", Scrub("line 3: did not find expected key"))
}

func TestDocumentEditKeepsComments(t *testing.T) {
	k := mustGenerate(t)
	src := "# my keys\nkeys:\n  # the first one\n  - name: a # inline\n    project: p\n    key: " + k + "\n"
	doc, entries, err := ParseDocument([]byte(src))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	k2 := mustGenerate(t)
	doc.Append("b", "p", DigestOf(k2), time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), nil, "added by test")
	require.True(t, doc.Revoke("a", "revoked by test"))
	require.False(t, doc.Revoke("nope", ""))
	out, err := doc.Bytes()
	require.NoError(t, err)
	text := string(out)
	for _, want := range []string{"# my keys", "# the first one", "# inline", "# added by test", "revoked: true # revoked by test", "key: " + k} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, k2, "generated keys are stored as digests only")
	entries, err = Parse(out)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.True(t, entries[0].Revoked)
	require.Equal(t, DigestOf(k2).Hex(), entries[1].KeySHA256)
	require.Equal(t, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), entries[1].ExpiresAt)
}

func mustGenerate(t *testing.T) string {
	t.Helper()
	k, err := Generate()
	require.NoError(t, err)
	return k
}

func TestScopes(t *testing.T) {
	k1, k2, k3 := mustGenerate(t), mustGenerate(t), mustGenerate(t)
	entries, err := Parse([]byte(`keys:
  - name: both
    project: p
    key_sha256: ` + DigestOf(k1).Hex() + `
    scopes: [ingest, read]
  - name: reader
    project: p
    key_sha256: ` + DigestOf(k2).Hex() + `
    scopes:
      - read
  - name: default
    project: p
    key_sha256: ` + DigestOf(k3).Hex() + `
`))
	require.NoError(t, err)
	got, err := Validate("keys", entries)
	require.NoError(t, err)
	require.Equal(t, []principal.Scope{principal.Ingest, principal.Read}, got[0].Scopes)
	require.Equal(t, []principal.Scope{principal.Read}, got[1].Scopes)
	require.Equal(t, []principal.Scope{principal.Ingest}, got[2].Scopes, "absent means [ingest]")

	for _, bad := range []struct{ yaml, want string }{
		{"scopes: []", "scopes is an empty list"},
		{"scopes: read", "scopes must be a list"},
		{"scopes: [[read]]", "scopes must be a list of names"},
	} {
		_, err := Parse([]byte("keys:\n  - name: a\n    project: p\n    key_sha256: " + DigestOf(k1).Hex() + "\n    " + bad.yaml + "\n"))
		require.ErrorContains(t, err, bad.want, bad.yaml)
	}
	_, err = Validate("keys", []Entry{
		{Name: "a", Project: "p", KeySHA256: DigestOf(k1).Hex(), Scopes: []string{"admin"}},
		{Name: "b", Project: "p", KeySHA256: DigestOf(k2).Hex(), Scopes: []string{"read", "read"}},
		{Name: "c", Project: "p", KeySHA256: DigestOf(k3).Hex(), Scopes: []string{k3}},
	})
	require.ErrorContains(t, err, `keys[0] ("a"): scopes: unknown scope "admin" (known: ingest,read)`)
	require.ErrorContains(t, err, `keys[1] ("b"): scopes: scope "read" is listed twice`)
	require.ErrorContains(t, err, `keys[2] ("c"): scopes: unknown scope "(value not shown)"`)
	requireNoPartOf(t, err.Error(), k3[4:])
}

// TestParseExpiresAt: the keys file, the CLI and (through the collector's
// YAML) inline keys accept the same forms; see also the extension's
// TestInlineAndFileExpiresAtAgree.
func TestParseExpiresAt(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2027-01-01T00:00:00Z":      time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"2027-01-01T02:00:00+02:00": time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"2027-01-01":                time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"2027-01-01 10:30:00":       time.Date(2027, 1, 1, 10, 30, 0, 0, time.UTC),
		"2027-1-2t03:04:05.5Z":      time.Date(2027, 1, 2, 3, 4, 5, 5e8, time.UTC),
	} {
		got, err := ParseExpiresAt(in)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %s", in, got)
	}
	for _, bad := range []string{"", "tomorrow", "01/02/2027", "2027", "27-01-01", "2027-01-01T00:00:00", "2027-13-01"} {
		_, err := ParseExpiresAt(bad)
		require.ErrorContains(t, err, "expires_at must be an RFC 3339 time", bad)
	}
}
