package imaging

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestAccessSlugNeverChangesTheImage: whatever the slug (text with spaces
// and umlauts, an encoded slash, something that looks like a path or a
// query), the service serves the same stored variant, generated once.
func TestAccessSlugNeverChangesTheImage(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	var first []byte
	for _, slug := range []string{"", "a-slug", "Grüße aus Köln", "a/b", "../../x", "?width=100#x", "100%", strings.Repeat("ü", 100)} {
		u := BuildURL("/image", URLParts{UUID: testUUID, ImageModified: imgMod, VariantModified: 1000,
			Variant: "16x9-768", Width: 768, Slug: slug, Format: "jpg"})
		rec := f.get(u)
		wantStatus(t, rec, http.StatusOK)
		if first == nil {
			first = rec.Body.Bytes()
		} else if !bytes.Equal(rec.Body.Bytes(), first) {
			t.Fatalf("slug %q: a different image", slug)
		}
	}
	if n := f.cms.originalCalls.Load(); n != 1 {
		t.Fatalf("%d generations, want 1", n)
	}
	// A slug longer than 200 bytes, decoded, is refused.
	long := "/image/" + testUUID + "/AAABijkh-E4/AAAAAAAAA-g/16x9-768/" + strings.Repeat("%C3%BC", 100) + "x.jpg"
	wantStatus(t, f.get(long), http.StatusBadRequest)
}
