package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// Issue 13 item 2, on the built binary and its default config: two projects
// send at once; one of them sends requests holding spans that can never be
// stored among good ones. Every request of the other project is answered 2xx
// and stored exactly once; each bad request is answered for its own spans
// only, and its good spans are stored as its answer says.

// isolationRequest is one OTLP/JSON request: one trace of generation spans.
type isolationRequest struct {
	project string
	trace   string // 32 hex digits
	good    int    // generation spans that can be stored
	// zeroSpanID and zeroTraceID add a span whose span_id, or trace_id,
	// is all zero: nothing can identify it, so it can never be stored.
	// (Through the binary this is what is refused: every other value the
	// storage would refuse is cut by the processor or kept in the
	// attributes JSON by the exporter.)
	zeroSpanID, zeroTraceID bool
}

func (r isolationRequest) body(t *testing.T) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "isolation-e2e")
	ss := rs.ScopeSpans().AppendEmpty()
	var tid pcommon.TraceID
	copy(tid[:], mustHex(t, r.trace))
	start := time.Now().Add(-time.Minute)
	add := func(tid pcommon.TraceID, id uint64) {
		span := ss.Spans().AppendEmpty()
		span.SetName("chat gpt-4o-mini")
		span.SetTraceID(tid)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], id)
		span.SetSpanID(sid)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
		a := span.Attributes()
		a.PutStr("gen_ai.operation.name", "chat")
		a.PutStr("gen_ai.provider.name", "openai")
		a.PutStr("gen_ai.request.model", "gpt-4o-mini")
		a.PutStr("gen_ai.conversation.id", "sess-"+r.project)
		a.PutInt("gen_ai.usage.input_tokens", 10)
		a.PutInt("gen_ai.usage.output_tokens", 2)
	}
	for i := 1; i <= r.good; i++ {
		add(tid, uint64(i))
	}
	if r.zeroSpanID {
		add(tid, 0)
	}
	if r.zeroTraceID {
		add(pcommon.TraceID{}, 0xbad)
	}
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

func (r isolationRequest) refused() int {
	n := 0
	if r.zeroSpanID {
		n++
	}
	if r.zeroTraceID {
		n++
	}
	return n
}

type isolationAnswer struct {
	req  isolationRequest
	code int
	body string
}

// postTraces sends one OTLP/JSON request; safe in any goroutine.
func postTraces(addr, key string, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestBadSpanFailsOnlyItsOwnRequest(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.yaml")
	keys := map[string]string{
		"good": collectortest.CreateKey(t, keysFile, "good", "good-key"),
		"bad":  collectortest.CreateKey(t, keysFile, "bad", "bad-key"),
	}
	in := startIn(t, dir, keys["good"], []string{})

	// Project "good": 8 senders x 25 requests of 3 spans. Project "bad":
	// 2 senders x 20 requests of 4 good spans plus refused ones, sent
	// meanwhile, so requests of both arrive within the same milliseconds.
	const goodSenders, goodPerSender, goodSpans = 8, 25, 3
	const badSenders, badPerSender, badGood = 2, 20, 4
	var reqs [][]isolationRequest
	for s := range goodSenders {
		var list []isolationRequest
		for i := range goodPerSender {
			list = append(list, isolationRequest{project: "good", trace: fmt.Sprintf("a%07x%024x", s, i+1), good: goodSpans})
		}
		reqs = append(reqs, list)
	}
	for s := range badSenders {
		var list []isolationRequest
		for i := range badPerSender {
			list = append(list, isolationRequest{project: "bad", trace: fmt.Sprintf("b%07x%024x", s, i+1), good: badGood,
				zeroSpanID: i%2 == 0, zeroTraceID: i%3 != 1})
		}
		reqs = append(reqs, list)
	}

	answers := make(chan isolationAnswer, goodSenders*goodPerSender+badSenders*badPerSender)
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	for _, list := range reqs {
		bodies := make([][]byte, len(list))
		for i, r := range list {
			bodies[i] = r.body(t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			for i, r := range list {
				code, body, err := postTraces(in.ep.HTTP, keys[r.project], bodies[i])
				if err != nil {
					body = err.Error()
				}
				answers <- isolationAnswer{req: r, code: code, body: body}
			}
		}()
	}
	close(startLine)
	wg.Wait()
	close(answers)

	db := in.db(t)
	var goodFailed, badRequests int
	logged := false
	for a := range answers {
		stored := count(t, db, `SELECT count(*) FROM spans WHERE project_id = ? AND trace_id = ?`, a.req.project, a.req.trace)
		if a.req.project == "good" {
			if !assert.Equal(t, http.StatusOK, a.code, "a request of project good, which sent nothing wrong: %s", a.body) {
				goodFailed++
			}
			assert.Equal(t, goodSpans, stored, "spans of good request %s", a.req.trace)
			continue
		}
		badRequests++
		refused := a.req.refused()
		if refused == 0 {
			assert.Equal(t, http.StatusOK, a.code, a.body)
			assert.Equal(t, badGood, stored)
			continue
		}
		// A request holding spans that can never be stored is answered 400
		// (the sender must not retry it) with a message that counts its own
		// spans only, names what was refused and says what was stored: its
		// good spans, all of them.
		require.Equal(t, http.StatusBadRequest, a.code, "bad request %s: %s", a.req.trace, a.body)
		if a.req.zeroSpanID && a.req.zeroTraceID && !logged {
			t.Logf("answer of a request with both kinds of refused spans: %s", a.body)
			logged = true
		}
		want := fmt.Sprintf("%d of %d spans stored, %d refused", badGood, badGood+refused, refused)
		assert.Contains(t, a.body, want, "bad request %s", a.req.trace)
		assert.Equal(t, badGood, stored, "bad request %s: its answer says its good spans were stored", a.req.trace)
		if a.req.zeroSpanID {
			assert.Contains(t, a.body, "trace_id="+a.req.trace+" span_id=0000000000000000")
		}
		if a.req.zeroTraceID {
			assert.Contains(t, a.body, "trace_id=00000000000000000000000000000000 span_id=0000000000000bad")
		}
		// Another request's span never appears in this answer.
		for _, named := range regexp.MustCompile(`trace_id=([0-9a-f]{32})`).FindAllStringSubmatch(a.body, -1) {
			if named[1] != strings.Repeat("0", 32) {
				assert.Equal(t, a.req.trace, named[1], "the answer of %s names another request's span", a.req.trace)
			}
		}
	}
	assert.Equal(t, goodSenders*goodPerSender+badSenders*badPerSender, goodSenders*goodPerSender+badRequests)
	assert.Zero(t, goodFailed, "requests of project good answered with an error")

	// Stored exactly once: one row per span, and usage_daily counts each
	// generation once (a request answered with an error and retried, or
	// merged twice, would count again).
	assert.Equal(t, goodSenders*goodPerSender*goodSpans, count(t, db, `SELECT count(*) FROM spans WHERE project_id = 'good'`))
	assert.Equal(t, goodSenders*goodPerSender*goodSpans, count(t, db, `SELECT coalesce(sum(generations), 0) FROM usage_daily WHERE project_id = 'good'`))
	assert.Equal(t, badSenders*badPerSender*badGood, count(t, db, `SELECT count(*) FROM spans WHERE project_id = 'bad'`))
	assert.Equal(t, badSenders*badPerSender*badGood, count(t, db, `SELECT coalesce(sum(generations), 0) FROM usage_daily WHERE project_id = 'bad'`))
	assert.Zero(t, count(t, db, `SELECT count(*) FROM spans WHERE span_id = '0000000000000000' OR trace_id = '00000000000000000000000000000000'`))
}
