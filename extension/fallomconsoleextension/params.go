package fallomconsoleextension

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// badRequest is an error caused by the request (400), with a message for
// the caller.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badRequestf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// maxFilterLen bounds a filter value (ids are at most 256 characters).
const maxFilterLen = 512

// filterParams are the filters of DESIGN 5 with their column.
var filterParams = []string{"customer_id", "session_id", "model", "provider", "status_code", "q"}

// query is the parsed query string of a list, an aggregate or a page.
type query struct {
	filter storage.Filter
	// fromText and toText are the from and to values as given, so pages
	// can show them back.
	fromText, toText string
	page             storage.Page
	sortText         string
	cursorText       string
	csv              bool
}

// parseQuery reads the filters (and, for lists, limit, cursor, sort and
// format) of u for list l (nil: not a list). strict refuses parameters it
// does not know (the API; pages ignore them).
func parseQuery(u url.Values, project string, l *storage.ListSpec, strict bool, extra ...string) (query, error) {
	q := query{filter: storage.Filter{ProjectID: project}}
	known := map[string]bool{"from": true, "to": true}
	for _, p := range filterParams {
		known[p] = true
	}
	for _, p := range extra {
		known[p] = true
	}
	if l != nil {
		for _, p := range []string{"limit", "cursor", "sort", "format"} {
			known[p] = true
		}
	}
	for name, vals := range u {
		if !known[name] {
			if strict {
				return q, badRequestf("unknown query parameter %q", name)
			}
			continue
		}
		if len(vals) > 1 {
			return q, badRequestf("query parameter %q is given %d times", name, len(vals))
		}
		if len(vals[0]) > maxFilterLen {
			return q, badRequestf("query parameter %q is longer than %d bytes", name, maxFilterLen)
		}
	}
	var err error
	if q.filter.From, q.fromText, err = parseTime(u, "from"); err != nil {
		return q, err
	}
	if q.filter.To, q.toText, err = parseTime(u, "to"); err != nil {
		return q, err
	}
	f := &q.filter
	f.CustomerID, f.SessionID, f.Model, f.Provider = u.Get("customer_id"), u.Get("session_id"), u.Get("model"), u.Get("provider")
	f.StatusCode, f.Q = strings.ToUpper(u.Get("status_code")), u.Get("q")
	switch f.StatusCode {
	case "", "UNSET", "OK", "ERROR":
	default:
		return q, badRequestf("status_code must be UNSET, OK or ERROR, got %q", u.Get("status_code"))
	}
	if l == nil {
		return q, nil
	}
	if s := u.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > storage.MaxPageSize {
			return q, badRequestf("limit must be a number from 1 to %d, got %q", storage.MaxPageSize, s)
		}
		q.page.Limit = n
	}
	q.sortText = u.Get("sort")
	if q.page.Sort, q.page.Desc, err = l.ParseSort(q.sortText); err != nil {
		return q, &badRequest{msg: err.Error()}
	}
	if q.cursorText = u.Get("cursor"); q.cursorText != "" {
		c, err := storage.ParseCursor(q.cursorText)
		if err != nil {
			return q, &badRequest{msg: err.Error()}
		}
		q.page.After = c
	}
	switch u.Get("format") {
	case "", "json":
	case "csv":
		q.csv = true
	default:
		return q, badRequestf("format must be json or csv, got %q", u.Get("format"))
	}
	return q, nil
}

func parseTime(u url.Values, name string) (*int64, string, error) {
	s := u.Get(name)
	if s == "" {
		return nil, "", nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, s, badRequestf("%s must be an RFC 3339 time such as 2026-11-02T10:00:00Z, got %q", name, s)
	}
	if t.Year() < 1678 || t.Year() > 2261 {
		return nil, s, badRequestf("%s must be between the years 1678 and 2261 (nanoseconds since 1970 in 64 bits), got %q", name, s)
	}
	ns := t.UnixNano()
	return &ns, s, nil
}
