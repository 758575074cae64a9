package imaging

import (
	"bytes"
	"errors"
	"image"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

type accessFixture struct {
	t      *testing.T
	cms    *fakeCMS
	store  *flakyStore
	folder *FolderStore
	access *Access
	logs   *observer.ObservedLogs
	jpg    []byte
}

const imgMod = int64(1693175642190)

func newAccessFixture(t *testing.T, cfg AccessConfig) *accessFixture {
	t.Helper()
	f := &accessFixture{t: t, cms: newFakeCMS(), folder: newTestFolderStore(t)}
	f.store = &flakyStore{Store: f.folder}
	f.jpg = encodeJPEG(t, photoLike(320, 240, 5), 90)
	f.cms.setImage(testUUID, imgMod, &Point{0.5, 0.5}, f.jpg)
	if cfg.Prefix == "" {
		cfg.Prefix = "/image"
	}
	if cfg.Widths == nil {
		cfg.Widths = []int{100, 200}
	}
	core, logs := observer.New(zap.DebugLevel)
	f.logs = logs
	f.access = NewAccess(cfg, f.store, f.cms, zap.New(core))
	return f
}

// url builds an image URL for testUUID with the given stamps.
func (f *accessFixture) url(variant, format string, im, vm int64, width int) string {
	return BuildURL("/image", URLParts{UUID: testUUID, ImageModified: im, VariantModified: vm,
		Variant: variant, Width: width, Slug: "a-slug", Format: format})
}

func (f *accessFixture) do(method, target string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.access.ServeHTTP(rec, req)
	return rec
}

func (f *accessFixture) get(target string, hdr ...string) *httptest.ResponseRecorder {
	return f.do(http.MethodGet, target, hdr...)
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %q", rec.Code, status, rec.Body.String())
	}
}

func TestAccessGeneratesStoresAndServes(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	u := f.url("16x9-768", "jpg", imgMod, 1000, 0)
	rec := f.get(u)
	wantStatus(t, rec, 200)
	h := rec.Header()
	if h.Get("Content-Type") != "image/jpeg" || h.Get("Cache-Control") != "public, max-age=2592000" ||
		h.Get("ETag") == "" || h.Get("Content-Length") != itoa(rec.Body.Len()) || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", h)
	}
	img, _, err := image.Decode(bytes.NewReader(rec.Body.Bytes()))
	if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 180 { // never upscaled beyond 320
		t.Fatalf("body: %v %v", err, img.Bounds())
	}
	// Stored under the versioned key, with its index marker and state.
	ctx := testCtx(t)
	key := VariantKey(testUUID, "16x9-768", imgMod, 1000, 768, "jpg")
	for _, k := range []string{key, IndexKey("16x9-768", testUUID), StateKey(testUUID), VariantsKey} {
		if _, err := f.folder.Stat(ctx, k); err != nil {
			t.Fatalf("%s not stored: %v", k, err)
		}
	}
	// Second request: from the store, without the CMS.
	images, originals := f.cms.imageCalls.Load(), f.cms.originalCalls.Load()
	rec2 := f.get(u)
	wantStatus(t, rec2, 200)
	if !bytes.Equal(rec2.Body.Bytes(), rec.Body.Bytes()) || rec2.Header().Get("ETag") != h.Get("ETag") {
		t.Fatal("second answer differs")
	}
	if f.cms.imageCalls.Load() != images || f.cms.originalCalls.Load() != originals {
		t.Fatal("a stored variant was served by asking the CMS")
	}
	// Conditional GET and HEAD.
	rec3 := f.get(u, "If-None-Match", h.Get("ETag"))
	wantStatus(t, rec3, http.StatusNotModified)
	if rec3.Body.Len() != 0 || rec3.Header().Get("ETag") != h.Get("ETag") || rec3.Header().Get("Cache-Control") == "" {
		t.Fatalf("304 answer: %v %q", rec3.Header(), rec3.Body.String())
	}
	wantStatus(t, f.get(u, "If-None-Match", `"other"`), 200)
	rec4 := f.do(http.MethodHead, u)
	wantStatus(t, rec4, 200)
	if rec4.Body.Len() != 0 || rec4.Header().Get("Content-Length") != itoa(rec.Body.Len()) {
		t.Fatalf("HEAD: %v, body %d bytes", rec4.Header(), rec4.Body.Len())
	}
}

