package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fallom/fallom-collector/internal/storage"
)

// hourlyFromSpansSQL aggregates the stored generations as gen_hourly must
// hold them, in plain SQL written here (not the storage package's delta
// code): the UTC hour by floor (also before 1970), ” for NULL model and
// provider, costs as the sum of each span's nano-USD, the latency bucket
// by the bounds of storage.LatencyBoundsMs.
var hourlyFromSpansSQL = func() string {
	const hour = "3600000000000"
	var bucket strings.Builder
	bucket.WriteString("CASE")
	for i, v := range storage.LatencyBoundsMs {
		fmt.Fprintf(&bucket, " WHEN duration_ms < %s THEN %d", strconv.FormatFloat(v, 'f', -1, 64), i)
	}
	fmt.Fprintf(&bucket, " ELSE %d END", len(storage.LatencyBoundsMs))
	var lat []string
	for i := range len(storage.LatencyBoundsMs) + 1 {
		lat = append(lat, fmt.Sprintf("count(*) FILTER (WHERE bucket = %d)", i))
	}
	return `SELECT project_id, hour, model, provider, count(*), count(*) FILTER (WHERE status_code = 'ERROR'),
		count(total_cost_usd), CAST(coalesce(sum(input_tokens), 0) AS BIGINT), CAST(coalesce(sum(output_tokens), 0) AS BIGINT),
		CAST(coalesce(sum(CAST(round(total_cost_usd * 1e9) AS BIGINT)), 0) AS BIGINT), ` + strings.Join(lat, ", ") + `
		FROM (SELECT project_id, start_time_unix_nano - ((start_time_unix_nano % ` + hour + `) + ` + hour + `) % ` + hour + ` AS hour,
			coalesce(model, '') AS model, coalesce(provider, '') AS provider, status_code, input_tokens, output_tokens,
			total_cost_usd, ` + bucket.String() + ` AS bucket FROM spans WHERE is_generation) g
		GROUP BY project_id, hour, model, provider`
}()

var hourlyRowsSQL = "SELECT project_id, hour_unix_nano, model, provider, " + strings.Join(storage.HourlyDeltaColumns, ", ") + " FROM gen_hourly"

// hourlyRows reads the rows of query (key columns, then the counters of
// storage.HourlyDeltaColumns) by key.
func hourlyRows(t *testing.T, b Backend, s storage.Store, query string) map[storage.HourlyKey][]int64 {
	t.Helper()
	out := map[storage.HourlyKey][]int64{}
	var k storage.HourlyKey
	vals := make([]int64, len(storage.HourlyDeltaColumns))
	dest := []any{&k.ProjectID, &k.HourUnixNano, &k.Model, &k.Provider}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	b.EachRow(t, s, query, dest, func() {
		if _, dup := out[k]; dup {
			t.Fatalf("%+v twice", k)
		}
		out[k] = slices.Clone(vals)
	})
	return out
}

