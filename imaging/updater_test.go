package imaging

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const otherUUID = "7d444840-9dc0-11d1-b245-5ffdce74fad2"

// warm generates two variants of two images through the access service.
func warm(t *testing.T, f *accessFixture) {
	t.Helper()
	f.cms.setImage(otherUUID, imgMod, nil, f.jpg)
	for _, id := range []string{testUUID, otherUUID} {
		for _, v := range []string{"1x1-144", "16x9-768"} {
			u := BuildURL("/image", URLParts{UUID: id, ImageModified: imgMod, VariantModified: 1000, Variant: v, Format: "jpg"})
			wantStatus(t, f.get(u), 200)
		}
	}
}

func newUpdater(f *accessFixture) *Updater { return NewUpdater(f.store, f.cms, zap.NewNop()) }

func TestUpdaterImagePublishedDeletesItsObjects(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	warm(t, f)
	up := newUpdater(f)
	if err := up.HandleEvent(testCtx(t), ImageEvent{NodeType: "image", UUID: testUUID, State: StatePublished, SourceTime: 1}); err != nil {
		t.Fatal(err)
	}
	if keys := listKeys2(t, f.folder, ImagePrefix(testUUID)); len(keys) != 0 {
		t.Fatalf("left after change: %v", keys)
	}
	if keys := listKeys2(t, f.folder, ImagePrefix(otherUUID)); len(keys) != 3 { // 2 variants + state
		t.Fatalf("other image touched: %v", keys)
	}
	// The next request asks the CMS again and regenerates.
	n := f.cms.originalCalls.Load()
	wantStatus(t, f.get(f.url("1x1-144", "jpg", imgMod, 1000, 0)), 200)
	if f.cms.originalCalls.Load() != n+1 {
		t.Fatal("variant not regenerated after the change")
	}
}

func TestUpdaterMarkersAndRepublish(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	warm(t, f)
	up := newUpdater(f)
	ctx := testCtx(t)
	u := f.url("1x1-144", "jpg", imgMod, 1000, 0)
	for _, tt := range []struct {
		state  string
		status int
	}{{StateDeleted, http.StatusGone}, {StateOffline, http.StatusNotFound}} {
		if err := up.HandleEvent(ctx, ImageEvent{NodeType: "image", UUID: strings.ToUpper(testUUID), State: tt.state, SourceTime: 77}); err != nil {
			t.Fatal(err)
		}
		if keys := listKeys2(t, f.folder, ImagePrefix(testUUID)); !slices.Equal(keys, []string{StateKey(testUUID)}) {
			t.Fatalf("%s: objects left besides the marker: %v", tt.state, keys)
		}
		tags, err := f.folder.GetTags(ctx, StateKey(testUUID))
		if err != nil || tags["state"] != tt.state || tags["source-time"] != "77" {
			t.Fatalf("%s: marker tags %v, %v", tt.state, tags, err)
		}
		f.cms.setDown(true) // answered from the marker alone
		wantStatus(t, f.get(u), tt.status)
		f.cms.setDown(false)
	}
	if err := up.HandleEvent(ctx, ImageEvent{NodeType: "image", UUID: testUUID, State: StatePublished, SourceTime: 78}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.get(u), 200)
}

func TestUpdaterVariantChangeDeletesThatVariantEverywhere(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	warm(t, f)
	up := newUpdater(f)
	ctx := testCtx(t)
	f.cms.setVariant(VariantDef{Name: "1x1-144", Aspect: "1x1", Width: 144, Modified: 2000})
	if err := up.HandleEvent(ctx, ImageEvent{NodeType: "imageVariant", UUID: otherUUID, ID: "variant-doc-1", State: StatePublished}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{testUUID, otherUUID} {
		if keys := listKeys2(t, f.folder, VariantPrefix(id, "1x1-144")); len(keys) != 0 {
			t.Fatalf("1x1-144 objects of %s left: %v", id, keys)
		}
		if keys := listKeys2(t, f.folder, VariantPrefix(id, "16x9-768")); len(keys) != 1 {
			t.Fatalf("16x9-768 objects of %s: %v", id, keys)
		}
	}
	if keys := listKeys2(t, f.folder, IndexPrefix("1x1-144")); len(keys) != 0 {
		t.Fatalf("index markers left: %v", keys)
	}
	stored, err := up.storedVariants(ctx)
	if err != nil || indexVariants(stored)["1x1-144"].Modified != 2000 {
		t.Fatalf("stored definitions not updated: %v %v", stored, err)
	}
	// A removed definition is a change too.
	f.cms.mu.Lock()
	f.cms.variants = slices.DeleteFunc(f.cms.variants, func(d VariantDef) bool { return d.Name == "16x9-768" })
	f.cms.mu.Unlock()
	if err := up.HandleEvent(ctx, ImageEvent{NodeType: "imageVariant", State: StateDeleted}); err != nil {
		t.Fatal(err)
	}
	if keys := listKeys2(t, f.folder, "img/"); slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "16x9-768") }) {
		t.Fatalf("objects of a deleted variant left: %v", keys)
	}
}

