package imaging

import (
	"image"
	"math"
	"testing"
)

func TestCropRect(t *testing.T) {
	tests := []struct {
		name   string
		w, h   int
		aspect Aspect
		focus  *Point
		want   image.Rectangle
	}{
		{"landscape 16x9 centred", 4000, 3000, Aspect{16, 9}, nil, image.Rect(0, 375, 4000, 2625)},
		{"landscape 1x1 centred", 4000, 3000, Aspect{1, 1}, nil, image.Rect(500, 0, 3500, 3000)},
		{"focus top left clamps", 4000, 3000, Aspect{1, 1}, &Point{0, 0}, image.Rect(0, 0, 3000, 3000)},
		{"focus right edge clamps", 4000, 3000, Aspect{1, 1}, &Point{1, 0.5}, image.Rect(1000, 0, 4000, 3000)},
		{"focus left of centre clamps", 4000, 3000, Aspect{1, 1}, &Point{0.3, 0.5}, image.Rect(0, 0, 3000, 3000)},
		{"focus right of centre", 4000, 3000, Aspect{1, 1}, &Point{0.6, 0.5}, image.Rect(900, 0, 3900, 3000)},
		{"focus y ignored when height kept", 4000, 3000, Aspect{1, 1}, &Point{0.6, 0.9}, image.Rect(900, 0, 3900, 3000)},
		{"portrait 16x9 centred", 3000, 4000, Aspect{16, 9}, nil, image.Rect(0, 1156, 3000, 2844)},
		{"portrait 16x9 focus high clamps", 3000, 4000, Aspect{16, 9}, &Point{0.5, 0.2}, image.Rect(0, 0, 3000, 1688)},
		{"portrait 16x9 focus low", 3000, 4000, Aspect{16, 9}, &Point{0.5, 0.7}, image.Rect(0, 1956, 3000, 3644)},
		{"portrait 16x9 focus bottom clamps", 3000, 4000, Aspect{16, 9}, &Point{0.5, 1}, image.Rect(0, 2312, 3000, 4000)},
		{"same aspect whole image", 1600, 900, Aspect{16, 9}, &Point{0.1, 0.1}, image.Rect(0, 0, 1600, 900)},
		{"zero aspect whole image", 1234, 567, Aspect{}, &Point{0.9, 0.9}, image.Rect(0, 0, 1234, 567)},
		{"NaN focus centred", 4000, 3000, Aspect{1, 1}, &Point{math.NaN(), 0.5}, image.Rect(500, 0, 3500, 3000)},
		{"out of range focus centred", 4000, 3000, Aspect{1, 1}, &Point{1.5, 0.5}, image.Rect(500, 0, 3500, 3000)},
		{"negative focus centred", 4000, 3000, Aspect{1, 1}, &Point{-0.1, 0.5}, image.Rect(500, 0, 3500, 3000)},
		{"one pixel", 1, 1, Aspect{16, 9}, nil, image.Rect(0, 0, 1, 1)},
		{"odd remainder centred down", 5, 3, Aspect{1, 1}, nil, image.Rect(1, 0, 4, 3)},
		{"thin strip", 10000, 2, Aspect{1, 1}, &Point{0.5, 0.5}, image.Rect(4999, 0, 5001, 2)},
		{"rounding 4x3 of 1001", 1001, 1001, Aspect{4, 3}, nil, image.Rect(0, 125, 1001, 876)},
		{"empty image", 0, 10, Aspect{1, 1}, nil, image.Rectangle{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CropRect(tt.w, tt.h, tt.aspect, tt.focus)
			if got != tt.want {
				t.Fatalf("CropRect(%d, %d, %v, %v) = %v, want %v", tt.w, tt.h, tt.aspect, tt.focus, got, tt.want)
			}
			if tt.w > 0 && !got.In(image.Rect(0, 0, tt.w, tt.h)) {
				t.Fatalf("crop %v leaves the image", got)
			}
		})
	}
}

func TestCropRectAlwaysInside(t *testing.T) {
	for w := 1; w < 40; w += 3 {
		for h := 1; h < 40; h += 5 {
			for _, a := range []Aspect{{1, 1}, {16, 9}, {9, 16}, {999, 1}, {1, 999}} {
				for _, f := range []*Point{nil, {0, 0}, {1, 1}, {0.5, 0.5}, {0.99, 0.01}} {
					r := CropRect(w, h, a, f)
					if r.Empty() || !r.In(image.Rect(0, 0, w, h)) {
						t.Fatalf("CropRect(%d,%d,%v,%v) = %v", w, h, a, f, r)
					}
				}
			}
		}
	}
}

func TestOutputSize(t *testing.T) {
	tests := []struct {
		name         string
		cw, ch, tw   int
		aspect       Aspect
		wantW, wantH int
	}{
		{"12MP to 1200 16x9", 4000, 2250, 1200, Aspect{16, 9}, 1200, 675},
		{"1x1 144", 3000, 3000, 144, Aspect{1, 1}, 144, 144},
		{"no upscale", 1000, 562, 1200, Aspect{16, 9}, 1000, 562},
		{"zero aspect keeps ratio", 4000, 3000, 1000, Aspect{}, 1000, 750},
		{"zero width keeps crop", 4000, 3000, 0, Aspect{}, 4000, 3000},
		{"aspect rounding", 4000, 2250, 768, Aspect{16, 9}, 768, 432},
		{"tiny target", 4000, 10, 1, Aspect{400, 1}, 1, 1},
		{"empty", 0, 0, 100, Aspect{}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h := OutputSize(tt.cw, tt.ch, tt.tw, tt.aspect)
			if w != tt.wantW || h != tt.wantH {
				t.Fatalf("OutputSize = %dx%d, want %dx%d", w, h, tt.wantW, tt.wantH)
			}
		})
	}
}
