package imaging

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/delivery-edge/edge/integration/versitygw"
	"go.uber.org/zap"
)

// TestAccessWithS3Store runs the access and update paths against a real S3
// server over TLS, including the server going down and coming back.
func TestAccessWithS3Store(t *testing.T) {
	srv := versitygw.Start(t, versitygw.Options{TLS: true})
	store := newTestS3Store(t, srv, "edge")
	cms := newFakeCMS()
	jpg := encodeJPEG(t, photoLike(640, 480, 8), 90)
	cms.setImage(testUUID, imgMod, &Point{0.3, 0.3}, jpg)
	access := NewAccess(AccessConfig{Prefix: "/image"}, store, cms, zap.NewNop())
	get := func(u string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", u, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		access.ServeHTTP(rec, req)
		return rec
	}
	u := BuildURL("/image", URLParts{UUID: testUUID, ImageModified: imgMod, VariantModified: 1000, Variant: "16x9-768", Format: "webp"})
	first := get(u)
	wantStatus(t, first, 200)
	second := get(u)
	wantStatus(t, second, 200)
	if cms.originalCalls.Load() != 1 || second.Header().Get("ETag") != first.Header().Get("ETag") {
		t.Fatalf("second request not served from S3 (%d generations)", cms.originalCalls.Load())
	}
	wantStatus(t, get(u, "If-None-Match", first.Header().Get("ETag")), http.StatusNotModified)

	up := NewUpdater(store, cms, zap.NewNop())
	if err := up.HandleEvent(testCtx(t), ImageEvent{NodeType: NodeTypeImage, UUID: testUUID, State: StateDeleted, SourceTime: 3}); err != nil {
		t.Fatal(err)
	}
	if tags, err := store.GetTags(testCtx(t), StateKey(testUUID)); err != nil || tags["state"] != StateDeleted {
		t.Fatalf("marker tags in S3: %v %v", tags, err)
	}
	wantStatus(t, get(u), http.StatusGone)
	if err := up.HandleEvent(testCtx(t), ImageEvent{NodeType: NodeTypeImage, UUID: testUUID, State: StatePublished, SourceTime: 4}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, get(u), 200)

	srv.Stop()
	wantStatus(t, get(u), http.StatusServiceUnavailable)
	srv.Restart()
	wantStatus(t, get(u), 200)
}
