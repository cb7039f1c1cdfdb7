package keys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.yaml.in/yaml/v3"

	"github.com/fallom/fallom-collector/internal/atomicfile"
	"github.com/fallom/fallom-collector/internal/principal"
)

// The keys file is YAML with one top-level field:
//
//	keys:
//	  - name: openrouter-prod
//	    project: acme
//	    key_sha256: 9f86d0...
//	    expires_at: 2027-01-01T00:00:00Z
//	    revoked: false
//
// It is parsed from the YAML node tree rather than decoded into a struct so
// that (1) every error is written here and can never quote a value (decoder
// errors quote values, and a misplaced key would be one), and (2) the CLI can
// edit the tree and keep the user's comments and layout.

// ErrEmptyFile is returned for a file with no YAML content. At start it means
// "no keys"; on a reload it usually means the file is being rewritten in place,
// so the extension keeps the last good set. `keys: []` removes all keys.
var ErrEmptyFile = errors.New("keys file is empty (write `keys: []` to configure no keys)")

const (
	fieldName      = "name"
	fieldProject   = "project"
	fieldKey       = "key"
	fieldKeySHA256 = "key_sha256"
	fieldExpiresAt = "expires_at"
	fieldRevoked   = "revoked"
	fieldScopes    = "scopes"
	fieldKeys      = "keys"
)

var knownFields = []string{fieldName, fieldProject, fieldKey, fieldKeySHA256, fieldExpiresAt, fieldRevoked, fieldScopes}

// Document is a parsed keys file that can be edited and written back with
// its comments and layout kept.
type Document struct {
	doc *yaml.Node // DocumentNode
	seq *yaml.Node // the `keys:` SequenceNode
}

// Parse parses keys file content into entries. Entries are checked for shape
// here (fields, types, timestamps); call Validate for the semantic checks.
func Parse(data []byte) ([]Entry, error) {
	_, entries, err := parseDocument(data)
	return entries, err
}

// ParseDocument parses keys file content for editing.
func ParseDocument(data []byte) (*Document, []Entry, error) {
	return parseDocument(data)
}

// NewDocument returns an empty keys file with an explanatory header.
func NewDocument() *Document {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	root := &yaml.Node{
		Kind: yaml.MappingNode, Tag: "!!map",
		HeadComment: "fallom API keys, read by the fallomauth extension (hot-reloaded).\n" +
			"Managed with `fallomcol keys create|list|revoke`; entries may also be edited by hand.\n" +
			"Generated keys are stored only as the sha256 of the whole key string.",
		Content: []*yaml.Node{scalar(fieldKeys), seq},
	}
	return &Document{doc: &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}, seq: seq}
}

// ParsePartial parses what it can of a keys file that Parse refuses: the
// entries that are well-formed on their own, and the error Parse would give.
// A collector refusing a file uses them to apply the revocations and
// removals the file makes (fail safe), never to add keys. A file whose
// structure is broken (not YAML, no `keys:` list) yields no entries.
func ParsePartial(data []byte) ([]Entry, error) {
	_, good, err := parseEntries(data)
	return good, err
}

func parseDocument(data []byte) (*Document, []Entry, error) {
	doc, good, err := parseEntries(data)
	if err != nil {
		return nil, nil, err
	}
	return doc, good, nil
}

// parseEntries parses the document; on entry errors it returns the
// document (editable, when its structure is sound) and the well-formed
// entries with the error.
func parseEntries(data []byte) (*Document, []Entry, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, ErrEmptyFile
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("keys file is not valid YAML: %s", Scrub(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		// Only comments.
		return nil, nil, ErrEmptyFile
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("line %d: keys file must be a mapping with a `keys:` list", root.Line)
	}
	var seq *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if k.Value != fieldKeys {
			return nil, nil, fmt.Errorf("line %d: unknown top-level field %s (the only field is `keys`)", k.Line, quoteField(k.Value))
		}
		if seq != nil {
			return nil, nil, fmt.Errorf("line %d: `keys` appears twice", k.Line)
		}
		switch {
		case v.Kind == yaml.SequenceNode:
			seq = v
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			// `keys:` with nothing after it: no keys. Replace with a real
			// sequence so the CLI can append to it.
			seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			root.Content[i+1] = seq
		default:
			return nil, nil, fmt.Errorf("line %d: `keys` must be a list of entries", v.Line)
		}
	}
	if seq == nil {
		return nil, nil, fmt.Errorf("line %d: keys file has no `keys:` list", root.Line)
	}
	entries := make([]Entry, 0, len(seq.Content))
	var errs []error
	for i, item := range seq.Content {
		e, err := parseEntry(resolve(item))
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: keys[%d]: %w", item.Line, i, err))
			continue
		}
		entries = append(entries, e)
	}
	if len(errs) > 0 {
		return &Document{doc: &doc, seq: seq}, entries, errors.Join(errs...)
	}
	return &Document{doc: &doc, seq: seq}, entries, nil
}

