package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vmRSSKiB reads VmRSS of a process from /proc.
func vmRSSKiB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rssSampler samples a process's RSS every few milliseconds until stopped.
type rssSampler struct {
	peakKiB atomic.Int64
	samples atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if kib, err := vmRSSKiB(pid); err == nil {
				s.samples.Add(1)
				if int64(kib) > s.peakKiB.Load() {
					s.peakKiB.Store(int64(kib))
				}
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) finish() (peakMiB float64, samples int64) {
	close(s.stop)
	<-s.done
	return float64(s.peakKiB.Load()) / 1024, s.samples.Load()
}

// TestOverloadIsRefusedWithBoundedMemory runs the shipped default config
// with a small memory_limiter (FALLOM_MEMORY_LIMIT_MIB=200) and sends a
// burst of large OpenRouter deliveries from many senders at once. The
// collector must refuse what it cannot take with a code OTLP clients retry
// (the memory_limiter's refusal reaches the client as 503 with Retry-After,
// which openroutermapping adds in front of it), keep its RSS bounded, never
// die, and store every span it acknowledged.
func TestOverloadIsRefusedWithBoundedMemory(t *testing.T) {
	fig := newCase(t, "overload: burst of large deliveries, memory_limiter 100 MiB")
	// The limit sits well under what the burst puts on the heap (12 senders
	// x ~9 MB bodies, decoded to several times that), so the limiter must
	// refuse however fast the exporter drains: with 200 MiB a faster SQLite
	// write path let every burst through and the case tested nothing.
	const limitMiB, spikeMiB = 100, 20
	c, key := startDefault(t, fig, "acme",
		fmt.Sprintf("FALLOM_MEMORY_LIMIT_MIB=%d", limitMiB), fmt.Sprintf("FALLOM_MEMORY_SPIKE_MIB=%d", spikeMiB))
	idleKiB, err := vmRSSKiB(c.Pid())
	require.NoError(t, err)

	const (
		promptBytes = 1_000_000 // x3 per delivery (gen_ai.prompt, span.input, trace.input)
		deliveries  = 3         // ~9 MB of JSON per request, under the 20 MiB body limit
	)
	senders := 12
	// Bursts: every sender fires perBurst prebuilt requests at once (the
	// test's own JSON encoding would otherwise pace them). The limiter
	// checks the heap once a second, so a burst can fall between two
	// checks: bursts repeat until one was refused (at most maxBursts), and
	// the soak runs all of them.
	perBurst := 4
	minBursts, maxBursts := pick(1, 6), pick(10, 10)
	var refusals, payloads, refusalsWithoutRetryAfter atomic.Int64
	ids := newIDSource(0x0e410ad000000000)
	l := newLedger()
	var retryAfter sync.Map // values seen in Retry-After
	type payload struct {
		body []byte
		keys []spanKey
	}
	var bodyBytes int
	sampler := sampleRSS(c.Pid())
	for burst := 0; burst < minBursts || (refusals.Load() == 0 && burst < maxBursts); burst++ {
		prepared := make([][]payload, senders)
		for s := range prepared {
			for range perBurst {
				td, keys := openRouterTraces(ids, deliveries, deliveryShape{promptBytes: promptBytes})
				prepared[s] = append(prepared[s], payload{jsonBody(td), keys})
			}
		}
		bodyBytes = len(prepared[0][0].body)
		var wg sync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, p := range prepared[s] {
					payloads.Add(1)
					// Retry refusals with a growing pause, as OTLP exporters
					// and OpenRouter do, a bounded number of times.
					backoff := 200 * time.Millisecond
					for attempt := 0; ; attempt++ {
						r := post(c.url, p.body, jsonType, bearer(key))
						l.record(p.keys, r)
						if r.code == http.StatusServiceUnavailable || r.code == http.StatusTooManyRequests {
							refusals.Add(1)
							if n, err := strconv.Atoi(r.retryAfter); err != nil || n <= 0 {
								refusalsWithoutRetryAfter.Add(1)
							}
						}
						if r.retryAfter != "" {
							retryAfter.Store(r.retryAfter, true)
						}
						if r.ok() || !r.retryable() || attempt == 30 {
							break
						}
						time.Sleep(backoff + time.Duration(rand.Int64N(int64(backoff))))
						backoff = min(2*backoff, 2*time.Second)
					}
				}
			}()
		}
		wg.Wait()
		fig.add(1, 0, 0, 0)
	}
	peakMiB, samples := sampler.finish()
	c.requireUp(t)

	// Every answer is a 2xx or a refusal the client retries, and says why.
	l.mu.Lock()
	answers := map[string]int{}
	for k, v := range l.answers {
		answers[k] = v
	}
	examples := l.examples
	l.mu.Unlock()
	var labels []string
	for k := range answers {
		labels = append(labels, k)
		switch k {
		case "200":
		case "503", "429":
			assert.Contains(t, examples[k], "data refused due to high memory usage", "refusal: %s", examples[k])
		default:
			t.Errorf("answer %s x%d is neither 2xx nor a retryable refusal: %s", k, answers[k], examples[k])
		}
	}
	sort.Strings(labels)
	var ra []string
	retryAfter.Range(func(k, _ any) bool { ra = append(ra, k.(string)); return true })

	// The bound. memory_limiter checks the Go heap every check_interval
	// (1 s) and refuses new data above limit - spike, but the stock
	// receiver reads and decodes a whole request before the limiter sees
	// it, and refused requests are decoded too. So the peak RSS is the
	// idle RSS (runtime, SQLite) plus the limit plus what the requests in
	// flight hold: per request the body read whole (io.ReadAll grows its
	// buffer up to 2x), the decoded pdata (~1x) and the row being written
	// (~1x), about 4x the body. The bound grows with the senders, never
	// with the number of requests: a queue or leak would break it.
	bodyMiB := float64(bodyBytes) / (1 << 20)
	boundMiB := float64(idleKiB)/1024 + float64(limitMiB) + float64(senders)*4*bodyMiB
	t.Logf("RSS: idle %.0f MiB, peak %.0f MiB over %d samples (bound %.0f MiB); %s; Retry-After values: %v",
		float64(idleKiB)/1024, peakMiB, samples, boundMiB, l.summary(), ra)
	assert.Less(t, peakMiB, boundMiB, "peak RSS over the limit plus margin")
	assert.Positive(t, answers["503"]+answers["429"], "the burst was never refused: it did not test the limiter (%s)", l.summary())
	// openroutermapping (before memory_limiter in the shipped config) adds
	// a gRPC RetryInfo to the refusal, which the receiver sends as
	// Retry-After.
	assert.Zero(t, refusalsWithoutRetryAfter.Load(), "refusals without a Retry-After of whole seconds")

	stored := storedKeys(t, openSQLite(t, c.db), "")
	checkPresence(t, fig, l, stored, 0)
	retryNote := "no Retry-After header"
	if len(ra) > 0 {
		retryNote = "Retry-After " + strings.Join(ra, ",")
	}
	fig.note("memory_limiter limit_mib %d / spike %d, %d senders, %d requests of %.1f MiB, retrying refusals: answers %v (%s; e.g. %s); peak RSS %.0f MiB (idle %.0f MiB; bound %.0f MiB = idle + limit + senders x 4 x body); never died; every acknowledged span stored once",
		limitMiB, spikeMiB, senders, payloads.Load(), bodyMiB, answersText(answers, labels), retryNote, examples["503"], peakMiB, float64(idleKiB)/1024, boundMiB)
}

