package imaging

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"runtime"
	"strings"
	"testing"
)

var (
	red  = color.RGBA{255, 0, 0, 255}
	blue = color.RGBA{0, 0, 255, 255}
)

func decodeResult(t *testing.T, r *Result) (image.Image, string) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("decode generated %s: %v", r.ContentType, err)
	}
	return img, format
}

func TestGenerateFormatsAndSizes(t *testing.T) {
	g := NewGenerator(GeneratorConfig{})
	src := encodeJPEG(t, photoLike(400, 300, 1), 90)
	tests := []struct {
		name         string
		spec         Spec
		wantW, wantH int
		wantFormat   string
	}{
		{"16x9 jpg", Spec{Aspect: Aspect{16, 9}, Width: 160, Format: "jpg"}, 160, 90, "jpeg"},
		{"1x1 png", Spec{Aspect: Aspect{1, 1}, Width: 144, Format: "png"}, 144, 144, "png"},
		{"4x3 gif", Spec{Aspect: Aspect{4, 3}, Width: 100, Format: "gif"}, 100, 75, "gif"},
		{"16x9 webp", Spec{Aspect: Aspect{16, 9}, Width: 320, Format: "webp"}, 320, 180, "webp"},
		{"jpeg alias", Spec{Aspect: Aspect{1, 1}, Width: 50, Format: "jpeg"}, 50, 50, "jpeg"},
		{"original", Spec{Format: "jpg"}, 400, 300, "jpeg"},
		{"original webp", Spec{Format: "webp"}, 400, 300, "webp"},
		{"no upscale", Spec{Aspect: Aspect{16, 9}, Width: 1000, Format: "jpg"}, 400, 225, "jpeg"},
		{"large shrink uses pre-shrink", Spec{Aspect: Aspect{1, 1}, Width: 20, Format: "png"}, 20, 20, "png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := g.Generate(src, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			img, format := decodeResult(t, r)
			if format != tt.wantFormat || r.ContentType != ContentType(tt.spec.Format) {
				t.Fatalf("format %s / %s, want %s", format, r.ContentType, tt.wantFormat)
			}
			if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH || r.Width != tt.wantW || r.Height != tt.wantH {
				t.Fatalf("size %v (result %dx%d), want %dx%d", b, r.Width, r.Height, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestGenerateFocusPoint(t *testing.T) {
	g := NewGenerator(GeneratorConfig{})
	src := encodePNG(t, halves(200, 100, red, blue))
	for _, tt := range []struct {
		focus *Point
		want  color.Color
	}{
		{&Point{0, 0.5}, red},
		{&Point{1, 0.5}, blue},
		{&Point{0.2, 0.5}, red},
	} {
		r, err := g.Generate(src, Spec{Aspect: Aspect{1, 1}, Width: 40, Focus: tt.focus, Format: "png"})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decodeResult(t, r)
		for _, p := range []image.Point{{0, 0}, {39, 39}, {20, 20}} {
			if c := img.At(p.X, p.Y); !near(c, tt.want, 2) {
				t.Fatalf("focus %v: pixel %v = %v, want %v", tt.focus, p, c, tt.want)
			}
		}
	}
	// Centred: the crop straddles both halves.
	r, err := g.Generate(src, Spec{Aspect: Aspect{1, 1}, Width: 40, Format: "png"})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := decodeResult(t, r)
	if !near(img.At(2, 20), red, 2) || !near(img.At(37, 20), blue, 2) {
		t.Fatalf("centred crop: %v %v", img.At(2, 20), img.At(37, 20))
	}
}

func TestGenerateEXIFOrientation(t *testing.T) {
	g := NewGenerator(GeneratorConfig{})
	base := encodeJPEG(t, halves(64, 32, red, blue), 95) // left red, right blue
	tests := []struct {
		orientation  uint16
		wantW, wantH int
		// where red ends up
		redAt, blueAt image.Point
	}{
		{1, 64, 32, image.Pt(4, 16), image.Pt(60, 16)},
		{3, 64, 32, image.Pt(60, 16), image.Pt(4, 16)}, // 180°
		{6, 32, 64, image.Pt(16, 4), image.Pt(16, 60)}, // 90° clockwise: left becomes top
		{8, 32, 64, image.Pt(16, 60), image.Pt(16, 4)}, // 90° counter-clockwise: left becomes bottom
	}
	for _, tt := range tests {
		src := withEXIFOrientation(base, tt.orientation)
		r, err := g.Generate(src, Spec{Format: "png"})
		if err != nil {
			t.Fatalf("orientation %d: %v", tt.orientation, err)
		}
		img, _ := decodeResult(t, r)
		if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
			t.Fatalf("orientation %d: size %v, want %dx%d", tt.orientation, b, tt.wantW, tt.wantH)
		}
		if !near(img.At(tt.redAt.X, tt.redAt.Y), red, 40) || !near(img.At(tt.blueAt.X, tt.blueAt.Y), blue, 40) {
			t.Fatalf("orientation %d: red at %v = %v, blue at %v = %v", tt.orientation,
				tt.redAt, img.At(tt.redAt.X, tt.redAt.Y), tt.blueAt, img.At(tt.blueAt.X, tt.blueAt.Y))
		}
	}
}

func TestGenerateRefusesPixelBombBeforeDecoding(t *testing.T) {
	g := NewGenerator(GeneratorConfig{})
	bomb := pngHeaderOnly(50000, 50000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := g.Generate(bomb, Spec{Aspect: Aspect{1, 1}, Width: 100, Format: "jpg"})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("err = %v, want ErrSourceTooLarge", err)
	}
	if !strings.Contains(err.Error(), "50000x50000") {
		t.Fatalf("error does not name the size: %v", err)
	}
	// Decoding would allocate 10 GB; reading the header allocates a few KB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("refusing the bomb allocated %d bytes", alloc)
	}
}

func TestGeneratePixelLimitBoundary(t *testing.T) {
	g := NewGenerator(GeneratorConfig{MaxPixels: 100 * 100})
	ok := encodePNG(t, image.NewGray(image.Rect(0, 0, 100, 100)))
	if _, err := g.Generate(ok, Spec{Format: "png"}); err != nil {
		t.Fatalf("100x100 at the limit: %v", err)
	}
	tooBig := encodePNG(t, image.NewGray(image.Rect(0, 0, 101, 100)))
	if _, err := g.Generate(tooBig, Spec{Format: "png"}); !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("101x100: err = %v, want ErrSourceTooLarge", err)
	}
}

func TestGenerateByteLimit(t *testing.T) {
	g := NewGenerator(GeneratorConfig{MaxBytes: 1000})
	big := encodePNG(t, photoLike(100, 100, 2))
	if _, err := g.Generate(big, Spec{Format: "png"}); !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("Generate: err = %v, want ErrSourceTooLarge", err)
	}
	if _, err := g.ReadSource(bytes.NewReader(big)); !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("ReadSource: err = %v, want ErrSourceTooLarge", err)
	}
	small := []byte("tiny")
	if got, err := g.ReadSource(bytes.NewReader(small)); err != nil || string(got) != "tiny" {
		t.Fatalf("ReadSource small = %q, %v", got, err)
	}
}