func parseEntry(n *yaml.Node) (Entry, error) {
	var e Entry
	if n.Kind != yaml.MappingNode {
		return e, errors.New("entry must be a mapping of name, project, key or key_sha256, expires_at, revoked, scopes")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		field := k.Value
		if seen[field] {
			return e, fmt.Errorf("field %s appears twice", quoteField(field))
		}
		seen[field] = true
		if field == fieldScopes {
			scopes, err := parseScopesNode(v)
			if err != nil {
				return e, err
			}
			e.Scopes = scopes
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return e, fmt.Errorf("field %s must be a single value", quoteField(field))
		}
		if v.Tag == "!!null" {
			continue
		}
		switch field {
		case fieldName:
			e.Name = v.Value
		case fieldProject:
			e.Project = v.Value
		case fieldKey:
			e.Key = configopaque.String(v.Value)
		case fieldKeySHA256:
			e.KeySHA256 = v.Value
		case fieldExpiresAt:
			t, err := ParseExpiresAt(v.Value)
			if err != nil {
				return e, err
			}
			e.ExpiresAt = t
		case fieldRevoked:
			switch strings.ToLower(v.Value) {
			case "true":
				e.Revoked = true
			case "false":
				e.Revoked = false
			default:
				return e, errors.New("revoked must be true or false")
			}
		default:
			return e, fmt.Errorf("unknown field %s (known: %s)", quoteField(field), strings.Join(knownFields, ", "))
		}
	}
	return e, nil
}

// parseScopesNode reads `scopes: [ingest, read]` (flow or block list).
func parseScopesNode(v *yaml.Node) ([]string, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, errors.New("scopes must be a list such as [ingest, read]")
	}
	if len(v.Content) == 0 {
		return nil, errors.New("scopes is an empty list: name at least one of ingest, read (omit the field for [ingest])")
	}
	out := make([]string, 0, len(v.Content))
	for _, item := range v.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode {
			return nil, errors.New("scopes must be a list of names such as [ingest, read]")
		}
		out = append(out, item.Value)
	}
	// Unknown or repeated names are reported by Validate, like every other
	// semantic check.
	return out, nil
}

// yamlTimestampLayouts are the timestamp forms YAML resolves (go.yaml.in/yaml/v3,
// which the collector's config loader uses too): an unquoted expires_at of an
// inline key in the collector config arrives as a time parsed with these, so
// the keys file and the CLI accept exactly the same forms. A time without a
// zone is UTC, a date alone is its midnight UTC.
var yamlTimestampLayouts = []string{
	"2006-1-2T15:4:5.999999999Z07:00",
	"2006-1-2t15:4:5.999999999Z07:00",
	"2006-1-2 15:4:5.999999999",
	"2006-1-2",
}

// ExpiresAtForms describes the accepted expires_at forms in messages.
const ExpiresAtForms = "an RFC 3339 time such as 2027-01-01T00:00:00Z (also accepted, as UTC: 2027-01-01 00:00:00 or the date 2027-01-01)"

