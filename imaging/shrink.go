package imaging

import (
	"image"
	"runtime"
	"sync"
)

// Pre-shrink: before the final, high-quality resampling, an image that is
// to be made much smaller is reduced by an integer factor k with a box
// filter (every output pixel is the mean of a k×k block). This is what
// libvips does too ("shrink" before "reduce"): the box filter is cheap and
// parallel, and the expensive Lanczos filter then works on a source k² times
// smaller. The quality stays close to a pure Lanczos resize as long as the
// remaining reduction is at least the configured gap (see
// GeneratorConfig.PreShrinkGap).
//
// YCbCr images (every JPEG) are shrunk plane by plane, without any colour
// conversion of the large image; the result is YCbCr 4:4:4.

// shrinkFactor returns the integer pre-shrink factor for reducing a
// cw×ch crop to tw×th with the given gap (k ≥ 2, or 1 = no pre-shrink).
func shrinkFactor(cw, ch, tw, th int, gap float64) int {
	if gap <= 0 || tw <= 0 || th <= 0 {
		return 1
	}
	r := min(float64(cw)/float64(tw), float64(ch)/float64(th))
	k := int(r / gap)
	if k < 2 {
		return 1
	}
	return min(k, maxShrink)
}

// maxShrink caps the pre-shrink factor so that the 32-bit sums of a block
// cannot overflow (255·255·32² < 2³²) and divider stays exact.
const maxShrink = 32

// divider computes the rounded mean sum/n by a multiplication instead of a
// division (a 32-bit division costs ~25 cycles, and there is one per
// output sample). Exact for n ≤ 2048 and sums below 2²⁰.
type divider struct{ n, m uint64 }

func newDivider(n uint32) divider {
	return divider{n: uint64(n), m: (1<<32 + uint64(n) - 1) / uint64(n)}
}

func (d divider) mean(sum uint32) uint8 {
	return uint8(((uint64(sum) + d.n/2) * d.m) >> 32)
}

// alignRect trims r so that both sides are multiples of k, keeping its
// centre (the crop changes by less than k pixels per side).
func alignRect(r image.Rectangle, k int) image.Rectangle {
	dx, dy := r.Dx()%k, r.Dy()%k
	r.Min.X += dx / 2
	r.Max.X -= dx - dx/2
	r.Min.Y += dy / 2
	r.Max.Y -= dy - dy/2
	return r
}

// boxShrink returns the region r of img reduced by the factor k (r's sides
// must be multiples of k), or nil if img's type has no fast path; the
// caller then resizes without pre-shrinking.
func boxShrink(img image.Image, r image.Rectangle, k int) image.Image {
	dw, dh := r.Dx()/k, r.Dy()/k
	if dw <= 0 || dh <= 0 || !r.In(img.Bounds()) {
		return nil
	}
	switch m := img.(type) {
	case *image.YCbCr:
		hs, vs, ok := chromaShift(m.SubsampleRatio)
		if !ok {
			return nil
		}
		out := image.NewYCbCr(image.Rect(0, 0, dw, dh), image.YCbCrSubsampleRatio444)
		yp := plane{pix: m.Y, stride: m.YStride, minX: m.Rect.Min.X, minY: m.Rect.Min.Y}
		cb := plane{pix: m.Cb, stride: m.CStride, hs: hs, vs: vs,
			minX: m.Rect.Min.X >> hs, minY: m.Rect.Min.Y >> vs}
		cr := cb
		cr.pix = m.Cr
		parallelRows(dh, func(y0, y1 int) {
			shrinkPlane(out.Y, out.YStride, yp, r, k, y0, y1, dw)
			shrinkPlane(out.Cb, out.CStride, cb, r, k, y0, y1, dw)
			shrinkPlane(out.Cr, out.CStride, cr, r, k, y0, y1, dw)
		})
		return out
	case *image.Gray:
		out := image.NewGray(image.Rect(0, 0, dw, dh))
		p := plane{pix: m.Pix, stride: m.Stride, minX: m.Rect.Min.X, minY: m.Rect.Min.Y}
		parallelRows(dh, func(y0, y1 int) { shrinkPlane(out.Pix, out.Stride, p, r, k, y0, y1, dw) })
		return out
	case *image.RGBA: // premultiplied: a plain mean is correct
		out := image.NewRGBA(image.Rect(0, 0, dw, dh))
		parallelRows(dh, func(y0, y1 int) {
			shrinkRGBA(out.Pix, out.Stride, m.Pix, m.Stride, r.Sub(m.Rect.Min), k, y0, y1, dw, false)
		})
		return out
	case *image.NRGBA: // straight alpha: weight colours by alpha
		out := image.NewNRGBA(image.Rect(0, 0, dw, dh))
		parallelRows(dh, func(y0, y1 int) {
			shrinkRGBA(out.Pix, out.Stride, m.Pix, m.Stride, r.Sub(m.Rect.Min), k, y0, y1, dw, true)
		})
		return out
	}
	return nil
}

