package bench

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/testimages"
)

// BenchmarkImageVariant12MP compares variant generation of the image
// service with libvips' vipsthumbnail: a 4000×3000 photo-like JPEG
// (quality 90, 4:2:0) cropped centred to 16:9 and resized to 1200×675,
// written as JPEG (quality 82) and as WebP (quality 80). vipsthumbnail runs
// as a process per image (its start-up is part of its time, about as a
// request to an image server would pay); the Go generator runs in process.
// Rounds are interleaved; the table shows the median wall time of each.
//
//	go test ./integration/bench -run '^$' -bench ImageVariant12MP -benchtime 1x
func BenchmarkImageVariant12MP(b *testing.B) {
	benchkit.Need(b, "vipsthumbnail")
	for range b.N {
		dir := b.TempDir()
		src := filepath.Join(dir, "src.jpg")
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, testimages.Photo(4000, 3000, 42), &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(src, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		spec := imaging.Spec{Aspect: imaging.Aspect{X: 16, Y: 9}, Width: 1200}
		goGen := func(gap float64, format string) func() {
			g := imaging.NewGenerator(imaging.GeneratorConfig{PreShrinkGap: gap})
			s := spec
			s.Format = format
			return func() {
				r, err := g.Generate(data, s)
				if err != nil || r.Width != 1200 || r.Height != 675 {
					b.Fatalf("generate: %v", err)
				}
			}
		}
		vips := func(out string) func() {
			return func() {
				cmd := exec.Command("vipsthumbnail", src, "--size", "1200x675", "--smartcrop", "centre",
					"-o", filepath.Join(dir, out))
				if msg, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("vipsthumbnail: %v\n%s", err, msg)
				}
			}
		}
		contenders := []struct {
			name string
			run  func()
		}{
			{"vipsthumbnail → jpg (Q82)", vips("out.jpg[Q=82]")},
			{"imaging.Generator → jpg (Q82)", goGen(0, "jpg")},
			{"imaging.Generator, no pre-shrink → jpg", goGen(-1, "jpg")},
			{"vipsthumbnail → webp (Q80)", vips("out.webp[Q=80]")},
			{"imaging.Generator → webp (Q80)", goGen(0, "webp")},
		}
		times := map[string][]time.Duration{}
		for _, c := range contenders { // warm-up: page cache, WASM compile
			c.run()
		}
		const perRound = 5
		for range benchkit.Rounds() {
			for _, c := range contenders {
				for range perRound {
					start := time.Now()
					c.run()
					times[c.name] = append(times[c.name], time.Since(start))
				}
			}
		}
		median := func(name string) time.Duration {
			ts := append([]time.Duration(nil), times[name]...)
			sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
			return ts[len(ts)/2]
		}
		var out strings.Builder
		fmt.Fprintf(&out, "\n12 MP JPEG → 16:9 1200×675 (median of %d runs each; WebP backend: %s)\n",
			benchkit.Rounds()*perRound, imaging.WebPBackend())
		fmt.Fprintf(&out, "| %-42s | %10s | %20s |\n", "generator", "time", "÷ vips same format")
		fmt.Fprintf(&out, "|%s|%s|%s|\n", strings.Repeat("-", 44), strings.Repeat("-", 12), strings.Repeat("-", 21))
		for _, c := range contenders {
			anchor := "vipsthumbnail → jpg (Q82)"
			if strings.Contains(c.name, "webp") {
				anchor = "vipsthumbnail → webp (Q80)"
			}
			m := median(c.name)
			fmt.Fprintf(&out, "| %-42s | %10s | %18.2f× |\n", c.name, m.Round(100*time.Microsecond),
				float64(m)/float64(median(anchor)))
		}
		fmt.Print(out.String())
		fmt.Printf("goal imaging.Generator ≤ 2× vipsthumbnail: jpg %.2f×, webp %.2f×\n",
			float64(median("imaging.Generator → jpg (Q82)"))/float64(median("vipsthumbnail → jpg (Q82)")),
			float64(median("imaging.Generator → webp (Q80)"))/float64(median("vipsthumbnail → webp (Q80)")))
	}
}
