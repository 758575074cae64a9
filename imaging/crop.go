package imaging

import (
	"image"
	"math"
)

// Point is a focal point in relative image coordinates: X and Y in 0..1,
// (0,0) top left. It comes from the image document's "focus" property.
type Point struct {
	// X is the horizontal position, 0 = left edge, 1 = right edge.
	X float64 `json:"x"`
	// Y is the vertical position, 0 = top edge, 1 = bottom edge.
	Y float64 `json:"y"`
}

// valid reports whether p lies in the unit square (NaN is invalid).
func (p *Point) valid() bool {
	return p != nil && p.X >= 0 && p.X <= 1 && p.Y >= 0 && p.Y <= 1
}

// CropRect returns the largest rectangle of aspect ratio a inside an image
// of size w×h, centred on the focal point focus and moved as little as
// needed to stay inside the image. Without a (valid) focal point the
// rectangle is centred. The zero aspect returns the whole image.
//
// Sizes are rounded to the nearest pixel; the result is never empty for a
// non-empty image.
func CropRect(w, h int, a Aspect, focus *Point) image.Rectangle {
	if w <= 0 || h <= 0 {
		return image.Rectangle{}
	}
	if a.IsZero() {
		return image.Rect(0, 0, w, h)
	}
	cw, ch := w, h
	// Compare w/h with X/Y without floating point: w*Y vs h*X.
	switch lhs, rhs := int64(w)*int64(a.Y), int64(h)*int64(a.X); {
	case lhs > rhs: // image wider than the aspect: keep the height
		cw = int((int64(h)*int64(a.X) + int64(a.Y)/2) / int64(a.Y))
	case lhs < rhs: // image taller: keep the width
		ch = int((int64(w)*int64(a.Y) + int64(a.X)/2) / int64(a.X))
	}
	cw = min(max(cw, 1), w)
	ch = min(max(ch, 1), h)
	x0 := (w - cw) / 2
	y0 := (h - ch) / 2
	if focus.valid() {
		x0 = clampInt(int(math.Round(focus.X*float64(w)-float64(cw)/2)), 0, w-cw)
		y0 = clampInt(int(math.Round(focus.Y*float64(h)-float64(ch)/2)), 0, h-ch)
	}
	return image.Rect(x0, y0, x0+cw, y0+ch)
}

// OutputSize returns the size of a variant made from a crop of size cw×ch:
// target width tw (0 = the crop's own width), never wider than the crop (no
// upscaling: a small original yields a smaller variant rather than a blurred
// one), the height following the aspect ratio a (or the crop's ratio for the
// zero aspect). Both are at least 1.
func OutputSize(cw, ch, tw int, a Aspect) (int, int) {
	if cw <= 0 || ch <= 0 {
		return 0, 0
	}
	if tw <= 0 || tw > cw {
		tw = cw
	}
	var th int
	if tw == cw {
		th = ch
	} else if a.IsZero() {
		th = int((int64(tw)*int64(ch) + int64(cw)/2) / int64(cw))
	} else {
		th = int((int64(tw)*int64(a.Y) + int64(a.X)/2) / int64(a.X))
	}
	return tw, min(max(th, 1), ch)
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
