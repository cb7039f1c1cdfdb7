package loadgen

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Hard bounds, whatever the caller asks: a load run always stops by itself.
const (
	MaxDuration    = 30 * time.Minute
	MaxConcurrency = 4096
	maxLatencies   = 4 << 20 // latency samples kept per run (32 MiB)
)

// Config is one load run.
type Config struct {
	// URL is the OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces.
	// Only loopback hosts are accepted.
	URL string
	// APIKey is sent as "Authorization: Bearer <APIKey>" when not empty.
	APIKey string
	// Concurrency is the number of connections (closed loop: each sends its
	// next request when the previous one is answered).
	Concurrency int
	// Rate, when > 0, switches to open loop: requests start at this rate per
	// second whatever the answers, with at most MaxInFlight outstanding;
	// requests due while MaxInFlight are outstanding are not sent and are
	// counted as Shed. This is how a fleet of independent senders (OpenRouter
	// delivering asynchronously) overloads a collector.
	Rate        float64
	MaxInFlight int
	// Duration and Requests bound the run; at least one is required. The run
	// stops at whichever comes first.
	Duration time.Duration
	Requests int64
	// DeliveriesPerRequest is 1 for OpenRouter (one delivery per request).
	DeliveriesPerRequest int
	// Timeout bounds one request (default 10 s, the OTLP exporters' default).
	Timeout  time.Duration
	Delivery DeliveryConfig
}

// Latency summarises request latencies, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Result is what a run observed. Only spans in requests answered 2xx (minus
// any rejected_spans the collector reported as a partial success) count as
// acknowledged.
type Result struct {
	Requests      int64         `json:"requests"` // requests sent (answered or not)
	SentSpans     int64         `json:"sent_spans"`
	AckedSpans    int64         `json:"acked_spans"`
	RejectedSpans int64         `json:"rejected_spans"` // partial success rejections inside 2xx answers
	Elapsed       time.Duration `json:"elapsed_ns"`
	SpansPerSec   float64       `json:"acked_spans_per_s"`
	// LatencyOK covers 2xx answers, LatencyAll every answered request.
	LatencyOK  Latency `json:"latency_ok"`
	LatencyAll Latency `json:"latency_all"`
	// Status counts answers by HTTP status (2xx included); RetryAfter counts,
	// per status, the answers that carried a Retry-After header.
	Status     map[int]int64 `json:"status"`
	RetryAfter map[int]int64 `json:"retry_after"`
	// TransportErrors counts requests that got no HTTP answer, by cause
	// (timeout, refused, reset, other).
	TransportErrors map[string]int64 `json:"transport_errors"`
	// Shed counts open-loop requests not sent because MaxInFlight were
	// outstanding.
	Shed int64 `json:"shed"`
	// ErrorSamples holds, per non-2xx status, the first answer body seen;
	// TransportSamples, per cause, the first error. They say why, e.g.
	// which component refused the data.
	ErrorSamples     map[int]string    `json:"error_samples,omitempty"`
	TransportSamples map[string]string `json:"transport_samples,omitempty"`
}

// Errors is the number of requests that were not answered 2xx.
func (r Result) Errors() int64 {
	var n int64
	for code, c := range r.Status {
		if code < 200 || code > 299 {
			n += c
		}
	}
	for _, c := range r.TransportErrors {
		n += c
	}
	return n
}

// CheckLoopback rejects any target that is not on this machine's loopback.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("target %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target %q: scheme must be http or https", rawURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("target %q: no host", rawURL)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("target %q: only loopback addresses are allowed", rawURL)
		}
		return nil
	}
	if host != "localhost" {
		return fmt.Errorf("target %q: only loopback hosts (127.0.0.0/8, ::1, localhost) are allowed", rawURL)
	}
	return nil
}

