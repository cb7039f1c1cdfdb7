package storage

import (
	"net/url"
	"regexp"
	"strings"
)

// keyValuePassword matches password=... in a libpq key=value connection
// string, quoted or not, the key in any case.
var keyValuePassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// redacted replaces a password in texts meant for people.
const redacted = "xxxxx"

// urlDSN splits a URL-form DSN (scheme://[user[:password]@]hosts[/db][?query])
// by hand rather than with net/url, which refuses what libpq accepts (several
// hosts, an unusual port) and then could not say where the password is. The
// scheme is matched case-insensitively (RFC 3986). ok is false for a
// key=value string.
type urlDSN struct {
	scheme, user, password, hostAndPath, query, fragment string
	hasPassword                                          bool
}

func parseURLDSN(dsn string) (u urlDSN, ok bool) {
	i := strings.Index(dsn, "://")
	if i <= 0 || strings.ContainsAny(dsn[:i], " =") {
		return u, false
	}
	u.scheme = dsn[:i]
	rest := dsn[i+3:]
	if j := strings.IndexByte(rest, '#'); j >= 0 {
		rest, u.fragment = rest[:j], rest[j:]
	}
	if j := strings.IndexByte(rest, '?'); j >= 0 {
		rest, u.query = rest[:j], rest[j+1:]
	}
	authorityEnd := strings.IndexByte(rest, '/')
	if authorityEnd < 0 {
		authorityEnd = len(rest)
	}
	// The user info ends at the last @ of the authority: a password may
	// itself hold an unescaped @.
	if at := strings.LastIndexByte(rest[:authorityEnd], '@'); at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		if c := strings.IndexByte(userinfo, ':'); c >= 0 {
			u.user, u.password, u.hasPassword = userinfo[:c], userinfo[c+1:], true
		} else {
			u.user = userinfo
		}
		u.user += "@"
	}
	u.hostAndPath = rest
	return u, true
}

// queryParams returns the raw key=value pairs of a query in their order.
func queryParams(query string) []string {
	if query == "" {
		return nil
	}
	return strings.Split(query, "&")
}

func isPasswordParam(kv string) (value string, ok bool) {
	k, v, _ := strings.Cut(kv, "=")
	if dk, err := url.QueryUnescape(k); err == nil {
		k = dk
	}
	return v, strings.EqualFold(strings.TrimSpace(k), "password")
}

// RedactDSN returns dsn with its password (URL user info, a password query
// parameter in any case, or a key=value password) replaced by "xxxxx", for
// logs and errors. Everything else is kept as written.
func RedactDSN(dsn string) string {
	u, ok := parseURLDSN(dsn)
	if !ok {
		return keyValuePassword.ReplaceAllString(dsn, "${1}"+redacted)
	}
	var b strings.Builder
	b.WriteString(u.scheme + "://")
	if u.hasPassword {
		b.WriteString(strings.TrimSuffix(u.user, "@") + ":" + redacted + "@")
	} else {
		b.WriteString(u.user)
	}
	b.WriteString(u.hostAndPath)
	if params := queryParams(u.query); params != nil {
		for i, kv := range params {
			if _, isPw := isPasswordParam(kv); isPw {
				k, _, _ := strings.Cut(kv, "=")
				params[i] = k + "=" + redacted
			}
		}
		b.WriteString("?" + strings.Join(params, "&"))
	}
	b.WriteString(u.fragment)
	return b.String()
}

// DSNPasswords returns every password written in dsn, as written and
// percent-decoded (an error text may quote either), so texts can be
// scrubbed of them. Empty when there is none.
func DSNPasswords(dsn string) []string {
	var raw []string
	if u, ok := parseURLDSN(dsn); ok {
		if u.hasPassword {
			raw = append(raw, u.password)
		}
		for _, kv := range queryParams(u.query) {
			if v, isPw := isPasswordParam(kv); isPw {
				raw = append(raw, v)
			}
		}
	} else {
		for _, m := range keyValuePassword.FindAllStringSubmatch(dsn, -1) {
			raw = append(raw, m[2], strings.Trim(m[2], "'"))
		}
	}
	var out []string
	for _, p := range raw {
		if p == "" {
			continue
		}
		out = append(out, p)
		if d, err := url.PathUnescape(p); err == nil && d != p {
			out = append(out, d)
		}
		if d, err := url.QueryUnescape(p); err == nil && d != p {
			out = append(out, d)
		}
	}
	return out
}

// RedactText replaces every password of dsn found in text by "xxxxx".
func RedactText(text, dsn string) string {
	for _, p := range DSNPasswords(dsn) {
		text = strings.ReplaceAll(text, p, redacted)
	}
	return text
}

// NormalizeDSN lower-cases the scheme of a URL-form PostgreSQL DSN (pgx
// recognises only "postgres://" and "postgresql://", while URL schemes are
// case-insensitive), and leaves anything else as it is.
func NormalizeDSN(dsn string) string {
	u, ok := parseURLDSN(dsn)
	if !ok {
		return dsn
	}
	if s := strings.ToLower(u.scheme); s != u.scheme && (s == "postgres" || s == "postgresql") {
		return s + dsn[len(u.scheme):]
	}
	return dsn
}
