package fallomconsoleextension

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/fallom/fallom-collector/internal/storage"
)

// The JSON query API (DESIGN 5). Field names are the column names of the
// spans table and of the views; int64 nanosecond fields are JSON strings
// (as in OTLP/JSON); costs are numbers or null.

func (c *console) apiSummary(w http.ResponseWriter, r *http.Request, p principal) error {
	q, err := parseQuery(r.URL.Query(), p.projectID, nil, true)
	if err != nil {
		return err
	}
	s, err := c.reader.Summary(r.Context(), q.filter)
	if err != nil {
		return err
	}
	return writeJSON(w, summaryJSON{s.Generations, s.Sessions, s.Customers, s.Errors, s.InputTokens, s.OutputTokens, s.TotalCostUSD})
}

type summaryJSON struct {
	Generations  int64    `json:"generations"`
	Sessions     int64    `json:"sessions"`
	Customers    int64    `json:"customers"`
	Errors       int64    `json:"errors"`
	InputTokens  int64    `json:"input_tokens"`
	OutputTokens int64    `json:"output_tokens"`
	TotalCostUSD *float64 `json:"total_cost_usd"`
}

type usageJSON struct {
	Key          *string  `json:"key"`
	Generations  int64    `json:"generations"`
	Errors       int64    `json:"errors"`
	InputTokens  int64    `json:"input_tokens"`
	OutputTokens int64    `json:"output_tokens"`
	TotalCostUSD *float64 `json:"total_cost_usd"`
}

var usageCSVHeader = []string{"key", "generations", "errors", "input_tokens", "output_tokens", "total_cost_usd"}

func (c *console) apiUsage(w http.ResponseWriter, r *http.Request, p principal) error {
	u := r.URL.Query()
	q, err := parseQuery(u, p.projectID, nil, true, "group_by", "limit", "format")
	if err != nil {
		return err
	}
	by, err := storage.ParseUsageGroup(u.Get("group_by"))
	if err != nil {
		return &badRequest{msg: err.Error()}
	}
	limit := storage.MaxPageSize
	if s := u.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > storage.MaxPageSize {
			return badRequestf("limit must be a number from 1 to %d, got %q", storage.MaxPageSize, s)
		}
	}
	rows, err := c.reader.Usage(r.Context(), q.filter, by, limit)
	if err != nil {
		return err
	}
	out := make([]usageJSON, len(rows))
	for i, u := range rows {
		out[i] = usageJSON{u.Key, u.Generations, u.Errors, u.InputTokens, u.OutputTokens, u.TotalCostUSD}
	}
	switch u.Get("format") {
	case "", "json":
	case "csv":
		return writeCSV(w, "usage-by-"+string(by), usageCSVHeader, len(out), func(i int) []string {
			x := out[i]
			return []string{csvText(x.Key), itoa(x.Generations), itoa(x.Errors), itoa(x.InputTokens), itoa(x.OutputTokens), csvFloat(x.TotalCostUSD)}
		}, nil)
	default:
		return badRequestf("format must be json or csv, got %q", u.Get("format"))
	}
	return writeJSON(w, map[string]any{"usage": out})
}

func (c *console) apiGenerations(w http.ResponseWriter, r *http.Request, p principal) error {
	q, err := parseQuery(r.URL.Query(), p.projectID, &storage.GenerationsList, true)
	if err != nil {
		return err
	}
	rows, next, err := c.reader.Generations(r.Context(), q.filter, q.page)
	if err != nil {
		return err
	}
	if q.csv {
		return writeSpansCSV(w, "generations", rows, next)
	}
	return writeJSON(w, listJSON{"generations", spansJSON(rows), next})
}

func (c *console) apiSessions(w http.ResponseWriter, r *http.Request, p principal) error {
	q, err := parseQuery(r.URL.Query(), p.projectID, &storage.SessionsList, true)
	if err != nil {
		return err
	}
	rows, next, err := c.reader.Sessions(r.Context(), q.filter, q.page)
	if err != nil {
		return err
	}
	if q.csv {
		return writeCSV(w, "sessions", sessionCSVHeader, len(rows), func(i int) []string { return sessionCSV(&rows[i]) }, next)
	}
	out := make([]sessionJSON, len(rows))
	for i := range rows {
		out[i] = toSessionJSON(&rows[i])
	}
	return writeJSON(w, listJSON{"sessions", out, next})
}

func (c *console) apiSession(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("session_id")
	s, err := c.reader.Session(r.Context(), p.projectID, id)
	if err != nil {
		return err
	}
	q, err := parseQuery(r.URL.Query(), p.projectID, &sessionGenerationsList, true)
	if err != nil {
		return err
	}
	q.filter = storage.Filter{ProjectID: p.projectID, SessionID: id}
	gens, next, err := c.reader.Generations(r.Context(), q.filter, q.page)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"session": toSessionJSON(&s), "generations": spansJSON(gens), "next_cursor": cursorText(next)})
}