func TestAccessFormatsAndVariants(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	for _, tt := range []struct {
		url          string
		contentType  string
		wantW, wantH int
	}{
		{f.url("1x1-144", "png", imgMod, 1000, 0), "image/png", 144, 144},
		{f.url("4x3-160", "webp", imgMod, 1000, 0), "image/webp", 160, 120},
		{f.url("16x9", "gif", imgMod, 1000, 200), "image/gif", 200, 113},
		{f.url("original", "jpeg", imgMod, 0, 0), "image/jpeg", 320, 240},
	} {
		rec := f.get(tt.url)
		wantStatus(t, rec, 200)
		img, _, err := image.Decode(bytes.NewReader(rec.Body.Bytes()))
		if err != nil || rec.Header().Get("Content-Type") != tt.contentType ||
			img.Bounds().Dx() != tt.wantW || img.Bounds().Dy() != tt.wantH {
			t.Fatalf("%s: %v %s %v", tt.url, err, rec.Header().Get("Content-Type"), img.Bounds())
		}
	}
}

func TestAccessCacheControlFollowsStamps(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{ShortMaxAge: 30 * time.Second})
	long, short := "public, max-age=2592000", "public, max-age=30"
	for _, tt := range []struct {
		name   string
		im, vm int64
		want   string
	}{
		{"same versions", imgMod, 1000, long},
		{"older stamps", imgMod - 5000, 1, long},
		{"image stamp newer than the CMS has", imgMod + 1, 1000, short},
		{"variant stamp newer than the CMS has", imgMod, 1001, short},
	} {
		rec := f.get(f.url("1x1-144", "jpg", tt.im, tt.vm, 0))
		wantStatus(t, rec, 200)
		if got := rec.Header().Get("Cache-Control"); got != tt.want {
			t.Errorf("%s: Cache-Control %q, want %q", tt.name, got, tt.want)
		}
	}
	// "original" is not defined by the CMS: its variant stamp is no reason
	// for a short max-age, nor for fetching the definitions again.
	calls := f.cms.variantCalls.Load()
	rec := f.get(f.url("original", "jpg", imgMod, 12345, 0))
	wantStatus(t, rec, 200)
	if got := rec.Header().Get("Cache-Control"); got != long || f.cms.variantCalls.Load() != calls {
		t.Errorf("original: Cache-Control %q, %d definition fetches", got, f.cms.variantCalls.Load()-calls)
	}
	// The newer image stamp asked the CMS once; within the recheck
	// interval it is not asked again.
	n := f.cms.imageCalls.Load()
	f.get(f.url("1x1-144", "jpg", imgMod+1, 1000, 0))
	if f.cms.imageCalls.Load() != n {
		t.Fatal("CMS asked again within the recheck interval")
	}
}

