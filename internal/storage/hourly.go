package storage

import (
	"fmt"
	"sort"
	"time"
)

// gen_hourly is the console's rollup of the generations per UTC hour,
// model and provider (migration 7). Unlike usage_daily, which by contract
// survives retention, it always equals the aggregate of the stored
// generations: writes add what they change, retention subtracts what it
// deletes. The console reads whole hours of a range from it and the
// partial hours at the range's edges from the spans.

const nanosPerHour = int64(time.Hour)

// HourStart returns the start of the UTC hour of a unix-nano time (floor,
// also before 1970), the hour_unix_nano of gen_hourly.
func HourStart(unixNano int64) int64 {
	r := unixNano % nanosPerHour
	if r < 0 {
		r += nanosPerHour
	}
	return unixNano - r
}

// LatencyBucket returns the bucket of LatencyBoundsMs that durationMs falls
// in, as latencyBucketExpr computes it in SQL (NaN, like SQL's NULL, in the
// last bucket).
func LatencyBucket(durationMs float64) int {
	for i, b := range LatencyBoundsMs {
		if durationMs < b {
			return i
		}
	}
	return len(LatencyBoundsMs)
}

// HourlyKey is the primary key of gen_hourly. Model and provider are ""
// when unknown (primary key columns cannot be NULL in PostgreSQL).
type HourlyKey struct {
	ProjectID    string
	HourUnixNano int64
	Model        string
	Provider     string
}

// latencyBuckets is the number of histogram columns of gen_hourly.
var latencyBuckets = len(LatencyBoundsMs) + 1

// HourlyDelta is what one write (or one retention batch, negatively) adds
// to one gen_hourly row.
type HourlyDelta struct {
	Key                  HourlyKey
	Generations          int64
	Errors               int64
	KnownCostGenerations int64
	InputTokens          int64
	OutputTokens         int64
	TotalCostNanoUSD     int64
	// Latency counts the generations per LatencyBoundsMs bucket.
	Latency []int64
}

// HourlyDeltaColumns are the gen_hourly counters, in the order of
// HourlyDelta.Values: the sums, then the latency histogram lat_00 ...
var HourlyDeltaColumns = func() []string {
	cols := []string{"generations", "errors", "known_cost_generations", "input_tokens", "output_tokens", "total_cost_nano_usd"}
	for i := 0; i < latencyBuckets; i++ {
		cols = append(cols, LatencyColumn(i))
	}
	return cols
}()

// LatencyColumn is the gen_hourly column of latency bucket i.
func LatencyColumn(i int) string { return fmt.Sprintf("lat_%02d", i) }

// Values returns the counters of d in the order of HourlyDeltaColumns.
func (d *HourlyDelta) Values() []int64 {
	out := make([]int64, 0, len(HourlyDeltaColumns))
	out = append(out, d.Generations, d.Errors, d.KnownCostGenerations, d.InputTokens, d.OutputTokens, d.TotalCostNanoUSD)
	return append(out, d.Latency...)
}

func (d *HourlyDelta) isZero() bool {
	for _, v := range d.Values() {
		if v != 0 {
			return false
		}
	}
	return true
}

// HourlyDeltas accumulates gen_hourly deltas by key.
type HourlyDeltas map[HourlyKey]*HourlyDelta

// Add adds sign times the contribution of one span. Only generations count.
func (m HourlyDeltas) Add(project string, f *UsageFields, sign int64) {
	if !f.IsGeneration {
		return
	}
	k := HourlyKey{ProjectID: project, HourUnixNano: HourStart(f.StartTimeUnixNano), Model: deref(f.Model), Provider: deref(f.Provider)}
	d := m[k]
	if d == nil {
		d = &HourlyDelta{Key: k, Latency: make([]int64, latencyBuckets)}
		m[k] = d
	}
	add := func(c *int64, v int64) { *c = SaturatingAdd(*c, sign*v) }
	add(&d.Generations, 1)
	if f.StatusCode == "ERROR" {
		add(&d.Errors, 1)
	}
	if f.TotalCostUSD != nil {
		add(&d.KnownCostGenerations, 1)
		add(&d.TotalCostNanoUSD, NanoUSD(*f.TotalCostUSD))
	}
	add(&d.InputTokens, deref(f.InputTokens))
	add(&d.OutputTokens, deref(f.OutputTokens))
	add(&d.Latency[LatencyBucket(f.DurationMs)], 1)
}