func (c *Config) validate() error {
	if err := CheckLoopback(c.URL); err != nil {
		return err
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		return errors.New("a run needs a duration or a request count")
	}
	if c.Duration > MaxDuration {
		return fmt.Errorf("duration %v exceeds the %v bound", c.Duration, MaxDuration)
	}
	if c.Rate < 0 {
		return fmt.Errorf("rate %v: must not be negative", c.Rate)
	}
	if c.Rate == 0 && (c.Concurrency < 1 || c.Concurrency > MaxConcurrency) {
		return fmt.Errorf("concurrency %d: must be between 1 and %d", c.Concurrency, MaxConcurrency)
	}
	if c.Rate > 0 && (c.MaxInFlight < 1 || c.MaxInFlight > MaxConcurrency) {
		return fmt.Errorf("max in flight %d: must be between 1 and %d", c.MaxInFlight, MaxConcurrency)
	}
	if c.DeliveriesPerRequest < 0 || c.DeliveriesPerRequest > 10000 {
		return fmt.Errorf("deliveries per request %d: must be between 1 and 10000", c.DeliveriesPerRequest)
	}
	return c.Delivery.Validate()
}

// Run sends load as configured and returns what was observed. It stops at
// the configured bound or when ctx is done, and always waits for the requests
// it started.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.DeliveriesPerRequest == 0 {
		cfg.DeliveriesPerRequest = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	gen, err := NewGenerator(cfg.Delivery)
	if err != nil {
		return Result{}, err
	}
	conns := cfg.Concurrency
	if cfg.Rate > 0 {
		conns = cfg.MaxInFlight
	}
	transport := &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cfg.Timeout}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(runCtx, cfg.Duration)
		defer cancel()
	} else {
		runCtx, cancel = context.WithTimeout(runCtx, MaxDuration)
		defer cancel()
	}

	s := &sender{cfg: cfg, gen: gen, client: client}
	start := time.Now()
	if cfg.Rate > 0 {
		s.openLoop(runCtx)
	} else {
		s.closedLoop(runCtx)
	}
	res := s.result(time.Since(start))
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// sender holds the shared counters of one run.
type sender struct {
	cfg    Config
	gen    *Generator
	client *http.Client

	requests, sentSpans, ackedSpans, rejectedSpans, shed atomic.Int64

	mu              sync.Mutex
	status          map[int]int64
	retryAfter      map[int]int64
	transportErrors map[string]int64
	errSamples      map[int]string
	transSamples    map[string]string
	latOK, latAll   []time.Duration
}

// worker is the per-goroutine state: its own random source and buffers.
type worker struct {
	rng          *rand.Rand
	buf          []byte
	latOK        []time.Duration
	latAll       []time.Duration
	status       map[int]int64
	retryAfter   map[int]int64
	transportErr map[string]int64
	errSample    map[int]string
	transSample  map[string]string
}

func newWorker() *worker {
	var seed [16]byte
	_, _ = crand.Read(seed[:]) // crypto/rand never fails on Linux
	return &worker{
		rng:          rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		status:       map[int]int64{},
		retryAfter:   map[int]int64{},
		transportErr: map[string]int64{},
		errSample:    map[int]string{},
		transSample:  map[string]string{},
	}
}

const sampleLen = 300

func clip(s string) string {
	if len(s) > sampleLen {
		return s[:sampleLen] + "..."
	}
	return s
}

func (w *worker) transportError(err error) {
	cause := classify(err)
	w.transportErr[cause]++
	if _, ok := w.transSample[cause]; !ok {
		w.transSample[cause] = clip(err.Error())
	}
}

// claim reserves one request against the Requests bound.
func (s *sender) claim() bool {
	n := s.requests.Add(1)
	if s.cfg.Requests > 0 && n > s.cfg.Requests {
		s.requests.Add(-1)
		return false
	}
	return true
}

func (s *sender) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker()
			defer s.merge(w)
			for ctx.Err() == nil && s.claim() {
				// The request itself is not cancelled at the deadline: an
				// answered request is counted whatever its timing, and the
				// client timeout still bounds it.
				s.do(context.WithoutCancel(ctx), w)
			}
		}()
	}
	wg.Wait()
}