func TestUpdaterVariantEventWithoutStoredCopyUsesEventID(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	warm(t, f)
	ctx := testCtx(t)
	if err := f.folder.Delete(ctx, VariantsKey); err != nil {
		t.Fatal(err)
	}
	if err := newUpdater(f).HandleEvent(ctx, ImageEvent{NodeType: "imageVariant", ID: "16x9-768"}); err != nil {
		t.Fatal(err)
	}
	if keys := listKeys2(t, f.folder, VariantPrefix(testUUID, "16x9-768")); len(keys) != 0 {
		t.Fatalf("16x9-768 left: %v", keys)
	}
	if keys := listKeys2(t, f.folder, VariantPrefix(testUUID, "1x1-144")); len(keys) != 1 {
		t.Fatalf("1x1-144 touched: %v", keys)
	}
}

func TestUpdaterErrorsAndIgnoredEvents(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	warm(t, f)
	up := newUpdater(f)
	ctx := testCtx(t)
	before := listKeys2(t, f.folder, "")
	for _, ev := range []ImageEvent{
		{NodeType: "story", UUID: testUUID, State: StateDeleted},
		{NodeType: "image", UUID: "not-a-uuid", State: StateDeleted},
		{NodeType: "image", UUID: "../../etc", State: StatePublished},
	} {
		if err := up.HandleEvent(ctx, ev); err != nil {
			t.Fatalf("%+v: %v", ev, err)
		}
	}
	if after := listKeys2(t, f.folder, ""); !slices.Equal(after, before) {
		t.Fatal("ignored events changed the store")
	}
	f.cms.setDown(true)
	if err := up.HandleEvent(ctx, ImageEvent{NodeType: "imageVariant"}); !errors.Is(err, ErrCMSUnavailable) {
		t.Fatalf("variant event with the CMS down: %v", err)
	}
	f.cms.setDown(false)
	f.store.down.Store(true)
	for _, state := range []string{StatePublished, StateDeleted} {
		if err := up.HandleEvent(ctx, ImageEvent{NodeType: "image", UUID: testUUID, State: state}); !errors.Is(err, ErrStoreUnavailable) {
			t.Fatalf("%s with the store down: %v", state, err)
		}
	}
}

func TestUpdaterDeletesInBatches(t *testing.T) {
	old := deleteBatch
	deleteBatch = 3
	t.Cleanup(func() { deleteBatch = old })
	f := newAccessFixture(t, AccessConfig{})
	var keys []string
	for i := 0; i < 10; i++ {
		keys = append(keys, VariantKey(testUUID, "1x1-144", int64(i), 1, 144, "jpg"))
		keys = append(keys, IndexKey("1x1-144", strings.Replace(testUUID, "4", string(rune('a'+i)), 1)))
	}
	keys = append(keys, IndexKey("1x1-144", testUUID))
	putKeys(t, f.folder, keys)
	up := newUpdater(f)
	n, err := up.DeleteVariant(testCtx(t), "1x1-144")
	if err != nil || n != 10 {
		t.Fatalf("DeleteVariant = %d, %v; want 10", n, err)
	}
	if left := listKeys2(t, f.folder, ""); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

// listKeys2 lists keys without the content checks of listKeys.
func listKeys2(t *testing.T, s Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := s.List(testCtx(t), prefix, func(oi ObjectInfo) error { keys = append(keys, oi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return sorted(keys)
}

// TestUpdaterReplayLogsNothingAtInfo: events applied again (after a
// restart, or a batch offered again) find nothing to delete and log at
// debug level only; the first application of a real change logs at info.
func TestUpdaterReplayLogsNothingAtInfo(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	warm(t, f)
	core, logs := observer.New(zap.InfoLevel)
	up := NewUpdater(f.store, f.cms, zap.New(core))
	ctx := testCtx(t)
	events := []ImageEvent{
		{NodeType: "image", UUID: testUUID, State: StatePublished, SourceTime: 1},
		{NodeType: "image", UUID: otherUUID, State: StateOffline, SourceTime: 2},
	}
	for _, ev := range events {
		if err := up.HandleEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.Len(); n != 2 {
		t.Fatalf("first application: %d info lines, want 2: %v", n, logs.All())
	}
	logs.TakeAll()
	for range 2 {
		for _, ev := range events {
			if err := up.HandleEvent(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if all := logs.TakeAll(); len(all) != 0 {
		t.Fatalf("replay logged at info: %v", all)
	}
	// A published event for an image the store never had.
	if err := up.HandleEvent(ctx, ImageEvent{NodeType: "image", UUID: "00000000-1111-2222-3333-444444444444",
		State: StatePublished}); err != nil {
		t.Fatal(err)
	}
	if all := logs.TakeAll(); len(all) != 0 {
		t.Fatalf("event for an unstored image logged at info: %v", all)
	}
}
