// Package testimages draws the deterministic test pictures that the image
// tests, the benchmarks and the sample origin share.
package testimages

import (
	"image"
	"math"
	"math/rand/v2"
)

// Photo draws a deterministic w×h picture with smooth gradients, a few
// shapes and grain, so that JPEG sizes and decode times resemble a photo's.
func Photo(w, h int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, 7))
	cx, cy := float64(w)*0.6, float64(h)*0.4
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			d := math.Hypot(float64(x)-cx, float64(y)-cy) / float64(w)
			r := 120 + 100*math.Sin(fx*7+fy*3) - 80*d
			g := 110 + 90*math.Cos(fy*5-fx*2)
			b := 140 + 60*math.Sin((fx+fy)*11)
			if (x/97+y/89)%7 == 0 {
				r, g, b = 230, 220, 40
			}
			n := float64(rng.IntN(25)) - 12
			i := y*img.Stride + x*4
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clamp8(r+n), clamp8(g+n), clamp8(b+n), 255
		}
	}
	return img
}

func clamp8(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }
