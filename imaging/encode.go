package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"github.com/gen2brain/webp"
)

// EncodeOptions are the encoder settings of a Generator.
type EncodeOptions struct {
	// JPEGQuality is the JPEG quality, 1–100 (0 = 82).
	JPEGQuality int `json:"jpeg_quality,omitempty"`
	// WebPQuality is the lossy WebP quality, 1–100 (0 = 80).
	WebPQuality int `json:"webp_quality,omitempty"`
	// WebPMethod is libwebp's speed/size trade-off, 0 (fast) – 6 (small);
	// nil = 4, libwebp's default.
	WebPMethod *int `json:"webp_method,omitempty"`
	// PNGCompression is the zlib effort of PNG output (0 = default; see
	// image/png.CompressionLevel: -1 none, -2 best speed, -3 best size).
	PNGCompression png.CompressionLevel `json:"png_compression,omitempty"`
}

func (o EncodeOptions) withDefaults() EncodeOptions {
	if o.JPEGQuality <= 0 || o.JPEGQuality > 100 {
		o.JPEGQuality = 82
	}
	if o.WebPQuality <= 0 || o.WebPQuality > 100 {
		o.WebPQuality = 80
	}
	if o.WebPMethod == nil || *o.WebPMethod < 0 || *o.WebPMethod > 6 {
		m := 4
		o.WebPMethod = &m
	}
	return o
}

// WebPBackend reports how WebP is encoded: "libwebp.so" when a system
// libwebp was found (Debian: libwebp-dev), else "wasm" (libwebp compiled to
// WebAssembly, run by wazero; slower, but needs nothing but Go).
func WebPBackend() string {
	if webp.Dynamic() == nil {
		return "libwebp.so"
	}
	return "wasm"
}

// encode writes img in format (jpg, jpeg, png, gif, webp).
func encode(img image.Image, format string, o EncodeOptions) ([]byte, error) {
	var buf bytes.Buffer
	b := img.Bounds()
	buf.Grow(b.Dx() * b.Dy() / 4)
	var err error
	switch format {
	case "jpg", "jpeg":
		err = jpeg.Encode(&buf, forJPEG(img), &jpeg.Options{Quality: o.JPEGQuality})
	case "png":
		enc := png.Encoder{CompressionLevel: o.PNGCompression}
		err = enc.Encode(&buf, img)
	case "gif":
		err = gif.Encode(&buf, img, &gif.Options{NumColors: 256})
	case "webp":
		err = webp.Encode(&buf, img, webp.Options{Quality: o.WebPQuality, Method: *o.WebPMethod})
	default:
		return nil, fmt.Errorf("encode %q: %w", format, ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", format, err)
	}
	return buf.Bytes(), nil
}

// forJPEG prepares img for the JPEG encoder, which has no alpha channel and
// fast paths only for *image.YCbCr, *image.Gray and *image.RGBA: an opaque
// NRGBA image is reinterpreted as RGBA (identical bytes), a translucent one
// is composited onto white (not black, which is what dropping alpha gives).
func forJPEG(img image.Image) image.Image {
	m, ok := img.(*image.NRGBA)
	if !ok {
		return img
	}
	if m.Opaque() {
		return &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
	}
	out := image.NewRGBA(m.Rect)
	w := m.Rect.Dx() * 4
	for y := 0; y < m.Rect.Dy(); y++ {
		s := m.Pix[y*m.Stride : y*m.Stride+w]
		d := out.Pix[y*out.Stride : y*out.Stride+w]
		for i := 0; i < w; i += 4 {
			a := uint32(s[i+3])
			bg := 255 * (255 - a)
			d[i] = uint8((uint32(s[i])*a + bg + 127) / 255)
			d[i+1] = uint8((uint32(s[i+1])*a + bg + 127) / 255)
			d[i+2] = uint8((uint32(s[i+2])*a + bg + 127) / 255)
			d[i+3] = 255
		}
	}
	return out
}
