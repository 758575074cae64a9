// Command sample-origin plays the CMS behind the delivery edge for demos and
// end-to-end tests: a render backend for a small news site, and (on its own
// port) the staging API with its admin API. See package origin.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/origin"
)

func main() {
	renderAddr := flag.String("render", "127.0.0.1:9000", "listen address of the render backend")
	stagingAddr := flag.String("staging", "127.0.0.1:1196", "listen address of the staging API (with /admin/)")
	latency := flag.Duration("latency", 0, "added to every render")
	ssi := flag.Bool("ssi", false, "section pages include teasers as SSI fragments")
	replicas := flag.Int("replicas", 2, "staging replicas behind the balancer")
	lag := flag.Duration("lag", 0, "how far each replica lags behind the primary")
	token := flag.String("token", origin.DemoToken, "the access token the staging API accepts")
	imagePrefix := flag.String("image-prefix", "/image", "path of the edge's image service in image URLs (empty: pages without images)")
	imageWidth := flag.Int("image-width", 640, "?width= of aspect-only image variants; one of the image service's widths")
	flag.Parse()

	content := origin.NewContent()
	origin.SeedDemo(content)
	cfg := origin.RenderConfig{Latency: *latency, SSI: *ssi}
	if *imagePrefix != "" {
		cfg.ImageURL = imageURLs(content, *imagePrefix, *imageWidth)
	}
	render := origin.NewRender(content, cfg)
	staging := origin.NewStaging(content, origin.StagingConfig{Replicas: *replicas, Lag: *lag, Tokens: []string{*token}})
	defer staging.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	servers := []*http.Server{
		serve(ctx, "render backend", *renderAddr, render),
		serve(ctx, "staging API", *stagingAddr, staging),
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
}

func serve(ctx context.Context, name, addr string, h http.Handler) *http.Server {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	log.Printf("%s listening on http://%s", name, ln.Addr())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("%s: %v", name, err)
		}
	}()
	return srv
}

// imageURLs builds the image URLs of the demo pages with the image
// service's URL builder: the image document's and the variant definition's
// modification times as stamps, a slug from the image title, JPEG. An
// aspect-only variant gets width.
func imageURLs(content *origin.Content, prefix string, width int) func(origin.Document, string) string {
	return func(doc origin.Document, variant string) string {
		u := imaging.URLParts{UUID: doc.UUID, ImageModified: doc.Modified, Variant: variant, Format: "jpg"}
		if title, _ := doc.Properties["title"].(string); title != "" {
			u.Slug = slug(title)
		}
		for _, d := range content.Variants() {
			if d.Name == variant {
				u.VariantModified = d.Modified
			}
		}
		if _, w, ok := imaging.ParseVariantName(variant); ok {
			u.Width = w
			if w == 0 && variant != imaging.VariantOriginal {
				u.Width = width
			}
		}
		return imaging.BuildURL(prefix, u)
	}
}

// slug makes "bild-zu-story100" of "Bild zu story100": lower-case ASCII
// letters and digits, everything else a single '-', at most 60 bytes.
func slug(s string) string {
	r := strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss", "Ä", "ae", "Ö", "oe", "Ü", "ue")
	s = strings.ToLower(r.Replace(s))
	var b strings.Builder
	dash := false
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
		} else {
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	return b.String()
}
