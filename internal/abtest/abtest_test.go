package abtest

import (
	"math"
	"testing"
)

// sampleOf summarizes raw values in two passes.
func sampleOf(xs ...float64) Sample {
	s := Sample{N: int64(len(xs))}
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(len(xs))
	for _, x := range xs {
		s.M2 += (x - s.Mean) * (x - s.Mean)
	}
	return s
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The 95% interval of 1..5: mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776445
// (a printed t table), so 3 ± 2.776445 * sqrt(2.5/5).
func TestMeanCI(t *testing.T) {
	lo, hi, ok := MeanCI(sampleOf(1, 2, 3, 4, 5))
	half := 2.776445 * math.Sqrt(2.5/5)
	if !ok || !near(lo, 3-half, 1e-5) || !near(hi, 3+half, 1e-5) {
		t.Fatalf("MeanCI = [%v, %v] %v, want [%v, %v]", lo, hi, ok, 3-half, 3+half)
	}
	// Large n: the t quantile tends to the normal's 1.959964.
	s := Sample{N: 1_000_000, Mean: 10, M2: 4 * (1_000_000 - 1)}
	lo, hi, _ = MeanCI(s)
	if !near(hi-10, 1.959964*2/1000, 1e-6) || !near(10-lo, hi-10, 1e-12) {
		t.Fatalf("large-n interval [%v, %v]", lo, hi)
	}
	if _, _, ok := MeanCI(sampleOf(7)); ok {
		t.Fatal("an interval from one value")
	}
}

// tTwoSidedP integrates Student's t density with Simpson's rule: an
// independent check of the p-value (no gonum).
func tTwoSidedP(t, df float64) float64 {
	lg := func(x float64) float64 { v, _ := math.Lgamma(x); return v }
	c := math.Exp(lg((df+1)/2) - lg(df/2) - 0.5*math.Log(df*math.Pi))
	pdf := func(x float64) float64 { return c * math.Pow(1+x*x/df, -(df+1)/2) }
	const n = 200000
	a, b := 0.0, math.Abs(t)
	h := (b - a) / n
	sum := pdf(a) + pdf(b)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		sum += w * pdf(a+float64(i)*h)
	}
	return 1 - 2*sum*h/3 // 1 - P(-|t| < T < |t|)
}

func TestWelch(t *testing.T) {
	a := sampleOf(1, 2, 3, 4, 5)      // mean 3, var 2.5
	b := sampleOf(2, 4, 6, 8, 10, 12) // mean 7, var 14
	r, ok := Welch(a, b)
	// By hand: se² = 2.5/5 + 14/6; t = 4 / se; df = se⁴ / ((0.5)²/4 + (14/6)²/5).
	se2 := 2.5/5 + 14.0/6
	wantT := 4 / math.Sqrt(se2)
	wantDF := se2 * se2 / (0.25/4 + (14.0/6)*(14.0/6)/5)
	if !ok || !near(r.Diff, 4, 1e-12) || !near(r.T, wantT, 1e-9) || !near(r.DF, wantDF, 1e-9) {
		t.Fatalf("Welch = %+v %v, want t %v df %v", r, ok, wantT, wantDF)
	}
	if want := tTwoSidedP(wantT, wantDF); !near(r.P, want, 1e-6) {
		t.Fatalf("p = %v, want %v (numerical integration)", r.P, want)
	}
	// Swapping the sides flips the sign only.
	if s, _ := Welch(b, a); !near(s.T, -r.T, 1e-12) || !near(s.P, r.P, 1e-12) {
		t.Fatalf("swapped: %+v", s)
	}
	if _, ok := Welch(sampleOf(1), b); ok {
		t.Fatal("a test with one value on a side")
	}
	if _, ok := Welch(sampleOf(2, 2, 2), sampleOf(2, 2)); ok {
		t.Fatal("a test without any spread")
	}
}

func TestSampleRatio(t *testing.T) {
	// 600/400 against 50/50: chi² = 2 * 100²/500 = 40, df 1, p = erfc(sqrt(20)).
	r, ok := SampleRatio([]int64{600, 400}, []float64{50, 50})
	if !ok || !near(r.ChiSquare, 40, 1e-9) || r.DF != 1 || !near(r.P, math.Erfc(math.Sqrt(20)), 1e-15) || !r.Mismatch {
		t.Fatalf("600/400: %+v", r)
	}
	// 340/330/330 against equal thirds: chi² = 0.2, df 2, p = exp(-0.1).
	r, ok = SampleRatio([]int64{340, 330, 330}, []float64{1, 1, 1})
	if !ok || !near(r.ChiSquare, 0.2, 1e-9) || r.DF != 2 || !near(r.P, math.Exp(-0.1), 1e-9) || r.Mismatch {
		t.Fatalf("340/330/330: %+v", r)
	}
	// 80/20 weights honored: 81/19 of 100 is no mismatch.
	if r, _ := SampleRatio([]int64{81, 19}, []float64{80, 20}); r.Mismatch || !near(r.Expected[0], 80, 1e-9) {
		t.Fatalf("81/19 against 80/20: %+v", r)
	}
	// A variant of weight 0 that got sessions.
	if r, ok := SampleRatio([]int64{50, 50, 3}, []float64{50, 50, 0}); !ok || !r.Mismatch || r.P != 0 {
		t.Fatalf("weight 0 with sessions: %+v", r)
	}
	if _, ok := SampleRatio([]int64{0, 0}, []float64{50, 50}); ok {
		t.Fatal("a check without observations")
	}
	if _, ok := SampleRatio([]int64{5}, []float64{100}); ok {
		t.Fatal("a check with one variant")
	}
}
