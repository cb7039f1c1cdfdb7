package storage

import (
	"net/url"
	"regexp"
	"strings"
)

// keyValuePassword matches password=... in a libpq key=value connection
// string, quoted or not.
var keyValuePassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactDSN returns dsn with its password (URL user info, ?password= query
// parameter, or key=value password) replaced by "xxxxx", for logs and
// errors.
func RedactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Cannot tell where the password is: show only the scheme.
			return dsn[:strings.Index(dsn, "://")+3] + "(unparsable URL hidden)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return keyValuePassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// DSNPassword extracts the password of a postgres DSN ("" when none or
// unparsable), so error texts can be scrubbed of it.
func DSNPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
		if p := u.Query().Get("password"); p != "" {
			return p
		}
	}
	if m := keyValuePassword.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[2], "'")
	}
	return ""
}
