package benchkit

import (
	"math"
	"slices"
	"time"
)

// Point is one sample of a time series: seconds since the start, value.
type Point struct {
	T, V float64
}

// Trend is a least-squares line through a series.
type Trend struct {
	N            int     // samples used
	Mean         float64 // of the values
	SlopePerMin  float64 // value units per minute
	PctPerMinute float64 // SlopePerMin as a percentage of Mean
}

// FitTrend fits a line through the points with T ≥ from (seconds). With
// fewer than three points, or a zero mean, the percentage is NaN.
func FitTrend(pts []Point, from float64) Trend {
	var xs, ys []float64
	for _, p := range pts {
		if p.T >= from && !math.IsNaN(p.V) {
			xs = append(xs, p.T/60)
			ys = append(ys, p.V)
		}
	}
	tr := Trend{N: len(xs), PctPerMinute: math.NaN()}
	if len(xs) < 3 {
		return tr
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(ys))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	tr.Mean = my
	if sxx == 0 {
		return tr
	}
	tr.SlopePerMin = sxy / sxx
	if my != 0 {
		tr.PctPerMinute = 100 * tr.SlopePerMin / my
	}
	return tr
}

// Percentile is the p-th percentile (nearest rank, 0 < p ≤ 100) of ds; 0
// for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