// chromaShift returns the chroma subsampling as bit shifts of x and y.
func chromaShift(r image.YCbCrSubsampleRatio) (hs, vs uint, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// plane is one 8-bit sample plane, subsampled by 1<<hs × 1<<vs relative to
// image coordinates; minX/minY are the plane coordinates of pix[0].
type plane struct {
	pix        []uint8
	stride     int
	hs, vs     uint
	minX, minY int
}

// shrinkPlane writes output rows [y0,y1) of the k-shrunk region r of p into
// dst: each output sample is the mean of the plane samples covering its
// k×k block of image pixels. The rows of a block are first summed per
// column (a tight loop over contiguous memory), then the columns.
func shrinkPlane(dst []uint8, dstStride int, p plane, r image.Rectangle, k, y0, y1, dw int) {
	px0 := r.Min.X>>p.hs - p.minX
	px1 := (r.Max.X-1)>>p.hs - p.minX + 1
	acc := make([]uint32, px1-px0)
	for oy := y0; oy < y1; oy++ {
		iy0 := r.Min.Y + oy*k
		ry0 := iy0>>p.vs - p.minY
		ry1 := (iy0+k-1)>>p.vs - p.minY + 1
		clear(acc)
		for ry := ry0; ry < ry1; ry++ {
			row := p.pix[ry*p.stride+px0 : ry*p.stride+px1]
			a := acc[:len(row)]
			for i, v := range row {
				a[i] += uint32(v)
			}
		}
		rows := uint32(ry1 - ry0)
		drow := dst[oy*dstStride : oy*dstStride+dw]
		if p.hs == 0 {
			n := rows * uint32(k)
			d := newDivider(n)
			for ox := range drow {
				var sum uint32
				for _, v := range acc[ox*k : ox*k+k] {
					sum += v
				}
				drow[ox] = d.mean(sum)
			}
			continue
		}
		for ox := range drow {
			ix0 := r.Min.X + ox*k
			cx0 := ix0>>p.hs - p.minX - px0
			cx1 := (ix0+k-1)>>p.hs - p.minX - px0 + 1
			var sum uint32
			for _, v := range acc[cx0:cx1] {
				sum += v
			}
			n := rows * uint32(cx1-cx0)
			drow[ox] = uint8((sum + n/2) / n)
		}
	}
}

// shrinkRGBA shrinks interleaved 8-bit RGBA samples; r is relative to
// src's first pixel. With straight alpha the colours are weighted by alpha.
func shrinkRGBA(dst []uint8, dstStride int, src []uint8, srcStride int, r image.Rectangle, k, y0, y1, dw int, straight bool) {
	n := uint32(k * k)
	for oy := y0; oy < y1; oy++ {
		for ox := 0; ox < dw; ox++ {
			var sr, sg, sb, sa uint32
			for y := r.Min.Y + oy*k; y < r.Min.Y+(oy+1)*k; y++ {
				i := y*srcStride + (r.Min.X+ox*k)*4
				row := src[i : i+4*k : i+4*k]
				for j := 0; j < len(row); j += 4 {
					a := uint32(row[j+3])
					if straight {
						sr += uint32(row[j]) * a
						sg += uint32(row[j+1]) * a
						sb += uint32(row[j+2]) * a
					} else {
						sr += uint32(row[j])
						sg += uint32(row[j+1])
						sb += uint32(row[j+2])
					}
					sa += a
				}
			}
			d := dst[oy*dstStride+ox*4 : oy*dstStride+ox*4+4 : oy*dstStride+ox*4+4]
			d[3] = uint8((sa + n/2) / n)
			if straight {
				if sa == 0 {
					d[0], d[1], d[2] = 0, 0, 0
					continue
				}
				d[0], d[1], d[2] = uint8((sr+sa/2)/sa), uint8((sg+sa/2)/sa), uint8((sb+sa/2)/sa)
				continue
			}
			d[0], d[1], d[2] = uint8((sr+n/2)/n), uint8((sg+n/2)/n), uint8((sb+n/2)/n)
		}
	}
}

// parallelRows runs fn over [0,h) split into contiguous chunks, one per
// available CPU.
func parallelRows(h int, fn func(y0, y1 int)) {
	workers := min(runtime.GOMAXPROCS(0), h)
	if workers <= 1 {
		fn(0, h)
		return
	}
	var wg sync.WaitGroup
	chunk := (h + workers - 1) / workers
	for y := 0; y < h; y += chunk {
		wg.Add(1)
		go func(y0, y1 int) {
			defer wg.Done()
			fn(y0, y1)
		}(y, min(y+chunk, h))
	}
	wg.Wait()
}