func TestAccessPicksUpNewerVersions(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	wantStatus(t, f.get(f.url("1x1-144", "jpg", imgMod, 1000, 0)), 200)
	// The image changes; a page with the new stamp asks for it before the
	// update event arrived.
	newer := encodeJPEG(t, halves(300, 300, red, blue), 90)
	f.cms.setImage(testUUID, imgMod+10, nil, newer)
	rec := f.get(f.url("1x1-144", "png", imgMod+10, 1000, 0))
	wantStatus(t, rec, 200)
	if rec.Header().Get("Cache-Control") != "public, max-age=2592000" {
		t.Fatalf("Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
	img, _, _ := image.Decode(bytes.NewReader(rec.Body.Bytes()))
	if !near(img.At(5, 72), red, 30) {
		t.Fatalf("served the old image: %v", img.At(5, 72))
	}
	if st, _ := loadState(testCtx(t), f.folder, testUUID); st == nil || st.Modified != imgMod+10 {
		t.Fatalf("state not updated: %+v", st)
	}
	// A variant definition changes.
	f.cms.setVariant(VariantDef{Name: "1x1-144", Aspect: "1x1", Width: 144, Modified: 2000})
	time.Sleep(minVariantRefresh)
	rec = f.get(f.url("1x1-144", "png", imgMod+10, 2000, 0))
	wantStatus(t, rec, 200)
	if rec.Header().Get("Cache-Control") != "public, max-age=2592000" {
		t.Fatalf("new variant: Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
	if _, err := f.folder.Stat(testCtx(t), VariantKey(testUUID, "1x1-144", imgMod+10, 2000, 144, "png")); err != nil {
		t.Fatalf("new variant version not stored: %v", err)
	}
}

func TestAccessReplicaBehindIsServedButNotStored(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	ctx := testCtx(t)
	// The store knows a newer version than the CMS replica serves.
	if err := saveState(ctx, f.folder, imageState{UUID: testUUID, State: StatePublished, Modified: imgMod + 99}); err != nil {
		t.Fatal(err)
	}
	rec := f.get(f.url("1x1-144", "jpg", imgMod, 1000, 0))
	wantStatus(t, rec, 200)
	if rec.Header().Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("Cache-Control %q, want the short max-age", rec.Header().Get("Cache-Control"))
	}
	if _, err := f.folder.Stat(ctx, VariantKey(testUUID, "1x1-144", imgMod+99, 1000, 144, "jpg")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an older original was stored as the newer version: %v", err)
	}
}

func TestAccessErrors(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	other := "00000000-0000-4000-8000-000000000001"
	tests := []struct {
		name, method, url string
		status            int
	}{
		{"bad URL", "GET", "/image/" + testUUID + "/AAABijkh-E4/AAAAAAAAA+o/1x1-144.jpg", 400},
		{"width not allowed", "GET", f.url("16x9", "jpg", imgMod, 1000, 0) + "?width=123", 400},
		{"outside prefix", "GET", "/other/" + testUUID + "/AAABijkh-E4/AAAAAAAAA-g/1x1-144.jpg", 404},
		{"unknown uuid", "GET", strings.Replace(f.url("1x1-144", "jpg", imgMod, 1000, 0), testUUID, other, 1), 404},
		{"unknown variant", "GET", f.url("2x1-50", "jpg", imgMod, 1000, 0), 404},
		{"svg from a jpeg", "GET", f.url("original", "svg", imgMod, 0, 0), 404},
		{"post", "POST", f.url("1x1-144", "jpg", imgMod, 1000, 0), 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.url)
			wantStatus(t, rec, tt.status)
			if tt.status < 500 && tt.status != 405 && rec.Header().Get("Cache-Control") != "public, max-age=60" {
				t.Fatalf("Cache-Control %q", rec.Header().Get("Cache-Control"))
			}
		})
	}
	// An unknown uuid is not looked up again within the recheck interval.
	n := f.cms.imageCalls.Load()
	wantStatus(t, f.get(strings.Replace(f.url("1x1-144", "jpg", imgMod, 1000, 0), testUUID, other, 1)), 404)
	if f.cms.imageCalls.Load() != n {
		t.Fatal("unknown uuid looked up again at once")
	}
}

func TestAccessSVGOriginal(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><script>alert(1)</script></svg>`)
	f.cms.setImage(testUUID, imgMod, nil, svg)
	rec := f.get(f.url("original", "svg", imgMod, 0, 0))
	wantStatus(t, rec, 200)
	h := rec.Header()
	if !bytes.Equal(rec.Body.Bytes(), svg) || h.Get("Content-Type") != "image/svg+xml" ||
		h.Get("Content-Security-Policy") != "default-src 'none'; style-src 'unsafe-inline'; sandbox" ||
		h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("svg answer: %v", h)
	}
	wantStatus(t, f.get(f.url("1x1-144", "jpg", imgMod, 1000, 0)), 404) // no raster from svg
}

func itoa(n int) string { return strconv.Itoa(n) }