// sessionGenerationsList is the call-by-call list of a session: start
// order, oldest first.
var sessionGenerationsList = func() storage.ListSpec {
	l := storage.GenerationsList
	l.DefaultDesc = false
	return l
}()

func (c *console) apiCustomers(w http.ResponseWriter, r *http.Request, p principal) error {
	q, err := parseQuery(r.URL.Query(), p.projectID, &storage.CustomersList, true)
	if err != nil {
		return err
	}
	rows, next, err := c.reader.Customers(r.Context(), q.filter, q.page)
	if err != nil {
		return err
	}
	if q.csv {
		return writeCSV(w, "customers", customerCSVHeader, len(rows), func(i int) []string { return customerCSV(&rows[i]) }, next)
	}
	out := make([]customerJSON, len(rows))
	for i := range rows {
		out[i] = toCustomerJSON(&rows[i])
	}
	return writeJSON(w, listJSON{"customers", out, next})
}

func (c *console) apiCustomer(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("customer_id")
	cu, err := c.reader.Customer(r.Context(), p.projectID, id)
	if err != nil {
		return err
	}
	q, err := parseQuery(r.URL.Query(), p.projectID, &storage.SessionsList, true)
	if err != nil {
		return err
	}
	q.filter = storage.Filter{ProjectID: p.projectID, CustomerID: id}
	rows, next, err := c.reader.Sessions(r.Context(), q.filter, q.page)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, len(rows))
	for i := range rows {
		out[i] = toSessionJSON(&rows[i])
	}
	return writeJSON(w, map[string]any{"customer": toCustomerJSON(&cu), "sessions": out, "next_cursor": cursorText(next)})
}

func (c *console) apiTrace(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := noParams(r); err != nil {
		return err
	}
	spans, err := c.reader.Trace(r.Context(), p.projectID, r.PathValue("trace_id"), storage.MaxTraceSpans)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"spans": spansJSON(spans)})
}

func noParams(r *http.Request) error {
	for name := range r.URL.Query() {
		return badRequestf("unknown query parameter %q", name)
	}
	return nil
}

// listJSON is a page of a list: {"<name>": [...], "next_cursor": ...}.
type listJSON struct {
	name string
	rows any
	next *storage.Cursor
}

func (l listJSON) MarshalJSON() ([]byte, error) {
	rows, err := json.Marshal(l.rows)
	if err != nil {
		return nil, err
	}
	next, _ := json.Marshal(cursorText(l.next))
	name, _ := json.Marshal(l.name)
	var b bytes.Buffer
	b.WriteString("{")
	b.Write(name)
	b.WriteString(":")
	b.Write(rows)
	b.WriteString(`,"next_cursor":`)
	b.Write(next)
	b.WriteString("}")
	return b.Bytes(), nil
}

func cursorText(c *storage.Cursor) *string {
	if c == nil {
		return nil
	}
	s := c.Encode()
	return &s
}

type sessionJSON struct {
	ProjectID         string   `json:"project_id"`
	SessionID         string   `json:"session_id"`
	CustomerID        *string  `json:"customer_id"`
	Generations       int64    `json:"generations"`
	Errors            int64    `json:"errors"`
	InputTokens       *int64   `json:"input_tokens"`
	OutputTokens      *int64   `json:"output_tokens"`
	TotalCostUSD      *float64 `json:"total_cost_usd"`
	FirstSeenUnixNano int64    `json:"first_seen_unix_nano,string"`
	LastSeenUnixNano  int64    `json:"last_seen_unix_nano,string"`
}

func toSessionJSON(s *storage.SessionRow) sessionJSON {
	return sessionJSON{s.ProjectID, s.SessionID, s.CustomerID, s.Generations, s.Errors, s.InputTokens, s.OutputTokens,
		s.TotalCostUSD, s.FirstSeenUnixNano, s.LastSeenUnixNano}
}

var sessionCSVHeader = []string{"project_id", "session_id", "customer_id", "generations", "errors", "input_tokens", "output_tokens",
	"total_cost_usd", "first_seen_unix_nano", "last_seen_unix_nano"}

func sessionCSV(s *storage.SessionRow) []string {
	return []string{csvText(&s.ProjectID), csvText(&s.SessionID), csvText(s.CustomerID), itoa(s.Generations), itoa(s.Errors),
		csvInt(s.InputTokens), csvInt(s.OutputTokens), csvFloat(s.TotalCostUSD), itoa(s.FirstSeenUnixNano), itoa(s.LastSeenUnixNano)}
}

