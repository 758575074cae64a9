package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/integration/testimages"
	"github.com/delivery-edge/edge/integration/versitygw"
)

// BenchmarkImageStoredHits compares stored-variant hits of image_service
// with docroot hits of delivery_cache through the same built Caddy: 40
// photo-like 1600×900 originals, three variants each (16x9-768 JPEG,
// 1x1-144 WebP, 16x9 ?width=320 WebP), all generated and stored before
// the rounds; the docroot holds files with exactly the same bytes, so
// both contenders send the same amount of data. The image service is
// measured with its memory cache (the default) and without it (every hit
// reads the state record and the variant from the store); with versitygw
// installed also against a real S3 store (a second Caddy, since the store
// is per app). wrk -t1 -c32, interleaved rounds.
//
//	go test ./integration/bench -run '^$' -bench ImageStoredHits -benchtime 1x
func BenchmarkImageStoredHits(b *testing.B) {
	benchkit.Need(b, "wrk")
	for range b.N {
		const images = 40
		content := origin.NewContent()
		origin.SeedDemo(content) // the variant definitions
		base := testimages.Photo(1600, 900, 42)
		for i := range images {
			id := fmt.Sprintf("benchimg%d", i)
			uuid := origin.DemoUUID(id)
			content.SetBinary(uuid, markedJPEG(b, base, i))
			content.Put(origin.Document{ID: id, UUID: uuid, NodeType: "image",
				Properties: map[string]any{"title": id, "focus": map[string]any{"x": 0.6, "y": 0.4}}}, nil)
		}
		staging := origin.NewStaging(content, origin.StagingConfig{})
		var originals atomic.Int64
		stSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/binary") {
				originals.Add(1)
			}
			staging.ServeHTTP(w, r)
		}))
		defer stSrv.Close()
		defer staging.Close()
		render := httptest.NewServer(http.NotFoundHandler()) // never asked: every page is a hit
		defer render.Close()

		var imagePaths []string
		for i := range images {
			doc, _ := content.Latest(fmt.Sprintf("benchimg%d", i))
			for _, v := range []struct {
				variant, format string
				width           int
			}{{"16x9-768", "jpg", 768}, {"1x1-144", "webp", 144}, {"16x9", "webp", 320}} {
				u := imaging.URLParts{UUID: doc.UUID, ImageModified: doc.Modified, Variant: v.variant, Width: v.width,
					Slug: "bild", Format: v.format}
				for _, d := range content.Variants() {
					if d.Name == v.variant {
						u.VariantModified = d.Modified
					}
				}
				imagePaths = append(imagePaths, imaging.BuildURL("/image", u))
			}
		}

		// An edge serves two sites over the same image store: the image
		// service with its memory cache (the default) and without.
		edge := func(store string) (withMem, withoutMem, docroot string) {
			dir := b.TempDir()
			port, port2 := harness.FreePort(b), harness.FreePort(b)
			caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	delivery {
		data_dir %[1]s/data
		staging %[3]s {
			token %[4]s
		}
		%[5]s
	}
}
http://127.0.0.1:%[2]d {
	root * %[1]s/docroot
	route {
		image_service /image/* {
			widths 320 640
		}
		delivery_cache
		reverse_proxy %[6]s
	}
}
http://127.0.0.1:%[7]d {
	image_service /image/* {
		widths 320 640
		memory_cache off
	}
}
`, dir, port, stSrv.URL, origin.DemoToken, store, strings.TrimPrefix(render.URL, "http://"), port2)
			c := harness.StartCaddy(b, dir, caddyfile, port)
			c.WaitFor(port2)
			return c.URL(), fmt.Sprintf("http://127.0.0.1:%d", port2), filepath.Join(dir, "docroot")
		}
		folderEdge, folderNoMem, docroot := edge("")

		// Generate and store every variant; copy its bytes into the
		// docroot for the docroot contender.
		var docPaths []string
		for i, p := range imagePaths {
			status, h, body := harness.Get(b, nil, folderEdge+p)
			if status != 200 {
				b.Fatalf("%s: %d %q", p, status, body)
			}
			ext := strings.TrimPrefix(h.Get("Content-Type"), "image/")
			if ext == "jpeg" {
				ext = "jpg"
			}
			name := fmt.Sprintf("/bilder/%d.%s", i, ext)
			full := filepath.Join(docroot, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
			docPaths = append(docPaths, name)
		}
		type contender struct{ name, url string }
		contenders := []contender{
			{"delivery_cache docroot hit", folderEdge},
			{"image_service stored hit (folder)", folderEdge},
			{"image_service (folder, memory_cache off)", folderNoMem},
		}
		pathsOf := map[string][]string{contenders[0].name: docPaths}
		if _, err := versitygw.Binary(); err == nil {
			s3 := versitygw.Start(b, versitygw.Options{})
			s3Edge, s3NoMem, _ := edge(fmt.Sprintf("image_store s3 {\n\t\t\tbucket %s\n\t\t\tendpoint %s\n\t\t\tpath_style\n\t\t\taccess_key %s\n\t\t\tsecret_key %s\n\t\t}",
				s3.Bucket, s3.Endpoint, s3.AccessKey, s3.SecretKey))
			for _, p := range imagePaths {
				if status, _, _ := harness.Get(b, nil, s3Edge+p); status != 200 {
					b.Fatalf("S3 edge %s: %d", p, status)
				}
			}
			contenders = append(contenders, contender{"image_service stored hit (S3 versitygw)", s3Edge},
				contender{"image_service (S3, memory_cache off)", s3NoMem})
		} else {
			fmt.Printf("(no versitygw: S3 contender left out: %v)\n", err)
		}
		for _, c := range contenders[1:] {
			pathsOf[c.name] = imagePaths
		}
		generated := originals.Load()

		var sizes int
		for _, p := range docPaths {
			fi, _ := os.Stat(filepath.Join(docroot, filepath.FromSlash(p)))
			sizes += int(fi.Size())
		}
		s := benchkit.NewSeries()
		for _, c := range contenders { // warm up: page cache, connections, variant definitions
			benchkit.Wrk(b, c.url, pathsOf[c.name], 1, 32, time.Second, "")
		}
		for range benchkit.Rounds() {
			for _, c := range contenders {
				s.Add(c.name, benchkit.Wrk(b, c.url, pathsOf[c.name], 1, 32, benchkit.Duration(), ""))
			}
		}
		fmt.Print(s.Table(fmt.Sprintf("Stored image variants vs docroot: %d objects, mean %d KB, wrk -t1 -c32",
			len(imagePaths), sizes/len(docPaths)/1024), "delivery_cache docroot hit"))
		fmt.Printf("originals fetched while measuring: %d (all %d variants were stored before)\n",
			originals.Load()-generated, len(imagePaths))
		hit, img := s.Median("delivery_cache docroot hit"), s.Median("image_service stored hit (folder)")
		fmt.Printf("goal stored-variant hits ÷ docroot hits ≥ 0.8: %.2f\n", img.RPS/hit.RPS)
	}
}

// markedJPEG encodes base with a marker square that differs per n, so
// every image is its own.
func markedJPEG(tb testing.TB, base *image.RGBA, n int) []byte {
	tb.Helper()
	img := image.NewRGBA(base.Bounds())
	copy(img.Pix, base.Pix)
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	sq := h / 6
	ox, oy := (n*131)%(w-sq), (n*71)%(h-sq)
	for y := oy; y < oy+sq; y++ {
		for x := ox; x < ox+sq; x++ {
			img.Set(x, y, color.RGBA{uint8(n * 40), 255, 255, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