// ParseExpiresAt reads an expires_at value: the one parser of the keys file
// and `keys create --expires`, accepting the forms the collector's YAML
// accepts for inline keys. The error does not repeat the value.
func ParseExpiresAt(s string) (time.Time, error) {
	// YAML only reads a timestamp that starts with a four-digit year and a dash.
	if len(s) > 5 && s[4] == '-' && allDigits(s[:4]) {
		for _, layout := range yamlTimestampLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, errors.New("expires_at must be " + ExpiresAtForms)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// quoteField quotes a field name for a message, unless it could be key
// material (someone pasting a key as a mapping key).
func quoteField(f string) string {
	if s := Scrub(f); s != f || len(f) > 40 {
		return "(name not shown)"
	}
	return fmt.Sprintf("%q", f)
}

// keyLike matches anything that could be a key or a long part of one.
var keyLike = regexp.MustCompile(`flm_[A-Za-z0-9_-]*|[A-Za-z0-9_+/=-]{16,}`)

// Scrub removes anything key-like from a message that may quote input. It is
// the backstop for messages written by libraries; our own messages never
// quote values in the first place.
func Scrub(msg string) string {
	return keyLike.ReplaceAllString(msg, "[redacted]")
}

// Entries returns the number of entries in the document.
func (d *Document) Entries() int { return len(d.seq.Content) }

// Append adds a key_sha256 entry (generated keys never appear in plaintext).
// scopes are written only when they differ from the default [ingest], so a
// file edited by an older version keeps its meaning.
func (d *Document) Append(name, project string, digest Digest, expiresAt time.Time, scopes []principal.Scope, comment string) {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: comment}
	m.Content = append(m.Content,
		scalar(fieldName), scalar(name),
		scalar(fieldProject), scalar(project),
		scalar(fieldKeySHA256), scalar(digest.Hex()),
	)
	if !expiresAt.IsZero() {
		m.Content = append(m.Content, scalar(fieldExpiresAt),
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: expiresAt.UTC().Format(time.RFC3339)})
	}
	if len(scopes) > 0 && !slices.Equal(scopes, principal.DefaultScopes) {
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, sc := range scopes {
			list.Content = append(list.Content, scalar(string(sc)))
		}
		m.Content = append(m.Content, scalar(fieldScopes), list)
	}
	// An empty `keys: []` is a flow sequence; appended entries read better
	// in block style.
	d.seq.Style = 0
	d.seq.Content = append(d.seq.Content, m)
}

// Revoke sets `revoked: true` on the entry called name. It returns false if
// there is no such entry.
func (d *Document) Revoke(name, comment string) bool {
	for _, item := range d.seq.Content {
		m := resolve(item)
		if m.Kind != yaml.MappingNode || fieldValue(m, fieldName) != name {
			continue
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == fieldRevoked {
				v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true", LineComment: comment}
				m.Content[i+1] = v
				return true
			}
		}
		m.Content = append(m.Content, scalar(fieldRevoked),
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true", LineComment: comment})
		return true
	}
	return false
}

func fieldValue(m *yaml.Node, field string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == field {
			return resolve(m.Content[i+1]).Value
		}
	}
	return ""
}

// Bytes renders the document.
func (d *Document) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d.doc); err != nil {
		return nil, fmt.Errorf("rendering keys file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering keys file: %w", err)
	}
	return buf.Bytes(), nil
}

func scalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

// WriteFileAtomic replaces path with data so that readers (the extension's
// watcher) see either the old or the new content, never a partial file
// (atomicfile.Write: temporary file in the same directory, sync, rename). A
// new file and its directory are created private (0600 / 0700); an existing
// file keeps its mode and its owner, or is left alone with the reason. path
// must not be a symbolic link (see ResolveLink): the rename would replace
// the link.
func WriteFileAtomic(path string, data []byte) error {
	err := atomicfile.Write(path, data, 0o600, 0o700)
	var owner *atomicfile.OwnerError
	if errors.As(err, &owner) {
		// Without the owner, `keys revoke` run as root on a file of the
		// user the collector runs as would leave a root-owned 0600 file the
		// collector cannot read: it would keep its old keys, and the
		// revocation would silently not happen.
		return fmt.Errorf("the keys file belongs to uid %d gid %d and the rewritten file could not be given that owner back (%v): "+
			"run `keys` as that user (or as root) so the collector can still read it; nothing was changed", owner.UID, owner.GID, owner.Err)
	}
	if err != nil {
		return fmt.Errorf("writing keys file %s: %w", path, err)
	}
	return nil
}

// ReadDocument reads the keys file for editing. A missing file yields a new
// empty document; exists reports which.
func ReadDocument(path string) (doc *Document, entries []Entry, exists bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return NewDocument(), nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("reading keys file: %w", err)
	}
	doc, entries, err = ParseDocument(data)
	if errors.Is(err, ErrEmptyFile) {
		return NewDocument(), nil, true, nil
	}
	if err != nil {
		return nil, nil, true, fmt.Errorf("%s: %w", path, err)
	}
	return doc, entries, true, nil
}