func answersText(answers map[string]int, labels []string) string {
	var parts []string
	for _, k := range labels {
		parts = append(parts, fmt.Sprintf("%s x%d", k, answers[k]))
	}
	return strings.Join(parts, ", ")
}

// TestInFlightBoundShedsBeforeDecoding runs the shipped default config with
// requestguard's bound lowered to 2 (FALLOM_MAX_IN_FLIGHT_REQUESTS) and
// more concurrent senders than that. Requests over the bound must get 503
// with Retry-After and the guard's message (refused before their bodies are
// read, which is what keeps overload cheap), the clients' retries must get
// through, and every acknowledged span must be stored once.
func TestInFlightBoundShedsBeforeDecoding(t *testing.T) {
	fig := newCase(t, "overload: requestguard in-flight bound 2, 16 senders")
	c, key := startDefault(t, fig, "acme", "FALLOM_MAX_IN_FLIGHT_REQUESTS=2")
	const senders, perSender = 16, 4
	ids := newIDSource(0x0e410ad100000000)
	l := newLedger()
	var busy, busyWithoutRetryAfter atomic.Int64
	var example atomic.Value
	// Bursts until one request was shed (prebuilt bodies, all senders at
	// once); a single burst nearly always suffices.
	for burst := 0; burst < pick(1, 3) || (busy.Load() == 0 && burst < 10); burst++ {
		prepared := make([][][]byte, senders)
		keys := make([][][]spanKey, senders)
		for s := range senders {
			for range perSender {
				td, k := openRouterTraces(ids, 2, deliveryShape{promptBytes: 200_000})
				prepared[s] = append(prepared[s], jsonBody(td))
				keys[s] = append(keys[s], k)
			}
		}
		var wg sync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, body := range prepared[s] {
					backoff := 50 * time.Millisecond
					for attempt := 0; ; attempt++ {
						r := post(c.url, body, jsonType, bearer(key))
						l.record(keys[s][i], r)
						if r.code == http.StatusServiceUnavailable && bytes.Contains(r.body, []byte("collector busy")) {
							busy.Add(1)
							example.Store(string(r.body))
							if n, err := strconv.Atoi(r.retryAfter); err != nil || n <= 0 {
								busyWithoutRetryAfter.Add(1)
							}
						}
						if r.ok() || !r.retryable() || attempt == 50 {
							break
						}
						time.Sleep(backoff + time.Duration(rand.Int64N(int64(backoff))))
						backoff = min(2*backoff, time.Second)
					}
				}
			}()
		}
		wg.Wait()
		fig.add(1, 0, 0, 0)
	}
	c.requireUp(t)
	require.Positive(t, busy.Load(), "no request was shed by the in-flight bound (%s)", l.summary())
	assert.Zero(t, busyWithoutRetryAfter.Load(), "busy refusals without a Retry-After of whole seconds")
	answers := l.answersSnapshot()
	for k, n := range answers {
		if k != "200" && k != "503" {
			t.Errorf("answer %s x%d is neither 2xx nor a retryable refusal", k, n)
		}
	}
	stored := storedKeys(t, openSQLite(t, c.db), "")
	checkPresence(t, fig, l, stored, 0)
	fig.note("requestguard max_in_flight_requests 2, %d senders x %d requests, retrying: %d shed with 503 + Retry-After before the body was read (e.g. %s); %s; every acknowledged span stored once",
		senders, perSender, busy.Load(), example.Load(), l.summary())
}
