package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// TestImageSlugs: through the real server, a slug of any text (spaces,
// umlauts, an encoded slash, something that looks like a path or a query)
// names the same variant as no slug at all: same bytes, same ETag, one
// original fetched. A slug over 200 bytes is refused with 400.
func TestImageSlugs(t *testing.T) {
	o := startImageOrigin(t, nil)
	e := startImageEdge(t, o, "")
	img := origin.ImageID(9)
	base := o.parts(t, img, "16x9-768", "jpg", 0)
	var etag, body string
	for _, slug := range []string{"", "bild", "Grüße aus Köln", "a/b/c", "../../etc/passwd", "?width=320#x", "100% & more",
		strings.Repeat("ö", 100)} {
		p := base
		p.Slug = slug
		u := imaging.BuildURL("/image", p)
		status, h, b := harness.Get(t, nil, e.URL()+u)
		if status != http.StatusOK {
			t.Fatalf("slug %q (%s): %d %q", slug, u, status, b)
		}
		if etag == "" {
			etag, body = h.Get("Etag"), b
		} else if h.Get("Etag") != etag || b != body {
			t.Errorf("slug %q: another variant (ETag %s, want %s)", slug, h.Get("Etag"), etag)
		}
	}
	if n := o.Binaries(); n != 1 {
		t.Errorf("%d originals fetched, want 1", n)
	}
	long := strings.Replace(imaging.BuildURL("/image", base), "/16x9-768.jpg", "/16x9-768/"+strings.Repeat("%C3%B6", 100)+"x.jpg", 1)
	if status, _, b := harness.Get(t, nil, e.URL()+long); status != http.StatusBadRequest || !strings.Contains(b, "slug") {
		t.Errorf("slug of 201 bytes: %d %q, want 400 about the slug", status, b)
	}
}
