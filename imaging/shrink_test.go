package imaging

import (
	"image"
	"image/color"
	"testing"
)

// meanRGB is the reference: the mean colour of the block via At().
func meanRGB(img image.Image, r image.Rectangle) color.RGBA {
	var sr, sg, sb, n uint64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			sr += uint64(c.R)
			sg += uint64(c.G)
			sb += uint64(c.B)
			n++
		}
	}
	return color.RGBA{uint8(sr / n), uint8(sg / n), uint8(sb / n), 255}
}

func gradientYCbCr(w, h int, ratio image.YCbCrSubsampleRatio) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Y[m.YOffset(x, y)] = uint8(40 + x + 2*y)
			ci := m.COffset(x, y)
			m.Cb[ci] = uint8(100 + x/2)
			m.Cr[ci] = uint8(90 + y/2)
		}
	}
	return m
}

func TestBoxShrinkMatchesBlockMean(t *testing.T) {
	ratios := []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	}
	for _, ratio := range ratios {
		for _, k := range []int{2, 3, 4} {
			full := gradientYCbCr(61, 47, ratio)
			// A sub-image at odd offsets exercises the chroma alignment.
			sub := full.SubImage(image.Rect(3, 5, 58, 44)).(*image.YCbCr)
			r := alignRect(image.Rect(5, 7, 55, 43), k)
			out := boxShrink(sub, r, k)
			if out == nil {
				t.Fatalf("%v k=%d: no fast path", ratio, k)
			}
			if b := out.Bounds(); b.Dx() != r.Dx()/k || b.Dy() != r.Dy()/k {
				t.Fatalf("%v k=%d: size %v for %v", ratio, k, b, r)
			}
			for oy := 0; oy < r.Dy()/k; oy++ {
				for ox := 0; ox < r.Dx()/k; ox++ {
					block := image.Rect(r.Min.X+ox*k, r.Min.Y+oy*k, r.Min.X+(ox+1)*k, r.Min.Y+(oy+1)*k)
					want := meanRGB(sub, block)
					if got := out.At(ox, oy); !near(got, want, 3) {
						t.Fatalf("%v k=%d: pixel (%d,%d) = %v, block mean %v", ratio, k, ox, oy, got, want)
					}
				}
			}
		}
	}
}

func TestBoxShrinkRGBAAndGray(t *testing.T) {
	src := photoLike(40, 30, 9)
	nrgba := image.NewNRGBA(src.Rect)
	copy(nrgba.Pix, src.Pix)
	gray := image.NewGray(src.Rect)
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			gray.Set(x, y, src.At(x, y))
		}
	}
	for _, img := range []image.Image{src, nrgba, gray, src.SubImage(image.Rect(1, 1, 39, 29))} {
		r := alignRect(img.Bounds(), 3)
		out := boxShrink(img, r, 3)
		if out == nil {
			t.Fatalf("%T: no fast path", img)
		}
		for oy := 0; oy < r.Dy()/3; oy++ {
			for ox := 0; ox < r.Dx()/3; ox++ {
				block := image.Rect(r.Min.X+ox*3, r.Min.Y+oy*3, r.Min.X+ox*3+3, r.Min.Y+oy*3+3)
				if got, want := out.At(ox, oy), meanRGB(img, block); !near(got, want, 1) {
					t.Fatalf("%T: pixel (%d,%d) = %v, want %v", img, ox, oy, got, want)
				}
			}
		}
	}
}

func TestBoxShrinkStraightAlphaWeightsColour(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	m.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 255})
	m.SetNRGBA(1, 0, color.NRGBA{0, 0, 255, 0}) // invisible blue must not tint
	out := boxShrink(image.Image(&image.NRGBA{Pix: append(m.Pix, m.Pix...), Stride: 8, Rect: image.Rect(0, 0, 2, 2)}),
		image.Rect(0, 0, 2, 2), 2).(*image.NRGBA)
	if c := out.NRGBAAt(0, 0); c.R != 255 || c.B != 0 || c.A != 128 {
		t.Fatalf("got %v, want red at half alpha", c)
	}
}

func TestShrinkFactor(t *testing.T) {
	for _, tt := range []struct {
		cw, ch, tw, th int
		gap            float64
		want           int
	}{
		{4000, 2250, 1200, 675, 2, 1},
		{4000, 2250, 1200, 675, 1.5, 2},
		{4000, 2250, 400, 225, 2, 5},
		{4000, 2250, 1200, 675, -1, 1},
		{100000, 100000, 1, 1, 1, maxShrink}, {64, 64, 1, 1, 1, 32},
	} {
		if got := shrinkFactor(tt.cw, tt.ch, tt.tw, tt.th, tt.gap); got != tt.want {
			t.Errorf("shrinkFactor(%v) = %d, want %d", tt, got, tt.want)
		}
	}
}

func TestDividerExact(t *testing.T) {
	for n := uint32(1); n <= maxShrink*maxShrink; n++ {
		d := newDivider(n)
		for _, sum := range []uint32{0, 1, n / 2, n/2 + 1, n - 1, n, 255*n - 1, 255 * n, 255*n - n/2} {
			if got, want := d.mean(sum), uint8((sum+n/2)/n); got != want {
				t.Fatalf("n=%d sum=%d: %d, want %d", n, sum, got, want)
			}
		}
	}
}
