package imaging

import (
	"bytes"
	"image/jpeg"
	"sync"
	"testing"
)

var (
	bench12MPOnce sync.Once
	bench12MP     []byte
)

// source12MP is a 4000×3000 photo-like JPEG (quality 90, 4:2:0), made once.
func source12MP(b *testing.B) []byte {
	bench12MPOnce.Do(func() { bench12MP = encodeJPEG(b, photoLike(4000, 3000, 42), 90) })
	return bench12MP
}

// BenchmarkGenerate12MP measures a 12 MP JPEG → 16:9 1200×675 variant,
// the case compared with vipsthumbnail in integration/bench.
//
//	go test ./imaging -run '^$' -bench Generate12MP -benchtime 20x
func BenchmarkGenerate12MP(b *testing.B) {
	src := source12MP(b)
	spec := Spec{Aspect: Aspect{16, 9}, Width: 1200}
	for _, bc := range []struct {
		name   string
		format string
		gap    float64
	}{
		{"jpg/lanczos", "jpg", -1},
		{"jpg/gap2", "jpg", 2},
		{"jpg/gap1.5-default", "jpg", 1.5},
		{"jpg/gap1", "jpg", 1},
		{"webp/gap2", "webp", 2},
		{"webp/gap1.5-default", "webp", 1.5},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := NewGenerator(GeneratorConfig{PreShrinkGap: bc.gap})
			s := spec
			s.Format = bc.format
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Generate(src, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStages splits the 12 MP pipeline into decode, transform and
// encode to show where the time goes.
func BenchmarkStages(b *testing.B) {
	src := source12MP(b)
	g := NewGenerator(GeneratorConfig{})
	spec := Spec{Aspect: Aspect{16, 9}, Width: 1200}
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(src)); err != nil {
				b.Fatal(err)
			}
		}
	})
	img, err := g.decode(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, gap := range []float64{-1, 2, 1.5} {
		b.Run("transform/gap"+fmtGap(gap), func(b *testing.B) {
			gg := NewGenerator(GeneratorConfig{PreShrinkGap: gap})
			for b.Loop() {
				gg.transform(img, spec)
			}
		})
	}
	out := g.transform(img, spec)
	for _, f := range []string{"jpg", "webp", "png"} {
		b.Run("encode/"+f, func(b *testing.B) {
			for b.Loop() {
				if _, err := encode(out, f, g.cfg.Encode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func fmtGap(g float64) string {
	switch g {
	case -1:
		return "off"
	case 1.5:
		return "1.5"
	}
	return "2"
}

// BenchmarkBoxShrink measures the pre-shrink of a 12 MP 4:2:0 image by 2.
func BenchmarkBoxShrink(b *testing.B) {
	img, err := NewGenerator(GeneratorConfig{}).decode(source12MP(b))
	if err != nil {
		b.Fatal(err)
	}
	r := alignRect(CropRect(4000, 3000, Aspect{16, 9}, nil), 2)
	for b.Loop() {
		boxShrink(img, r, 2)
	}
}
