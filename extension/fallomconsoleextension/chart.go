package fallomconsoleextension

import (
	"math"
	"strconv"
	"strings"

	"github.com/fallom/fallom-collector/internal/storage"
)

// Charts are SVG drawn here, on the server: the template writes the shapes
// computed below as elements with numeric attributes, and every label goes
// through html/template as text. No script draws them.

const (
	chartW     = 640.0
	chartH     = 170.0
	chartLeft  = 64.0
	chartRight = 8.0
	chartTop   = 10.0
	chartBot   = 24.0
)

// chart is one SVG chart.
type chart struct {
	Title  string
	Width  float64
	Height float64
	Bars   []bar
	Lines  []line
	YTicks []tick
	XTicks []tick
	Empty  bool
	Legend []legendEntry
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Label      string // tooltip text
}

type line struct {
	Points string // "x,y x,y ..."
	Class  string
	Dots   []dot
}

type dot struct {
	X, Y  float64
	Label string
}

type tick struct {
	X, Y  float64
	Label string
}

type legendEntry struct{ Class, Label string }

// series is one named sequence of values over the buckets.
type series struct {
	Class  string
	Label  string
	Values []float64
	Format func(float64) string
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func newChart(title string, labels []string, ymax float64, format func(float64) string) chart {
	c := chart{Title: title, Width: chartW, Height: chartH}
	top := niceCeil(ymax)
	plotH := chartH - chartTop - chartBot
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		c.YTicks = append(c.YTicks, tick{X: chartLeft - 6, Y: chartTop + plotH - plotH*float64(i)/2, Label: format(v)})
	}
	n := len(labels)
	if n == 0 {
		c.Empty = true
		return c
	}
	plotW := chartW - chartLeft - chartRight
	step := max(1, n/6)
	for i := 0; i < n; i += step {
		c.XTicks = append(c.XTicks, tick{X: chartLeft + plotW*(float64(i)+0.5)/float64(n), Y: chartH - 6, Label: labels[i]})
	}
	return c
}

func yOf(v, top float64) float64 {
	plotH := chartH - chartTop - chartBot
	return round1(chartTop + plotH - plotH*math.Min(v, top)/top)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// barChart draws the series side by side in each bucket.
func barChart(title string, labels []string, ss ...series) chart {
	ymax := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			ymax = math.Max(ymax, v)
		}
	}
	format := ss[0].Format
	c := newChart(title, labels, ymax, format)
	if c.Empty {
		return c
	}
	top := niceCeil(ymax)
	plotW := chartW - chartLeft - chartRight
	slot := plotW / float64(len(labels))
	w := math.Max(1, slot*0.8/float64(len(ss)))
	for si, s := range ss {
		c.Legend = append(c.Legend, legendEntry{s.Class, s.Label})
		for i, v := range s.Values {
			y := yOf(v, top)
			c.Bars = append(c.Bars, bar{
				X: round1(chartLeft + slot*float64(i) + slot*0.1 + w*float64(si)), Y: y, W: round1(w), H: round1(chartH - chartBot - y),
				Class: s.Class, Label: labels[i] + " · " + s.Label + ": " + s.Format(v),
			})
		}
	}
	return c
}

// lineChart draws each series as a line through the bucket centres; NaN
// values (no data in the bucket) break nothing: they are skipped.
func lineChart(title string, labels []string, ss ...series) chart {
	ymax := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				ymax = math.Max(ymax, v)
			}
		}
	}
	c := newChart(title, labels, ymax, ss[0].Format)
	if c.Empty {
		return c
	}
	top := niceCeil(ymax)
	plotW := chartW - chartLeft - chartRight
	for _, s := range ss {
		c.Legend = append(c.Legend, legendEntry{s.Class, s.Label})
		var pts []string
		l := line{Class: s.Class}
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			x := round1(chartLeft + plotW*(float64(i)+0.5)/float64(len(labels)))
			y := yOf(v, top)
			pts = append(pts, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
			l.Dots = append(l.Dots, dot{X: x, Y: y, Label: labels[i] + " · " + s.Label + ": " + s.Format(v)})
		}
		l.Points = strings.Join(pts, " ")
		c.Lines = append(c.Lines, l)
	}
	return c
}

// quantile reads the q-quantile (0..1) of a latency histogram (counts per
// storage.LatencyBoundsMs bucket), interpolating geometrically inside the
// bucket. NaN when the histogram is empty.
func quantile(hist []int64, q float64) float64 {
	var total int64
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var cum float64
	bounds := storage.LatencyBoundsMs
	for i, n := range hist {
		if n == 0 {
			continue
		}
		if cum+float64(n) >= rank {
			lo, hi := 0.0, 0.0
			switch {
			case i == 0:
				return bounds[0] * math.Max(0, (rank-cum)/float64(n))
			case i >= len(bounds):
				return bounds[len(bounds)-1]
			default:
				lo, hi = bounds[i-1], bounds[i]
			}
			frac := (rank - cum) / float64(n)
			return lo * math.Pow(hi/lo, frac)
		}
		cum += float64(n)
	}
	return bounds[len(bounds)-1]
}

func mergeHist(dst, src []int64) []int64 {
	if dst == nil {
		dst = make([]int64, len(src))
	}
	for i, n := range src {
		dst[i] += n
	}
	return dst
}