// Sorted returns the non-zero deltas in key order (PostgreSQL writers then
// lock gen_hourly rows in the same order: no deadlock between collectors).
func (m HourlyDeltas) Sorted() []HourlyDelta {
	out := make([]HourlyDelta, 0, len(m))
	for _, d := range m {
		if !d.isZero() {
			out = append(out, *d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return hourlyKeyLess(out[i].Key, out[j].Key) })
	return out
}

func hourlyKeyLess(a, b HourlyKey) bool {
	if a.ProjectID != b.ProjectID {
		return a.ProjectID < b.ProjectID
	}
	if a.HourUnixNano != b.HourUnixNano {
		return a.HourUnixNano < b.HourUnixNano
	}
	if a.Model != b.Model {
		return a.Model < b.Model
	}
	return a.Provider < b.Provider
}

// Emptied returns the keys of deltas that removed generations: after they
// are applied, those rows may count none and are deleted (a row of 0
// generations would otherwise stay forever, e.g. an hour whose spans
// retention removed, and show as an empty group in usage by model).
func Emptied(deltas []HourlyDelta) []HourlyKey {
	var out []HourlyKey
	for i := range deltas {
		if deltas[i].Generations < 0 {
			out = append(out, deltas[i].Key)
		}
	}
	return out
}

// HourlySourceColumns are the columns of a span that gen_hourly counts, in
// the order DeletedHourly reads them (retention returns them from the
// rows it deletes).
const HourlySourceColumns = "project_id, is_generation, start_time_unix_nano, model, provider, status_code, " +
	"input_tokens, output_tokens, total_cost_usd, duration_ms"

// DeletedColumns are the columns retention returns of each deleted span:
// those gen_hourly subtracts, then the session and customer whose totals
// are recomputed.
const DeletedColumns = HourlySourceColumns + ", session_id, customer_id"

// Deleted is what retention deleted in one batch: how many spans, the
// deltas that remove their generations from gen_hourly, and the sessions
// and customers of those generations (their totals are recomputed).
type Deleted struct {
	Spans               int64
	Hourly              []HourlyDelta
	Sessions, Customers []TotalsKey
}

// ScanDeleted reads rows of DeletedColumns of deleted spans (next and scan
// of their result set).
func ScanDeleted(next func() bool, scan func(dest ...any) error) (Deleted, error) {
	var d Deleted
	gone := HourlyDeltas{}
	sessions, customers := map[TotalsKey]struct{}{}, map[TotalsKey]struct{}{}
	for next() {
		d.Spans++
		var project string
		var f UsageFields
		var duration *float64
		if err := scan(&project, &f.IsGeneration, &f.StartTimeUnixNano, &f.Model, &f.Provider, &f.StatusCode,
			&f.InputTokens, &f.OutputTokens, &f.TotalCostUSD, &duration, &f.SessionID, &f.CustomerID); err != nil {
			return Deleted{}, err
		}
		f.DurationMs = deref(duration)
		gone.Add(project, &f, -1)
		if f.IsGeneration && f.SessionID != nil {
			sessions[TotalsKey{project, *f.SessionID}] = struct{}{}
		}
		if f.IsGeneration && f.CustomerID != nil {
			customers[TotalsKey{project, *f.CustomerID}] = struct{}{}
		}
	}
	d.Hourly, d.Sessions, d.Customers = gone.Sorted(), SortedTotalsKeys(sessions), SortedTotalsKeys(customers)
	return d, nil
}
