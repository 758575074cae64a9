package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func newObserver() (zapcore.Core, *observer.ObservedLogs) { return observer.New(zap.DebugLevel) }

func httptestGet(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// pngHeader is the start of a PNG that claims w×h pixels, padded to about
// pad bytes: enough for image.DecodeConfig, which the generator uses to
// refuse an original before decoding it.
func pngHeader(w, h uint32, pad int) []byte {
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

// negativeFixture is an access fixture whose service uses nc, with a
// clock the test moves.
func negativeFixture(t *testing.T, cfg AccessConfig, nc *NegativeCache) (*accessFixture, *time.Time) {
	t.Helper()
	f := newAccessFixture(t, cfg)
	now := time.Unix(1_700_000_000, 0)
	nc.now = func() time.Time { return now }
	core, logs := newObserver()
	f.logs = logs
	cfg.Prefix, cfg.Widths = "/image", []int{100, 200}
	f.access = NewAccess(cfg, f.store, f.cms, zap.New(core), WithNegativeCache(nc))
	return f, &now
}

func unknownURL(i int, variant string) string {
	return BuildURL("/image", URLParts{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), ImageModified: imgMod,
		VariantModified: 1000, Variant: variant, Format: "jpg"})
}

// TestAccessRemembersUnknownImages: 100 unknown images asked twice cost
// 100 CMS look-ups, not 200, also when the recheck interval is long past;
// after the TTL the CMS is asked again, and an image published meanwhile
// is served.
func TestAccessRemembersUnknownImages(t *testing.T) {
	nc := NewNegativeCache(0)
	f, now := negativeFixture(t, AccessConfig{RecheckInterval: time.Millisecond, NegativeTTL: 30 * time.Second}, nc)
	for round := range 2 {
		for i := range 100 {
			wantStatus(t, f.get(unknownURL(i, "1x1-144")), http.StatusNotFound)
		}
		if round == 0 {
			time.Sleep(5 * time.Millisecond) // past the recheck interval
		}
	}
	if n := f.cms.imageCalls.Load(); n != 100 {
		t.Fatalf("%d CMS look-ups for 100 unknown images asked twice, want 100", n)
	}
	if st := nc.Stats(); st.Hits != 100 || st.Entries != 100 {
		t.Fatalf("stats %+v, want 100 hits and 100 entries", st)
	}
	// Another variant of a remembered image: no look-up either.
	wantStatus(t, f.get(unknownURL(7, "16x9-768")), http.StatusNotFound)
	if n := f.cms.imageCalls.Load(); n != 100 {
		t.Fatalf("another variant of an unknown image asked the CMS (%d look-ups)", n)
	}

	// Published now: still 404 within the TTL, served after it.
	uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", 3)
	f.cms.setImage(uuid, imgMod, nil, f.jpg)
	*now = now.Add(29 * time.Second)
	wantStatus(t, f.get(unknownURL(3, "1x1-144")), http.StatusNotFound)
	*now = now.Add(time.Second)
	wantStatus(t, f.get(unknownURL(3, "1x1-144")), http.StatusOK)
}

// TestAccessNegativeOff: with a negative TTL nothing is remembered and the
// CMS is asked on every request for an unknown image.
func TestAccessNegativeOff(t *testing.T) {
	nc := NewNegativeCache(0)
	f, _ := negativeFixture(t, AccessConfig{RecheckInterval: time.Millisecond, NegativeTTL: -1}, nc)
	for range 3 {
		wantStatus(t, f.get(unknownURL(1, "1x1-144")), http.StatusNotFound)
	}
	if n := f.cms.imageCalls.Load(); n != 3 {
		t.Fatalf("%d look-ups, want 3", n)
	}
	if st := nc.Stats(); st.Entries != 0 || st.Hits != 0 {
		t.Fatalf("stats %+v, want nothing remembered", st)
	}
}

// TestAccessRefusedOriginal: an original refused from its header answers
// 422 (not 500); further requests for any variant of that version answer
// 422 without fetching the document or the original again, and the
// refusal is logged once. An event for the image (through the updater's
// hook) ends it: a new, acceptable original is served.
func TestAccessRefusedOriginal(t *testing.T) {
	nc := NewNegativeCache(0)
	f, _ := negativeFixture(t, AccessConfig{}, nc)
	f.cms.setImage(testUUID, imgMod, nil, pngHeader(30000, 30000, 64<<10))
	u := f.url("16x9-768", "jpg", imgMod, 1000, 0)
	rec := f.get(u)
	wantStatus(t, rec, http.StatusUnprocessableEntity)
	if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=60" {
		t.Fatalf("422 with Cache-Control %q", cc)
	}
	if body := rec.Body.String(); strings.Contains(body, "imaging:") || strings.Contains(body, "30000") {
		t.Fatalf("422 body shows internals: %q", body)
	}
	images, originals := f.cms.imageCalls.Load(), f.cms.originalCalls.Load()
	if originals != 1 {
		t.Fatalf("%d originals fetched, want 1", originals)
	}
	for _, v := range []string{"16x9-768", "1x1-144", "4x3-160", "original"} {
		for range 3 {
			wantStatus(t, f.get(f.url(v, "png", imgMod, 1000, 0)), http.StatusUnprocessableEntity)
		}
	}
	if f.cms.imageCalls.Load() != images || f.cms.originalCalls.Load() != originals {
		t.Fatalf("refused original fetched again: documents %d → %d, originals %d → %d",
			images, f.cms.imageCalls.Load(), originals, f.cms.originalCalls.Load())
	}
	if n := f.logs.FilterMessageSnippet("original refused").Len(); n != 1 {
		t.Fatalf("refusal logged %d times, want once", n)
	}
	if n := f.logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Fatalf("a refused original logged as an error: %v", f.logs.FilterLevelExact(zapcore.ErrorLevel).All())
	}

	// The image changes in the CMS; the update service applies the event.
	f.cms.setImage(testUUID, imgMod+1, nil, f.jpg)
	up := NewUpdater(f.store, f.cms, nil)
	up.OnImageChange(nc.Forget)
	if err := up.HandleEvent(testCtx(t), ImageEvent{NodeType: "image", UUID: testUUID, State: StatePublished}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.get(f.url("16x9-768", "jpg", imgMod+1, 1000, 0)), http.StatusOK)
}