func TestGenerateRejectsGarbageAndMismatchedSVG(t *testing.T) {
	g := NewGenerator(GeneratorConfig{})
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`)
	jpg := encodeJPEG(t, photoLike(20, 20, 3), 80)
	tests := []struct {
		name string
		src  []byte
		spec Spec
	}{
		{"garbage", []byte("this is not an image at all"), Spec{Format: "jpg"}},
		{"truncated jpeg", jpg[:len(jpg)/2], Spec{Format: "jpg"}},
		{"svg from jpeg", jpg, Spec{Format: "svg"}},
		{"jpeg from svg", svg, Spec{Format: "jpg"}},
		{"unknown format", jpg, Spec{Format: "tiff"}},
		{"empty", nil, Spec{Format: "png"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := g.Generate(tt.src, tt.spec); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
		})
	}
	r, err := g.Generate(svg, Spec{Format: "svg"})
	if err != nil || !bytes.Equal(r.Data, svg) || r.ContentType != "image/svg+xml" {
		t.Fatalf("svg original: %v", err)
	}
}

func TestGenerateFlattensAlphaOntoWhiteForJPEG(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16)) // fully transparent
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	r, err := NewGenerator(GeneratorConfig{}).Generate(b.Bytes(), Spec{Format: "jpg"})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := decodeResult(t, r)
	if c := out.At(8, 8); !near(c, color.White, 3) {
		t.Fatalf("transparent pixel became %v, want white", c)
	}
}

func TestPreShrinkQualityCloseToPureLanczos(t *testing.T) {
	src := encodeJPEG(t, photoLike(1600, 1200, 4), 92)
	spec := Spec{Aspect: Aspect{16, 9}, Width: 200, Format: "png"}
	for _, gap := range []float64{1, 1.5, 2} {
		fast, err := NewGenerator(GeneratorConfig{PreShrinkGap: gap}).Generate(src, spec)
		if err != nil {
			t.Fatal(err)
		}
		pure, err := NewGenerator(GeneratorConfig{PreShrinkGap: -1}).Generate(src, spec)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := decodeResult(t, fast)
		b, _ := decodeResult(t, pure)
		if p := psnr(a, b); p < 30 {
			t.Fatalf("gap %.1f: PSNR against pure Lanczos %.1f dB, want ≥ 30", gap, p)
		} else {
			t.Logf("gap %.1f: PSNR against pure Lanczos %.1f dB", gap, p)
		}
	}
}
