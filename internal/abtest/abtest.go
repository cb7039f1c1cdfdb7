// Package abtest holds the statistics of the experiments analysis (DESIGN
// 6): confidence intervals of per-session means, Welch's t test of a
// variant against the first, and the sample ratio mismatch check of
// assigned sessions against configured weights. Inputs are summaries the
// database computed (count, mean, sum of squared deviations), so no
// per-session value is ever loaded.
package abtest // import "github.com/fallom/fallom-collector/internal/abtest"

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Confidence is the level of every interval (two-sided).
const Confidence = 0.95

// SRMAlpha is the p-value below which a sample ratio mismatch is reported.
const SRMAlpha = 0.001

// Sample is n values summarized by their mean and the sum of their squared
// deviations from it (M2; the variance is M2 / (n - 1)).
type Sample struct {
	N    int64
	Mean float64
	M2   float64
}

// Variance is the sample variance (n - 1 denominator); NaN below 2 values.
func (s Sample) Variance() float64 {
	if s.N < 2 {
		return math.NaN()
	}
	return math.Max(s.M2, 0) / float64(s.N-1)
}

// MeanCI returns the Student-t interval of the mean at Confidence; ok is
// false below 2 values (no spread to estimate).
func MeanCI(s Sample) (lo, hi float64, ok bool) {
	if s.N < 2 {
		return 0, 0, false
	}
	se := math.Sqrt(s.Variance() / float64(s.N))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(s.N - 1)}.Quantile(1 - (1-Confidence)/2)
	return s.Mean - t*se, s.Mean + t*se, true
}

// WelchResult is a two-sided Welch's t test of B against A.
type WelchResult struct {
	// Diff is mean(B) - mean(A).
	Diff float64
	T    float64
	DF   float64
	P    float64
}

// Welch tests whether the means of a and b differ (two-sided, unequal
// variances, Welch-Satterthwaite degrees of freedom). ok is false when a
// side has fewer than 2 values or both have no spread.
func Welch(a, b Sample) (WelchResult, bool) {
	if a.N < 2 || b.N < 2 {
		return WelchResult{}, false
	}
	va, vb := a.Variance()/float64(a.N), b.Variance()/float64(b.N)
	se2 := va + vb
	if se2 <= 0 || math.IsNaN(se2) {
		return WelchResult{}, false
	}
	r := WelchResult{Diff: b.Mean - a.Mean}
	r.T = r.Diff / math.Sqrt(se2)
	r.DF = se2 * se2 / (va*va/float64(a.N-1) + vb*vb/float64(b.N-1))
	r.P = 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: r.DF}.Survival(math.Abs(r.T))
	return r, true
}

// SRMResult is a chi-square goodness-of-fit test of observed counts
// against the shares the weights configure.
type SRMResult struct {
	ChiSquare float64
	DF        int
	P         float64
	// Expected counts, in the order of the observations.
	Expected []float64
	// Mismatch is true when P < SRMAlpha: the assignment does not follow
	// the weights (a bug, a filter, a variant that crashes before it is
	// recorded), and the comparison cannot be trusted.
	Mismatch bool
}

// SampleRatio compares observed counts with weights (any positive scale;
// variants of weight 0 must have no observation, else a mismatch with
// P = 0). ok is false with fewer than two weighted variants or no
// observation.
func SampleRatio(observed []int64, weights []float64) (SRMResult, bool) {
	if len(observed) != len(weights) {
		return SRMResult{}, false
	}
	var total int64
	var wsum float64
	weighted := 0
	for i := range observed {
		total += observed[i]
		if weights[i] > 0 {
			wsum += weights[i]
			weighted++
		}
	}
	if total == 0 || weighted < 2 {
		return SRMResult{}, false
	}
	r := SRMResult{DF: weighted - 1, Expected: make([]float64, len(observed))}
	for i, o := range observed {
		if weights[i] <= 0 {
			if o > 0 { // sessions in a variant that should get none
				r.ChiSquare, r.P, r.Mismatch = math.Inf(1), 0, true
			}
			continue
		}
		e := float64(total) * weights[i] / wsum
		r.Expected[i] = e
		if !math.IsInf(r.ChiSquare, 1) {
			d := float64(o) - e
			r.ChiSquare += d * d / e
		}
	}
	if !r.Mismatch {
		r.P = distuv.ChiSquared{K: float64(r.DF)}.Survival(r.ChiSquare)
		r.Mismatch = r.P < SRMAlpha
	}
	return r, true
}