// TestAccessUndecodableOriginal: an original that is no image at all is
// refused (422) and remembered like one that is too large.
func TestAccessUndecodableOriginal(t *testing.T) {
	nc := NewNegativeCache(0)
	f, _ := negativeFixture(t, AccessConfig{}, nc)
	f.cms.setImage(testUUID, imgMod, nil, []byte("this is not an image"))
	for range 3 {
		wantStatus(t, f.get(f.url("1x1-144", "jpg", imgMod, 1000, 0)), http.StatusUnprocessableEntity)
	}
	if n := f.cms.originalCalls.Load(); n != 1 {
		t.Fatalf("%d originals fetched, want 1", n)
	}
}

// TestAccessRefusalNeedsSameLimits: a service with other limits sharing the
// cache does not take over a refusal it would not make.
func TestAccessRefusalNeedsSameLimits(t *testing.T) {
	nc := NewNegativeCache(0)
	small, _ := negativeFixture(t, AccessConfig{Generator: GeneratorConfig{MaxPixels: 1000}}, nc)
	u := small.url("1x1-144", "jpg", imgMod, 1000, 0)
	wantStatus(t, small.get(u), http.StatusUnprocessableEntity)
	large := NewAccess(AccessConfig{Prefix: "/image"}, small.store, small.cms, nil, WithNegativeCache(nc))
	rec := httptestGet(large, u)
	if rec.Code != http.StatusOK {
		t.Fatalf("service with the default limits: %d, want 200", rec.Code)
	}
}

// TestAccessUnknownForgottenOnEvent: an event for an image clears its
// "unknown" entry at once, long before the TTL.
func TestAccessUnknownForgottenOnEvent(t *testing.T) {
	nc := NewNegativeCache(0)
	f, _ := negativeFixture(t, AccessConfig{NegativeTTL: time.Hour}, nc)
	uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", 9)
	wantStatus(t, f.get(unknownURL(9, "1x1-144")), http.StatusNotFound)
	f.cms.setImage(uuid, imgMod, nil, f.jpg)
	wantStatus(t, f.get(unknownURL(9, "1x1-144")), http.StatusNotFound)
	up := NewUpdater(f.store, f.cms, nil)
	up.OnImageChange(nc.Forget)
	if err := up.HandleEvent(testCtx(t), ImageEvent{NodeType: "image", UUID: strings.ToUpper(uuid), State: StatePublished}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.get(unknownURL(9, "1x1-144")), http.StatusOK)
}

// TestNegativeCacheBound: a full cache drops its oldest entries, counts
// them and reports the first time it was full once.
func TestNegativeCacheBound(t *testing.T) {
	nc := NewNegativeCache(3)
	now := time.Unix(1_700_000_000, 0)
	nc.now = func() time.Time { return now }
	full := 0
	for i := range 5 {
		if nc.note(negEntry{uuid: fmt.Sprint(i), kind: negUnknown}, time.Minute) {
			full++
		}
		now = now.Add(time.Second)
	}
	if st := nc.Stats(); st.Entries != 3 || st.Evicted != 2 || full != 1 {
		t.Fatalf("stats %+v, first-full reports %d; want 3 entries, 2 evicted, 1 report", st, full)
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := nc.get(fmt.Sprint(i)); ok != want {
			t.Errorf("entry %d present = %v, want %v", i, ok, want)
		}
	}
	// Expired entries go before live ones are evicted.
	now = now.Add(time.Minute)
	nc.note(negEntry{uuid: "late", kind: negUnknown}, time.Minute)
	if st := nc.Stats(); st.Evicted != 2 {
		t.Fatalf("expired entries counted as evicted: %+v", st)
	}
	nc.Forget("late")
	if _, ok := nc.get("late"); ok {
		t.Fatal("Forget left the entry")
	}
}
