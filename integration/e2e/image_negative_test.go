package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// hugePNG is a PNG whose header claims w×h pixels, followed by pad bytes
// of data: the image service refuses it from the header, after fetching
// all of it.
func hugePNG(w, h uint32, pad int) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", make([]byte, pad))
	chunk("IEND", nil)
	return b.Bytes()
}

// unknownImageURL is a well-formed image URL of a UUID the CMS does not
// know.
func unknownImageURL(i int) string {
	return imaging.BuildURL("/image", imaging.URLParts{UUID: fmt.Sprintf("6a1b2c3d-0000-4000-8000-%012d", i),
		ImageModified: 1693175642190, VariantModified: 1, Variant: "1x1-144", Format: "jpg"})
}

// TestImageNegativeCache: the image service remembers unknown images and
// refused originals (default negative_ttl 30s). 100 unknown UUIDs asked
// twice, the second time after the recheck interval, cost about 100 CMS
// document requests, not 200; a 30,000 × 30,000 original answers 422 (not
// 500) and is fetched once across several requests and variants.
func TestImageNegativeCache(t *testing.T) {
	o := startImageOrigin(t, nil)
	huge := "huge-image"
	hugeUUID := origin.DemoUUID(huge)
	o.Content.SetBinary(hugeUUID, hugePNG(30000, 30000, 875<<10))
	o.Content.Put(origin.Document{ID: huge, UUID: hugeUUID, NodeType: "image",
		Properties: map[string]any{"title": "Huge"}}, nil)
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: o.stagingBlock(),
		Route: "image_service /image/* {\nwidths 320 640\nrecheck_interval 1s\n}"})

	before := o.Documents()
	for round := range 2 {
		for i := range 100 {
			u := unknownImageURL(i)
			status, h, _ := harness.Get(t, nil, e.URL()+u)
			if status != http.StatusNotFound || !strings.Contains(h.Get("Cache-Control"), shortMaxAge) {
				t.Fatalf("round %d, %s: %d %q, want 404 with the short max-age", round, u, status, h.Get("Cache-Control"))
			}
		}
		if round == 0 {
			time.Sleep(1500 * time.Millisecond) // past recheck_interval
		}
	}
	docs := o.Documents() - before
	t.Logf("CMS document requests for 100 unknown images asked twice: %d", docs)
	if docs < 100 || docs > 110 {
		t.Errorf("%d CMS document requests for 100 unknown images asked twice, want about 100", docs)
	}

	// The refused original: 422 for every variant, fetched once.
	docsBefore, binsBefore := o.Documents(), o.Binaries()
	for _, v := range []struct {
		variant, format string
		width           int
	}{{"16x9-768", "jpg", 0}, {"16x9-768", "jpg", 0}, {"original", "png", 0}, {"4x3", "webp", 640}, {"1x1-144", "gif", 0}} {
		u := o.imageURL(t, huge, v.variant, v.format, v.width)
		status, h, body := harness.Get(t, nil, e.URL()+u)
		if status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d %q, want 422", u, status, body)
		}
		if !strings.Contains(h.Get("Cache-Control"), shortMaxAge) || strings.Contains(body, "imaging:") ||
			strings.Contains(body, "30000") {
			t.Errorf("%s: Cache-Control %q, body %q", u, h.Get("Cache-Control"), body)
		}
	}
	if n := o.Binaries() - binsBefore; n != 1 {
		t.Errorf("refused original fetched %d times, want once", n)
	}
	if n := o.Documents() - docsBefore; n > 2 {
		t.Errorf("%d document requests for the refused image, want at most 2", n)
	}
	log := e.Log()
	if n := strings.Count(log, "original refused"); n != 1 {
		t.Errorf("refusal logged %d times, want once", n)
	}
	if strings.Contains(log, `"image request failed"`) {
		t.Errorf("a refused original was logged as a failed request:\n%s", log)
	}
}

// TestImageNegativeClearedByEvent: on an edge with image_updates, an image
// the CMS did not know is served as soon as the event of its publication
// is applied, long before negative_ttl (1h here) runs out.
func TestImageNegativeClearedByEvent(t *testing.T) {
	o := startImageOrigin(t, nil)
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: o.stagingBlock() + "\nimage_updates",
		Route: "image_service /image/* {\nwidths 320 640\nnegative_ttl 1h\nrecheck_interval 1s\n}"})
	id := "late-image"
	uuid := origin.DemoUUID(id)
	var variantMs int64
	for _, d := range o.Content.Variants() {
		if d.Name == "16x9-768" {
			variantMs = d.Modified
		}
	}
	u := e.URL() + imaging.BuildURL("/image", imaging.URLParts{UUID: uuid, ImageModified: 1, VariantModified: variantMs,
		Variant: "16x9-768", Format: "jpg"})
	for range 3 {
		if status, _, _ := harness.Get(t, nil, u); status != http.StatusNotFound {
			t.Fatalf("before publication: %d, want 404", status)
		}
	}
	before := o.Documents()
	time.Sleep(1500 * time.Millisecond) // past recheck_interval
	if status, _, _ := harness.Get(t, nil, u); status != http.StatusNotFound || o.Documents() != before {
		t.Fatalf("remembered unknown image: %d, %d more document requests; want 404 without asking",
			status, o.Documents()-before)
	}

	o.Content.SetBinary(uuid, origin.DemoJPEG(1600, 900, 42))
	o.Content.Put(origin.Document{ID: id, UUID: uuid, NodeType: "image", Properties: map[string]any{"title": "Late"}}, nil)
	waitStatus(t, u, http.StatusOK, 15*time.Second)
}
