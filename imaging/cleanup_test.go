package imaging

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestCleanupRemovesSupersededVersions(t *testing.T) {
	store := newTestFolderStore(t)
	cms := newFakeCMS() // 16x9-768 and 1x1-144 at version 1000
	ctx := testCtx(t)
	const (
		a = "aaaaaaaa-0000-4000-8000-000000000000" // published at 200
		b = "bbbbbbbb-0000-4000-8000-000000000000" // deleted
		c = "cccccccc-0000-4000-8000-000000000000" // no state, old object
		d = "dddddddd-0000-4000-8000-000000000000" // no state, new object
	)
	for _, s := range []imageState{
		{UUID: a, State: StatePublished, Modified: 200},
		{UUID: b, State: StateDeleted, SourceTime: 9},
	} {
		if err := saveState(ctx, store, s); err != nil {
			t.Fatal(err)
		}
	}
	keep := []string{
		StateKey(a), StateKey(b),
		VariantKey(a, "16x9-768", 200, 1000, 768, "jpg"), // current
		VariantKey(a, "16x9-768", 300, 1000, 768, "jpg"), // newer than the state: a racing update
		VariantKey(a, "original", 200, 0, 0, "webp"),     // original needs no definition
		VariantKey(d, "1x1-144", 100, 1000, 144, "png"),  // no state yet, but fresh
		IndexKey("16x9-768", a), IndexKey("1x1-144", d),
	}
	drop := []string{
		VariantKey(a, "16x9-768", 100, 1000, 768, "jpg"), // older image version
		VariantKey(a, "16x9-768", 200, 900, 768, "webp"), // older variant version
		VariantKey(a, "3x2-99", 200, 1000, 99, "jpg"),    // variant no longer defined
		VariantKey(b, "1x1-144", 100, 1000, 144, "jpg"),  // image deleted
		VariantKey(c, "1x1-144", 100, 1000, 144, "jpg"),  // orphan
		IndexKey("3x2-99", a),
	}
	putKeys(t, store, append(slices.Clone(keep[2:]), drop...))
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(store.dir, VariantKey(c, "1x1-144", 100, 1000, 144, "jpg")), old, old); err != nil {
		t.Fatal(err)
	}
	up := NewUpdater(store, cms, zap.NewNop())
	stats, err := up.Cleanup(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Deleted != len(drop) || stats.Scanned != len(keep)+len(drop)-3 { // index markers are not scanned
		t.Fatalf("stats %+v, want %d deleted of %d", stats, len(drop), len(keep)+len(drop)-3)
	}
	if left := listKeys2(t, store, ""); !slices.Equal(left, sorted(keep)) {
		t.Fatalf("left:\n%v\nwant:\n%v", left, sorted(keep))
	}
	// A second run finds nothing more.
	if stats, err := up.Cleanup(ctx, 0); err != nil || stats.Deleted != 0 {
		t.Fatalf("second run: %+v, %v", stats, err)
	}
}

func TestCleanupWithoutCMSUsesStoredDefinitions(t *testing.T) {
	store := newTestFolderStore(t)
	cms := newFakeCMS()
	ctx := testCtx(t)
	if err := saveState(ctx, store, imageState{UUID: testUUID, State: StatePublished, Modified: 5}); err != nil {
		t.Fatal(err)
	}
	putKeys(t, store, []string{VariantKey(testUUID, "1x1-144", 5, 999, 144, "jpg"), VariantKey(testUUID, "1x1-144", 5, 1000, 144, "jpg")})
	up := NewUpdater(store, cms, zap.NewNop())
	cms.setDown(true)
	// No stored copy: variant versions are left alone.
	if stats, err := up.Cleanup(ctx, 10); err != nil || stats.Deleted != 0 {
		t.Fatalf("without definitions: %+v, %v", stats, err)
	}
	cms.setDown(false)
	if err := up.HandleEvent(ctx, ImageEvent{NodeType: NodeTypeImageVariant, ID: "none"}); err != nil {
		t.Fatal(err) // mirrors the definitions into the store
	}
	cms.setDown(true)
	if stats, err := up.Cleanup(ctx, 10); err != nil || stats.Deleted != 1 {
		t.Fatalf("with stored definitions: %+v, %v", stats, err)
	}
}

func TestCleanupStoreDown(t *testing.T) {
	store := &flakyStore{Store: newTestFolderStore(t)}
	store.down.Store(true)
	if _, err := NewUpdater(store, newFakeCMS(), nil).Cleanup(testCtx(t), 10); err == nil {
		t.Fatal("Cleanup succeeded with the store down")
	}
}
