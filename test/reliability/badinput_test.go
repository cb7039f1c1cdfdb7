package reliability

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	jsonType  = "application/json"
	protoType = "application/x-protobuf"
	// maxBody is the stock confighttp default max_request_body_size (20 MiB),
	// which the shipped default config keeps.
	maxBody = 20 << 20
	// tooLargeMessage starts requestguard's 413 answer for the default limit.
	tooLargeMessage = "request body too large: more than 20971520 bytes (max_request_body_size"
	// maxValueBytes is the openroutermapping default max_value_bytes (1 MiB).
	maxValueBytes = 1 << 20
)

// rpcStatus is the google.rpc.Status the OTLP receiver answers errors with,
// decoded from JSON or protobuf according to the response Content-Type.
type rpcStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func decodeStatus(t *testing.T, r response) rpcStatus {
	t.Helper()
	var st rpcStatus
	switch r.contentType {
	case jsonType:
		require.NoError(t, json.Unmarshal(r.body, &st), "error body is not a JSON google.rpc.Status: %s", r)
	case protoType:
		var p spb.Status
		require.NoError(t, proto.Unmarshal(r.body, &p), "error body is not a protobuf google.rpc.Status: %s", r)
		st = rpcStatus{Code: int(p.GetCode()), Message: p.GetMessage()}
	default:
		t.Fatalf("error body of unexpected Content-Type: %s", r)
	}
	require.NotEmpty(t, st.Message, "error without a message: %s", r)
	return st
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// bomb streams prefix, n bytes of 'a' and suffix through a compressor: a
// small body that expands to n bytes.
func bomb(w io.WriteCloser, prefix string, n int, suffix string) {
	_, _ = io.WriteString(w, prefix)
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	for n > 0 {
		c := min(n, len(chunk))
		_, _ = w.Write(chunk[:c])
		n -= c
	}
	_, _ = io.WriteString(w, suffix)
	_ = w.Close()
}

// TestBadInput sends one collector on the shipped default config every
// kind of bad or odd OTLP/HTTP request. After each one the process must be
// up and still storing, a refused request must have stored nothing, and an
// error must say what was wrong.
func TestBadInput(t *testing.T) {
	fig := newCase(t, "bad input over OTLP/HTTP (default config)")
	c, key := startDefault(t, fig, "acme")
	db := openSQLite(t, c.db)
	ids := newIDSource(0xbad0000000000000)
	auth := bearer(key)

	// stored returns how many of keys are in the database.
	stored := func(t *testing.T, keys []spanKey) int {
		t.Helper()
		n := 0
		for _, k := range keys {
			n += countRows(t, db, `SELECT count(*) FROM spans WHERE trace_id = ? AND span_id = ?`, k.traceID, k.spanID)
		}
		return n
	}
	// healthy asserts the process is up and a good request is stored.
	healthy := func(t *testing.T) {
		t.Helper()
		c.requireUp(t)
		td, keys := openRouterTraces(ids, 1, deliveryShape{promptBytes: 100})
		r := post(c.url, jsonBody(td), jsonType, auth)
		require.Equal(t, http.StatusOK, r.code, "a good request after the bad one: %s", r)
		require.Equal(t, len(keys), stored(t, keys))
		fig.add(0, len(keys), 0, 0)
	}
	// refused asserts an error answer with a clear message, nothing stored.
	refused := func(t *testing.T, r response, code int, message string, keys []spanKey) rpcStatus {
		t.Helper()
		require.NoError(t, r.err)
		require.Equal(t, code, r.code, "%s", r)
		st := decodeStatus(t, r)
		assert.Contains(t, st.Message, message, "%s", r)
		assert.Zero(t, stored(t, keys), "a refused request left rows behind")
		return st
	}
	// accepted asserts a 2xx and every span stored once.
	accepted := func(t *testing.T, r response, keys []spanKey) {
		t.Helper()
		require.Equal(t, http.StatusOK, r.code, "%s", r)
		require.Equal(t, len(keys), stored(t, keys), "spans of an accepted request missing")
		fig.add(0, len(keys), 0, 0)
	}
	run := func(name string, f func(t *testing.T)) {
		fig.add(1, 0, 0, 0)
		t.Run(name, func(t *testing.T) {
			f(t)
			healthy(t)
		})
	}

	run("malformed JSON", func(t *testing.T) {
		td, keys := openRouterTraces(ids, 2, deliveryShape{promptBytes: 200})
		full := jsonBody(td)
		r := post(c.url, full[:len(full)/2], jsonType, auth)
		st := refused(t, r, http.StatusBadRequest, "error found in #", keys)
		assert.Equal(t, 3, st.Code, "InvalidArgument")
		r = post(c.url, []byte(`{"resourceSpans":[{]}`), jsonType, auth)
		refused(t, r, http.StatusBadRequest, "ReadObject", nil)
		r = post(c.url, nil, jsonType, auth)
		refused(t, r, http.StatusBadRequest, "ReadObject", nil)
	})

	run("wrong content type", func(t *testing.T) {
		td, keys := openRouterTraces(ids, 1, deliveryShape{})
		for _, ct := range []string{"text/plain", "", "application/xml", "application/jsonl"} {
			r := post(c.url, jsonBody(td), ct, auth)
			require.NoError(t, r.err)
			require.Equal(t, http.StatusUnsupportedMediaType, r.code, "Content-Type %q: %s", ct, r)
			// The stock receiver answers this one in plain text.
			assert.Equal(t, "text/plain", r.contentType)
			assert.Equal(t, "415 unsupported media type, supported: [application/json, application/x-protobuf]", string(r.body))
		}
		assert.Zero(t, stored(t, keys))
	})

	run("truncated protobuf", func(t *testing.T) {
		td, keys := openRouterTraces(ids, 3, deliveryShape{promptBytes: 300})
		full := protoBody(td)
		for _, cut := range []int{7, len(full) / 2, len(full) - 1} {
			r := post(c.url, full[:len(full)-cut], protoType, auth)
			assert.Equal(t, protoType, r.contentType, "a protobuf request is answered in protobuf")
			st := refused(t, r, http.StatusBadRequest, "", keys)
			assert.Equal(t, 3, st.Code, "InvalidArgument: %q", st.Message)
		}
		r := post(c.url, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, protoType, auth)
		refused(t, r, http.StatusBadRequest, "", nil)
	})

	run("gzip and zstd bodies", func(t *testing.T) {
		td, keys := openRouterTraces(ids, 2, deliveryShape{promptBytes: 4000})
		r := post(c.url, gzipBytes(jsonBody(td)), jsonType, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": "gzip"})
		accepted(t, r, keys)
		td, keys = openRouterTraces(ids, 2, deliveryShape{promptBytes: 4000})
		r = post(c.url, zstdBytes(protoBody(td)), protoType, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": "zstd"})
		accepted(t, r, keys)
		assert.Equal(t, protoType, r.contentType)
		td, keys = openRouterTraces(ids, 1, deliveryShape{})
		r = post(c.url, zstdBytes(jsonBody(td)), jsonType, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": "zstd"})
		accepted(t, r, keys)
		// An encoding the server does not decode is refused, not misread.
		td, keys = openRouterTraces(ids, 1, deliveryShape{})
		r = post(c.url, gzipBytes(jsonBody(td)), jsonType, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": "br"})
		refused(t, r, http.StatusBadRequest, "unsupported Content-Encoding: br", keys)
		// A body that is not what its Content-Encoding says.
		r = post(c.url, jsonBody(td), jsonType, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": "gzip"})
		refused(t, r, http.StatusBadRequest, "", keys)
	})

	run("decompression bomb", func(t *testing.T) {
		// ~100 KiB of gzip (~10 KiB of zstd) that expands to 5x the 20 MiB
		// limit. The stock confighttp applies max_request_body_size to the
		// decompressed stream too and stops reading there; requestguard turns
		// the receiver's 400 into 413 with a message naming the limit.
		traceID := ids.traceID()
		spanID := ids.spanID()
		prefix := fmt.Sprintf(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"%x","spanId":"%x","name":"bomb","attributes":[{"key":"x","value":{"stringValue":"`, traceID[:], spanID[:])
		keys := []spanKey{{fmt.Sprintf("%x", traceID[:]), fmt.Sprintf("%x", spanID[:])}}
		var gz bytes.Buffer
		gw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		bomb(gw, prefix, 5*maxBody, `"}}]}]}]}]}`)
		var zs bytes.Buffer
		zw, _ := zstd.NewWriter(&zs, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		bomb(zw, prefix, 5*maxBody, `"}}]}]}]}]}`)
		t.Logf("bombs: gzip %d bytes, zstd %d bytes, each expanding to %d bytes", gz.Len(), zs.Len(), 5*maxBody)
		for enc, body := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs.Bytes()} {
			r := post(c.url, body, jsonType, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": enc})
			st := refused(t, r, http.StatusRequestEntityTooLarge, tooLargeMessage, keys)
			assert.Equal(t, 3, st.Code, enc)
		}
		fig.note("decompression bomb (gzip %d B / zstd %d B -> %d MiB): reading stops at max_request_body_size of decompressed bytes; **413** `request body too large: more than %d bytes (max_request_body_size, counted after decompression) ...` (code 3)", gz.Len(), zs.Len(), 5*maxBody>>20, maxBody)
	})

	run("body over the size limit", func(t *testing.T) {
		td, keys := simpleTraces(ids, 1, "oversize")
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("blob", filler(maxBody+1024))
		body := jsonBody(td)
		r := post(c.url, body, jsonType, auth)
		st := refused(t, r, http.StatusRequestEntityTooLarge, tooLargeMessage, keys)
		assert.Equal(t, 3, st.Code)
		// The same in protobuf, answered in protobuf.
		r = post(c.url, protoBody(td), protoType, auth)
		assert.Equal(t, protoType, r.contentType)
		refused(t, r, http.StatusRequestEntityTooLarge, tooLargeMessage, keys)
		fig.note("body over max_request_body_size (%d MiB): **413** `request body too large: more than %d bytes ...` (code 3; JSON or protobuf like the request), connection closed", maxBody>>20, maxBody)
	})

	run("invalid span ids", func(t *testing.T) {
		good := ids.spanHex()
		trace := ids.traceHex()
		// Ids of the wrong length or not hex: the whole request is refused
		// by the receiver's decoder.
		for name, span := range map[string]string{
			"short trace id":  `{"traceId":"0102030405060708","spanId":"0102030405060708","name":"x"}`,
			"short span id":   `{"traceId":"` + trace + `","spanId":"01020304","name":"x"}`,
			"not hex":         `{"traceId":"zz` + trace[2:] + `","spanId":"` + good + `","name":"x"}`,
			"long span id":    `{"traceId":"` + trace + `","spanId":"` + good + `00","name":"x"}`,
			"number as id":    `{"traceId":12345,"spanId":"` + good + `","name":"x"}`,
			"base64 trace id": `{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","spanId":"` + good + `","name":"x"}`,
		} {
			body := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"` + trace + `","spanId":"` + good + `","name":"sibling"},` + span + `]}]}]}`
			r := post(c.url, []byte(body), jsonType, auth)
			st := refused(t, r, http.StatusBadRequest, "", []spanKey{{trace, good}})
			assert.Equal(t, 3, st.Code, name)
		}
		// All-zero ids decode but cannot identify a span: the exporter
		// refuses them permanently as InvalidArgument, which the stock receiver
		// maps to 400 (code 3, not retried by OTLP clients), naming the span. A valid
		// sibling in the same request is stored (once, even if resent).
		zero := fmt.Sprintf(`{"traceId":"%s","spanId":"0000000000000000","name":"zero-span-id"}`, trace)
		sibling := fmt.Sprintf(`{"traceId":"%s","spanId":"%s","name":"sibling"}`, trace, good)
		body := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[` + sibling + `,` + zero + `]}]}]}`)
		for range 2 {
			r := post(c.url, body, jsonType, auth)
			require.Equal(t, http.StatusBadRequest, r.code, "%s", r)
			st := decodeStatus(t, r)
			assert.Equal(t, 3, st.Code)
			assert.Contains(t, st.Message, `span "zero-span-id" (trace_id=`+trace+` span_id=0000000000000000): an empty (all-zero) trace_id or span_id cannot identify a span`)
			assert.False(t, r.retryable())
		}
		assert.Equal(t, 1, stored(t, []spanKey{{trace, good}}), "the valid sibling of an all-zero span")
		assert.Zero(t, countRows(t, db, `SELECT count(*) FROM spans WHERE span_id = '0000000000000000' OR trace_id = '00000000000000000000000000000000'`))
		r := post(c.url, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"no ids at all"}]}]}]}`), jsonType, auth)
		require.Equal(t, http.StatusBadRequest, r.code, "%s", r)
		assert.Contains(t, decodeStatus(t, r).Message, "cannot identify a span")
		// Upper-case hex is valid hex: accepted and stored lowercase.
		upper := strings.ToUpper(ids.spanHex())
		r = post(c.url, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"`+strings.ToUpper(trace)+`","spanId":"`+upper+`","name":"upper"}]}]}]}`), jsonType, auth)
		accepted(t, r, []spanKey{{trace, strings.ToLower(upper)}})
		fig.note("ids of the wrong length or not hex: **400** (code 3, `ID.UnmarshalJSONIter: length mismatch`), nothing stored; all-zero trace or span id: **400** (code 3, permanent, names the span) from the exporter through the stock receiver, the valid spans of the same request are stored (the OTLP receiver cannot answer partial success)")
	})

	run("10000 attributes on a span", func(t *testing.T) {
		td, keys := simpleTraces(ids, 1, "many-attributes")
		attrs := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
		for i := range 10000 {
			attrs.PutStr(fmt.Sprintf("app.attr.%05d", i), fmt.Sprintf("value-%d", i))
		}
		r := post(c.url, jsonBody(td), jsonType, auth)
		accepted(t, r, keys)
		var js string
		require.NoError(t, db.QueryRow(`SELECT attributes FROM spans WHERE span_id = ?`, keys[0].spanID).Scan(&js))
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(js), &m))
		for i := range 10000 {
			k := fmt.Sprintf("app.attr.%05d", i)
			if !assert.Equal(t, fmt.Sprintf("value-%d", i), m[k], k) {
				break
			}
		}
	})

	run("10 MB attribute values", func(t *testing.T) {
		// As the prompt: the processor caps what it writes at
		// max_value_bytes (1 MiB by default) and flags the field.
		td, keys := openRouterTraces(ids, 1, deliveryShape{})
		root := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		huge := `{"messages":[{"role":"user","content":"` + filler(10<<20) + `"}]}`
		root.Attributes().PutStr("gen_ai.prompt", huge)
		root.Attributes().PutStr("span.input", "")
		root.Attributes().PutStr("trace.input", "")
		r := post(c.url, jsonBody(td), jsonType, auth)
		accepted(t, r, keys)
		var prompt sql.NullString
		var attrs string
		require.NoError(t, db.QueryRow(`SELECT prompt, attributes FROM spans WHERE span_id = ?`, keys[0].spanID).Scan(&prompt, &attrs))
		require.True(t, prompt.Valid)
		assert.LessOrEqual(t, len(prompt.String), maxValueBytes, "prompt over max_value_bytes")
		assert.Greater(t, len(prompt.String), maxValueBytes/2, "prompt cut far below max_value_bytes")
		assert.True(t, json.Valid([]byte(prompt.String)), "a truncated prompt is still JSON")
		assert.Contains(t, prompt.String, `"truncated":true`)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(attrs), &m))
		assert.Contains(t, m["fallom.truncated"], "prompt", "the truncation is flagged in the attributes")

		// As an attribute the processor does not map: kept whole in the
		// attributes JSON ("nothing is lost"), within the body limit.
		td, keys = simpleTraces(ids, 1, "big-custom-attribute")
		big := filler(10 << 20)
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("app.blob", big)
		r = post(c.url, jsonBody(td), jsonType, auth)
		accepted(t, r, keys)
		require.NoError(t, db.QueryRow(`SELECT attributes FROM spans WHERE span_id = ?`, keys[0].spanID).Scan(&attrs))
		m = nil
		require.NoError(t, json.Unmarshal([]byte(attrs), &m))
		assert.Equal(t, len(big), len(fmt.Sprint(m["app.blob"])), "unmapped 10 MB attribute")
		fig.note("10 MB gen_ai.prompt: stored truncated to max_value_bytes (1 MiB) as a one-message JSON array marked `\"truncated\":true`, `fallom.truncated` lists `prompt`; a 10 MB attribute the processor does not map is stored whole in `attributes` (only max_request_body_size bounds it)")
	})

	run("unicode edge cases", func(t *testing.T) {
		// Raw JSON, so invalid UTF-8 and JSON escapes reach the decoder as
		// a client would send them. Each value goes into the span name, an
		// attribute key, an attribute value and session.id (a column).
		trace := ids.traceHex()
		type probe struct {
			raw   string // as written inside the JSON string
			want  string // stored text ("" = only check it is clean)
			valid bool   // stored exactly as sent
		}
		probes := map[string]probe{
			"invalid utf-8":      {raw: "bad\xff\xfeutf8"},
			"overlong encoding":  {raw: "over\xc0\xaflong"},
			"utf-8 surrogate":    {raw: "sur\xed\xa0\x80rogate"},
			"truncated sequence": {raw: "cut\xe2\x82"},
			"NUL escape":         {raw: `nul\u0000byte`},
			"lone high escape":   {raw: `lone\ud800high`},
			"lone low escape":    {raw: `lone\udc00low`},
			"escaped pair":       {raw: `pair\ud83d\ude00`, want: "pair\U0001F600", valid: true},
			"RTL override":       {raw: "rtl\u202e\u05e9\u05dc\u05d5\u05dd\u200f", want: "rtl\u202e\u05e9\u05dc\u05d5\u05dd\u200f", valid: true},
			"arabic":             {raw: "\u0645\u0631\u062d\u0628\u0627", want: "\u0645\u0631\u062d\u0628\u0627", valid: true},
			"emoji ZWJ":          {raw: "dev\U0001F469\u200d\U0001F4BB\U0001F3F3\ufe0f\u200d\U0001F308", want: "dev\U0001F469\u200d\U0001F4BB\U0001F3F3\ufe0f\u200d\U0001F308", valid: true},
			"combining marks":    {raw: "e\u0301\u0323\u0308", want: "e\u0301\u0323\u0308", valid: true},
			"BOM and controls":   {raw: "\ufeff\\t\\n\\u001b[31m", want: "\ufeff\t\n\x1b[31m", valid: true},
			"noncharacters":      {raw: "\uffff\U0010FFFF", want: "\uffff\U0010FFFF", valid: true},
		}
		var spans []string
		spanOf := map[string]string{}
		for name, p := range probes {
			sid := ids.spanHex()
			spanOf[name] = sid
			spans = append(spans, fmt.Sprintf(`{"traceId":"%s","spanId":"%s","name":"%s","attributes":[{"key":"v","value":{"stringValue":"%s"}},{"key":"k-%s","value":{"stringValue":"x"}},{"key":"session.id","value":{"stringValue":"%s"}}]}`,
				trace, sid, p.raw, p.raw, p.raw, p.raw))
		}
		neighbour := ids.spanHex()
		spans = append(spans, fmt.Sprintf(`{"traceId":"%s","spanId":"%s","name":"neighbour","attributes":[{"key":"v","value":{"stringValue":"plain"}},{"key":"session.id","value":{"stringValue":"plain-session"}}]}`, trace, neighbour))
		for _, ct := range []string{jsonType, "application/json; charset=utf-8"} {
			body := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[` + strings.Join(spans, ",") + `]}]}]}`)
			r := post(c.url, body, ct, auth)
			require.Equal(t, http.StatusOK, r.code, "%s: %s", ct, r)
			assert.Equal(t, jsonType, r.contentType)
		}
		fig.add(0, len(probes)+1, 0, 0)
		for name, p := range probes {
			var spanName, session, attrs string
			err := db.QueryRow(`SELECT name, session_id, attributes FROM spans WHERE trace_id = ? AND span_id = ?`, trace, spanOf[name]).Scan(&spanName, &session, &attrs)
			require.NoError(t, err, name)
			for col, v := range map[string]string{"name": spanName, "session_id": session, "attributes": attrs} {
				assert.True(t, utf8.ValidString(v), "%s: %s is not valid UTF-8: %q", name, col, v)
				assert.NotContains(t, v, "\x00", "%s: %s holds NUL", name, col)
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(attrs), &m), "%s: attributes JSON", name)
			if p.want != "" {
				assert.Equal(t, p.want, spanName, name)
				assert.Equal(t, p.want, session, name)
				assert.Equal(t, p.want, m["v"], name)
				assert.Contains(t, m, "k-"+p.want, name)
			}
			if !p.valid {
				assert.Contains(t, spanName, "\ufffd", "%s: replaced, not dropped silently", name)
			}
		}
		var spanName, session, attrs string
		require.NoError(t, db.QueryRow(`SELECT name, session_id, attributes FROM spans WHERE trace_id = ? AND span_id = ?`, trace, neighbour).Scan(&spanName, &session, &attrs))
		assert.Equal(t, "neighbour", spanName)
		assert.Equal(t, "plain-session", session)
		assert.JSONEq(t, `{"v":"plain","session.id":"plain-session"}`, stripFallomFlags(t, attrs))

		// The same bytes in protobuf: pdata does not check UTF-8 on decode;
		// the exporter stores U+FFFD in place of invalid bytes.
		td, keys := simpleTraces(ids, 2, "pb-unicode")
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp.SetName("pb\xff\xfe\x00name")
		sp.Attributes().PutStr("v", "pb\xc0\xafvalue\x00")
		sp.Attributes().PutStr("session.id", "s\xff")
		r := post(c.url, protoBody(td), protoType, auth)
		accepted(t, r, keys)
		require.NoError(t, db.QueryRow(`SELECT name, session_id, attributes FROM spans WHERE span_id = ?`, keys[0].spanID).Scan(&spanName, &session, &attrs))
		for _, v := range []string{spanName, session, attrs} {
			assert.True(t, utf8.ValidString(v) && !strings.Contains(v, "\x00"), "%q", v)
		}
		assert.True(t, strings.HasPrefix(spanName, "pb\ufffd") && strings.HasSuffix(spanName, "\ufffdname"), "%q", spanName)
		require.NoError(t, db.QueryRow(`SELECT name FROM spans WHERE span_id = ?`, keys[1].spanID).Scan(&spanName))
		assert.Equal(t, "pb-unicode-1", spanName)
		fig.note("unicode: valid text (RTL, Arabic, ZWJ emoji, escaped surrogate pairs, combining marks, noncharacters, controls) stored byte-exact; invalid UTF-8, NUL and lone surrogate escapes are accepted (200) and stored as U+FFFD, in JSON and protobuf; neighbouring rows unchanged")
	})

	run("charset parameter and response encoding", func(t *testing.T) {
		td, keys := openRouterTraces(ids, 1, deliveryShape{})
		r := post(c.url, jsonBody(td), "application/json; charset=utf-8", auth)
		accepted(t, r, keys)
		assert.Equal(t, jsonType, r.contentType)
		assert.JSONEq(t, `{"partialSuccess":{}}`, string(r.body))

		td, keys = openRouterTraces(ids, 1, deliveryShape{})
		r = post(c.url, protoBody(td), protoType, auth)
		accepted(t, r, keys)
		assert.Equal(t, protoType, r.contentType, "a protobuf request is answered in protobuf")
		resp := ptraceotlp.NewExportResponse()
		require.NoError(t, resp.UnmarshalProto(r.body), "response body is an ExportTraceServiceResponse")
		assert.Zero(t, resp.PartialSuccess().RejectedSpans())

		// Errors follow the request's encoding too.
		r = post(c.url, []byte("garbage"), protoType, map[string]string{})
		assert.Equal(t, http.StatusUnauthorized, r.code)
		assert.Equal(t, protoType, r.contentType, "%s", r)
		decodeStatus(t, r)

		r = post(c.url, jsonBody(td), "application/x-protobuf; charset=binary", auth)
		assert.Equal(t, http.StatusBadRequest, r.code, "JSON sent as protobuf is refused: %s", r)
	})

	run("wrong method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := httpClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "405 method not allowed, supported: [POST]", string(b))
	})

	// Nothing the cases refused is in the database: only spans of the
	// tests' own ids, each once.
	assert.Zero(t, countRows(t, db, `SELECT count(*) FROM (SELECT trace_id, span_id FROM spans GROUP BY trace_id, span_id HAVING count(*) > 1)`))
	assert.NotContains(t, c.Logs(), key)
}

// stripFallomFlags drops the processor's fallom.* flags from an attributes
// JSON object, for comparing the rest.
func stripFallomFlags(t *testing.T, js string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &m))
	for k := range m {
		if strings.HasPrefix(k, "fallom.") {
			delete(m, k)
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}
