package cache

import (
	"strings"
	"testing"
	"time"
)

// TestSSIETagOfManyPartsIsStable: the ETag hash and its scratch come from
// a pool; a page of a thousand parts hashes the same every time.
func TestSSIETagOfManyPartsIsStable(t *testing.T) {
	s := newSSISite(t, 0)
	pages, _, _ := ssiHangPages()
	render := renderPages(pages)
	var etag string
	for i := range 20 {
		rec := serveWithin(t, s, render, "/many.html", 10*time.Second)
		if i == 0 {
			continue // the miss, streamed: no ETag
		}
		if etag == "" {
			etag = rec.Header().Get("Etag")
		}
		if rec.Code != 200 || rec.Header().Get("Etag") != etag || !strings.HasPrefix(etag, `"ssi-`) {
			t.Fatalf("request %d: %d, ETag %q, first %q", i, rec.Code, rec.Header().Get("Etag"), etag)
		}
	}
}