func (s *sender) openLoop(ctx context.Context) {
	var wg sync.WaitGroup
	slots := make(chan *worker, s.cfg.MaxInFlight)
	for range s.cfg.MaxInFlight {
		slots <- newWorker()
	}
	start := time.Now()
	var due int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
loop:
	for {
		target := int64(s.cfg.Rate * time.Since(start).Seconds())
		for ; due < target; due++ {
			if !s.claim() {
				break loop
			}
			select {
			case w := <-slots:
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Outstanding requests finish even after the run's
					// deadline, so their answers are counted.
					s.do(context.WithoutCancel(ctx), w)
					slots <- w
				}()
			default:
				s.requests.Add(-1)
				s.shed.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
	}
	wg.Wait()
	close(slots)
	for w := range slots {
		s.merge(w)
	}
}

// do sends one request and records its outcome in w.
func (s *sender) do(ctx context.Context, w *worker) {
	var spans int
	w.buf, spans = s.gen.Payload(w.buf[:0], w.rng, s.cfg.DeliveriesPerRequest, time.Now())
	s.sentSpans.Add(int64(spans))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(w.buf))
	if err != nil {
		w.transportError(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.APIKey)
	}
	t0 := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		w.transportError(err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	lat := time.Since(t0)
	w.status[resp.StatusCode]++
	if resp.Header.Get("Retry-After") != "" {
		w.retryAfter[resp.StatusCode]++
	}
	if len(w.latAll) < maxLatencies/s.workers() {
		w.latAll = append(w.latAll, lat)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if _, ok := w.errSample[resp.StatusCode]; !ok {
			w.errSample[resp.StatusCode] = clip(string(body))
		}
		return
	}
	rejected := rejectedSpans(body)
	if rejected > int64(spans) {
		rejected = int64(spans)
	}
	s.rejectedSpans.Add(rejected)
	s.ackedSpans.Add(int64(spans) - rejected)
	if len(w.latOK) < maxLatencies/s.workers() {
		w.latOK = append(w.latOK, lat)
	}
}

func (s *sender) workers() int {
	if s.cfg.Rate > 0 {
		return s.cfg.MaxInFlight
	}
	return s.cfg.Concurrency
}

// rejectedSpans reads partialSuccess.rejectedSpans from an OTLP JSON answer
// (an int64, which protojson writes as a string and others as a number).
func rejectedSpans(body []byte) int64 {
	if !bytes.Contains(body, []byte("rejectedSpans")) {
		return 0
	}
	var r struct {
		PartialSuccess struct {
			RejectedSpans json.RawMessage `json:"rejectedSpans"`
		} `json:"partialSuccess"`
	}
	if json.Unmarshal(body, &r) != nil {
		return 0
	}
	raw := bytes.Trim(r.PartialSuccess.RejectedSpans, `"`)
	n, _ := strconv.ParseInt(string(raw), 10, 64)
	return n
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	default:
		return "other"
	}
}

func (s *sender) merge(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == nil {
		s.status, s.retryAfter, s.transportErrors = map[int]int64{}, map[int]int64{}, map[string]int64{}
		s.errSamples, s.transSamples = map[int]string{}, map[string]string{}
	}
	for k, v := range w.errSample {
		if _, ok := s.errSamples[k]; !ok {
			s.errSamples[k] = v
		}
	}
	for k, v := range w.transSample {
		if _, ok := s.transSamples[k]; !ok {
			s.transSamples[k] = v
		}
	}
	for k, v := range w.status {
		s.status[k] += v
	}
	for k, v := range w.retryAfter {
		s.retryAfter[k] += v
	}
	for k, v := range w.transportErr {
		s.transportErrors[k] += v
	}
	s.latOK = append(s.latOK, w.latOK...)
	s.latAll = append(s.latAll, w.latAll...)
}

func (s *sender) result(elapsed time.Duration) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Result{
		Requests:         s.requests.Load(),
		SentSpans:        s.sentSpans.Load(),
		AckedSpans:       s.ackedSpans.Load(),
		RejectedSpans:    s.rejectedSpans.Load(),
		Shed:             s.shed.Load(),
		Elapsed:          elapsed,
		Status:           nonNil(s.status),
		RetryAfter:       nonNil(s.retryAfter),
		TransportErrors:  nonNil(s.transportErrors),
		LatencyOK:        summarize(s.latOK),
		LatencyAll:       summarize(s.latAll),
		ErrorSamples:     s.errSamples,
		TransportSamples: s.transSamples,
	}
	if elapsed > 0 {
		r.SpansPerSec = float64(r.AckedSpans) / elapsed.Seconds()
	}
	return r
}

func nonNil[K comparable](m map[K]int64) map[K]int64 {
	if m == nil {
		return map[K]int64{}
	}
	return m
}

func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	ms := func(q float64) float64 {
		i := int(q * float64(len(d)-1))
		return float64(d[i]) / float64(time.Millisecond)
	}
	return Latency{Count: len(d), P50: ms(0.50), P99: ms(0.99), Max: ms(1)}
}