type customerJSON struct {
	ProjectID         string   `json:"project_id"`
	CustomerID        string   `json:"customer_id"`
	Sessions          int64    `json:"sessions"`
	Generations       int64    `json:"generations"`
	InputTokens       *int64   `json:"input_tokens"`
	OutputTokens      *int64   `json:"output_tokens"`
	TotalCostUSD      *float64 `json:"total_cost_usd"`
	FirstSeenUnixNano int64    `json:"first_seen_unix_nano,string"`
	LastSeenUnixNano  int64    `json:"last_seen_unix_nano,string"`
}

func toCustomerJSON(c *storage.CustomerRow) customerJSON {
	return customerJSON{c.ProjectID, c.CustomerID, c.Sessions, c.Generations, c.InputTokens, c.OutputTokens, c.TotalCostUSD,
		c.FirstSeenUnixNano, c.LastSeenUnixNano}
}

var customerCSVHeader = []string{"project_id", "customer_id", "sessions", "generations", "input_tokens", "output_tokens",
	"total_cost_usd", "first_seen_unix_nano", "last_seen_unix_nano"}

func customerCSV(c *storage.CustomerRow) []string {
	return []string{csvText(&c.ProjectID), csvText(&c.CustomerID), itoa(c.Sessions), itoa(c.Generations), csvInt(c.InputTokens),
		csvInt(c.OutputTokens), csvFloat(c.TotalCostUSD), itoa(c.FirstSeenUnixNano), itoa(c.LastSeenUnixNano)}
}

// spanJSON is one spans row as a JSON object with the columns in table
// order; built from storage.Columns so a new column appears by itself.
type spanJSON struct{ s *storage.Span }

func spansJSON(rows []storage.Span) []spanJSON {
	out := make([]spanJSON, len(rows))
	for i := range rows {
		out[i] = spanJSON{&rows[i]}
	}
	return out
}

func isNanoColumn(name string) bool { return strings.HasSuffix(name, "_unix_nano") }

func (j spanJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range j.s.Values() {
		col := storage.Columns[i]
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(col.Name)
		b.Write(name)
		b.WriteByte(':')
		if err := writeColumnJSON(&b, col, v); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeColumnJSON(b *bytes.Buffer, col storage.Column, v any) error {
	switch x := v.(type) {
	case int64:
		if isNanoColumn(col.Name) {
			b.WriteString(`"` + strconv.FormatInt(x, 10) + `"`)
			return nil
		}
	case *int64:
		if x != nil && isNanoColumn(col.Name) {
			b.WriteString(`"` + strconv.FormatInt(*x, 10) + `"`)
			return nil
		}
	case string:
		if col.Type == storage.JSON && json.Valid([]byte(x)) {
			// An object of the attributes as stored (compacted, so the
			// text cannot carry anything but JSON).
			return json.Compact(b, []byte(x))
		}
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(enc)
	return nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// writeJSONBody writes v after the header was sent.
func writeJSONBody(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(body, '\n'))
	return err
}

// writeCSV writes a page of a list as CSV (RFC 4180); the next page's
// cursor is in the X-Next-Cursor header.
func writeCSV(w http.ResponseWriter, name string, header []string, n int, row func(int) []string, next *storage.Cursor) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write(header)
	for i := 0; i < n; i++ {
		_ = cw.Write(row(i))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	if next != nil {
		w.Header().Set("X-Next-Cursor", next.Encode())
	}
	_, _ = w.Write(buf.Bytes())
	return nil
}

func writeSpansCSV(w http.ResponseWriter, name string, rows []storage.Span, next *storage.Cursor) error {
	header := make([]string, len(storage.Columns))
	for i, c := range storage.Columns {
		header[i] = c.Name
	}
	return writeCSV(w, name, header, len(rows), func(i int) []string {
		vals := rows[i].Values()
		out := make([]string, len(vals))
		for j, v := range vals {
			out[j] = csvValue(v)
		}
		return out
	}, next)
}

func csvValue(v any) string {
	switch x := v.(type) {
	case string:
		return csvText(&x)
	case *string:
		return csvText(x)
	case int64:
		return itoa(x)
	case *int64:
		return csvInt(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case *float64:
		return csvFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case *bool:
		if x == nil {
			return ""
		}
		return strconv.FormatBool(*x)
	}
	return ""
}

// csvText neutralizes spreadsheet formulas: a text cell starting with = + -
// @ or a control character is prefixed with a quote, so opening the file
// in a spreadsheet shows the text instead of running it (stored text is
// hostile). Numbers are written by the numeric helpers, untouched.
func csvText(s *string) string {
	if s == nil || *s == "" {
		return ""
	}
	switch (*s)[0] {
	case '=', '+', '-', '@', '\t', '\r', '\n':
		return "'" + *s
	}
	return *s
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func csvInt(v *int64) string {
	if v == nil {
		return ""
	}
	return itoa(*v)
}

func csvFloat(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}