// CheckHourly fails t unless every gen_hourly row equals the aggregate of
// the stored generations of its key, and no other row exists (a row left
// with 0 generations included).
func CheckHourly(t *testing.T, b Backend, s storage.Store) {
	t.Helper()
	got := hourlyRows(t, b, s, hourlyRowsSQL)
	want := hourlyRows(t, b, s, hourlyFromSpansSQL)
	var bad []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			bad = append(bad, fmt.Sprintf("missing %+v (want %v)", k, w))
		} else if !slices.Equal(g, w) {
			bad = append(bad, fmt.Sprintf("%+v:\n got %v\nwant %v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("extra %+v %v", k, g))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("gen_hourly differs from the spans (%d of %d rows):\n%s", len(bad), len(want), strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
	if len(want) == 0 {
		t.Fatal("no generation stored: the check proves nothing")
	}
}

// hourlyMix makes the random spans of testHourlyConsistent.
type hourlyMix struct {
	rng  *rand.Rand
	now  time.Time
	keys []storage.Span // every span written so far, last version
}

// hours the generations fall in: around Base, and two before 1970 (the
// floor of a negative time).
var mixHours = []int64{
	Base.UnixNano(), Base.Add(time.Hour).UnixNano(), Base.Add(2 * time.Hour).UnixNano(), Base.Add(26 * time.Hour).UnixNano(),
	-int64(time.Hour), -int64(3 * time.Hour),
}

func (m *hourlyMix) randomize(sp *storage.Span) {
	r := m.rng
	sp.IsGeneration = r.IntN(4) != 0
	sp.StartTimeUnixNano = mixHours[r.IntN(len(mixHours))] + r.Int64N(int64(time.Hour))
	if r.IntN(10) == 0 { // exactly on an hour boundary
		sp.StartTimeUnixNano = mixHours[r.IntN(len(mixHours))]
	}
	sp.Model = []*string{nil, ptr("openai/gpt-4o-mini"), ptr("anthropic/claude-haiku-4.5")}[r.IntN(3)]
	sp.Provider = []*string{nil, ptr("OpenAI"), ptr("Anthropic")}[r.IntN(3)]
	sp.StatusCode = []string{"OK", "UNSET", "ERROR"}[r.IntN(3)]
	// Durations on, just under and between the bucket bounds, and beyond.
	switch r.IntN(4) {
	case 0:
		sp.DurationMs = storage.LatencyBoundsMs[r.IntN(len(storage.LatencyBoundsMs))]
	case 1:
		sp.DurationMs = storage.LatencyBoundsMs[r.IntN(len(storage.LatencyBoundsMs))] - 0.001
	case 2:
		sp.DurationMs = r.Float64() * 5000
	default:
		sp.DurationMs = 200000 + r.Float64()*1e6
	}
	sp.EndTimeUnixNano = sp.StartTimeUnixNano + int64(sp.DurationMs*1e6)
	sp.InputTokens, sp.OutputTokens = nil, nil
	if r.IntN(5) != 0 {
		sp.InputTokens, sp.OutputTokens = ptr(r.Int64N(5000)), ptr(r.Int64N(500))
	}
	sp.TotalCostUSD = nil
	if r.IntN(4) != 0 {
		sp.TotalCostUSD = ptr(float64(r.IntN(100000)) / 1e6)
	}
	// Received long ago or recently: retention deletes the former.
	age := time.Duration(1+r.IntN(60)) * 24 * time.Hour
	sp.ReceivedAtUnixNano = m.now.Add(-age).UnixNano()
}

func (m *hourlyMix) fresh(project string) storage.Span {
	i := len(m.keys)
	sp := Generation(project, 100000+i)
	if m.rng.IntN(5) == 0 {
		sp = Child(project, 100000+i)
	}
	m.randomize(&sp)
	m.keys = append(m.keys, sp)
	return sp
}

// batch returns n spans: new ones, exact replays and changed replays of
// spans written before (some of them deleted by retention since).
func (m *hourlyMix) batch(n int) []storage.Span {
	var out []storage.Span
	for range n {
		switch op := m.rng.IntN(10); {
		case op < 4 || len(m.keys) == 0:
			out = append(out, m.fresh([]string{"p0", "p1"}[m.rng.IntN(2)]))
		case op < 6: // exact replay
			out = append(out, m.keys[m.rng.IntN(len(m.keys))])
		default: // changed replay: another hour, model, provider, duration, cost, status, kind...
			i := m.rng.IntN(len(m.keys))
			sp := m.keys[i]
			if m.rng.IntN(2) == 0 {
				m.randomize(&sp)
			} else { // one field only
				switch m.rng.IntN(5) {
				case 0:
					sp.StartTimeUnixNano += int64(time.Hour)
				case 1:
					sp.DurationMs *= 3
				case 2:
					sp.TotalCostUSD = ptr(deref(sp.TotalCostUSD) + 0.25)
				case 3:
					sp.StatusCode = "ERROR"
				default:
					sp.Model = ptr("other/model")
				}
			}
			m.keys[i] = sp
			out = append(out, sp)
		}
	}
	return out
}

// testHourlyConsistent writes a random mix (new generations and other
// spans, exact replays, changed replays moving generations between hours,
// models and providers or changing their counters, replays of spans
// retention deleted, a row the database refuses), runs retention, and
// checks after each step that gen_hourly equals the aggregate of the
// stored generations.
func testHourlyConsistent(t *testing.T, b Backend) {
	s, _ := b.New(t)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	m := &hourlyMix{rng: rand.New(rand.NewPCG(seed, 7)), now: Base.Add(100 * 24 * time.Hour)}
	writeMix := func(rounds int) {
		for range rounds {
			write(t, s, m.batch(1+m.rng.IntN(40)))
		}
		// Concurrent writers: group commit merges them into one transaction.
		errs := make(chan error, 4)
		for range 4 {
			spans := m.batch(1 + m.rng.IntN(30))
			go func() { _, err := s.WriteSpans(ctx, spans); errs <- err }()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	writeMix(30)
	CheckHourly(t, b, s)

	// A batch with a row the database refuses is written isolating (under
	// savepoints): the other rows' deltas count, the refused one's not.
	bad := b.RefusedByDatabase(t, s, "p0", 999999)
	mixed := append(m.batch(20), bad)
	if _, err := s.WriteSpans(ctx, mixed); !storage.IsPermanent(err) {
		t.Fatalf("refused row: %v, want a permanent error", err)
	}
	CheckHourly(t, b, s)

	res, err := s.ApplyRetention(ctx, storage.RetentionPolicy{SpansAfter: 30 * 24 * time.Hour, BatchSize: 7, Now: m.now})
	if err != nil {
		t.Fatal(err)
	}
	if res.SpansDeleted == 0 {
		t.Fatal("retention deleted nothing: the test proves nothing about it")
	}
	CheckHourly(t, b, s)

	// Replays of deleted spans (tombstoned: not stored, not counted) among
	// new ones and replays of the survivors.
	writeMix(15)
	CheckHourly(t, b, s)
	m.now = m.now.Add(20 * 24 * time.Hour)
	if _, err := s.ApplyRetention(ctx, storage.RetentionPolicy{SpansAfter: 30 * 24 * time.Hour, BatchSize: 1000, Now: m.now}); err != nil {
		t.Fatal(err)
	}
	CheckHourly(t, b, s)
	var rows int64
	b.QueryRow(t, s, "SELECT count(*) FROM gen_hourly WHERE generations <= 0", &rows)
	if rows != 0 {
		t.Fatalf("%d gen_hourly rows without generations", rows)
	}
}

// HourlyBackfillSpans returns a random mix of spans (generations in hours
// before and after 1970, with and without model, provider, cost and tokens,
// durations on the latency bounds, other spans) for the test of the
// migration that backfills gen_hourly, and the statement inserting one of
// them with placeholders made by mark (the spans schema of versions 4 to 6).
func HourlyBackfillSpans(mark func(n int) string) (spans []storage.Span, query string, args [][]any) {
	m := &hourlyMix{rng: rand.New(rand.NewPCG(17, 3)), now: Base.Add(100 * 24 * time.Hour)}
	for i := range 300 {
		m.fresh([]string{"p0", "p1"}[i%2])
	}
	// Every latency bound, and just under it, in a generation.
	for _, b := range storage.LatencyBoundsMs {
		for _, d := range []float64{b, b - 0.001} {
			g := m.fresh("p0")
			g.IsGeneration, g.DurationMs = true, d
			m.keys[len(m.keys)-1] = g
		}
	}
	marks := make([]string, len(storage.Columns))
	for i := range marks {
		marks[i] = mark(i + 1)
	}
	for i := range m.keys {
		args = append(args, m.keys[i].Values())
	}
	return m.keys, "INSERT INTO spans (" + storage.ColumnNames() + ") VALUES (" + strings.Join(marks, ", ") + ")", args
}
